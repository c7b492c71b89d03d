"""The topology as data: exchanges, queues and bindings, and the one function that declares them.

Topology (:func:`cpas_topology`): a direct exchange ``<ns>.route`` whose
routing key is the recipient's enterprise number; one durable quorum inbox
``<ns>.inbox.<id>`` per CPAS with an explicit delivery limit, dead-lettering
(at least once) through ``<ns>.dead`` into ``<ns>.dead.<id>``. Everything is
declared idempotently at every (re)connection, by the node and by the
broker's provisioning alike, from this one declaration (:func:`declare`).

The directory (:func:`directory_topology`): a durable fanout exchange
``<ns>.directory`` on which the federation publishes each signed edition,
and one quorum queue ``<ns>.directory.<id>`` per CPAS bound to it, which
keeps the latest editions while the node is away.

The inbox's delivery limit is only a backstop: RabbitMQ counts a delivery
whose consumer died (a node killed or crash-looping) like one the consumer
gave back, so it cannot tell poison from bad luck. The node counts its own
failed attempts per message and refuses a message itself, with a code, well
before the broker's limit (see ``gateway.node``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pika.channel import Channel

from gateway.broker.connection import BrokerTLS, connect

DEFAULT_NAMESPACE = "dse"
BROKER_DELIVERY_LIMIT = 50
"""Deliveries of one message before the broker dead-letters it: far above what a
crash-looping node costs a message, so it only catches a message that kills the
node every time it is delivered."""


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str = "direct"


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Binding:
    queue: str
    exchange: str
    routing_key: str


@dataclass(frozen=True)
class Topology:
    """Exchanges, queues and bindings to declare; values, so they compare and combine."""

    exchanges: tuple[Exchange, ...] = ()
    queues: tuple[Queue, ...] = ()
    bindings: tuple[Binding, ...] = ()

    def __add__(self, other: Topology) -> Topology:
        def merged(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(dict.fromkeys(a + b))

        return Topology(
            merged(self.exchanges, other.exchanges),
            merged(self.queues, other.queues),
            merged(self.bindings, other.bindings),
        )


@dataclass(frozen=True)
class Names:
    """The names of the gateway's exchanges and queues under one namespace."""

    namespace: str = DEFAULT_NAMESPACE

    @property
    def route(self) -> str:
        return f"{self.namespace}.route"

    def inbox(self, cpas_id: str) -> str:
        return f"{self.namespace}.inbox.{cpas_id}"

    def dead_exchange(self, cpas_id: str) -> str:
        """Each CPAS has its own: the broker lets a node write only to its own dead letters."""
        return f"{self.namespace}.dead-x.{cpas_id}"

    def dead_letters(self, cpas_id: str) -> str:
        return f"{self.namespace}.dead.{cpas_id}"

    def broker_user(self, cpas_id: str) -> str:
        """The broker login of a CPAS node on a provisioned broker (users are broker-wide)."""
        return f"{self.namespace}.cpas.{cpas_id}"

    @property
    def broker_user_prefix(self) -> str:
        return f"{self.namespace}.cpas."

    @property
    def directory_exchange(self) -> str:
        """The fanout exchange the federation publishes each signed directory edition on."""
        return f"{self.namespace}.directory"

    def directory_feed(self, cpas_id: str) -> str:
        """A CPAS node's own queue of directory editions, bound to the directory exchange."""
        return f"{self.namespace}.directory.{cpas_id}"

    @property
    def federation_user(self) -> str:
        """The broker login of the federation: the only one that may publish an edition."""
        return f"{self.namespace}.federation"


def cpas_topology(cpas_ids: Iterable[str], *, names: Names = Names()) -> Topology:
    """The exchanges, inboxes and dead-letter queues of the given CPAS."""
    exchanges = [Exchange(names.route)]
    queues: list[Queue] = []
    bindings: list[Binding] = []
    for cpas_id in cpas_ids:
        exchanges.append(Exchange(names.dead_exchange(cpas_id)))
        queues.append(
            Queue(
                names.inbox(cpas_id),
                {
                    "x-queue-type": "quorum",
                    "x-delivery-limit": BROKER_DELIVERY_LIMIT,
                    "x-dead-letter-exchange": names.dead_exchange(cpas_id),
                    "x-dead-letter-routing-key": cpas_id,
                    # Dead-letter at least once: a poison message is never
                    # dropped on its way to the dead-letter queue.
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
        )
        queues.append(Queue(names.dead_letters(cpas_id), {"x-queue-type": "quorum"}))
        bindings.append(Binding(names.inbox(cpas_id), names.route, cpas_id))
        bindings.append(Binding(names.dead_letters(cpas_id), names.dead_exchange(cpas_id), cpas_id))
    return Topology(tuple(exchanges), tuple(queues), tuple(bindings))


DIRECTORY_FEED_LENGTH = 16
"""Editions a node's directory queue keeps while the node is away; the oldest go first
(only the newest edition matters to a node)."""


def directory_topology(cpas_ids: Iterable[str], *, names: Names = Names()) -> Topology:
    """The directory exchange (fanout) and one durable queue of editions per CPAS."""
    queues = tuple(
        Queue(
            names.directory_feed(cpas_id),
            {
                "x-queue-type": "quorum",
                "x-max-length": DIRECTORY_FEED_LENGTH,
                "x-overflow": "drop-head",
            },
        )
        for cpas_id in cpas_ids
    )
    return Topology(
        (Exchange(names.directory_exchange, "fanout"),),
        queues,
        tuple(Binding(q.name, names.directory_exchange, "") for q in queues),
    )


def delete_topology(url: str, topology: Topology, tls: BrokerTLS | None = None) -> None:
    """Delete the queues and exchanges of ``topology`` (demo and test clean-up)."""
    connection = connect([url], tls)
    try:
        channel = connection.channel()
        for queue in topology.queues:
            channel.queue_delete(queue.name)
        for exchange in topology.exchanges:
            channel.exchange_delete(exchange.name)
    finally:
        connection.close()


def delete_namespace(
    url: str, cpas_ids: Iterable[str], *, names: Names, tls: BrokerTLS | None = None
) -> None:
    """Delete everything a namespace declares for the given CPAS: routing, inboxes, dead
    letters and the queues of directory editions (demo and test clean-up)."""
    ids = list(cpas_ids)
    for topology in (cpas_topology(ids, names=names), directory_topology(ids, names=names)):
        delete_topology(url, topology, tls)


def declare(
    channel: Channel, topology: Topology, *, passive: bool, done: Callable[[], None]
) -> None:
    """Declare ``topology`` on an open channel of a ``SelectConnection``, one step after
    another (each waits for the broker's answer), then call ``done``.

    ``passive`` only checks that the exchanges and queues exist (a passive
    declare needs no permission) and binds nothing: a node on a provisioned
    broker may configure nothing.
    """
    steps: list[functools.partial[Any]] = [
        functools.partial(
            channel.exchange_declare,
            exchange=ex.name,
            exchange_type=ex.type,
            durable=True,
            passive=passive,
        )
        for ex in topology.exchanges
    ]
    steps += [
        functools.partial(
            channel.queue_declare,
            queue=q.name,
            durable=True,
            passive=passive,
            arguments=None if passive else dict(q.arguments),
        )
        for q in topology.queues
    ]
    steps += [
        functools.partial(
            channel.queue_bind, queue=b.queue, exchange=b.exchange, routing_key=b.routing_key
        )
        for b in (() if passive else topology.bindings)
    ]

    def run(index: int) -> None:
        if index == len(steps):
            done()
        else:
            steps[index](callback=lambda _frame: run(index + 1))

    run(0)
