"""What a node needs of its broker: the :class:`Broker` protocol, the factory that makes
one, and the values that cross it (:class:`Delivery`, :class:`Outgoing`).

:class:`gateway.broker.BrokerClient` is the real broker (RabbitMQ, through
pika); :class:`gateway.testing.MemoryBroker` keeps everything in the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import pika
from pika.spec import BasicProperties

from gateway.broker.connection import BrokerTLS
from gateway.broker.topology import Topology

PERSISTENT = pika.DeliveryMode.Persistent
REFUSAL_CODE_HEADER = "x-cpas-refusal-code"
"""On a dead letter: the code of the node's refusal (gateway.model.codes)."""
REFUSAL_REASON_HEADER = "x-cpas-refusal-reason"
"""On a dead letter: the refusal in one sentence, when the sender may read it."""


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
    """What a node needs of its broker client (:class:`gateway.broker.BrokerClient` is one).

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
        """Publish one message persistently; the future resolves on the broker's confirm.

        It fails with ``broker.unroutable`` when no queue takes the message,
        ``broker.nack`` when the broker refuses it, and
        ``broker.connection_lost`` when the connection drops first: the caller
        decides whether to publish again (the outbox does). A client that
        subclasses :class:`Broker` gets this as one of :meth:`publish_many`.
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
        """Publish several messages; each future resolves on its confirm, or fails
        (``broker.unroutable``, ``broker.nack``, ``broker.connection_lost``)."""
        ...

    def ack(self, delivery: Delivery) -> None: ...

    def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        """``requeue=False`` dead-letters the message (the queue's dead-letter exchange)."""
        ...


class BrokerFactory(Protocol):
    """Makes a node's broker client; :class:`gateway.broker.BrokerClient` itself is one."""

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
