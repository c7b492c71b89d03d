"""What a node answers and how it settles a delivery: receipts, declines, refusals, retries.

A reply is published, and the delivery acked, only once the batch's records
are committed (:class:`~gateway.node.unit_of_work.UnitOfWork`). A valid
message declined by policy gets a rejected receipt and no dead letter; a
refused one is dead-lettered with its code, and its sender is told only when
its signature verified. A message whose processing fails while the node is
healthy counts one failed attempt, and is refused after ``delivery_limit``.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING

from gateway.broker import REFUSAL_CODE_HEADER, REFUSAL_REASON_HEADER, Delivery, Outgoing
from gateway.journal import Event
from gateway.model.codes import Fault, Outcome, Refusal
from gateway.model.envelope import (
    Body,
    Envelope,
    Header,
    MessageType,
    ReceiptBody,
    ReceiptOutcome,
    seal,
)
from gateway.model.errors import AdapterError, BrokerError, GatewayError
from gateway.node.unit_of_work import UnitOfWork
from gateway.node.vendor import raise_if_vendor_away

if TYPE_CHECKING:
    from gateway.node.node import Node

log = logging.getLogger(__name__)

Reply = tuple[Header, bytes]
"""A sealed reply: its header and the envelope's bytes."""

DECLINED = frozenset({Refusal.PURPOSE_NOT_ALLOWED})
"""Refusal codes of valid messages declined by policy: answered, never dead-lettered."""


