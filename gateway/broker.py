"""RabbitMQ: the topology as data, and one asynchronous client per node.

Topology (:func:`cpas_topology`): a direct exchange ``<ns>.route`` whose
routing key is the recipient's enterprise number; one durable quorum inbox
``<ns>.inbox.<id>`` per CPAS with an explicit delivery limit, dead-lettering
(at least once) through ``<ns>.dead`` into ``<ns>.dead.<id>``. Everything is
declared idempotently at every (re)connection, by the node and by the
broker's provisioning alike, from this one declaration.

The directory (:func:`directory_topology`): a durable fanout exchange
``<ns>.directory`` on which the federation publishes each signed edition,
and one quorum queue ``<ns>.directory.<id>`` per CPAS bound to it, which
keeps the latest editions while the node is away.

The inbox's delivery limit is only a backstop: RabbitMQ counts a delivery
whose consumer died (a node killed or crash-looping) like one the consumer
gave back, so it cannot tell poison from bad luck. The node counts its own
failed attempts per message and refuses a message itself, with a code, well
before the broker's limit (see ``gateway.node``).

:class:`BrokerClient` runs a pika ``SelectConnection`` on its own I/O thread.
Publishing is thread-safe and pipelined: :meth:`BrokerClient.publish` returns a
future that resolves when the broker confirms the message, and fails on a
nack, on a return (``mandatory``: nothing could route it) or when the
connection drops before the confirm. Many confirms are in flight at once.
Deliveries are handed to a callback; acks and rejects from any thread go back
through the I/O loop. When the broker goes away the client reconnects to the
next address with a growing, capped back-off.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import pika
from pika.channel import Channel
from pika.exceptions import AMQPError
from pika.frame import Method
from pika.spec import Basic, BasicProperties

from gateway.broker_connection import (
    BrokerTLS,
    connect,
    connection_parameters,
    explain_connection_error,
)
from gateway.model.codes import Fault
from gateway.model.errors import BrokerError

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "dse"
BROKER_DELIVERY_LIMIT = 50
"""Deliveries of one message before the broker dead-letters it: far above what a
crash-looping node costs a message, so it only catches a message that kills the
node every time it is delivered."""
PERSISTENT = pika.DeliveryMode.Persistent
REFUSAL_CODE_HEADER = "x-cpas-refusal-code"
"""On a dead letter: the code of the node's refusal (gateway.model.codes)."""
REFUSAL_REASON_HEADER = "x-cpas-refusal-reason"
"""On a dead letter: the refusal in one sentence, when the sender may read it."""


# ------------------------------------------------------------------ topology


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


# ------------------------------------------------------------------- client


@dataclass(frozen=True)
class Delivery:
    """One message handed to the consumer callback."""

    body: bytes
    properties: BasicProperties
    delivery_tag: int
    redelivered: bool
    generation: int
    """The connection it came on: acks for an older connection are dropped."""


@dataclass(frozen=True)
class Outgoing:
    """One message to publish, persistently."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None = None
    headers: Mapping[str, Any] | None = None
    user_id: str | None = None
    message_type: str | None = None
    correlation_id: str | None = None
    mandatory: bool = True

    def properties(self) -> BasicProperties:
        return BasicProperties(
            delivery_mode=PERSISTENT,
            content_type="application/xml",
            message_id=self.message_id,
            headers=dict(self.headers) if self.headers else None,
            user_id=self.user_id,
            type=self.message_type,
            correlation_id=self.correlation_id,
        )


class Broker(Protocol):
    """What a node needs of its broker client (:class:`BrokerClient` is the real one).

    One connection's worth of a broker: publishing with confirm futures,
    consuming one queue through a callback, settling deliveries from any
    thread. :mod:`gateway.testing.memory_broker` has an in-memory one, so that
    a node's behaviour can be tested without RabbitMQ.
    """

    def start(self, *, wait: float | None = 10.0) -> Broker:
        """Connect and declare (in the background); wait until ready when ``wait``."""
        ...

    def wait_ready(self, timeout: float) -> None:
        """Block until connected, declared and consuming; raise BrokerError at the timeout."""
        ...

    @property
    def addresses(self) -> str:
        """Where the broker is, for people (log lines, health)."""
        ...

    @property
    def is_ready(self) -> bool: ...

    @property
    def consuming(self) -> bool:
        """Whether deliveries are being taken (not paused, and connected)."""
        ...

    def stop(self, timeout: float = 10.0) -> None:
        """Close: unacknowledged deliveries go back to the broker, pending publishes fail."""
        ...

    def cancel_consumer(self) -> None:
        """Take no new deliveries (graceful stop); those in hand can still be settled."""
        ...

    def pause_consumer(self) -> None:
        """Take no new deliveries until :meth:`resume_consumer`."""
        ...

    def resume_consumer(self) -> None: ...

    def is_current(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` came on the connection in use (it can still be settled)."""
        ...

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        message_type: str | None = None,
        correlation_id: str | None = None,
        mandatory: bool = True,
    ) -> Future[None]:
        """Publish one message; the future resolves on the broker's confirm."""
        ...

    def publish_many(self, messages: Sequence[Outgoing]) -> list[Future[None]]:
        """Publish several messages; each future resolves on its confirm, or fails
        (``broker.unroutable``, ``broker.nack``, ``broker.connection_lost``)."""
        ...

    def ack(self, delivery: Delivery) -> None: ...

    def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        """``requeue=False`` dead-letters the message (the queue's dead-letter exchange)."""
        ...


