"""The baseline: a bare pika relay, with the gateway's delivery guarantees and nothing else.

Real sealed envelopes are published persistently, ``mandatory``, to a direct
exchange bound to a durable quorum queue -- as the gateway publishes -- with
publisher confirms pipelined: up to ``window`` messages wait for their confirm
at once, never one blocking confirm per message. A consumer in another
process takes them with manual acks and the prefetch a node uses. Messages
per second is counted from the first publish to the last delivery consumed.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import queue as queue_module
import time
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.channel import Channel
from pika.frame import Method
from pika.spec import Basic, BasicProperties

from bench.harness import CpuMeter
from bench.stats import rate
from gateway.broker import Exchange, Names, Queue, Topology

ROUTING_KEY = "baseline"
WINDOW = 1000
"""Publisher confirms in flight at once."""
PREFETCH = 64
"""What a node asks for by default (``prefetch`` in its configuration)."""


def baseline_topology(names: Names) -> Topology:
    """The relay's exchange and quorum queue, inside the run's namespace."""
    return Topology(
        (Exchange(f"{names.namespace}.baseline-x"),),
        (Queue(f"{names.namespace}.baseline", {"x-queue-type": "quorum"}),),
    )


def _declare(url: str, topology: Topology) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        exchange, queue = topology.exchanges[0], topology.queues[0]
        channel.exchange_declare(exchange.name, exchange.type, durable=True)
        channel.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))
        channel.queue_bind(queue.name, exchange.name, ROUTING_KEY)
        channel.queue_purge(queue.name)
    finally:
        connection.close()


def _consume(
    url: str,
    queue: str,
    count: int,
    prefetch: int,
    timeout: float,
    ready: multiprocessing.synchronize.Event,
    results: multiprocessing.Queue[dict[str, Any]],
) -> None:
    """The consumer process: manual acks until ``count`` deliveries (or ``timeout``)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    seen = {"count": 0, "first": 0.0, "last": 0.0}

    def on_message(
        ch: Any, method: Basic.Deliver, _properties: BasicProperties, _body: bytes
    ) -> None:
        if not seen["count"]:
            seen["first"] = time.monotonic()
        ch.basic_ack(method.delivery_tag)
        seen["count"] += 1
        if seen["count"] >= count:
            seen["last"] = time.monotonic()
            ch.stop_consuming()

    channel.basic_consume(queue, on_message, auto_ack=False)
    connection.call_later(timeout, channel.stop_consuming)
    ready.set()
    channel.start_consuming()
    # time.monotonic() is the same clock in every process on Linux.
    results.put(seen | {"cpu": time.process_time()})
    connection.close()


@dataclass
class _Publisher:
    """Pipelined publisher confirms on a pika ``SelectConnection``."""

    url: str
    exchange: str
    bodies: list[bytes]
    count: int
    window: int = WINDOW
    published: int = 0
    confirmed: int = 0
    refused: int = 0
    started: float = 0.0
    finished: float = 0.0
    server_version: str | None = None
    error: str | None = None
    _next_unsettled: int = 1
    _settled_early: set[int] = field(default_factory=set)
    _connection: pika.SelectConnection | None = None
    _channel: Channel | None = None

    def run(self) -> None:
        self._connection = pika.SelectConnection(
            pika.URLParameters(self.url),
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_error,
            on_close_callback=lambda conn, _reason: conn.ioloop.stop(),
        )
        self._connection.ioloop.start()

    def _on_error(self, connection: pika.SelectConnection, error: Exception) -> None:
        self.error = str(error)
        connection.ioloop.stop()

    def _on_open(self, connection: pika.SelectConnection) -> None:
        version = (connection.server_properties or {}).get("version")
        self.server_version = version.decode() if isinstance(version, bytes) else version
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: Channel) -> None:
        self._channel = channel
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm)
        self.started = time.monotonic()
        self._fill()

    def _fill(self) -> None:
        assert self._channel is not None
        while self.published < self.count and self.published - self._settled < self.window:
            body = self.bodies[self.published % len(self.bodies)]
            self.published += 1
            properties = BasicProperties(
                delivery_mode=pika.DeliveryMode.Persistent,
                content_type="application/xml",
                message_id=f"baseline-{self.published}",
                type="transfer",
            )
            self._channel.basic_publish(
                self.exchange, ROUTING_KEY, body, properties, mandatory=True
            )

    @property
    def _settled(self) -> int:
        return self.confirmed + self.refused

    def _on_return(self, *_args: object) -> None:
        self.error = "a message was returned unroutable"

    def _on_confirm(self, frame: Method) -> None:
        method = frame.method
        tag = method.delivery_tag
        if method.multiple:
            # Every tag up to this one, less those already settled one by one.
            newly = 0
            for settled in range(self._next_unsettled, tag + 1):
                if settled in self._settled_early:
                    self._settled_early.discard(settled)
                else:
                    newly += 1
            self._next_unsettled = max(self._next_unsettled, tag + 1)
        else:
            newly = 0 if tag < self._next_unsettled or tag in self._settled_early else 1
            self._settled_early.add(tag)
        while self._next_unsettled in self._settled_early:
            self._settled_early.discard(self._next_unsettled)
            self._next_unsettled += 1
        if isinstance(method, Basic.Ack):
            self.confirmed += newly
        else:
            self.refused += newly
        if self._settled >= self.count:
            self.finished = time.monotonic()
            assert self._connection is not None
            self._connection.close()
        else:
            self._fill()


def run_baseline(
    amqp_url: str,
    names: Names,
    bodies: list[bytes],
    count: int,
    *,
    window: int = WINDOW,
    prefetch: int = PREFETCH,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Relay ``count`` messages cycling through ``bodies``; return the figures."""
    topology = baseline_topology(names)
    _declare(amqp_url, topology)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    results: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    consumer = context.Process(
        target=_consume,
        args=(amqp_url, topology.queues[0].name, count, prefetch, timeout, ready, results),
        name="baseline-consumer",
    )
    consumer.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the baseline consumer did not start")
        assert consumer.pid is not None
        meter = CpuMeter(peer_pids=[consumer.pid]).start()
        publisher = _Publisher(amqp_url, topology.exchanges[0].name, bodies, count, window)
        publisher.run()
        try:
            consumed = results.get(timeout=timeout)
        except queue_module.Empty:
            consumed = {"count": 0, "first": 0.0, "last": 0.0}
        cpu = meter.used()
    finally:
        consumer.join(30)
        if consumer.is_alive():
            consumer.terminate()
            consumer.join()
    seconds = consumed["last"] - publisher.started if consumed["count"] else 0.0
    return {
        "messages": count,
        "published": publisher.published,
        "confirmed": publisher.confirmed,
        "nacked": publisher.refused,
        "consumed": consumed["count"],
        "error": publisher.error,
        "seconds": round(seconds, 3),
        "messages_per_s": round(rate(consumed["count"], seconds), 1),
        "confirmed_per_s": round(
            rate(publisher.confirmed, publisher.finished - publisher.started), 1
        ),
        "mean_bytes": round(sum(len(b) for b in bodies) / len(bodies)),
        "window": window,
        "prefetch": prefetch,
        "cpu_us_per_message": {
            party: None if used is None else round(used / count * 1e6, 1)
            for party, used in (
                ("publisher", cpu["sender"]),
                ("consumer", cpu["receiver"]),
                ("broker", cpu["broker"]),
            )
        },
        "server_version": publisher.server_version,
    }
