"""Requests and responses against the real broker: the requester is never left in silence."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from conftest import GENT, LIEGE, NodeFactory

from gateway.model.envelope import Header, MessageType, Purpose, RefusalReason, ResponseBody, seal
from gateway.node import Action, Node

PURPOSE = Purpose.NEW_APPLICATION_INQUIRY


def _pair(make_node: NodeFactory, **holder: object) -> tuple[Node, Node, str]:
    """Liège (the new CPAS, file vendor) asks Gent (the old one, relational vendor)."""
    old = make_node(GENT, "ocmwdata", **holder)
    new = make_node(LIEGE, "fichesociale")
    (number,) = old.adapter.seed(1, seed=11)  # type: ignore[attr-defined]
    return old, new, number


def test_an_automatic_answer_imports_the_dossier_at_the_requester(make_node: NodeFactory) -> None:
    old, new, number = _pair(make_node)
    sent = new.send_request(number, old.cpas_id, PURPOSE, "LG-2026-17")
    entry = new.wait_for_outcomes([sent.message_id], 15)[sent.message_id]
    assert (entry.outcome, entry.outcome_code) == ("answered", None)
    imported = new.adapter.export_dossier(number)
    original = old.adapter.export_dossier(number)
    assert imported is not None and original is not None
    assert imported.aid_history == original.aid_history


def test_a_person_unknown_to_the_old_cpas_gets_an_unknown_person_refusal(
    make_node: NodeFactory,
) -> None:
    old, new, _ = _pair(make_node)
    stranger = "85073003328"
    sent = new.send_request(stranger, old.cpas_id, PURPOSE, "LG-2026-18")
    entry = new.wait_for_outcomes([sent.message_id], 15)[sent.message_id]
    assert (entry.outcome, entry.outcome_code) == ("refused", RefusalReason.UNKNOWN_PERSON.value)
    assert new.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_a_purpose_the_old_cpas_refuses_gets_purpose_not_allowed(make_node: NodeFactory) -> None:
    old, new, number = _pair(make_node, policy={PURPOSE: Action.REFUSE})
    sent = new.send_request(number, old.cpas_id, PURPOSE, "LG-2026-19")
    entry = new.wait_for_outcomes([sent.message_id], 15)[sent.message_id]
    assert (entry.outcome, entry.outcome_code) == (
        "refused",
        RefusalReason.PURPOSE_NOT_ALLOWED.value,
    )
    assert new.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_a_held_request_answers_awaiting_release_then_the_dossier_once_released(
    make_node: NodeFactory,
) -> None:
    old, new, number = _pair(make_node, policy={PURPOSE: Action.HOLD})
    sent = new.send_request(number, old.cpas_id, PURPOSE, "LG-2026-20")
    _until(lambda: new.store.outgoing(sent.message_id).outcome == "awaiting-release")  # type: ignore[union-attr]
    (held,) = old.held_requests()
    assert (held.request.message_id, held.person_number) == (sent.message_id, number)

    old.release(sent.message_id).confirmed.result(10)

    entry = new.wait_for_outcomes([sent.message_id], 15)[sent.message_id]
    assert entry.outcome == "answered"
    assert new.adapter.export_dossier(number) is not None
    assert old.held_requests() == []


def test_a_held_request_refused_by_a_social_worker_says_so(make_node: NodeFactory) -> None:
    old, new, number = _pair(make_node, policy={PURPOSE: Action.HOLD})
    sent = new.send_request(number, old.cpas_id, PURPOSE, "LG-2026-21")
    _until(lambda: len(old.held_requests()) == 1)
    old.refuse_held(sent.message_id).confirmed.result(10)
    entry = new.wait_for_outcomes([sent.message_id], 15)[sent.message_id]
    assert (entry.outcome, entry.outcome_code) == (
        "refused",
        RefusalReason.REFUSED_BY_SOCIAL_WORKER.value,
    )


def test_a_request_nobody_answers_is_reported_expired(make_node: NodeFactory) -> None:
    silent = make_node(GENT, "ocmwdata")
    silent.stop()  # its inbox exists, nobody reads it
    new = make_node(LIEGE, "fichesociale")
    sent = new.send_request(
        "85073003328", silent.cpas_id, PURPOSE, "LG-2026-22", ttl=dt.timedelta(seconds=1)
    )
    sent.confirmed.result(10)
    time.sleep(2.1)  # expiry times are kept to the second
    assert new.expire_requests() == [sent.message_id]
    entry = new.store.outgoing(sent.message_id)
    assert entry is not None and (entry.outcome, entry.outcome_code) == (
        "expired",
        "request.expired",
    )


def test_a_response_to_no_request_is_refused_and_nothing_is_imported(
    make_node: NodeFactory,
) -> None:
    old, new, number = _pair(make_node)
    dossier = old.adapter.export_dossier(number)
    header = Header.new(
        MessageType.RESPONSE,
        sender=old.cpas_id,
        recipient=new.cpas_id,
        purpose=PURPOSE,
        case_reference="PUSHED-1",
        correlation_id=uuid.uuid4(),
    )
    body = ResponseBody(dossier).to_xml()
    data = seal(header, body, keys=old.keys, directory=old.directory).to_xml()
    old.broker.publish(
        old.names.route, new.cpas_id, data, message_id=str(header.message_id)
    ).result(10)
    _until(lambda: new.stats["refused.envelope.unsolicited"] == 1)
    assert new.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_a_transfer_for_a_refused_purpose_gets_a_rejected_receipt(make_node: NodeFactory) -> None:
    sender = make_node(GENT, "ocmwdata")
    receiver = make_node(LIEGE, "fichesociale", policy={PURPOSE: Action.REFUSE})
    (number,) = sender.adapter.seed(1, seed=12)  # type: ignore[attr-defined]
    sent = sender.send_transfer(number, receiver.cpas_id, PURPOSE)
    entry = sender.wait_for_outcomes([sent.message_id], 15)[sent.message_id]
    assert (entry.outcome, entry.outcome_code) == ("rejected", "purpose.not_allowed")
    assert receiver.adapter.count_persons() == 0  # type: ignore[attr-defined]


def _until(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
