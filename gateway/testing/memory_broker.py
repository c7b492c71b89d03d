"""An in-memory broker: nodes in one process exchange messages without RabbitMQ.

:class:`MemoryBroker` holds exchanges, queues and bindings the way RabbitMQ
does for the gateway's topology (:func:`gateway.broker.cpas_topology`): a
direct exchange routing by recipient to each CPAS's inbox, and each inbox
dead-lettering through its own exchange into its dead-letter queue.
:meth:`MemoryBroker.client` makes a node's broker client
(:class:`gateway.broker.Broker`); pass it as the node's ``broker``::

    memory = MemoryBroker()
    node = Node(cpas_id, ..., amqp_urls=["memory://guest@memory/"], broker=memory.client)

What it models: declaring a topology (``passive``: only checking it exists);
routing by exchange type (direct, fanout) and binding key; ``mandatory``
publishes that no queue takes fail with ``broker.unroutable``; a publisher's
``user_id`` must be its login, as RabbitMQ checks it; confirms, resolved at
once; one consumer per client with its prefetch; acks and rejects; a
rejected (``requeue=True``) or unacknowledged delivery comes again, first,
marked ``redelivered``, when it is given back or its client stops; a
delivery rejected without requeue, or returned more often than the queue's
``x-delivery-limit``, goes to the queue's dead-letter exchange with its
routing key; ``x-max-length`` with ``drop-head``.

What it does not model: durability (the queues live as long as the
:class:`MemoryBroker` object: a node restarted on the same one finds them, a
process restart loses them), quorum leadership and cluster members, flow
control and ``reject-publish`` overflow, reconnection
(:meth:`MemoryClient.drop_connection` drops a client's connection; nothing
reconnects it), permissions other than ``user_id``, message TTLs, and the
``x-death`` headers.
"""

from __future__ import annotations

import logging
import queue
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from pika.spec import BasicProperties

from gateway.broker import Broker, BrokerTLS, Delivery, Outgoing, Topology
from gateway.model.codes import Fault
from gateway.model.errors import BrokerError

log = logging.getLogger(__name__)

MEMORY_URL = "memory://guest@memory/"
"""An address for a node on the in-memory broker (the login is the user part)."""


@dataclass
class _Message:
    body: bytes
    properties: BasicProperties
    routing_key: str
    redelivered: bool = False
    returns: int = 0
    """How often a consumer gave it back (a quorum queue's delivery count)."""


@dataclass
class _Queue:
    name: str
    arguments: Mapping[str, Any]
    messages: deque[_Message] = field(default_factory=deque)
    consumers: list[MemoryClient] = field(default_factory=list)
    next_consumer: int = 0


