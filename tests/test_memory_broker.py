"""The in-memory broker routes, redelivers and dead-letters as the node relies on RabbitMQ to."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from gateway.broker import Delivery, Names, cpas_topology
from gateway.model.errors import BrokerError
from gateway.testing import MEMORY_URL, MemoryBroker, MemoryClient

NAMES = Names("mem")
GENT, LIEGE = "0212344876", "0207374412"


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def clients(broker: MemoryBroker) -> Iterator[list[MemoryClient]]:
    made: list[MemoryClient] = []
    yield made
    for client in made:
        client.stop()


def _consumer(
    broker: MemoryBroker, clients: list[MemoryClient], cpas_id: str, *, prefetch: int = 10
) -> tuple[MemoryClient, queue.Queue[Delivery]]:
    inbox: queue.Queue[Delivery] = queue.Queue()
    client = broker.client(
        [MEMORY_URL],
        cpas_topology([cpas_id], names=NAMES),
        consume=NAMES.inbox(cpas_id),
        on_delivery=inbox.put,
        prefetch=prefetch,
    )
    clients.append(client)
    return client.start(wait=5), inbox


def _publisher(broker: MemoryBroker, clients: list[MemoryClient]) -> MemoryClient:
    client = broker.client([MEMORY_URL], cpas_topology([GENT], names=NAMES))
    clients.append(client)
    return client.start(wait=5)


def test_a_message_is_routed_to_its_recipients_inbox_and_confirmed(
    broker: MemoryBroker, clients: list[MemoryClient]
) -> None:
    _, inbox = _consumer(broker, clients, LIEGE)
    _publisher(broker, clients).publish(NAMES.route, LIEGE, b"m", message_id="1").result(1)
    delivery = inbox.get(timeout=2)
    assert (delivery.body, delivery.properties.message_id, delivery.redelivered) == (
        b"m",
        "1",
        False,
    )


def test_a_recipient_without_an_inbox_makes_the_publish_fail_unroutable(
    broker: MemoryBroker, clients: list[MemoryClient]
) -> None:
    future = _publisher(broker, clients).publish(NAMES.route, LIEGE, b"m")
    with pytest.raises(BrokerError) as error:
        future.result(1)
    assert error.value.code == "broker.unroutable"


def test_a_user_id_other_than_the_login_is_refused(
    broker: MemoryBroker, clients: list[MemoryClient]
) -> None:
    _consumer(broker, clients, LIEGE)
    future = _publisher(broker, clients).publish(NAMES.route, LIEGE, b"m", user_id="someone")
    with pytest.raises(BrokerError) as error:
        future.result(1)
    assert error.value.code == "broker.access_refused"


def test_a_rejected_and_requeued_delivery_comes_again_marked_redelivered(
    broker: MemoryBroker, clients: list[MemoryClient]
) -> None:
    liege, inbox = _consumer(broker, clients, LIEGE)
    _publisher(broker, clients).publish(NAMES.route, LIEGE, b"m").result(1)
    liege.reject(inbox.get(timeout=2), requeue=True)
    again = inbox.get(timeout=2)
    assert (again.body, again.redelivered) == (b"m", True)


def test_a_rejected_delivery_goes_to_the_dead_letter_queue(
    broker: MemoryBroker, clients: list[MemoryClient]
) -> None:
    liege, inbox = _consumer(broker, clients, LIEGE)
    _publisher(broker, clients).publish(NAMES.route, LIEGE, b"m", message_id="7").result(1)
    liege.reject(inbox.get(timeout=2), requeue=False)
    ((body, properties),) = broker.messages(NAMES.dead_letters(LIEGE))
    assert (body, properties.message_id) == (b"m", "7")
    assert broker.messages(NAMES.inbox(LIEGE)) == []


def test_unacknowledged_deliveries_return_when_their_client_stops(
    broker: MemoryBroker, clients: list[MemoryClient]
) -> None:
    liege, inbox = _consumer(broker, clients, LIEGE)
    _publisher(broker, clients).publish(NAMES.route, LIEGE, b"m").result(1)
    first = inbox.get(timeout=2)
    liege.stop()
    liege.ack(first)  # a tag of a closed connection settles nothing
    _, again = _consumer(broker, clients, LIEGE)
    assert again.get(timeout=2).redelivered


def test_no_more_than_prefetch_deliveries_are_in_hand(
    broker: MemoryBroker, clients: list[MemoryClient]
) -> None:
    liege, inbox = _consumer(broker, clients, LIEGE, prefetch=2)
    publisher = _publisher(broker, clients)
    for n in range(3):
        publisher.publish(NAMES.route, LIEGE, str(n).encode()).result(1)
    first, _ = inbox.get(timeout=2), inbox.get(timeout=2)
    with pytest.raises(queue.Empty):
        inbox.get(timeout=0.2)
    liege.ack(first)
    assert inbox.get(timeout=2).body == b"2"


def test_a_passive_client_refuses_a_topology_nobody_declared(broker: MemoryBroker) -> None:
    client = broker.client([MEMORY_URL], cpas_topology([GENT], names=NAMES), passive=True)
    with pytest.raises(BrokerError) as error:
        client.start(wait=1)
    client.stop()
    assert error.value.code == "broker.not_provisioned"