class Refused(Exception):
    """A message this node refuses: dead-letter it, and tell the sender when we can."""

    def __init__(
        self,
        error: GatewayError,
        *,
        header: Header | None,
        expose_reason: bool,
        authenticated: bool = False,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.header = header
        # Before decryption every reason is about the header, which the
        # broker sees anyway; after it, a reason may quote personal data and
        # only its code leaves the node.
        self.expose_reason = expose_reason
        # Only a message whose signature verified may claim its message id
        # (otherwise a forged copy could make the genuine one look like a
        # duplicate), and only its sender gets a signed receipt: anything else
        # is dead-lettered without a word, so that forged copies can neither
        # flip the sender's record nor be amplified into signed receipts.
        self.authenticated = authenticated


def stored_reply(data: bytes | None) -> Reply | None:
    """A reply as the store keeps it, ready to be sent again."""
    return None if data is None else (Envelope.from_xml(data).header, data)


class Replies:
    """Records what came in, and answers and settles each delivery once the batch commits."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def record(
        self,
        header: Header,
        outcome: str,
        code: str | None,
        *,
        reply: Reply | None = None,
        local_reference: str | None = None,
    ) -> None:
        """Record a received message's outcome (and the reply to send again for a copy)."""
        self._node.store.record_received(
            message_id=str(header.message_id),
            type=header.type.value,
            sender=header.sender,
            outcome=outcome,
            outcome_code=code,
            local_reference=local_reference,
            reply=None if reply is None else reply[1],
        )

    def receipt(self, original: Header, outcome: ReceiptOutcome, code: str | None) -> Reply | None:
        """A signed receipt for ``original``, or ``None`` when its sender cannot get one."""
        node = self._node
        if (
            original.type is MessageType.RECEIPT
            or not node.directory.may_receive(original.sender).allowed
        ):
            return None
        header = node.sender.header(
            MessageType.RECEIPT,
            original.sender,
            original.purpose,
            original.case_reference,
            correlation=original,
        )
        body = ReceiptBody(outcome, code)
        try:
            sealed = seal(header, body.to_xml(), keys=node.keys, directory=node.directory)
        except GatewayError as exc:
            # No valid key to seal to (expired, being rotated): no receipt.
            log.warning("no receipt for %s: %s", original.message_id, exc.code)
            return None
        node.journaling.message(Event.RECEIPT_SENT, header, body)
        node.stats.add("receipts_sent")
        return header, sealed.to_xml()

    def reply_then_ack(self, uow: UnitOfWork, delivery: Delivery, reply: Reply | None) -> None:
        """Once the batch is committed: publish the reply, then ack when the broker holds it."""
        uow.defer(lambda: self.send_reply_then_ack(delivery, reply))

    def ack(self, uow: UnitOfWork, delivery: Delivery) -> None:
        """Once the batch is committed: ack the delivery (nothing to reply)."""
        self.reply_then_ack(uow, delivery, None)

    def send_reply_then_ack(self, delivery: Delivery, reply: Reply | None) -> None:
        node = self._node
        if reply is None:
            node.broker.ack(delivery)
            return
        header, data = reply

        def settle(f: Future[None]) -> None:
            error = f.exception()
            if isinstance(error, BrokerError) and error.code == Fault.BROKER_UNROUTABLE:
                log.warning(
                    "reply %s could not be routed to %s", header.message_id, header.recipient
                )
            elif error is not None:
                # The connection dropped: without an ack the message comes
                # back, is recognised as a duplicate and the stored reply is
                # sent again.
                return
            node.broker.ack(delivery)

        node.sender.publish(header, data).add_done_callback(settle)

    def decline(
        self, uow: UnitOfWork, delivery: Delivery, header: Header, body: Body, code: str
    ) -> None:
        """Refuse a valid message by policy: a rejected receipt, no dead letter."""
        node = self._node
        node.journaling.message(Event.REFUSED_INCOMING, header, body, code=code)
        log.warning(
            "declined %s %s from %s: %s", header.type.value, header.message_id, header.sender, code
        )
        node.stats.add(f"refused.{code}")
        reply = self.receipt(header, Outcome.REJECTED, code)
        self.record(header, Outcome.REJECTED, code, reply=reply)
        self.reply_then_ack(uow, delivery, reply)

    def refuse(
        self,
        uow: UnitOfWork,
        delivery: Delivery,
        refusal: Refused,
        *,
        reply: Reply | None = None,
    ) -> None:
        """Dead-letter a refused message with its code; tell its sender when it signed it.

        ``reply``: the receipt already signed when the message was first
        refused (a redelivery files the dead letter again and resends it).
        """
        node = self._node
        error, header = refusal.error, refusal.header
        log.warning("refused a message: %s", error if refusal.expose_reason else error.code)
        node.journaling.event(
            Event.REFUSED_INCOMING,
            header,
            code=error.code,
            **({} if header else {"message_id": delivery.properties.message_id}),
        )
        node.stats.add("refused")
        node.stats.add(f"refused.{error.code}")
        if header is not None and refusal.authenticated:
            reply = self.receipt(header, Outcome.REJECTED, error.code)
            self.record(header, Outcome.REJECTED, error.code, reply=reply)
        headers = {REFUSAL_CODE_HEADER: error.code}
        if refusal.expose_reason:
            headers[REFUSAL_REASON_HEADER] = error.message
        dead_letter = Outgoing(
            node.names.dead_exchange(node.cpas_id),
            node.cpas_id,
            delivery.body,
            message_id=delivery.properties.message_id,
            headers=headers,
            message_type=delivery.properties.type,
            user_id=node.amqp_user,
        )

        def after_dead_letter(f: Future[None]) -> None:
            if f.exception() is not None:
                # Could not file it with its reason: let the broker
                # dead-letter it as it is rather than lose it.
                node.broker.reject(delivery, requeue=False)
                return
            node.stats.add("dead_lettered")
            self.send_reply_then_ack(delivery, reply)

        uow.defer(
            lambda: node.broker.publish_many([dead_letter])[0].add_done_callback(after_dead_letter)
        )

    def failed_attempt(
        self, uow: UnitOfWork, delivery: Delivery, exc: Exception, header: Header | None = None
    ) -> None:
        """Processing this message failed while the node is healthy: count it, give it back.

        After ``delivery_limit`` failed attempts the node refuses it (a dead
        letter with its code): the broker's own count cannot tell a failing
        message from a node that died while holding it.
        """
        node = self._node
        code = exc.code if isinstance(exc, GatewayError) else Refusal.NODE_UNEXPECTED_ERROR
        message_id = delivery.properties.message_id or (header and str(header.message_id))
        if not isinstance(exc, GatewayError):
            log.error(
                "unexpected error while processing %s; returning it",
                message_id,
                exc_info=exc,
            )
        node.stats.add("errors")
        failures = node.store.count_failure(message_id, code) if message_id else 0
        if failures < node.attempt_limit:
            log.warning(
                "processing %s failed (%s), attempt %d of %d: returned to the queue",
                message_id,
                code,
                failures,
                node.attempt_limit,
            )
            uow.defer(lambda: node.broker.reject(delivery, requeue=True))
            return
        error = GatewayError(
            f"Processing the message failed {failures} times (last: {code}).",
            code=Refusal.NODE_ATTEMPTS_EXHAUSTED,
        )
        self.refuse(
            uow,
            delivery,
            Refused(error, header=header, expose_reason=True, authenticated=header is not None),
        )

    def adapter_failed(
        self, uow: UnitOfWork, delivery: Delivery, header: Header, exc: AdapterError
    ) -> None:
        """The vendor system failed on this message: an attempt, a refusal, or hold the batch."""
        raise_if_vendor_away(exc)
        if exc.transient:
            # Only this message fails, and it may pass later: a failed attempt.
            self.failed_attempt(uow, delivery, exc, header)
            return
        self.refuse(
            uow, delivery, Refused(exc, header=header, expose_reason=False, authenticated=True)
        )
