"""A node's dead letters: look at them, and send them back once the cause is fixed.

Dead letters are the messages this node refused (with the refusal code in the
``x-cpas-refusal-code`` header) or that the broker moved aside after the
inbox's delivery limit. They stay sealed: listing them shows only what the
broker could see anyway. Requeuing publishes a message back to this node's
own inbox and makes the node forget its earlier refusal, so it is processed
afresh.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pika
from pika.adapters.blocking_connection import BlockingChannel

from gateway.broker import PERSISTENT
from gateway.broker_connection import connect
from gateway.envelope import Envelope
from gateway.errors import GatewayError
from gateway.node import REFUSAL_CODE_HEADER, REFUSAL_REASON_HEADER, Node


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
        code = "broker.delivery_limit" if deaths else "unknown"
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
    requeued = []
    with _channel(node) as channel:
        channel.confirm_delivery()
        queue = node.names.dead_letters(node.cpas_id)
        kept = []
        while True:
            method, properties, body = channel.basic_get(queue)
            if method is None:
                break
            message_id = properties.message_id or ""
            if wanted is not None and message_id not in wanted:
                kept.append(method.delivery_tag)
                continue
            node.store.forget_received(message_id)
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
                ),
                mandatory=True,
            )
            channel.basic_ack(method.delivery_tag)
            requeued.append(message_id)
        for tag in kept:
            channel.basic_nack(tag, requeue=True)
    return requeued
