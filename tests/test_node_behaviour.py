"""What a node does with what it receives, on the in-memory broker and on RabbitMQ alike.

Every test runs twice: on :class:`gateway.testing.MemoryBroker` (seconds, no
RabbitMQ) and on the real broker (marked ``broker``). A behaviour that passes
on one and fails on the other is a defect of the in-memory broker's model.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pytest
from conftest import GENT, LIEGE, NodeFactory

from gateway.model.codes import Fault, Outcome, Refusal
from gateway.model.envelope import Purpose, RefusalReason
from gateway.model.errors import AdapterError, GatewayError
from gateway.model.staff import staff_reference
from gateway.node import Action, Node

MOVE = Purpose.CONTINUITY_AFTER_MOVE
INQUIRY = Purpose.NEW_APPLICATION_INQUIRY


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.broker)])
def make(request: pytest.FixtureRequest) -> NodeFactory:
    """Nodes on the in-memory broker, then on RabbitMQ."""
    fixture = "make_memory_node" if request.param == "memory" else "make_node"
    factory: NodeFactory = request.getfixturevalue(fixture)
    return factory


def _pair(make: NodeFactory, **receiver: object) -> tuple[Node, Node, str]:
    """Gent (relational vendor) holds a person's dossier; Liège (file vendor) receives."""
    gent = make(GENT, "ocmwdata")
    liege = make(LIEGE, "fichesociale", **receiver)
    (number,) = gent.adapter.seed(1, seed=21)  # type: ignore[attr-defined]
    return gent, liege, number


def _asker(make: NodeFactory, **holder: object) -> tuple[Node, Node, str]:
    """Liège asks Gent, which holds the person's dossier under ``holder``'s policy."""
    gent = make(GENT, "ocmwdata", **holder)
    liege = make(LIEGE, "fichesociale")
    (number,) = gent.adapter.seed(1, seed=22)  # type: ignore[attr-defined]
    return gent, liege, number


def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _outcome(node: Node, message_id: str) -> tuple[str | None, str | None]:
    entry = node.wait_for_outcomes([message_id], 15)[message_id]
    return entry.outcome, entry.outcome_code


def _awaiting_release(node: Node, message_id: str) -> bool:
    entry = node.store.outgoing(message_id)
    return entry is not None and entry.outcome == Outcome.AWAITING_RELEASE


def test_a_transfer_is_imported_and_the_sender_gets_an_imported_receipt(
    make: NodeFactory,
) -> None:
    gent, liege, number = _pair(make)
    sent = gent.send_transfer(number, liege.cpas_id, MOVE)
    assert _outcome(gent, sent.message_id) == (Outcome.IMPORTED, None)
    assert liege.adapter.export_dossier(number) is not None
    assert liege.stats["imported"] == 1


def test_a_transfer_for_a_refused_purpose_is_declined_and_not_imported(
    make: NodeFactory,
) -> None:
    gent, liege, number = _pair(make, policy={MOVE: Action.REFUSE})
    sent = gent.send_transfer(number, liege.cpas_id, MOVE)
    assert _outcome(gent, sent.message_id) == (Outcome.REJECTED, Refusal.PURPOSE_NOT_ALLOWED)
    assert liege.adapter.count_persons() == 0  # type: ignore[attr-defined]
    assert liege.stats["dead_lettered"] == 0  # declined by policy: answered, not dead-lettered


def test_a_request_for_a_refused_purpose_is_answered_purpose_not_allowed(
    make: NodeFactory,
) -> None:
    gent, liege, number = _asker(make, policy={INQUIRY: Action.REFUSE})
    sent = liege.send_request(number, gent.cpas_id, INQUIRY, "LG-B-1")
    assert _outcome(liege, sent.message_id) == (
        Outcome.REFUSED,
        RefusalReason.PURPOSE_NOT_ALLOWED.value,
    )
    assert liege.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_a_request_for_a_held_purpose_waits_for_a_social_worker(make: NodeFactory) -> None:
    gent, liege, number = _asker(make, policy={INQUIRY: Action.HOLD})
    sent = liege.send_request(number, gent.cpas_id, INQUIRY, "LG-B-2")
    _until(lambda: _awaiting_release(liege, sent.message_id))
    (held,) = gent.held_requests()
    assert (held.request.message_id, held.person_number) == (sent.message_id, number)
    assert liege.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_a_held_request_once_released_brings_the_dossier(make: NodeFactory) -> None:
    gent, liege, number = _asker(make, policy={INQUIRY: Action.HOLD})
    sent = liege.send_request(number, gent.cpas_id, INQUIRY, "LG-B-3")
    _until(lambda: len(gent.held_requests()) == 1)
    released = gent.release(sent.message_id)
    assert released is not None
    assert _outcome(liege, sent.message_id) == (Outcome.ANSWERED, None)
    assert liege.adapter.export_dossier(number) is not None
    assert gent.held_requests() == []


