"""Exchanges: start transfers and requests, preview a transfer, follow a message."""

from __future__ import annotations

import uuid
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.api import models
from gateway.api.auth import Rights
from gateway.api.rendered import RENDERED, preview
from gateway.model.codes import Fault, Outcome
from gateway.model.errors import GatewayError
from gateway.model.identifiers import validate_person_number
from gateway.model.staff import StaffReference, staff_reference
from gateway.node import Node, Sent
from gateway.report import reason_words


def exchanges_router(node: Node, rights: Rights) -> APIRouter:
    """The routes that start and follow exchanges."""
    router = APIRouter(tags=["exchanges"])

    @router.post(
        "/v1/transfers",
        status_code=202,
        response_model=models.Accepted,
        dependencies=[rights.exchange],
    )
    def start_transfer(body: models.TransferIn) -> models.Accepted:
        """Send a person's dossier, as the vendor system holds it now, to the new CPAS."""
        staff, number = _acting_on(body)
        sent = node.send_transfer(
            number, body.recipient, body.purpose, case_reference=body.case_reference, staff=staff
        )
        return _accepted(sent)

    @router.post(
        "/v1/transfers/preview",
        dependencies=[rights.report],
        response_class=Response,
        responses=RENDERED,
    )
    def preview_transfer(body: models.TransferPreviewIn) -> Response:
        """The dossier a transfer would carry, in the person's language, to show them first."""
        staff, number = _acting_on(body)
        dossier = node.preview_transfer(number, body.recipient, body.purpose, staff=staff)
        return preview(node, dossier, body.recipient, body.format, body.language)

    @router.post(
        "/v1/requests",
        status_code=202,
        response_model=models.Accepted,
        dependencies=[rights.exchange],
    )
    def start_request(body: models.RequestIn) -> models.Accepted:
        """Ask the CPAS that holds a person's dossier for it; follow it with the message state."""
        staff, number = _acting_on(body)
        sent = node.send_request(
            number, body.holder, body.purpose, body.case_reference, staff=staff
        )
        return _accepted(sent)

    @router.get(
        "/v1/messages/{message_id}",
        response_model=models.MessageState,
        dependencies=[rights.exchange],
    )
    def message_state(message_id: uuid.UUID, lang: models.Language = "fr") -> models.MessageState:
        """What became of a message this node sent or received."""
        return _message_state(node, str(message_id), lang)

    return router


def _acting_on(body: Any) -> tuple[StaffReference, str]:
    """The body's staff reference and person number, checked (the social worker first: an
    action that names none is refused before anything else is looked at)."""
    staff = staff_reference(body.staff_reference)
    _, number = validate_person_number(body.person_number)
    return staff, number


def _accepted(sent: Sent) -> models.Accepted:
    return models.Accepted(message_id=sent.message_id, recipient=sent.recipient, state="published")


_OUT_STATES: Final[dict[str | None, str]] = {
    None: "confirmed",
    Outcome.AWAITING_RELEASE: Outcome.HELD,
}


def _message_state(node: Node, message_id: str, lang: str) -> models.MessageState:
    sent = node.store.outgoing(message_id)
    if sent is not None:
        state = sent.outcome or "confirmed"
        if sent.outcome is None and sent.confirmed_at is None:
            state = "published"
        state = _OUT_STATES.get(sent.outcome, state)
        return models.MessageState(
            message_id=message_id,
            direction="out",
            type=sent.type,
            peer=sent.recipient,
            purpose=sent.purpose,
            case_reference=sent.case_reference,
            state=state,
            code=sent.outcome_code,
            words=reason_words(sent.outcome_code, lang),
        )
    received = node.store.received(message_id)
    if received is None:
        raise GatewayError(
            f"This node sent and received no message {message_id}.", code=Fault.MESSAGE_UNKNOWN
        )
    return models.MessageState(
        message_id=message_id,
        direction="in",
        type=received.type,
        peer=received.sender,
        state=received.outcome,
        code=received.outcome_code,
        words=reason_words(received.outcome_code, lang),
    )
