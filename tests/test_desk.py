"""The desk: a social worker releases a held request in a real browser; forms need their
CSRF token."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
from helpers.api_nodes import HOLD, Pair, ask, held_at_gent, until
from helpers.headless import Chromium, require_chromium

from gateway.journal import Event


def test_a_social_worker_releases_a_held_request_through_the_desk_in_chromium(
    pair: Pair, tmp_path: Path
) -> None:
    require_chromium()
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    with Chromium(tmp_path) as browser:
        browser.open(f"{pair.gent.server.address}/desk/login?lang=nl")
        browser.fill("#token", pair.gent.token)
        browser.fill("#staff_reference", "GT-SW-117")
        browser.click("form.login button")
        listed = browser.text()
        assert "aangemeld als GT-SW-117" in listed and pair.number in listed
        requester = pair.gent.node.directory.get(pair.liege.node.cpas_id)
        assert requester is not None and requester.name("nl") in listed
        browser.screenshot(tmp_path / "desk-held.png")

        browser.click(f"#held-{request_id} form.release button")

        assert "Aanvraag vrijgegeven" in browser.text()
        png = browser.screenshot(tmp_path / "desk-released.png")
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    until(lambda: pair.liege.state(request_id)["state"] == "answered")
    assert pair.liege.node.adapter.export_dossier(pair.number) is not None
    journal = pair.gent.node.journal
    assert journal is not None
    (released,) = [e for e in journal.tail(50) if e.event == Event.REQUEST_RELEASED]
    assert released.actor == "GT-SW-117"


@contextlib.contextmanager
def _signed_in(pair: Pair) -> Iterator[httpx.Client]:
    """A desk session, as a browser holds it (cookies)."""
    with httpx.Client(base_url=pair.gent.server.address, follow_redirects=True) as client:
        form = client.get("/desk/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        page = client.post(
            "/desk/login",
            data={"token": pair.gent.token, "staff_reference": "GT-SW-117", "csrf": csrf},
        )
        assert "GT-SW-117" in page.text
        yield client


def test_a_release_posted_without_the_csrf_token_is_refused_and_changes_nothing(
    pair: Pair,
) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    with _signed_in(pair) as client:
        response = client.post(f"/desk/held/{request_id}/release", data={})
        forged = client.post(f"/desk/held/{request_id}/release", data={"csrf": "guessed"})
    for refused in (response, forged):
        assert (refused.status_code, refused.json()["code"]) == (403, "desk.csrf")
    assert len(pair.gent.get("/v1/held").json()) == 1
    assert pair.gent.node.store.outgoing_all() == []


def test_a_sign_in_posted_without_its_csrf_cookie_is_refused(pair: Pair) -> None:
    response = httpx.post(
        f"{pair.gent.server.address}/desk/login",
        data={"token": pair.gent.token, "staff_reference": "GT-SW-117", "csrf": "x" * 43},
    )
    assert (response.status_code, response.json()["code"]) == (403, "desk.csrf")
    assert "set-cookie" not in response.headers


def test_the_desk_refuses_a_token_without_the_right_to_decide(pair: Pair) -> None:
    _, monitoring = pair.gent.tokens.create("prometheus", ["monitor"])
    with httpx.Client(base_url=pair.gent.server.address) as client:
        form = client.get("/desk/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        response = client.post(
            "/desk/login", data={"token": monitoring, "staff_reference": "GT-1", "csrf": csrf}
        )
    assert (response.status_code, response.json()["code"]) == (403, "api.forbidden")


def test_revoking_the_token_ends_the_desk_session(pair: Pair) -> None:
    client_id = pair.gent.token.split("_")[2]
    with _signed_in(pair) as client:
        pair.gent.tokens.revoke(client_id)
        page = client.get("/desk")
    assert page.url.path == "/desk/login"


def test_the_desk_shows_the_exchanges_of_a_case_and_who_acted(pair: Pair) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    with _signed_in(pair) as client:
        desk = client.get("/desk")
        csrf = desk.text.split('name="csrf" value="')[1].split('"')[0]
        client.post(f"/desk/held/{request_id}/release", data={"csrf": csrf})
        page = client.post("/desk/case", data={"case_reference": "LG-2026-140", "csrf": csrf})
        unknown = client.post("/desk/case", data={"case_reference": "NONE-1", "csrf": csrf})
        forged = client.post("/desk/case", data={"case_reference": "LG-2026-140"})
    assert page.status_code == 200
    assert "Échanges d’un dossier" in page.text and "LG-2026-140" in page.text
    assert "GT-SW-117" in page.text and "autorisé par un assistant social" in page.text
    assert "Aucun échange" in unknown.text
    assert (forged.status_code, forged.json()["code"]) == (403, "desk.csrf")
