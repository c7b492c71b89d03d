"""What a node does when something other than a message goes wrong.

A message reaches the dead letters only for something about the message: it
is refused with a code, or it keeps failing while the node is otherwise
healthy. A node that dies holding deliveries costs them nothing for good, a
vendor system that is away costs them no delivery attempt, and a thread that
dies stops the node instead of leaving it idle with deliveries in hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pika
import pytest
from conftest import GENT, LIEGE, NodeFactory

import gateway.node
from gateway.broker import BROKER_DELIVERY_LIMIT
from gateway.dead_letters import (
    REQUEUED_HEADER,
    list_dead_letters,
    requeue_after_delivery_limit,
)
from gateway.journal import Event
from gateway.model.codes import Refusal
from gateway.model.dossier import Dossier
from gateway.model.envelope import Purpose
from gateway.model.errors import AdapterError, StoreUnavailable
from gateway.node import Node

PURPOSE = Purpose.CONTINUITY_AFTER_MOVE


def _wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _ready(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


# ------------------------------------------------------------ no silent death


def test_a_worker_loop_dying_of_an_unexpected_error_stops_the_node_and_hands_back_its_deliveries(
    make_node: NodeFactory, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = make_node(GENT, "ocmwdata")
    receiver = make_node(LIEGE, "fichesociale", start=False)
    held: list[int] = []

    def broken(batch: list[Any]) -> None:
        held.append(len(batch))
        raise RuntimeError("a bug in the worker loop")

    monkeypatch.setattr(receiver.receiver, "process_batch", broken)
    receiver.start()
    numbers = sender.adapter.seed(3, seed=31)  # type: ignore[attr-defined]
    for number in numbers:
        sender.send_transfer(number, receiver.cpas_id, PURPOSE).confirmed.result(10)
    _wait(receiver.failed.is_set)
    assert receiver.health().status == "failed"
    assert "a bug in the worker loop" in str(receiver.health().detail)
    assert held  # it died holding deliveries...
    assert not receiver.broker.is_ready  # ...and closed its connection: none is held now
    _wait(lambda: _ready(amqp_url, receiver.names.inbox(receiver.cpas_id)) == 3)


def test_a_store_outage_in_the_worker_loop_is_waited_out_not_fatal(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.node.worker, "SWEEP_SECONDS", 0.1)
    receiver = make_node(LIEGE, "fichesociale", start=False)
    real = receiver.expire_requests
    failures = [StoreUnavailable("The store is away.")] * 3

    def away_then_back(now: Any = None) -> list[str]:
        if failures:
            raise failures.pop()
        return real(now)

    monkeypatch.setattr(receiver, "expire_requests", away_then_back)
    receiver.start()
    _wait(lambda: receiver.stats["store_unavailable"] == 1 and not failures)
    _wait(lambda: receiver.health().ok)
    assert not receiver.failed.is_set()
    assert receiver.broker.consuming


# ------------------------------------------------------------ delivery attempts


def test_a_message_that_keeps_failing_while_the_node_is_healthy_is_refused_after_the_limit(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = make_node(GENT, "ocmwdata")
    receiver = make_node(LIEGE, "fichesociale", start=False, delivery_limit=3)
    numbers = sender.adapter.seed(4, seed=37)  # type: ignore[attr-defined]
    cursed = numbers[0]
    adapter = receiver.adapter
    real = adapter.import_batch  # type: ignore[attr-defined]

    def import_batch(items: list[tuple[Dossier, str]]) -> Any:
        if any(dossier.person.number == cursed for dossier, _ in items):
            raise AdapterError("This record is stuck.", code="adapter.busy", transient=True)
        return real(items)

    monkeypatch.setattr(adapter, "import_batch", import_batch)
    receiver.import_retry_seconds = 0
    receiver.start()
    sent = [sender.send_transfer(n, receiver.cpas_id, PURPOSE) for n in numbers]
    outcomes = sender.wait_for_outcomes([s.message_id for s in sent], 30)
    assert outcomes[sent[0].message_id].outcome == "rejected"
    assert outcomes[sent[0].message_id].outcome_code == Refusal.NODE_ATTEMPTS_EXHAUSTED
    assert [outcomes[s.message_id].outcome for s in sent[1:]] == ["imported"] * 3
    assert receiver.store.failures(sent[0].message_id) == 3
    _wait(
        lambda: [d.code for d in list_dead_letters(receiver)] == [Refusal.NODE_ATTEMPTS_EXHAUSTED]
    )


def test_a_vendor_system_away_spends_no_delivery_attempt(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = make_node(GENT, "ocmwdata")
    receiver = make_node(LIEGE, "fichesociale", start=False, delivery_limit=1)
    adapter = receiver.adapter
    real = adapter.import_batch  # type: ignore[attr-defined]
    away = [True]

    def import_batch(items: list[tuple[Dossier, str]]) -> Any:
        if away[0]:
            raise AdapterError("The vendor is away.", code="adapter.unavailable", transient=True)
        return real(items)

    monkeypatch.setattr(adapter, "import_batch", import_batch)
    receiver.import_retry_seconds = 0
    receiver.start()
    (number,) = sender.adapter.seed(1, seed=41)  # type: ignore[attr-defined]
    sent = sender.send_transfer(number, receiver.cpas_id, PURPOSE)
    _wait(lambda: receiver.health().status == "vendor system unavailable")
    time.sleep(1.0)  # several tries, each of which would have cost an attempt
    away[0] = False
    outcome = sender.wait_for_outcomes([sent.message_id], 30)[sent.message_id]
    assert outcome.outcome == "imported"
    assert receiver.store.failures(sent.message_id) == 0
    assert receiver.stats["redelivered"] == 0
    assert list_dead_letters(receiver) == []


# ------------------------------------------------------- the broker's backstop


def _give_back_until_dead(amqp_url: str, queue: str) -> None:
    """Take the queue's message and give it back, as a crash-looping consumer would, until the
    broker's delivery limit dead-letters it."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for _ in range(BROKER_DELIVERY_LIMIT + 1):
            method, _, _ = channel.basic_get(queue)
            if method is None:
                break
            channel.basic_nack(method.delivery_tag, requeue=True)
    finally:
        connection.close()


