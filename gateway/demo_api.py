"""The demo's second act: the vendors' software and the social workers, through the API.

A social worker in Liège asks Gent for a person's dossier through Liège's
node API; Gent's policy holds the request; a social worker in Gent signs in
to the desk of Gent's node and releases it; Liège's vendor system imports the
dossier and is told so (an event); the person's report at Liège names both
social workers -- Liège's by its reference, Gent's by the pseudonym only Gent
can resolve. Plain HTTP from the standard library, as any vendor's software
would call it.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from gateway.adapters import ReceivesEvents, VendorEvent
from gateway.api import ApiServer, ApiTokens, create_app, guarded
from gateway.config import ApiConfig
from gateway.model.envelope import Purpose
from gateway.node import Node

HELD_PURPOSE: Final = Purpose.NEW_APPLICATION_INQUIRY
"""Gent's policy holds requests for this purpose for a social worker."""
LIEGE_STAFF: Final = "LG-AS-0042"
GENT_STAFF: Final = "GT-SW-117"
HELD_ROW: Final = '<tr id="held-'
"""How the desk's page starts the row of a held request."""


class _Api:
    """One node's API on a free loopback port, with one client token (and its cookies)."""

    def __init__(self, node: Node, client: str) -> None:
        self.tokens = ApiTokens(node.store.url, node.cpas_id)
        _, self.token = self.tokens.create(client)
        app = guarded(create_app(node, self.tokens))
        self.server = ApiServer(app, ApiConfig(listen="127.0.0.1:0")).start()
        self.browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.server.address + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read().decode()
        return json.loads(payload) if payload.startswith(("{", "[")) else payload

    def form(self, path: str, fields: dict[str, str] | None = None) -> str:
        """GET (no fields) or POST a form, as a browser does: cookies kept, redirects followed."""
        data = None if fields is None else urllib.parse.urlencode(fields).encode()
        with self.browser.open(self.server.address + path, data=data, timeout=30) as response:
            return str(response.read().decode())

    def close(self) -> None:
        self.server.stop()
        self.tokens.close()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    if found is None:
        raise RuntimeError("the desk's page carries no CSRF token")
    return html.unescape(found.group(1))


def _until(state: str, api: _Api, message_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = dict(api.call("GET", f"/v1/messages/{message_id}"))
        if current["state"] == state or time.monotonic() > deadline:
            return current
        time.sleep(0.2)


def show_api_story(gent: Node, liege: Node, number: str, console: Console) -> None:
    """Liège asks Gent through the API; Gent holds; a Gent social worker releases at the desk."""
    console.rule("[bold]Through the node API: who asked, who released")
    liege_api, gent_api = _Api(liege, "Liège's FicheSociale"), _Api(gent, "Gent's desk")
    try:
        told_before = _events(liege)
        asked = liege_api.call(
            "POST",
            "/v1/requests",
            {
                "person_number": number, "holder": gent.cpas_id,
                "purpose": HELD_PURPOSE.value, "case_reference": "LG-2026-140",
                "staff_reference": LIEGE_STAFF,
            },
        )  # fmt: skip
        request_id = asked["message_id"]
        console.print(
            f"Liège's software, for social worker {LIEGE_STAFF}: POST {liege_api.server.address}"
            f"/v1/requests → request {request_id}"
        )
        state = _until("held", liege_api, request_id)
        console.print(f"Gent's policy holds it: Liège sees the state [bold]{state['state']}[/].")
        login = gent_api.form("/desk/login?lang=nl")
        desk = gent_api.form(
            "/desk/login",
            {"token": gent_api.token, "staff_reference": GENT_STAFF, "csrf": _csrf(login),
             "lang": "nl"},
        )  # fmt: skip
        held = desk.count(HELD_ROW)
        console.print(
            f"Social worker {GENT_STAFF} signs in to Gent's desk ({gent_api.server.address}/desk)"
            f" and sees {held} held request(s); they release it."
        )
        gent_api.form(f"/desk/held/{request_id}/release", {"csrf": _csrf(desk)})
        state = _until("answered", liege_api, request_id)
        console.print(f"Liège sees the state [bold]{state['state']}[/].")
        _show_events(liege, told_before, console)
        report = liege_api.call(
            "POST", "/v1/reports", {"person_number": number, "language": "fr", "format": "text"}
        )
        console.print(
            Panel(escape(str(report)), title="The person's report at Liège, naming who acted")
        )
    except urllib.error.HTTPError as exc:
        console.print(f"The API refused: {exc.code} {exc.read().decode(errors='replace')}")
        raise
    finally:
        liege_api.close()
        gent_api.close()


def _events(node: Node) -> list[VendorEvent]:
    adapter = node.adapter
    return adapter.read_events() if isinstance(adapter, ReceivesEvents) else []


def _show_events(node: Node, before: list[VendorEvent], console: Console) -> None:
    vendor = node.adapter.info.vendor
    if not isinstance(node.adapter, ReceivesEvents):
        console.print(f"{vendor} takes no events (ReceivesEvents).")
        return
    new = [e for e in _events(node) if e not in before]
    told = ", ".join(f"{e.kind.value} ({e.message_id[:8]}…)" for e in new)
    console.print(f"{vendor} holds the dossier, and was told: {told}.")
