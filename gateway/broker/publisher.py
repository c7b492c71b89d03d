"""Publishing with publisher confirms: many in flight, each settled by its own future.

The :class:`Publisher` belongs to a :class:`gateway.broker.BrokerClient` and
works on the client's publishing channel. :meth:`Publisher.publish_many` may
be called from any thread: the messages go to the I/O loop in one wake-up.
Each message gets the delivery tag the channel will give it; the future of
that tag resolves on the broker's ack (``multiple`` settles every tag up to
it) and fails on a nack, on a return (``mandatory``: nothing could route it),
or when the connection ends before the confirm.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from pika.channel import Channel
from pika.exceptions import AMQPError
from pika.frame import Method
from pika.spec import Basic, BasicProperties

from gateway.broker.protocol import Outgoing
from gateway.model.codes import Fault
from gateway.model.errors import BrokerError


def _not_open() -> BrokerError:
    return BrokerError("The broker connection is not open.", code=Fault.BROKER_CONNECTION_LOST)


@dataclass
class _Pending:
    future: Future[None]
    message_id: str | None


class Publisher:
    """The publishing half of a broker client: its channel and the confirms outstanding.

    :param call_soon: runs a callable on the client's I/O loop; returns
        ``False`` when no loop runs (the connection is gone).
    """

    def __init__(self, call_soon: Callable[[Callable[[], None]], bool]) -> None:
        self._call_soon = call_soon
        self._channel: Channel | None = None
        # Publisher confirms: delivery tag -> pending future, in tag order.
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self._next_tag = 0
        self._lock = threading.Lock()
        # Publishes handed to the I/O loop but not yet run: if that loop ends
        # first (the connection dropped), they must fail, not hang forever.
        self._scheduled: set[Future[None]] = set()
        self._scheduled_lock = threading.Lock()

    def channel_opened(self, channel: Channel) -> None:
        """Publish on ``channel`` from now on, in confirm mode (on the I/O thread)."""
        self._channel = channel
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm)
        with self._lock:
            self._next_tag = 0

    def channel_lost(self) -> None:
        self._channel = None

    def publish_many(self, messages: Sequence[Outgoing]) -> list[Future[None]]:
        """Publish with one wake-up of the I/O loop; one future per message, resolved on
        its confirm (see :meth:`gateway.broker.BrokerClient.publish`)."""
        futures: list[Future[None]] = [Future() for _ in messages]

        def do_publish() -> None:
            with self._scheduled_lock:
                self._scheduled.difference_update(futures)
            channel = self._channel
            for message, future in zip(messages, futures, strict=True):
                if channel is None or not channel.is_open:
                    future.set_exception(_not_open())
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

        with self._scheduled_lock:
            self._scheduled.update(futures)
        if not self._call_soon(do_publish):
            with self._scheduled_lock:
                self._scheduled.difference_update(futures)
            for future in futures:
                future.set_exception(_not_open())
        return futures

    def loop_ended(self) -> None:
        """Fail what the ended I/O loop can no longer publish or confirm.

        Called once no callback can reach the loop any more: publishes
        scheduled before then are all among those failed here.
        """
        with self._scheduled_lock:
            lost, self._scheduled = self._scheduled, set()
        for future in lost:
            if not future.done():
                future.set_exception(_not_open())
        self.fail_pending(
            BrokerError(
                "The connection to the broker was lost before it confirmed the message.",
                code=Fault.BROKER_CONNECTION_LOST,
            )
        )

    def fail_pending(self, error: BrokerError) -> None:
        """Fail every message still waiting for its confirm."""
        with self._lock:
            pending, self._pending = list(self._pending.values()), OrderedDict()
        for item in pending:
            if not item.future.done():
                item.future.set_exception(error)

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
