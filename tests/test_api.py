"""The node's local API through real HTTP, against nodes on the real broker."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from helpers.api_nodes import AUTO, HOLD, TWO_PERSON, Pair, ask, held_at_gent, transfer, until

from gateway.adapters import ReceivesEvents, VendorEventKind
from gateway.api import ApiServer, create_app, guarded, openapi_document
from gateway.cli import main
from gateway.config import ApiConfig
from gateway.journal import Event
from gateway.model.dossier import Dossier


def test_api_spec_prints_an_openapi_3_document_with_every_operation(capsys: object) -> None:
    assert main(["api", "spec"]) == 0
    document = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert document["openapi"].startswith("3.")
    assert {
        "/v1/transfers", "/v1/transfers/preview", "/v1/requests", "/v1/messages/{message_id}",
        "/v1/held", "/v1/held/{request_id}/preview", "/v1/held/{request_id}/release",
        "/v1/held/{request_id}/refuse", "/v1/reports", "/v1/health", "/metrics",
    } <= set(document["paths"])  # fmt: skip
    assert document == openapi_document()


def test_a_transfer_started_through_the_api_is_imported_by_the_receiver(pair: Pair) -> None:
    message_id = transfer(pair)
    until(lambda: pair.gent.state(message_id)["state"] == "imported")
    assert pair.liege.node.adapter.export_dossier(pair.number) is not None
    state = pair.gent.state(message_id)
    assert (state["direction"], state["type"], state["peer"]) == (
        "out", "transfer", pair.liege.node.cpas_id,
    )  # fmt: skip


def test_a_request_the_holder_answers_at_once_is_answered_with_the_dossier(pair: Pair) -> None:
    request_id = ask(pair, AUTO)
    until(lambda: pair.liege.state(request_id)["state"] == "answered")
    assert pair.liege.node.adapter.export_dossier(pair.number) is not None


def test_a_held_request_is_listed_and_released_by_one_social_worker(pair: Pair) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    (listed,) = pair.gent.get("/v1/held").json()
    assert (listed["request_id"], listed["person_number"], listed["releases_needed"]) == (
        request_id, pair.number, 1,
    )  # fmt: skip
    assert listed["requester"]["id"] == pair.liege.node.cpas_id

    decision = pair.gent.post(
        f"/v1/held/{request_id}/release", {"staff_reference": "GT-SW-117"}
    ).json()

    assert (decision["state"], decision["released_by"]) == ("released", ["GT-SW-117"])
    until(lambda: pair.liege.state(request_id)["state"] == "answered")
    assert pair.liege.node.adapter.export_dossier(pair.number) is not None
    assert pair.gent.get("/v1/held").json() == []


def test_a_two_person_hold_is_released_by_two_distinct_social_workers(pair: Pair) -> None:
    request_id = ask(pair, TWO_PERSON)
    held_at_gent(pair, request_id)

    first = pair.gent.post(f"/v1/held/{request_id}/release", {"staff_reference": "GT-SW-117"})
    assert first.json()["state"] == "awaiting-second-release"
    assert pair.liege.state(request_id)["state"] == "held"
    second = pair.gent.post(f"/v1/held/{request_id}/release", {"staff_reference": "GT-SW-245"})

    assert second.json()["state"] == "released"
    assert second.json()["released_by"] == ["GT-SW-117", "GT-SW-245"]
    until(lambda: pair.liege.state(request_id)["state"] == "answered")
    assert pair.liege.node.adapter.export_dossier(pair.number) is not None


def test_a_held_request_refused_with_a_ground_tells_the_requester_a_social_worker_refused(
    pair: Pair,
) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    response = pair.gent.post(
        f"/v1/held/{request_id}/refuse",
        {"staff_reference": "GT-SW-117", "ground": "outside-legal-mission"},
    )
    assert response.json()["state"] == "refused"
    until(lambda: pair.liege.state(request_id)["state"] == "refused")
    state = pair.liege.get(f"/v1/messages/{request_id}", params={"lang": "nl"}).json()
    assert state["code"] == "refused-by-social-worker"
    assert "maatschappelijk werker" in state["words"]
    assert pair.liege.node.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_the_preview_of_a_held_request_is_the_dossier_that_goes_and_is_journaled(
    pair: Pair,
) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    response = pair.gent.post(
        f"/v1/held/{request_id}/preview",
        {"staff_reference": "GT-SW-117", "language": "fr", "format": "html"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    dossier = pair.gent.node.adapter.export_dossier(pair.number)
    assert dossier is not None and dossier.person.family_name in response.text
    assert "Le dossier qui serait envoyé" in response.text
    text = pair.gent.post(
        f"/v1/held/{request_id}/preview", {"staff_reference": "GT-SW-117", "format": "text"}
    )
    assert text.headers["content-type"].startswith("text/plain")
    journal = pair.gent.node.journal
    assert journal is not None
    shown = [e for e in journal.entries_for(pair.number) if e.event == Event.DOSSIER_SHOWN]
    assert [e.actor for e in shown] == ["GT-SW-117", "GT-SW-117"]
    journaled = Dossier.from_xml(shown[0].content or b"")
    # Each export is a new dossier (its own id and time): the content is the same.
    assert (journaled.person, journaled.household, journaled.aid_history) == (
        dossier.person, dossier.household, dossier.aid_history,
    )  # fmt: skip


def test_the_persons_report_names_both_social_workers(pair: Pair) -> None:
    request_id = ask(pair, HOLD, staff="LG-AS-0042")
    held_at_gent(pair, request_id)
    pair.gent.post(f"/v1/held/{request_id}/release", {"staff_reference": "GT-SW-117"})
    until(lambda: pair.liege.state(request_id)["state"] == "answered")
    liege_journal, gent_journal = pair.liege.node.journal, pair.gent.node.journal
    assert liege_journal is not None and gent_journal is not None

    at_liege = pair.liege.post(
        "/v1/reports", {"person_number": pair.number, "language": "fr", "format": "text"}
    ).text
    at_gent = pair.gent.post(
        "/v1/reports", {"person_number": pair.number, "language": "nl", "format": "text"}
    ).text

    gent_pseudonym = gent_journal.staff_pseudonym("GT-SW-117")
    liege_pseudonym = liege_journal.staff_pseudonym("LG-AS-0042")
    flat_liege, flat_gent = " ".join(at_liege.split()), " ".join(at_gent.split())
    assert "(référence LG-AS-0042) a demandé votre dossier" in flat_liege
    assert f"(référence {gent_pseudonym}) l’a transmis" in flat_liege
    assert f"(kenmerk {liege_pseudonym}) heeft" in flat_gent
    assert "(kenmerk GT-SW-117) heeft beslist de aanvraag te beantwoorden" in flat_gent
    # Only the pseudonym crosses: Gent's reference is nowhere in Liège's journal.
    assert "GT-SW-117" not in at_liege and "LG-AS-0042" not in at_gent


def test_health_says_broker_store_adapter_directory_and_keys(pair: Pair) -> None:
    response = pair.gent.get("/v1/health")
    assert response.status_code == 200, response.text
    health = response.json()
    assert (health["status"], health["broker"], health["store"]) == ("ok", "ok", "ok")
    assert health["adapter"] == {"name": "ocmwdata", "status": "ok"}
    assert health["directory"]["serial"] == pair.gent.node.directory.serial
    assert health["keys"]["valid"] is True


def test_metrics_count_messages_held_requests_and_import_latency(pair: Pair) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    gent = pair.gent.get("/metrics")
    assert gent.headers["content-type"].startswith("text/plain")
    assert "cpas_gateway_held_requests 1.0" in gent.text
    assert 'cpas_gateway_messages{direction="in",outcome="held",type="request"} 1.0' in gent.text
    pair.gent.post(f"/v1/held/{request_id}/release", {"staff_reference": "GT-SW-117"})
    until(lambda: pair.liege.state(request_id)["state"] == "answered")
    liege = pair.liege.get("/metrics").text
    assert 'cpas_gateway_messages{direction="out",outcome="answered",type="request"} 1.0' in liege
    assert "cpas_gateway_import_seconds_count 1.0" in liege
    assert "cpas_gateway_outbox_depth" in liege and "cpas_gateway_dead_letters_total" in liege


def test_both_vendor_systems_are_told_what_happened(pair: Pair) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    gent, liege = pair.gent.node.adapter, pair.liege.node.adapter
    assert isinstance(gent, ReceivesEvents) and isinstance(liege, ReceivesEvents)
    (held,) = gent.read_events()
    assert (held.kind, held.message_id, held.peer, held.person_number) == (
        VendorEventKind.REQUEST_HELD, request_id, pair.liege.node.cpas_id, pair.number,
    )  # fmt: skip

    pair.gent.post(f"/v1/held/{request_id}/release", {"staff_reference": "GT-SW-117"})
    until(lambda: pair.liege.state(request_id)["state"] == "answered")

    told = {(e.kind, e.message_id) for e in liege.read_events()}
    assert (VendorEventKind.REQUEST_ANSWERED, request_id) in told
    assert VendorEventKind.DOSSIER_IMPORTED in {kind for kind, _ in told}


def test_the_sender_is_told_its_transfer_was_imported(pair: Pair) -> None:
    message_id = transfer(pair)
    until(lambda: pair.gent.state(message_id)["state"] == "imported")
    gent = pair.gent.node.adapter
    assert isinstance(gent, ReceivesEvents)
    until(lambda: (VendorEventKind.TRANSFER_IMPORTED, message_id) in {
        (e.kind, e.message_id) for e in gent.read_events()
    })  # fmt: skip


def test_the_api_can_listen_on_a_unix_socket_only(pair: Pair, tmp_path: Path) -> None:
    socket = tmp_path / "api.sock"
    app = guarded(create_app(pair.gent.node, pair.gent.tokens))
    server = ApiServer(app, ApiConfig(unix_socket=socket)).start()
    try:
        assert oct(socket.stat().st_mode & 0o777) == "0o660"
        transport = httpx.HTTPTransport(uds=str(socket))
        with httpx.Client(transport=transport, base_url="http://node") as client:
            held = client.get("/v1/held", headers={"Authorization": f"Bearer {pair.gent.token}"})
        assert (held.status_code, held.json()) == (200, [])
    finally:
        server.stop()


def test_the_exchanges_of_a_case_name_each_step_and_the_social_worker_who_acted(
    pair: Pair,
) -> None:
    request_id = ask(pair, HOLD, staff="LG-AS-0042")
    held_at_gent(pair, request_id)
    pair.gent.post(f"/v1/held/{request_id}/release", {"staff_reference": "GT-SW-117"})
    until(lambda: pair.liege.state(request_id)["state"] == "answered")
    transfer(pair)  # another case at Gent: not one of this case's steps

    at_liege = pair.liege.get("/v1/cases/LG-2026-140/exchanges", params={"lang": "nl"}).json()
    at_gent = pair.gent.get("/v1/cases/LG-2026-140/exchanges").json()

    sent = next(step for step in at_liege if step["event"] == Event.SENT)
    assert (sent["message_id"], sent["type"], sent["actor"]) == (
        request_id, "request", "LG-AS-0042",
    )  # fmt: skip
    assert sent["peer"]["id"] == pair.gent.node.cpas_id
    assert sent["event_words"] == "verstuurd"
    assert Event.RESPONSE_RECEIVED in {step["event"] for step in at_liege}
    events = [step["event"] for step in at_gent]
    assert events[0] == Event.RECEIVED
    assert events.index(Event.REQUEST_HELD) < events.index(Event.REQUEST_RELEASED)
    released = at_gent[events.index(Event.REQUEST_RELEASED)]
    assert (released["actor"], released["peer"]["id"]) == ("GT-SW-117", pair.liege.node.cpas_id)
    assert "transfer" not in {step["type"] for step in at_gent}  # another case
    assert all("dossier" not in step for step in at_gent)


def test_a_case_nothing_was_journaled_under_has_no_exchanges(pair: Pair) -> None:
    response = pair.gent.get("/v1/cases/NO-SUCH-CASE/exchanges")
    assert (response.status_code, response.json()) == (200, [])