class BrokerFactory(Protocol):
    """Makes a node's broker client; :class:`BrokerClient` itself is one."""

    def __call__(
        self,
        urls: Sequence[str],
        topology: Topology,
        *,
        consume: str | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
        prefetch: int = 64,
        name: str = "gateway",
        passive: bool = False,
        on_ready: Callable[[], None] | None = None,
        tls: BrokerTLS | None = None,
    ) -> Broker: ...


@dataclass
class _Pending:
    future: Future[None]
    message_id: str | None


class BrokerClient:
    """One node's AMQP connection, on its own I/O thread.

    :param urls: broker addresses (cluster members), tried in turn.
    :param topology: declared at every connection.
    :param consume: the queue to consume from, or ``None`` for a publisher only.
    :param on_delivery: called on the I/O thread for each delivery; must not block.
    :param prefetch: deliveries in flight to this consumer.
    :param tls: how to reach ``amqps://`` addresses.
    """

    def __init__(
        self,
        urls: Sequence[str],
        topology: Topology,
        *,
        consume: str | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
        prefetch: int = 64,
        max_backoff: float = 30.0,
        name: str = "gateway",
        passive: bool = False,
        on_ready: Callable[[], None] | None = None,
        tls: BrokerTLS | None = None,
    ) -> None:
        if not urls:
            raise BrokerError("No broker address is configured.", code=Fault.BROKER_CONFIG)
        self._urls = list(urls)
        self._tls = tls
        self._params = [connection_parameters(url, tls, name=name, heartbeat=30) for url in urls]
        for params in self._params:
            params.blocked_connection_timeout = 60
        self._topology = topology
        self._consume = consume
        self._on_delivery = on_delivery
        self._prefetch = prefetch
        self._max_backoff = max_backoff
        self._name = name
        # On a provisioned broker a node may configure nothing: it only checks
        # (passive declares need no permission) that its topology exists.
        self._passive = passive
        # Called on the I/O thread each time a connection is ready (must not block).
        self._on_ready = on_ready

        self._thread: threading.Thread | None = None
        self._connection: pika.SelectConnection | None = None
        self._publish_channel: Channel | None = None
        self._consume_channel: Channel | None = None
        self._consumer_tag: str | None = None
        self._generation = 0
        self._stopping = False
        self._paused = False
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._last_error: BrokerError | None = None
        self._failures = 0
        self._next_address = 0

        # Publisher confirms: delivery tag -> pending future, in tag order.
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        # Publishes handed to the I/O loop but not yet run: if that loop ends
        # first (the connection dropped), they must fail, not hang forever.
        self._scheduled: set[Future[None]] = set()
        self._loop_lock = threading.Lock()
        self._next_tag = 0
        self._lock = threading.Lock()
        self.connections_made = 0

    # ----------------------------------------------------------- lifecycle

    def start(self, *, wait: float | None = 10.0) -> BrokerClient:
        """Start the I/O thread; wait until connected and declared (or raise BrokerError)."""
        self._thread = threading.Thread(target=self._run, name=f"amqp-{self._name}", daemon=True)
        self._thread.start()
        if wait is not None:
            self.wait_ready(wait)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Block until the client is connected, its topology declared and consuming."""
        if not self._ready.wait(timeout):
            reason = self._last_error or BrokerError(
                f"No broker answered within {timeout:.0f} s at {self.addresses}."
            )
            raise reason

    @property
    def addresses(self) -> str:
        return ", ".join(f"{p.host}:{p.port}" for p in self._params)

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and end the I/O thread; pending publishes fail."""
        self._stopping = True
        conn = self._connection
        if conn is not None:
            with contextlib.suppress(Exception):  # the loop may already be gone
                conn.ioloop.add_callback_threadsafe(self._close_connection)
        if self._thread is not None:
            self._thread.join(timeout)
        self._fail_pending(BrokerError("The gateway is shutting down.", code=Fault.BROKER_CLOSED))

    def cancel_consumer(self) -> None:
        """Stop taking new deliveries (graceful shutdown); in-flight ones can still be acked."""
        self._paused = True
        self._call_soon(self._cancel_consumer)

    def pause_consumer(self) -> None:
        """Take no new deliveries until :meth:`resume_consumer`, across reconnections too.

        Deliveries in hand stay unacknowledged and can still be acked or
        rejected: the broker keeps them for this consumer.
        """
        self.cancel_consumer()

    def resume_consumer(self) -> None:
        """Consume again after :meth:`pause_consumer`."""
        self._paused = False
        self._call_soon(self._start_consuming)

    @property
    def consuming(self) -> bool:
        """Whether deliveries are being taken (not paused, and connected)."""
        return not self._paused and self._consumer_tag is not None

    def is_current(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` came on the connection in use (it can still be acked)."""
        return delivery.generation == self._generation and self._consume_channel is not None

    def _cancel_consumer(self) -> None:
        if self._consume_channel is not None and self._consumer_tag is not None:
            self._consume_channel.basic_cancel(self._consumer_tag)
            self._consumer_tag = None

    def _start_consuming(self) -> None:
        channel = self._consume_channel
        if self._paused or channel is None or not channel.is_open or self._consumer_tag:
            return
        self._consumer_tag = channel.basic_consume(
            self._consume or "", self._on_message, auto_ack=False
        )

    # ------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stopping:
            params = self._params[self._next_address % len(self._params)]
            self._next_address += 1
            self._connection = pika.SelectConnection(
                params,
                on_open_callback=self._on_connection_open,
                on_open_error_callback=self._on_connection_open_error,
                on_close_callback=self._on_connection_closed,
            )
            self._connection.ioloop.start()
            self._ready.clear()
            with self._loop_lock:
                # No callback may go to a loop that no longer runs.
                self._connection = None
                lost, self._scheduled = self._scheduled, set()
            for future in lost:
                if not future.done():
                    future.set_exception(
                        BrokerError(
                            "The broker connection is not open.", code=Fault.BROKER_CONNECTION_LOST
                        )
                    )
            self._fail_pending(
                BrokerError(
                    "The connection to the broker was lost before it confirmed the message.",
                    code=Fault.BROKER_CONNECTION_LOST,
                )
            )
            if self._stopping:
                break
            self._failures += 1
            delay = min(self._max_backoff, 0.5 * 2 ** min(self._failures, 10))
            delay *= random.uniform(0.75, 1.0)
            log.warning("%s: broker unavailable, reconnecting in %.1f s", self._name, delay)
            self._sleep(delay)
        self._stopped.set()

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stopping and (left := end - time.monotonic()) > 0:
            # One reading of the clock: a second one could be past ``end``,
            # and a negative sleep would kill the I/O thread for good.
            time.sleep(min(0.1, left))

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        self._generation += 1
        self.connections_made += 1
        connection.channel(on_open_callback=self._on_publish_channel_open)

    def _on_connection_open_error(
        self, connection: pika.SelectConnection, error: Exception
    ) -> None:
        url = self._urls[(self._next_address - 1) % len(self._urls)]
        self._last_error = explain_connection_error(url, error, self._tls)
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: Exception) -> None:
        self._publish_channel = None
        self._consume_channel = None
        self._consumer_tag = None
        if not self._stopping:
            log.warning("%s: connection closed: %s", self._name, reason)
        connection.ioloop.stop()

    def _close_connection(self) -> None:
        conn = self._connection
        if conn is not None and conn.is_open:
            conn.close()
        elif conn is not None and not conn.is_closing:
            conn.ioloop.stop()

    def _on_channel_closed(self, channel: Channel, reason: Exception) -> None:
        # A channel closes on a protocol error (e.g. ACCESS_REFUSED or a queue
        # declared with other arguments): surface it and start over.
        if self._stopping:
            return
        code = Fault.BROKER_CHANNEL
        if "ACCESS_REFUSED" in str(reason):
            code = Fault.BROKER_ACCESS_REFUSED
        elif "NOT_FOUND" in str(reason):
            code = Fault.BROKER_NOT_PROVISIONED
        self._last_error = BrokerError(f"The broker closed a channel: {reason}.", code=code)
        log.error("%s: %s", self._name, self._last_error)
        conn = self._connection
        if conn is not None and conn.is_open:
            conn.close()

    # ---------------------------------------------------- channels & topology

    def _on_publish_channel_open(self, channel: Channel) -> None:
        self._publish_channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm)
        with self._lock:
            self._next_tag = 0
        self._declare(channel, self._after_declare)

    def _declare(self, channel: Channel, done: Callable[[], None]) -> None:
        """Declare the topology one step after another (each waits for the broker's answer)."""
        passive = self._passive
        steps: list[functools.partial[Any]] = [
            functools.partial(
                channel.exchange_declare,
                exchange=ex.name,
                exchange_type=ex.type,
                durable=True,
                passive=passive,
            )
            for ex in self._topology.exchanges
        ]
        steps += [
            functools.partial(
                channel.queue_declare,
                queue=q.name,
                durable=True,
                passive=passive,
                arguments=None if passive else dict(q.arguments),
            )
            for q in self._topology.queues
        ]
        steps += [
            functools.partial(
                channel.queue_bind, queue=b.queue, exchange=b.exchange, routing_key=b.routing_key
            )
            for b in (() if passive else self._topology.bindings)
        ]

        def run(index: int) -> None:
            if index == len(steps):
                done()
            else:
                steps[index](callback=lambda _frame: run(index + 1))

        run(0)

    def _after_declare(self) -> None:
        if self._consume is None:
            self._became_ready()
            return
        assert self._connection is not None
        self._connection.channel(on_open_callback=self._on_consume_channel_open)

    def _on_consume_channel_open(self, channel: Channel) -> None:
        self._consume_channel = channel
        channel.add_on_close_callback(self._on_channel_closed)

        def consume(_frame: Method) -> None:
            self._start_consuming()
            self._became_ready()

        channel.basic_qos(prefetch_count=self._prefetch, callback=consume)

    def _became_ready(self) -> None:
        self._failures = 0
        self._last_error = None
        self._ready.set()
        log.info("%s: connected to the broker (connection %d)", self._name, self.connections_made)
        if self._on_ready is not None:
            self._on_ready()

    # ------------------------------------------------------------ publishing

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        message_type: str | None = None,
        correlation_id: str | None = None,
        mandatory: bool = True,
    ) -> Future[None]:
        """Publish persistently; the future resolves on the broker's confirm.

        It fails with ``broker.unroutable`` when no queue takes the message,
        ``broker.nack`` when the broker refuses it, and
        ``broker.connection_lost`` when the connection drops first: the caller
        decides whether to publish again (the outbox does).
        """
        outgoing = Outgoing(
            exchange,
            routing_key,
            body,
            message_id=message_id,
            headers=headers,
            user_id=user_id,
            message_type=message_type,
            correlation_id=correlation_id,
            mandatory=mandatory,
        )
        return self.publish_many([outgoing])[0]

    def publish_many(self, messages: Sequence[Outgoing]) -> list[Future[None]]:
        """Publish several messages with one wake-up of the I/O loop (see :meth:`publish`)."""
        futures: list[Future[None]] = [Future() for _ in messages]

        def do_publish() -> None:
            with self._loop_lock:
                self._scheduled.difference_update(futures)
            channel = self._publish_channel
            for message, future in zip(messages, futures, strict=True):
                if channel is None or not channel.is_open:
                    future.set_exception(
                        BrokerError(
                            "The broker connection is not open.", code=Fault.BROKER_CONNECTION_LOST
                        )
                    )
                    continue
                with self._lock:
                    self._next_tag += 1
                    tag = self._next_tag
                    self._pending[tag] = _Pending(future, message.message_id)
                try:
                    channel.basic_publish(
                        message.exchange,
                        message.routing_key,
                        message.body,
                        message.properties(),
                        mandatory=message.mandatory,
                    )
                except AMQPError as exc:
                    with self._lock:
                        self._pending.pop(tag, None)
                    future.set_exception(
                        BrokerError(f"Publishing failed: {exc}.", code=Fault.BROKER_CONNECTION_LOST)
                    )

        with self._loop_lock:
            self._scheduled.update(futures)
        if not self._call_soon(do_publish):
            with self._loop_lock:
                self._scheduled.difference_update(futures)
            for future in futures:
                future.set_exception(
                    BrokerError(
                        "The broker connection is not open.", code=Fault.BROKER_CONNECTION_LOST
                    )
                )
        return futures

    def _on_return(
        self, channel: Channel, method: Basic.Return, properties: BasicProperties, body: bytes
    ) -> None:
        # RabbitMQ sends basic.return before the confirm of the same message.
        with self._lock:
            for pending in self._pending.values():
                if pending.message_id == properties.message_id and not pending.future.done():
                    pending.future.set_exception(
                        BrokerError(
                            f"No queue takes messages for {method.routing_key!r}: "
                            "the recipient has no inbox on this broker.",
                            code=Fault.BROKER_UNROUTABLE,
                        )
                    )
                    break

    def _on_confirm(self, frame: Method) -> None:
        method = frame.method
        acked = isinstance(method, Basic.Ack)
        with self._lock:
            tags = [method.delivery_tag]
            if method.multiple:
                tags = [tag for tag in self._pending if tag <= method.delivery_tag]
            settled = [self._pending.pop(tag) for tag in tags if tag in self._pending]
        for pending in settled:
            if pending.future.done():
                continue
            if acked:
                pending.future.set_result(None)
            else:
                pending.future.set_exception(
                    BrokerError("The broker refused the message (nack).", code=Fault.BROKER_NACK)
                )

    def _fail_pending(self, error: BrokerError) -> None:
        with self._lock:
            pending, self._pending = list(self._pending.values()), OrderedDict()
        for item in pending:
            if not item.future.done():
                item.future.set_exception(error)

    # ------------------------------------------------------------- consuming

    def _on_message(
        self, channel: Channel, method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        delivery = Delivery(
            body=body,
            properties=properties,
            delivery_tag=method.delivery_tag,
            redelivered=method.redelivered,
            generation=self._generation,
        )
        if self._on_delivery is not None:
            self._on_delivery(delivery)

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge from any thread (dropped if the delivery's connection is gone)."""
        self._settle(delivery, lambda ch: ch.basic_ack(delivery.delivery_tag))

    def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        """Reject from any thread; ``requeue=False`` dead-letters the message."""
        self._settle(delivery, lambda ch: ch.basic_reject(delivery.delivery_tag, requeue=requeue))

    def _settle(self, delivery: Delivery, action: Callable[[Channel], None]) -> None:
        def settle() -> None:
            channel = self._consume_channel
            # The broker redelivers whatever a lost connection left unacked;
            # a tag from an older connection means nothing on the new one.
            if channel is None or not channel.is_open or delivery.generation != self._generation:
                return
            action(channel)

        self._call_soon(settle)

    def _call_soon(self, callback: Callable[[], None]) -> bool:
        with self._loop_lock:
            conn = self._connection
            if conn is None or self._stopped.is_set():
                return False
            try:
                conn.ioloop.add_callback_threadsafe(callback)
            except Exception:
                return False
            return True


def wait_all(
    futures: Iterable[Future[None]], timeout: float | None = None
) -> list[BaseException | None]:
    """Wait for publish futures; return each one's exception (or ``None`` when confirmed)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    out: list[BaseException | None] = []
    for fut in futures:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            fut.result(remaining)
            out.append(None)
        except BaseException as exc:
            out.append(exc)
    return out