def test_a_held_request_refused_by_a_social_worker_tells_the_requester(
    make: NodeFactory,
) -> None:
    gent, liege, number = _asker(make, policy={INQUIRY: Action.HOLD})
    sent = liege.send_request(number, gent.cpas_id, INQUIRY, "LG-B-4")
    _until(lambda: len(gent.held_requests()) == 1)
    gent.refuse_held(sent.message_id)
    assert _outcome(liege, sent.message_id) == (
        Outcome.REFUSED,
        RefusalReason.REFUSED_BY_SOCIAL_WORKER.value,
    )
    assert liege.adapter.count_persons() == 0  # type: ignore[attr-defined]
    assert gent.held_requests() == []


def test_a_two_person_hold_sends_the_dossier_only_at_the_second_distinct_release(
    make: NodeFactory,
) -> None:
    gent, liege, number = _asker(make, policy={INQUIRY: Action.TWO_PERSON_HOLD})
    sent = liege.send_request(number, gent.cpas_id, INQUIRY, "LG-B-6")
    _until(lambda: len(gent.held_requests()) == 1)
    assert gent.release(sent.message_id, staff=staff_reference("GT-SW-117")) is None
    assert len(gent.held_requests()) == 1
    assert gent.release(sent.message_id, staff=staff_reference("GT-SW-204")) is not None
    assert _outcome(liege, sent.message_id) == (Outcome.ANSWERED, None)


def test_the_same_social_worker_cannot_release_a_two_person_hold_twice(
    make: NodeFactory,
) -> None:
    gent, liege, number = _asker(make, policy={INQUIRY: Action.TWO_PERSON_HOLD})
    sent = liege.send_request(number, gent.cpas_id, INQUIRY, "LG-B-7")
    _until(lambda: len(gent.held_requests()) == 1)
    gent.release(sent.message_id, staff=staff_reference("GT-SW-117"))
    with pytest.raises(GatewayError) as refused:
        gent.release(sent.message_id, staff=staff_reference("GT-SW-117"))
    assert refused.value.code == Fault.HOLD_SAME_STAFF
    assert len(gent.held_requests()) == 1


def test_the_same_message_delivered_twice_is_imported_once(make: NodeFactory) -> None:
    gent, liege, number = _pair(make)
    sent = gent.send_transfer(number, liege.cpas_id, MOVE)
    assert _outcome(gent, sent.message_id) == (Outcome.IMPORTED, None)
    entry = gent.store.outgoing(sent.message_id)
    assert entry is not None
    gent.broker.publish(
        gent.names.route, liege.cpas_id, entry.envelope, message_id=sent.message_id
    ).result(10)
    _until(lambda: liege.stats["duplicates"] == 1)
    assert liege.stats["imported"] == 1
    assert liege.adapter.count_persons() == 1  # type: ignore[attr-defined]


def test_a_delivery_in_hand_when_the_node_stops_comes_again_and_is_imported_once(
    make: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    gent = make(GENT, "ocmwdata")
    liege = make(LIEGE, "fichesociale", start=False)

    def away(*args: object, **kwargs: object) -> None:
        raise AdapterError("The vendor is away.", code="adapter.unavailable", transient=True)

    monkeypatch.setattr(liege.adapter, "import_dossier", away)
    liege.import_retry_seconds = 0
    liege.start()
    (number,) = gent.adapter.seed(1, seed=23)  # type: ignore[attr-defined]
    sent = gent.send_transfer(number, liege.cpas_id, MOVE)
    _until(lambda: liege.health().status == "vendor system unavailable")
    liege.stop()  # the delivery in hand was never acked

    restarted = make(LIEGE, "fichesociale")
    assert _outcome(gent, sent.message_id) == (Outcome.IMPORTED, None)
    assert restarted.stats["redelivered"] == 1
    assert restarted.adapter.count_persons() == 1  # type: ignore[attr-defined]


def test_garbage_is_dead_lettered_and_the_node_keeps_importing(make: NodeFactory) -> None:
    gent, liege, number = _pair(make)
    gent.broker.publish(gent.names.route, liege.cpas_id, b"<not xml", message_id="junk").result(10)
    sent = gent.send_transfer(number, liege.cpas_id, MOVE)
    assert _outcome(gent, sent.message_id) == (Outcome.IMPORTED, None)
    _until(lambda: liege.stats["dead_lettered"] == 1)
    assert liege.stats["refused.xml.malformed"] == 1


def test_a_request_unanswered_by_its_expiry_is_recorded_expired(make: NodeFactory) -> None:
    gent, liege, number = _asker(make, policy={INQUIRY: Action.HOLD})
    sent = liege.send_request(number, gent.cpas_id, INQUIRY, "LG-B-5")
    _until(lambda: _awaiting_release(liege, sent.message_id))
    assert liege.expire_requests(dt.datetime.now(dt.UTC)) == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert liege.expire_requests(later) == [sent.message_id]
    assert _outcome(liege, sent.message_id) == (Outcome.EXPIRED, Refusal.REQUEST_EXPIRED)