def _publish(amqp_url: str, node: Node, message_id: str, body: bytes) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            node.names.route,
            node.cpas_id,
            body,
            pika.BasicProperties(delivery_mode=2, message_id=message_id, type="transfer"),
            mandatory=True,
        )
    finally:
        connection.close()


def test_dead_letters_of_the_broker_limit_alone_are_sent_back_once_and_journaled(
    make_node: NodeFactory, amqp_url: str
) -> None:
    sender = make_node(GENT, "ocmwdata")
    (number,) = sender.adapter.seed(1, seed=43)  # type: ignore[attr-defined]
    receiver = make_node(LIEGE, "fichesociale", start=False)
    receiver.broker.pause_consumer()
    receiver.broker.start()  # declares the inbox; nothing consumes it
    sent = sender.send_transfer(number, receiver.cpas_id, PURPOSE)
    sent.confirmed.result(10)
    entry = sender.store.outgoing(sent.message_id)
    assert entry is not None
    inbox = receiver.names.inbox(receiver.cpas_id)
    # The genuine message, given back again and again as by a crash-looping node.
    _give_back_until_dead(amqp_url, inbox)
    _publish(amqp_url, receiver, "refused-once", b"<not an envelope")
    _give_back_until_dead(amqp_url, inbox)
    _wait(lambda: len(list_dead_letters(receiver)) == 2)
    # One the node refused itself stays, whatever the broker counted.
    receiver.store.record_received(
        message_id="refused-once", type="transfer", sender="?", outcome="rejected"
    )

    assert requeue_after_delivery_limit(receiver) == [sent.message_id]
    assert [d.message_id for d in list_dead_letters(receiver)] == ["refused-once"]
    assert receiver.journal is not None
    assert receiver.journal.has_entry(Event.REQUEUED, sent.message_id)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        method, properties, _ = connection.channel().basic_get(inbox, auto_ack=False)
        assert method is not None and properties.message_id == sent.message_id
        assert properties.headers[REQUEUED_HEADER] == 1
    finally:
        connection.close()
    # Dead-lettered by the broker a second time: it really kills the node; it stays.
    _wait(lambda: _ready(amqp_url, inbox) == 1)
    _give_back_until_dead(amqp_url, inbox)
    _wait(lambda: len(list_dead_letters(receiver)) == 2)
    assert requeue_after_delivery_limit(receiver) == []
