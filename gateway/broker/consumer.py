"""Consuming one queue: deliveries handed to a callback, settled from any thread.

The :class:`Consumer` belongs to a :class:`gateway.broker.BrokerClient` and
works on the client's consuming channel. Each delivery carries the number of
the connection it came on (its *generation*): the broker redelivers whatever
a lost connection left unacknowledged, so an ack or a reject for an older
connection is dropped. Acks, rejects, pauses and resumptions from other
threads go through the client's I/O loop.
"""

from __future__ import annotations

from collections.abc import Callable

from pika.channel import Channel
from pika.frame import Method
from pika.spec import Basic, BasicProperties

from gateway.broker.protocol import Delivery


class Consumer:
    """The consuming half of a broker client.

    :param queue: the queue to consume from.
    :param on_delivery: called on the I/O thread for each delivery; must not block.
    :param prefetch: deliveries in flight to this consumer.
    :param call_soon: runs a callable on the client's I/O loop; returns
        ``False`` when no loop runs (the connection is gone).
    """

    def __init__(
        self,
        queue: str,
        on_delivery: Callable[[Delivery], None] | None,
        prefetch: int,
        call_soon: Callable[[Callable[[], None]], bool],
    ) -> None:
        self._queue = queue
        self._on_delivery = on_delivery
        self._prefetch = prefetch
        self._call_soon = call_soon
        self._channel: Channel | None = None
        self._consumer_tag: str | None = None
        self._paused = False
        self.generation = 0
        """The number of the connection in use; deliveries carry the one they came on."""

    # ------------------------------------------------- on the I/O thread

    def connection_opened(self) -> None:
        self.generation += 1

    def channel_opened(self, channel: Channel, ready: Callable[[], None]) -> None:
        """Set the prefetch on ``channel``, consume unless paused, then call ``ready``."""
        self._channel = channel

        def consume(_frame: Method) -> None:
            self._start()
            ready()

        channel.basic_qos(prefetch_count=self._prefetch, callback=consume)

    def channel_lost(self) -> None:
        self._channel = None
        self._consumer_tag = None

    def _start(self) -> None:
        channel = self._channel
        if self._paused or channel is None or not channel.is_open or self._consumer_tag:
            return
        self._consumer_tag = channel.basic_consume(self._queue, self._on_message, auto_ack=False)

    def _cancel(self) -> None:
        if self._channel is not None and self._consumer_tag is not None:
            self._channel.basic_cancel(self._consumer_tag)
            self._consumer_tag = None

    def _on_message(
        self, channel: Channel, method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        delivery = Delivery(
            body=body,
            properties=properties,
            delivery_tag=method.delivery_tag,
            redelivered=method.redelivered,
            generation=self.generation,
        )
        if self._on_delivery is not None:
            self._on_delivery(delivery)

    # ------------------------------------------------- from any thread

    @property
    def consuming(self) -> bool:
        """Whether deliveries are being taken (not paused, and connected)."""
        return not self._paused and self._consumer_tag is not None

    def is_current(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` came on the connection in use (it can still be acked)."""
        return delivery.generation == self.generation and self._channel is not None

    def pause(self) -> None:
        """Take no new deliveries until :meth:`resume`, across reconnections too."""
        self._paused = True
        self._call_soon(self._cancel)

    def resume(self) -> None:
        self._paused = False
        self._call_soon(self._start)

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge (dropped if the delivery's connection is gone)."""
        self._settle(delivery, lambda ch: ch.basic_ack(delivery.delivery_tag))

    def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        """Reject; ``requeue=False`` dead-letters the message."""
        self._settle(delivery, lambda ch: ch.basic_reject(delivery.delivery_tag, requeue=requeue))

    def _settle(self, delivery: Delivery, action: Callable[[Channel], None]) -> None:
        def settle() -> None:
            channel = self._channel
            # The broker redelivers whatever a lost connection left unacked;
            # a tag from an older connection means nothing on the new one.
            if channel is None or not channel.is_open or delivery.generation != self.generation:
                return
            action(channel)

        self._call_soon(settle)
