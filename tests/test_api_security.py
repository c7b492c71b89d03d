"""What a careless vendor or an attacker on the machine sends the node's API: each call is
refused with its code, nothing changes, and no traceback is ever returned."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from helpers.api_nodes import HOLD, MAX_BODY, TWO_PERSON, Pair, ask, held_at_gent

from gateway.model.staff import staff_reference


def _transfer(pair: Pair, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "person_number": pair.number,
        "recipient": pair.liege.node.cpas_id,
        "purpose": "continuity-after-move",
        "staff_reference": "GT-SW-117",
    }
    return {k: v for k, v in (body | changes).items() if v is not None}


def _refused(response: object, status: int, code: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.json()["code"] == code  # type: ignore[attr-defined]
    assert "Traceback" not in response.text  # type: ignore[attr-defined]


@pytest.fixture
def nothing_sent(pair: Pair) -> Iterator[None]:
    """After the test: Gent's outbox is still empty."""
    yield
    assert pair.gent.node.store.outgoing_all() == []


def test_a_call_without_a_token_is_refused(pair: Pair, nothing_sent: None) -> None:
    response = pair.gent.call("POST", "/v1/transfers", token="", json=_transfer(pair))
    _refused(response, 401, "api.unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_revoked_token_is_refused(pair: Pair, nothing_sent: None) -> None:
    client, token = pair.gent.tokens.create("former vendor")
    assert pair.gent.get("/v1/held", token=token).status_code == 200
    pair.gent.tokens.revoke(client.token_id)
    _refused(
        pair.gent.post("/v1/transfers", _transfer(pair), token=token), 401, "api.token_revoked"
    )


def test_a_token_of_another_node_is_refused(pair: Pair, nothing_sent: None) -> None:
    response = pair.gent.post("/v1/transfers", _transfer(pair), token=pair.liege.token)
    _refused(response, 401, "api.token_other_node")


def test_a_forged_token_of_this_node_is_refused(pair: Pair, nothing_sent: None) -> None:
    forged = pair.gent.token[:-8] + "0" * 8
    _refused(
        pair.gent.post("/v1/transfers", _transfer(pair), token=forged), 401, "api.token_invalid"
    )


def test_a_client_without_the_right_is_refused(pair: Pair, nothing_sent: None) -> None:
    _, monitoring = pair.gent.tokens.create("prometheus", ["monitor"])
    assert pair.gent.get("/metrics", token=monitoring).status_code == 200
    _refused(
        pair.gent.post("/v1/transfers", _transfer(pair), token=monitoring), 403, "api.forbidden"
    )
    _refused(pair.gent.get("/v1/held", token=monitoring), 403, "api.forbidden")


@pytest.mark.parametrize(
    ("staff", "code"),
    [
        (None, "staff.missing"),
        ("", "staff.missing"),
        ("Marie Dupont", "staff.invalid"),
        ("mdupont", "staff.looks_personal"),
        ("85.07.30-033.28", "staff.looks_personal"),
        ("AS-85073003328", "staff.looks_personal"),
        ("AS<script>", "staff.invalid"),
    ],
)
def test_a_transfer_without_a_proper_staff_reference_is_refused(
    pair: Pair, nothing_sent: None, staff: str | None, code: str
) -> None:
    body = _transfer(pair, staff_reference=None)
    if staff is not None:
        body["staff_reference"] = staff
    response = pair.gent.post("/v1/transfers", body)
    _refused(response, 422, code)
    assert not staff or staff not in response.text


def test_a_release_without_a_staff_reference_is_refused_and_the_request_stays_held(
    pair: Pair,
) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    _refused(pair.gent.post(f"/v1/held/{request_id}/release", {}), 422, "staff.missing")
    _refused(
        pair.gent.post(f"/v1/held/{request_id}/refuse", {"ground": "identity-uncertain"}),
        422,
        "staff.missing",
    )
    assert [h["request_id"] for h in pair.gent.get("/v1/held").json()] == [request_id]
    assert pair.gent.node.store.outgoing_all() == []


def test_a_second_release_by_the_same_social_worker_under_a_two_person_hold_is_refused(
    pair: Pair,
) -> None:
    request_id = ask(pair, TWO_PERSON)
    held_at_gent(pair, request_id)
    pair.gent.post(f"/v1/held/{request_id}/release", {"staff_reference": "GT-SW-117"})
    again = pair.gent.post(f"/v1/held/{request_id}/release", {"staff_reference": "GT-SW-117"})
    _refused(again, 409, "hold.same_staff")
    (held,) = pair.gent.get("/v1/held").json()
    assert held["released_by"] == ["GT-SW-117"]
    assert pair.gent.node.store.outgoing_all() == []
    assert pair.liege.state(request_id)["state"] == "held"


def test_a_request_of_this_cpas_itself_can_never_be_released_by_it(pair: Pair) -> None:
    own = str(uuid.uuid4())
    pair.gent.node.store.hold(
        message_id=own, sender=pair.gent.node.cpas_id, purpose=HOLD.value,
        case_reference="GT-1", envelope=b"<x/>", expires_at="2999-01-01T00:00:00Z",
    )  # fmt: skip
    _refused(
        pair.gent.post(f"/v1/held/{own}/release", {"staff_reference": "GT-SW-117"}),
        409,
        "hold.own_request",
    )
    assert pair.gent.node.store.held_request(own).state == "held"  # type: ignore[union-attr]


def test_a_refusal_ground_outside_the_closed_list_is_refused(pair: Pair) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    response = pair.gent.post(
        f"/v1/held/{request_id}/refuse", {"staff_reference": "GT-SW-117", "ground": "no reason"}
    )
    _refused(response, 422, "api.invalid")
    assert len(pair.gent.get("/v1/held").json()) == 1


def test_an_oversized_body_is_refused_before_it_is_read(pair: Pair, nothing_sent: None) -> None:
    padding = "x" * (MAX_BODY + 1)
    response = pair.gent.call(
        "POST", "/v1/transfers", content=b'{"a": "' + padding.encode() + b'"}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    _refused(response, 413, "api.body_too_large")


def test_an_oversized_body_sent_in_chunks_is_refused(pair: Pair, nothing_sent: None) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"person_number": "'
        for _ in range(MAX_BODY // 512 + 2):
            yield b"9" * 512
        yield b'"}'

    response = pair.gent.call(
        "POST", "/v1/transfers", content=chunks(), headers={"Content-Type": "application/json"}
    )
    _refused(response, 413, "api.body_too_large")


@pytest.mark.parametrize(
    "body", [b"{", b"not json", b"\xff\xfe", b'{"person_number": 1e999999}'], ids=repr
)
def test_a_malformed_body_is_refused(pair: Pair, nothing_sent: None, body: bytes) -> None:
    response = pair.gent.call(
        "POST", "/v1/transfers", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] in ("api.malformed", "api.invalid")
    assert "Traceback" not in response.text


@pytest.mark.parametrize("reference", ["-starts-with-a-dash", "a b", "x" * 65, "é"], ids=repr)
def test_a_case_reference_outside_the_opaque_form_is_refused(pair: Pair, reference: str) -> None:
    response = pair.gent.get(f"/v1/cases/{reference}/exchanges")
    _refused(response, 422, "api.invalid")


def test_the_exchanges_of_a_case_need_the_right_to_exchange(pair: Pair) -> None:
    _, monitoring = pair.gent.tokens.create("prometheus", ["monitor"])
    response = pair.gent.get("/v1/cases/LG-2026-140/exchanges", token=monitoring)
    _refused(response, 403, "api.forbidden")


def test_an_unknown_field_is_refused_not_ignored(pair: Pair, nothing_sent: None) -> None:
    _refused(pair.gent.post("/v1/transfers", _transfer(pair, urgent=True)), 422, "api.invalid")


def test_an_invalid_national_number_is_refused_without_being_repeated(
    pair: Pair, nothing_sent: None
) -> None:
    response = pair.gent.post("/v1/transfers", _transfer(pair, person_number="85073003329"))
    _refused(response, 422, "niss.checksum")
    assert "85073003329" not in response.text


def test_a_recipient_that_is_not_a_cpas_is_refused_by_the_api(
    pair: Pair, nothing_sent: None
) -> None:
    police = next(i.id for i in pair.gent.node.directory.institutions if i.kind.value == "police")
    response = pair.gent.post("/v1/transfers", _transfer(pair, recipient=police))
    _refused(response, 422, "directory.not_cpas")


def test_the_state_of_a_message_of_no_concern_to_this_node_is_not_found(pair: Pair) -> None:
    request_id = ask(pair, HOLD)
    held_at_gent(pair, request_id)
    # Liège's own outbox answers; the same id asked of a third party's view is unknown.
    _refused(pair.gent.get(f"/v1/messages/{uuid.uuid4()}"), 404, "message.unknown")
    _refused(pair.gent.get("/v1/messages/not-a-uuid"), 422, "api.invalid")


def test_an_unknown_operation_is_a_json_404(pair: Pair) -> None:
    _refused(pair.gent.get("/v1/secrets"), 404, "api.not_found")


def test_staff_references_keep_their_opaque_form() -> None:
    assert staff_reference("AS-0042") == "AS-0042"
    assert staff_reference("gent.sw:117") == "gent.sw:117"