class MemoryBroker:
    """A process-local broker: exchanges, queues, bindings; one lock for all of it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.exchanges: dict[str, str] = {}
        """Exchange name -> type (``direct`` or ``fanout``)."""
        self.queues: dict[str, _Queue] = {}
        self._bindings: set[tuple[str, str, str]] = set()
        """(exchange, routing key, queue)."""

    def client(
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
    ) -> MemoryClient:
        """A node's client of this broker (a :class:`gateway.broker.BrokerFactory`)."""
        return MemoryClient(
            self,
            urls,
            topology,
            consume=consume,
            on_delivery=on_delivery,
            prefetch=prefetch,
            name=name,
            passive=passive,
            on_ready=on_ready,
        )

    # ------------------------------------------------------------ topology

    def declare(self, topology: Topology, *, passive: bool = False) -> None:
        """Declare (idempotently), or with ``passive`` check that everything exists."""
        with self._lock:
            if passive:
                missing = [e.name for e in topology.exchanges if e.name not in self.exchanges]
                missing += [q.name for q in topology.queues if q.name not in self.queues]
                if missing:
                    raise BrokerError(
                        f"The broker was not provisioned: {', '.join(missing)} missing.",
                        code=Fault.BROKER_NOT_PROVISIONED,
                    )
                return
            for exchange in topology.exchanges:
                self.exchanges.setdefault(exchange.name, exchange.type)
            for q in topology.queues:
                self.queues.setdefault(q.name, _Queue(q.name, dict(q.arguments)))
            for binding in topology.bindings:
                self._bindings.add((binding.exchange, binding.routing_key, binding.queue))

    def messages(self, queue_name: str) -> list[tuple[bytes, BasicProperties]]:
        """What a queue holds, ready for delivery (a test looks into dead letters)."""
        with self._lock:
            return [(m.body, m.properties) for m in self.queues[queue_name].messages]

    # ------------------------------------------------------------- routing

    def route(self, message: Outgoing, login: str) -> None:
        """Put a published message in the queues its exchange routes it to; raise if refused."""
        if message.user_id is not None and message.user_id != login:
            raise BrokerError(
                f"The user_id {message.user_id!r} is not the login {login!r}.",
                code=Fault.BROKER_ACCESS_REFUSED,
            )
        with self._lock:
            if message.exchange not in self.exchanges:
                raise BrokerError(
                    f"No exchange {message.exchange!r} on the broker.", code=Fault.BROKER_CHANNEL
                )
            targets = self._targets(message.exchange, message.routing_key)
            if not targets and message.mandatory:
                raise BrokerError(
                    f"No queue takes messages for {message.routing_key!r}: "
                    "the recipient has no inbox on this broker.",
                    code=Fault.BROKER_UNROUTABLE,
                )
            for target in targets:
                self._enqueue(
                    target, _Message(message.body, message.properties(), message.routing_key)
                )

    def _targets(self, exchange: str, routing_key: str) -> list[_Queue]:
        fanout = self.exchanges[exchange] == "fanout"
        names = sorted(
            {q for x, key, q in self._bindings if x == exchange and (fanout or key == routing_key)}
        )
        return [self.queues[name] for name in names if name in self.queues]

    def _enqueue(self, target: _Queue, message: _Message, *, first: bool = False) -> None:
        if first:
            target.messages.appendleft(message)
        else:
            target.messages.append(message)
        limit = target.arguments.get("x-max-length")
        while limit is not None and len(target.messages) > limit:
            target.messages.popleft()  # drop-head
        self._dispatch(target)

    def _dead_letter(self, source: _Queue, message: _Message) -> None:
        exchange = source.arguments.get("x-dead-letter-exchange")
        if exchange is None or exchange not in self.exchanges:
            return  # RabbitMQ drops it too
        key = source.arguments.get("x-dead-letter-routing-key", message.routing_key)
        for target in self._targets(exchange, key):
            self._enqueue(target, _Message(message.body, message.properties, key))

    def _given_back(self, source: _Queue, message: _Message) -> None:
        """A consumer returned ``message`` (reject with requeue, or its client went away)."""
        message.returns += 1
        message.redelivered = True
        limit = source.arguments.get("x-delivery-limit")
        if limit is not None and message.returns > limit:
            self._dead_letter(source, message)
        else:
            self._enqueue(source, message, first=True)

    # --------------------------------------------------------- consumption

    def _dispatch(self, target: _Queue) -> None:
        """Hand ready messages to consumers with room, in turn."""
        while target.messages:
            ready = [c for c in target.consumers if c.has_room()]
            if not ready:
                return
            consumer = ready[target.next_consumer % len(ready)]
            target.next_consumer += 1
            consumer.take(target, target.messages.popleft())

    def _attach(self, client: MemoryClient, queue_name: str) -> None:
        with self._lock:
            target = self.queues.get(queue_name)
            if target is None:
                raise BrokerError(f"No queue {queue_name!r}.", code=Fault.BROKER_CHANNEL)
            if client not in target.consumers:
                target.consumers.append(client)
            self._dispatch(target)

    def _detach(self, client: MemoryClient, queue_name: str) -> None:
        with self._lock:
            target = self.queues.get(queue_name)
            if target is not None and client in target.consumers:
                target.consumers.remove(client)

    def _settle(self, target: _Queue, message: _Message, action: str) -> None:
        with self._lock:
            if action == "requeue":
                self._given_back(target, message)
            elif action == "dead-letter":
                self._dead_letter(target, message)
            self._dispatch(target)


