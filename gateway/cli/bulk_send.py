"""``send --all``: a whole caseload, in one process or in N side by side.

A node is one Python process and keeps one core busy. With ``--workers N``
the command starts N child processes of itself, each sending one share of
the people (:func:`gateway.node.send.share_of`) and telling its progress as
one JSON object a line on its stdout (``{"done": .., "total": ..}``, then
``{"sent": .., "unconfirmed": .., "message_ids": [..]}``). The parent sums
them in one progress bar, passes SIGINT and SIGTERM on to them, and once
they have ended waits for the receipts with its own node. Every share skips
what the outbox says was already sent, so a failed or interrupted run is
finished by running the same command again, with any number of workers.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from rich.console import Console
from rich.progress import Progress

from gateway.cli.style import EXIT_INTERRUPTED, EXIT_NO
from gateway.cli.workers import end_with_parent, own_command
from gateway.config import NodeConfig
from gateway.model.codes import Outcome
from gateway.model.envelope import Purpose
from gateway.node import Node, build_node

CONFIRM_WAIT_SECONDS = 300.0
"""How long a bulk send waits for the broker to confirm what it published."""

RESUME = "run the same command again: it sends only what is missing."


def share_argument(text: str) -> tuple[int, int]:
    """The hidden ``--share K/N`` of a child: share K (from 0) of N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N") from None
    if n < 1 or not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share: K/N with 0 <= K < N")
    return k, n


def report_sent(
    node: Node, args: argparse.Namespace, console: Console, sent: list[str], unconfirmed: int
) -> int:
    """The bulk send's closing lines (receipts waited for with ``--wait``); its exit status."""
    console.print(f"sent {len(sent)} dossiers; {len(sent) - unconfirmed} held by the broker")
    if unconfirmed:
        console.print(f"{unconfirmed} not confirmed yet: published again at the next start")
    if args.wait > 0 and sent:
        outcomes = node.wait_for_outcomes(sent, args.wait)
        imported = sum(1 for e in outcomes.values() if e.outcome == Outcome.IMPORTED)
        console.print(f"receipts: {imported} imported of {len(sent)}")
    return EXIT_NO if unconfirmed else 0


# ------------------------------------------------------------------ a child


def send_share(node: Node, args: argparse.Namespace) -> int:
    """A child's side: its share sent, its progress and result as JSON lines on stdout."""
    # SIGTERM as Ctrl-C: the node closes its connection before the process ends.
    signal.signal(signal.SIGTERM, _interrupt)
    with node:
        sent = node.send_all(
            args.to,
            Purpose(args.purpose),
            progress=lambda done, total: _say({"done": done, "total": total}),
            store_wait=args.store_wait,
            share=args.share or (0, 1),
        )
        unconfirmed = len(node.wait_confirmed(sent, timeout=CONFIRM_WAIT_SECONDS))
    _say({"sent": len(sent), "unconfirmed": unconfirmed, "message_ids": sent})
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------- the parent


@dataclass
class _Child:
    """One child process, its share, and what it said so far."""

    share: int
    shares: int
    process: subprocess.Popen[str]
    done: int = 0
    total: int | None = None
    result: dict[str, Any] | None = None
    readers: list[threading.Thread] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"share {self.share + 1} of {self.shares}"

    @property
    def failed(self) -> bool:
        return self.process.returncode != 0 or self.result is None

    @property
    def how_it_ended(self) -> str:
        status = self.process.returncode
        if status < 0:
            return f"killed by {signal.Signals(-status).name}"
        return f"exit status {status}"

    def read_stdout(self, console: Console) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                console.print(f"{self.name}: {line.rstrip()}", markup=False)
                continue
            if "sent" in message:
                self.result = message
            else:
                self.done, self.total = int(message["done"]), int(message["total"])

    def read_stderr(self, console: Console) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            console.print(f"{self.name}: {line.rstrip()}", markup=False, soft_wrap=True)


def _child_command(args: argparse.Namespace, share: int, shares: int) -> list[str]:
    return own_command(
        "send", "--config", str(args.config), "--all",
        "--to", args.to, "--purpose", args.purpose,
        "--wait", "0", "--store-wait", str(args.store_wait),
        "--share", f"{share}/{shares}", "--json-progress",
        verbose=args.verbose,
    )  # fmt: skip


def _start(args: argparse.Namespace, share: int, shares: int, console: Console) -> _Child:
    process = subprocess.Popen(
        _child_command(args, share, shares),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A group of its own: Ctrl-C at the terminal reaches the parent only,
        # which passes it on once; and it ends if the parent is killed.
        process_group=0,
        preexec_fn=end_with_parent,
    )
    child = _Child(share, shares, process)
    for read in (child.read_stdout, child.read_stderr):
        reader = threading.Thread(target=read, args=(console,), daemon=True)
        reader.start()
        child.readers.append(reader)
    return child


@contextmanager
def _signals_passed_on(children: list[_Child]) -> Iterator[list[int]]:
    """SIGINT and SIGTERM passed on to the children still running; the signals received."""
    received: list[int] = []

    def pass_on(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        for child in children:
            if child.process.poll() is None:
                child.process.send_signal(signum)

    previous = {s: signal.signal(s, pass_on) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def send_in_parallel(args: argparse.Namespace, console: Console) -> int:
    """``send --all --workers N``: N children, one progress bar, then the receipts."""
    # Built first: a wrong configuration or a refused destination is said
    # once, and the store is migrated before the children open it.
    node = build_node(NodeConfig.load(args.config))
    node.sender.check_destination(args.to, None)
    children: list[_Child] = []
    with _signals_passed_on(children) as received, Progress(console=console) as progress:
        task = progress.add_task(f"Transferring to {args.to}", total=None)
        children += [_start(args, k, args.workers, console) for k in range(args.workers)]
        while any(child.process.poll() is None for child in children):
            _show(progress, task, children)
            time.sleep(0.2)
        for child in children:
            for reader in child.readers:
                reader.join()
        _show(progress, task, children)
    if received:
        console.print(f"interrupted: every dossier recorded so far will be delivered; {RESUME}")
        return EXIT_INTERRUPTED
    failed = [child for child in children if child.failed]
    for child in failed:
        console.print(f"{child.name} failed ({child.how_it_ended})")
    if failed:
        console.print(f"Every dossier recorded so far is safe and will be delivered; {RESUME}")
        return EXIT_NO
    results = [child.result for child in children if child.result is not None]
    sent = [message_id for result in results for message_id in result["message_ids"]]
    with node:
        return report_sent(node, args, console, sent, sum(r["unconfirmed"] for r in results))


def _show(progress: Progress, task: Any, children: list[_Child]) -> None:
    totals = [child.total for child in children]
    total = None if None in totals else sum(t or 0 for t in totals)
    progress.update(task, completed=sum(child.done for child in children), total=total)
