"""The RabbitMQ client of one node: a pika ``SelectConnection`` on its own I/O thread.

Publishing is thread-safe and pipelined: :meth:`BrokerClient.publish` returns a
future that resolves when the broker confirms the message, and fails on a
nack, on a return (``mandatory``: nothing could route it) or when the
connection drops before the confirm (:mod:`gateway.broker.publisher`).
Deliveries are handed to a callback; acks and rejects from any thread go back
through the I/O loop (:mod:`gateway.broker.consumer`). The topology is
declared at every connection (:func:`gateway.broker.topology.declare`). When
the broker goes away the client reconnects to the next address with a
growing, capped back-off.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import pika
from pika.channel import Channel

from gateway.broker.connection import (
    BrokerTLS,
    connection_parameters,
    explain_connection_error,
)
from gateway.broker.consumer import Consumer
from gateway.broker.protocol import Broker, Delivery, Outgoing
from gateway.broker.publisher import Publisher
from gateway.broker.topology import Topology, declare
from gateway.model.codes import Fault
from gateway.model.errors import BrokerError

log = logging.getLogger(__name__)


class BrokerClient(Broker):
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
        self._max_backoff = max_backoff
        self._name = name
        # On a provisioned broker a node may configure nothing: it only checks
        # (passive declares need no permission) that its topology exists.
        self._passive = passive
        # Called on the I/O thread each time a connection is ready (must not block).
        self._on_ready = on_ready

        self._publisher = Publisher(self._call_soon)
        self._consumer = (
            None if consume is None else Consumer(consume, on_delivery, prefetch, self._call_soon)
        )
        self._thread: threading.Thread | None = None
        self._connection: pika.SelectConnection | None = None
        # Guards _connection against the end of the I/O loop: no callback may
        # go to a loop that no longer runs.
        self._loop_lock = threading.Lock()
        self._stopping = False
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._last_error: BrokerError | None = None
        self._failures = 0
        self._next_address = 0
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
        self._publisher.fail_pending(
            BrokerError("The gateway is shutting down.", code=Fault.BROKER_CLOSED)
        )

    # ------------------------------------------------------------ consuming

    def cancel_consumer(self) -> None:
        """Stop taking new deliveries (graceful shutdown); in-flight ones can still be acked."""
        if self._consumer is not None:
            self._consumer.pause()

    def pause_consumer(self) -> None:
        """Take no new deliveries until :meth:`resume_consumer`, across reconnections too.

        Deliveries in hand stay unacknowledged and can still be acked or
        rejected: the broker keeps them for this consumer.
        """
        self.cancel_consumer()

    def resume_consumer(self) -> None:
        """Consume again after :meth:`pause_consumer`."""
        if self._consumer is not None:
            self._consumer.resume()

    @property
    def consuming(self) -> bool:
        """Whether deliveries are being taken (not paused, and connected)."""
        return self._consumer is not None and self._consumer.consuming

    def is_current(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` came on the connection in use (it can still be acked)."""
        return self._consumer is not None and self._consumer.is_current(delivery)

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge from any thread (dropped if the delivery's connection is gone)."""
        if self._consumer is not None:
            self._consumer.ack(delivery)

    def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        """Reject from any thread; ``requeue=False`` dead-letters the message."""
        if self._consumer is not None:
            self._consumer.reject(delivery, requeue=requeue)

    # ------------------------------------------------------------ publishing

    def publish_many(self, messages: Sequence[Outgoing]) -> list[Future[None]]:
        """Publish several messages with one wake-up of the I/O loop (see :meth:`publish`)."""
        return self._publisher.publish_many(messages)

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
                self._connection = None
            # Only now: a publish handed to the loop before this point is
            # among those the publisher fails.
            self._publisher.loop_ended()
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

    def _call_soon(self, callback: Callable[[], None]) -> bool:
        """Run ``callback`` on the I/O loop; ``False`` when no loop runs."""
        with self._loop_lock:
            conn = self._connection
            if conn is None or self._stopped.is_set():
                return False
            try:
                conn.ioloop.add_callback_threadsafe(callback)
            except Exception:
                return False
            return True

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        if self._consumer is not None:
            self._consumer.connection_opened()
        self.connections_made += 1
        connection.channel(on_open_callback=self._on_publish_channel_open)

    def _on_connection_open_error(
        self, connection: pika.SelectConnection, error: Exception
    ) -> None:
        url = self._urls[(self._next_address - 1) % len(self._urls)]
        self._last_error = explain_connection_error(url, error, self._tls)
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: Exception) -> None:
        self._publisher.channel_lost()
        if self._consumer is not None:
            self._consumer.channel_lost()
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
        channel.add_on_close_callback(self._on_channel_closed)
        self._publisher.channel_opened(channel)
        declare(channel, self._topology, passive=self._passive, done=self._after_declare)

    def _after_declare(self) -> None:
        if self._consumer is None:
            self._became_ready()
            return
        assert self._connection is not None
        self._connection.channel(on_open_callback=self._on_consume_channel_open)

    def _on_consume_channel_open(self, channel: Channel) -> None:
        assert self._consumer is not None
        channel.add_on_close_callback(self._on_channel_closed)
        self._consumer.channel_opened(channel, self._became_ready)

    def _became_ready(self) -> None:
        self._failures = 0
        self._last_error = None
        self._ready.set()
        log.info("%s: connected to the broker (connection %d)", self._name, self.connections_made)
        if self._on_ready is not None:
            self._on_ready()