class MemoryClient(Broker):
    """One node's connection to a :class:`MemoryBroker` (a :class:`gateway.broker.Broker`).

    Deliveries and ``on_ready`` reach the node on the client's own thread, as
    with the real client's I/O thread; confirms are resolved at once.
    """

    def __init__(
        self,
        broker: MemoryBroker,
        urls: Sequence[str],
        topology: Topology,
        *,
        consume: str | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
        prefetch: int = 64,
        name: str = "gateway",
        passive: bool = False,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._broker = broker
        self._urls = list(urls) or [MEMORY_URL]
        self._login = urllib.parse.unquote(urllib.parse.urlparse(self._urls[0]).username or "")
        self._topology = topology
        self._consume = consume
        self._on_delivery = on_delivery
        self._prefetch = prefetch
        self._name = name
        self._passive = passive
        self._on_ready = on_ready
        self._ready = threading.Event()
        self._paused = False
        self._generation = 0
        self._next_tag = 0
        # Delivery tag -> (queue, message): delivered, not yet settled.
        self._unacked: dict[int, tuple[_Queue, _Message]] = {}
        self._calls: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._last_error: BrokerError | None = None

    # ----------------------------------------------------------- lifecycle

    def start(self, *, wait: float | None = 10.0) -> MemoryClient:
        self._thread = threading.Thread(target=self._run, name=f"memory-{self._name}", daemon=True)
        self._thread.start()
        self._calls.put(self._connect)
        if wait is not None:
            self.wait_ready(wait)
        return self

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            call()

    def _connect(self) -> None:
        try:
            self._broker.declare(self._topology, passive=self._passive)
        except BrokerError as exc:
            self._last_error = exc
            return
        with self._broker._lock:
            self._generation += 1
            self._ready.set()
            if self._consume is not None and not self._paused:
                self._broker._attach(self, self._consume)
        if self._on_ready is not None:
            self._on_ready()

    def wait_ready(self, timeout: float) -> None:
        if not self._ready.wait(timeout):
            raise self._last_error or BrokerError(
                f"The in-memory broker was not ready within {timeout:.0f} s."
            )

    @property
    def addresses(self) -> str:
        return ", ".join(self._urls)

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    @property
    def consuming(self) -> bool:
        return self.is_ready and not self._paused and self._consume is not None

    def stop(self, timeout: float = 10.0) -> None:
        """Close: every unacknowledged delivery goes back to its queue, marked redelivered."""
        self.drop_connection()
        self._calls.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def drop_connection(self) -> None:
        """What a lost connection does: unsettled deliveries return, nothing is consumed."""
        with self._broker._lock:
            self._ready.clear()
            if self._consume is not None:
                self._broker._detach(self, self._consume)
            unacked, self._unacked = self._unacked, {}
            for target, message in reversed(list(unacked.values())):
                self._broker._given_back(target, message)
            self._generation += 1

    def cancel_consumer(self) -> None:
        self._paused = True
        if self._consume is not None:
            self._broker._detach(self, self._consume)

    def pause_consumer(self) -> None:
        self.cancel_consumer()

    def resume_consumer(self) -> None:
        self._paused = False
        if self._consume is not None and self.is_ready:
            self._broker._attach(self, self._consume)

    def is_current(self, delivery: Delivery) -> bool:
        return delivery.generation == self._generation and self.is_ready

    # ----------------------------------------------------------- publishing

    def publish_many(self, messages: Sequence[Outgoing]) -> list[Future[None]]:
        futures: list[Future[None]] = []
        for message in messages:
            future: Future[None] = Future()
            futures.append(future)
            if not self.is_ready:
                future.set_exception(
                    BrokerError(
                        "The broker connection is not open.", code=Fault.BROKER_CONNECTION_LOST
                    )
                )
                continue
            try:
                self._broker.route(message, self._login)
            except BrokerError as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)
        return futures

    # ------------------------------------------------------------ consuming

    def has_room(self) -> bool:
        return not self._paused and self.is_ready and len(self._unacked) < self._prefetch

    def take(self, source: _Queue, message: _Message) -> None:
        """Called by the broker, under its lock: hand ``message`` to the node."""
        self._next_tag += 1
        self._unacked[self._next_tag] = (source, message)
        delivery = Delivery(
            body=message.body,
            properties=message.properties,
            delivery_tag=self._next_tag,
            redelivered=message.redelivered,
            generation=self._generation,
        )
        if self._on_delivery is not None:
            on_delivery = self._on_delivery
            self._calls.put(lambda: on_delivery(delivery))

    def ack(self, delivery: Delivery) -> None:
        self._settle(delivery, "ack")

    def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        self._settle(delivery, "requeue" if requeue else "dead-letter")

    def _settle(self, delivery: Delivery, action: str) -> None:
        with self._broker._lock:
            # A tag of a connection since dropped means nothing: that delivery came back.
            if delivery.generation != self._generation:
                return
            settled = self._unacked.pop(delivery.delivery_tag, None)
            if settled is not None:
                self._broker._settle(*settled, action)
