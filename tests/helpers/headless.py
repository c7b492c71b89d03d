"""Headless Chromium driven over the DevTools protocol on a pipe (no extra package).

``--remote-debugging-pipe`` makes Chromium read commands on its fd 3 and
write answers and events on its fd 4, each a JSON object ended by a NUL byte.
Enough of the protocol to open a page, fill and submit its forms, click, read
the text and take a screenshot, the way a social worker would.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from helpers.ci import unavailable

CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> None:
    if not CHROMIUM.exists():
        unavailable(
            "headless Chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
        )


class Chromium:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, folder: Path, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        commands_r, self._commands = os.pipe()
        self._answers, answers_w = os.pipe()

        def at_fds_3_and_4() -> None:
            os.dup2(commands_r, 3)
            os.dup2(answers_w, 4)

        self.process = subprocess.Popen(
            [
                str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--remote-debugging-pipe",
                f"--user-data-dir={folder / 'chromium-profile'}", "--window-size=1100,800",
                "about:blank",
            ],
            preexec_fn=at_fds_3_and_4, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(commands_r)
        os.close(answers_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.call("Page.enable")

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait(10)
        os.close(self._commands)
        os.close(self._answers)

    # ------------------------------------------------------------ protocol

    def _call(self, method: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}} | extra
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self._events.append(answer)

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            assert time.monotonic() < deadline, "Chromium did not answer in time"
            chunk = os.read(self._answers, 65536)
            assert chunk, "Chromium closed its pipe"
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return dict(json.loads(message))

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A command to the page."""
        return self._call(method, params, sessionId=self._session)

    def _loaded(self) -> None:
        """Wait for the page's next load event."""
        while True:
            pending = [e for e in self._events if e.get("method") == "Page.loadEventFired"]
            if pending:
                self._events = [e for e in self._events if e not in pending]
                return
            self._events.append(self._read())

    # ------------------------------------------------------------- actions

    def open(self, url: str) -> None:
        self._events.clear()
        self.call("Page.navigate", {"url": url})
        self._loaded()

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"])
        return result["result"].get("value")

    def fill(self, selector: str, value: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    def click(self, selector: str) -> None:
        """Click (a button that submits a form) and wait for the page it leads to."""
        self._events.clear()
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        self._loaded()

    def text(self) -> str:
        return str(self.evaluate("document.body.innerText"))

    def screenshot(self, path: Path) -> bytes:
        png = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        path.write_bytes(png)
        return png
