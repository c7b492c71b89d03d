"""One handler per message type, with this node's policy.

- ``transfer``: import the dossier through the adapter, answer with a receipt
  (or decline a purpose the policy refuses);
- ``request``: apply the policy for the purpose -- answer automatically, hold
  for a social worker, or refuse -- and answer with a response (the dossier,
  or a typed refusal);
- ``response``: import the dossier (or record the refusal) against the
  request it answers, and answer a dossier with a receipt;
- ``receipt``: record the fate of a message this node sent.

Receipts and responses count only from the CPAS the message they answer went
to. A handler raises :class:`~gateway.node.replies.Refused` for a message to
refuse; what it does after the batch commits goes into the unit of work.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, assert_never

from gateway.adapters import VendorEventKind
from gateway.broker import Delivery
from gateway.journal import Event
from gateway.model.base import format_timestamp
from gateway.model.codes import Outcome, PolicyAction, Refusal
from gateway.model.dossier import Dossier
from gateway.model.envelope import (
    Body,
    Header,
    MessageType,
    ReceiptBody,
    RefusalReason,
    RequestBody,
    ResponseBody,
    TransferBody,
    seal,
)
from gateway.model.errors import AdapterError, DossierInvalid, EnvelopeRefused, GatewayError
from gateway.node.replies import Refused
from gateway.node.unit_of_work import Import, UnitOfWork

if TYPE_CHECKING:
    from gateway.node.node import Node

log = logging.getLogger(__name__)


class Handlers:
    """What a node does with a verified, decrypted message of each type."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def handle(self, uow: UnitOfWork, delivery: Delivery, header: Header, body: Body) -> None:
        """Hand the message to the handler of its kind."""
        match body:
            case TransferBody():
                self.on_transfer(uow, delivery, header, body)
            case RequestBody():
                self.on_request(uow, delivery, header, body)
            case ResponseBody():
                self.on_response(uow, delivery, header, body)
            case ReceiptBody():
                self.on_receipt(uow, delivery, header, body)
            case _:
                assert_never(body)

    def on_transfer(
        self, uow: UnitOfWork, delivery: Delivery, header: Header, body: TransferBody
    ) -> None:
        node = self._node
        if node.policy[header.purpose] is PolicyAction.REFUSE:
            node.replies.decline(uow, delivery, header, body, Refusal.PURPOSE_NOT_ALLOWED)
            return
        _check_source(header, body.dossier)
        uow.import_later(Import(delivery, header, body.dossier, None))

    def on_request(
        self, uow: UnitOfWork, delivery: Delivery, header: Header, body: RequestBody
    ) -> None:
        node = self._node
        self._check_can_answer(header)
        action = node.policy[header.purpose]
        outcome, code = Outcome.ANSWERED, None
        if action is PolicyAction.REFUSE:
            answer = ResponseBody(RefusalReason.PURPOSE_NOT_ALLOWED)
            outcome, code = Outcome.REFUSED, Refusal.PURPOSE_NOT_ALLOWED
        elif action.holds:
            node.store.hold(
                message_id=str(header.message_id),
                sender=header.sender,
                purpose=header.purpose.value,
                case_reference=header.case_reference,
                envelope=delivery.body,
                expires_at=format_timestamp(header.expires_at),
            )
            answer = ResponseBody(RefusalReason.AWAITING_RELEASE)
            outcome = Outcome.HELD
        else:
            try:
                dossier = node.vendor.export(body.person_number)
            except AdapterError as exc:
                node.replies.adapter_failed(uow, delivery, header, exc)
                return
            if dossier is None:
                answer = ResponseBody(RefusalReason.UNKNOWN_PERSON)
                outcome, code = Outcome.REFUSED, Refusal.REQUEST_UNKNOWN_PERSON
            else:
                answer = ResponseBody(dossier)
        node.stats.add(f"requests.{outcome}")
        response = node.sender.response_header(header)
        reply = (
            response,
            seal(response, answer.to_xml(), keys=node.keys, directory=node.directory).to_xml(),
        )
        node.replies.record(header, outcome, code, reply=reply)
        node.journaling.message(Event.RECEIVED, header, body, outcome=outcome, code=code)
        if action.holds:
            node.journaling.message(Event.REQUEST_HELD, header, body)
            node.vendor.tell(
                VendorEventKind.REQUEST_HELD,
                header,
                str(header.message_id),
                person_number=body.person_number,
            )
        node.journaling.message(Event.RESPONSE_SENT, response, answer)
        node.replies.reply_then_ack(uow, delivery, reply)

    def on_response(
        self, uow: UnitOfWork, delivery: Delivery, header: Header, body: ResponseBody
    ) -> None:
        node = self._node
        request_id = str(header.correlation_id or "")
        request = node.store.outgoing(request_id)
        if (
            request is None
            or request.type != MessageType.REQUEST.value
            or request.recipient != header.sender
        ):
            error = EnvelopeRefused(
                f"The response from {header.sender} answers no request this node sent to it.",
                code=Refusal.ENVELOPE_UNSOLICITED,
            )
            raise Refused(error, header=header, expose_reason=True, authenticated=True)
        if request.final and request.outcome != Outcome.EXPIRED:
            error = EnvelopeRefused(
                f"The request {request_id} was answered already ({request.outcome}).",
                code=Refusal.RESPONSE_ALREADY_ANSWERED,
            )
            raise Refused(error, header=header, expose_reason=True, authenticated=True)
        if isinstance(body.answer, RefusalReason):
            reason = body.answer
            outcome = (
                Outcome.AWAITING_RELEASE
                if reason is RefusalReason.AWAITING_RELEASE
                else Outcome.REFUSED
            )
            node.store.record_outcome(request_id, outcome, reason.value)
            if outcome == Outcome.REFUSED:
                node.vendor.tell(
                    VendorEventKind.REQUEST_REFUSED, header, request_id, code=reason.value
                )
            node.replies.record(header, Outcome.RECORDED, None)
            node.journaling.message(Event.RESPONSE_RECEIVED, header, body)
            node.stats.add(f"responses.{reason.value}")
            node.outbox.notify()
            node.replies.ack(uow, delivery)
            return
        dossier = body.answer
        _check_source(header, dossier)

        def answered() -> None:
            node.journaling.message(Event.RESPONSE_RECEIVED, header, body, outcome=Outcome.IMPORTED)
            node.store.record_outcome(request_id, Outcome.ANSWERED, None)
            node.vendor.tell(VendorEventKind.REQUEST_ANSWERED, header, request_id)
            node.stats.add("responses.dossier")
            node.outbox.notify()

        uow.import_later(Import(delivery, header, dossier, answered))

    def on_receipt(
        self, uow: UnitOfWork, delivery: Delivery, header: Header, body: ReceiptBody
    ) -> None:
        node = self._node
        correlation = str(header.correlation_id or "")
        sent = node.store.outgoing(correlation)
        if sent is None:
            # A receipt for a reply (a response this node gave) has no outbox
            # entry; it is journaled and changes nothing.
            log.info(
                "receipt %s for %s, which is not in the outbox", header.message_id, correlation
            )
        elif sent.recipient != header.sender:
            error = EnvelopeRefused(
                f"The receipt from {header.sender} is for a message this node sent to "
                f"{sent.recipient}.",
                code=Refusal.ENVELOPE_UNSOLICITED,
            )
            raise Refused(error, header=header, expose_reason=True, authenticated=True)
        elif sent.final and (sent.outcome, sent.outcome_code) == (body.outcome, body.code):
            # The same outcome told again (the receiver answered a republished
            # copy): nothing changes, nothing to refuse.
            log.info("receipt %s repeats the outcome of %s", header.message_id, correlation)
            node.replies.record(header, Outcome.RECORDED, None)
            node.stats.add("receipts.repeated")
            node.replies.ack(uow, delivery)
            return
        elif sent.final and not (
            sent.outcome == Outcome.REJECTED and body.outcome == Outcome.IMPORTED
        ):
            # Imported is the last word. Rejected may still become imported:
            # the recipient fixed the cause and requeued its dead letter.
            error = EnvelopeRefused(
                f"The outcome of {correlation} was recorded already ({sent.outcome}).",
                code=Refusal.RECEIPT_ALREADY_RECORDED,
            )
            raise Refused(error, header=header, expose_reason=True, authenticated=True)
        else:
            node.store.record_outcome(correlation, body.outcome, body.code)
            if sent.type == MessageType.TRANSFER.value:
                kind = (
                    VendorEventKind.TRANSFER_IMPORTED
                    if body.outcome == Outcome.IMPORTED
                    else VendorEventKind.TRANSFER_REJECTED
                )
                node.vendor.tell(kind, header, correlation, code=body.code)
        node.replies.record(header, Outcome.RECORDED, None)
        node.journaling.message(Event.RECEIPT_RECEIVED, header, body)
        node.stats.add(f"receipts.{body.outcome}")
        node.outbox.notify()
        node.replies.ack(uow, delivery)

    def _check_can_answer(self, header: Header) -> None:
        """A reply can be sealed to the sender (an active CPAS with a valid encryption key)."""
        try:
            self._node.directory.encryption_key_for(header.sender)
        except GatewayError as exc:
            raise Refused(exc, header=header, expose_reason=True, authenticated=True) from None


def _check_source(header: Header, dossier: Dossier) -> None:
    """The CPAS a dossier says it comes from must be the one that signed it."""
    if dossier.source.cpas_id != header.sender:
        error = DossierInvalid(
            f"The dossier names {dossier.source.cpas_id} as its source, but {header.sender} "
            "signed it.",
            code=Refusal.DOSSIER_SOURCE,
        )
        raise Refused(error, header=header, expose_reason=False, authenticated=True)
