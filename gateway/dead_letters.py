"""A node's dead letters: look at them, and send them back once the cause is fixed.

Dead letters are the messages this node refused (with the refusal code in the
``x-cpas-refusal-code`` header) or that the broker moved aside after the
inbox's delivery limit. They stay sealed: listing them shows only what the
broker could see anyway. Requeuing publishes a message back to this node's
own inbox and makes the node forget its earlier refusal, so it is processed
afresh.

At start-up a node sends back, by itself, the dead letters that only a
crash-looping node put there: moved aside by the broker's delivery limit,
never refused by the node, and never sent back this way before (a message
that reaches the broker's limit twice really does kill the node, and stays).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pika
from pika.adapters.blocking_connection import BlockingChannel

from gateway.broker import (
    PERSISTENT,
    REFUSAL_CODE_HEADER,
    REFUSAL_REASON_HEADER,
    BrokerTLS,
    Names,
    connect,
)
from gateway.journal import Event, Journal
from gateway.model.codes import Outcome, Refusal
from gateway.model.envelope import Envelope
from gateway.model.errors import GatewayError
from gateway.store import Store

log = logging.getLogger(__name__)

REQUEUED_HEADER = "x-cpas-requeued"
"""Set on a dead letter the node sent back by itself after the broker's delivery limit."""
DELIVERY_LIMIT = Refusal.BROKER_DELIVERY_LIMIT


class Node(Protocol):
    """What dead-letter handling needs of a node (:class:`gateway.node.Node` has it all)."""

    cpas_id: str
    names: Names
    amqp_urls: list[str]
    broker_tls: BrokerTLS | None
    amqp_user: str
    store: Store
    journal: Journal | None


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as the operator sees it."""

    message_id: str
    type: str | None
    sender: str | None
    code: str
    reason: str | None
    deaths: int


@contextlib.contextmanager
def _channel(node: Node) -> Iterator[BlockingChannel]:
    # The first cluster member that answers, over TLS as the node's own connection.
    connection = connect(node.amqp_urls, node.broker_tls)
    try:
        yield connection.channel()
    finally:
        connection.close()


def _describe(properties: pika.BasicProperties, body: bytes) -> DeadLetter:
    headers = properties.headers or {}
    code = headers.get(REFUSAL_CODE_HEADER)
    deaths = sum(int(d.get("count", 1)) for d in headers.get("x-death", []) or [])
    if code is None:
        # Moved aside by the broker: the delivery limit was reached.
        code = DELIVERY_LIMIT if deaths else "unknown"
    sender = None
    with contextlib.suppress(GatewayError):
        sender = Envelope.from_xml(body).header.sender
    reason = headers.get(REFUSAL_REASON_HEADER)
    return DeadLetter(
        message_id=properties.message_id or "?",
        type=properties.type,
        sender=sender,
        code=str(code),
        reason=None if reason is None else str(reason),
        deaths=deaths,
    )


def list_dead_letters(node: Node) -> list[DeadLetter]:
    """Every dead letter of the node, oldest first; the queue is left as it was."""
    found = []
    with _channel(node) as channel:
        while True:
            method, properties, body = channel.basic_get(node.names.dead_letters(node.cpas_id))
            if method is None:
                break
            found.append(_describe(properties, body))
        # Closing without acks returns every message to the queue, in order.
    return found


def requeue_dead_letters(node: Node, message_ids: Iterable[str] | None = None) -> list[str]:
    """Send dead letters (all, or those named) back to the node's inbox; return their ids."""
    wanted = None if message_ids is None else set(message_ids)

    def chosen(properties: pika.BasicProperties, body: bytes) -> bool:
        if wanted is not None and (properties.message_id or "") not in wanted:
            return False
        node.store.forget_received(properties.message_id or "")
        return True

    return _requeue(node, chosen)


def requeue_after_delivery_limit(node: Node) -> list[str]:
    """At start-up: send back what only the broker's delivery limit dead-lettered.

    A node killed again and again while holding deliveries makes the broker
    count them as failed; those messages did nothing wrong. Each is sent back
    once, and journaled; the node's store is left as it is, so one imported
    meanwhile is recognised.
    """

    def chosen(properties: pika.BasicProperties, body: bytes) -> bool:
        headers = properties.headers or {}
        if REQUEUED_HEADER in headers or _describe(properties, body).code != DELIVERY_LIMIT:
            return False
        previous = node.store.received(properties.message_id or "")
        return previous is None or previous.outcome != Outcome.REJECTED

    requeued = _requeue(node, chosen, headers={REQUEUED_HEADER: 1})
    if node.journal is not None:
        with node.journal.batch():
            for message_id in requeued:
                node.journal.record(Event.REQUEUED, message_id=message_id, code=DELIVERY_LIMIT)
    if requeued:
        log.warning(
            "sent %d messages dead-lettered by the broker's delivery limit back to the inbox",
            len(requeued),
        )
    return requeued


def _requeue(
    node: Node,
    chosen: Callable[[pika.BasicProperties, bytes], bool],
    *,
    headers: Mapping[str, Any] | None = None,
) -> list[str]:
    """Publish the chosen dead letters back to the node's inbox; leave the others in place."""
    requeued = []
    with _channel(node) as channel:
        channel.confirm_delivery()
        queue = node.names.dead_letters(node.cpas_id)
        kept = []
        while True:
            method, properties, body = channel.basic_get(queue)
            if method is None:
                break
            if not chosen(properties, body):
                kept.append(method.delivery_tag)
                continue
            channel.basic_publish(
                node.names.route,
                node.cpas_id,
                body,
                pika.BasicProperties(
                    delivery_mode=PERSISTENT,
                    content_type=properties.content_type,
                    message_id=properties.message_id,
                    type=properties.type,
                    user_id=node.amqp_user,
                    headers=None if headers is None else dict(headers),
                ),
                mandatory=True,
            )
            channel.basic_ack(method.delivery_tag)
            requeued.append(properties.message_id or "")
        for tag in kept:
            channel.basic_nack(tag, requeue=True)
    return requeued
