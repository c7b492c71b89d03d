"""Held requests: list those waiting, preview, release (one of two under a two-person hold),
refuse. The desk's pages (:mod:`gateway.api.desk`) act through the same functions."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.api import models
from gateway.api.auth import Rights
from gateway.api.rendered import RENDERED, preview
from gateway.model.codes import HeldState, Outcome, Refusal
from gateway.model.errors import GatewayError
from gateway.model.staff import StaffReference, staff_reference
from gateway.node import Node


def held_router(node: Node, rights: Rights) -> APIRouter:
    """The routes of held requests, for social workers' decisions."""
    router = APIRouter(tags=["held requests"], dependencies=[rights.decide])

    @router.get("/v1/held", response_model=list[models.HeldRequestOut])
    def held_requests() -> list[models.HeldRequestOut]:
        """Requests of other CPAS waiting for this CPAS's social workers, oldest first."""
        return [held_out(node, view.request, view.person_number) for view in node.held_requests()]

    @router.post("/v1/held/{request_id}/preview", response_class=Response, responses=RENDERED)
    def preview_release(request_id: uuid.UUID, body: models.PreviewIn) -> Response:
        """The dossier releasing the request would send, to show the person first."""
        staff = staff_reference(body.staff_reference)
        held = node.store.held_request(str(request_id))
        dossier = node.preview_release(str(request_id), staff=staff)
        if dossier is None or held is None:
            raise GatewayError(
                "The vendor system holds no dossier for this person: releasing answers "
                "'unknown person'.",
                code=Refusal.SEND_UNKNOWN_PERSON,
            )
        return preview(node, dossier, held.sender, body.format, body.language)

    @router.post("/v1/held/{request_id}/release", response_model=models.Decision)
    def release(request_id: uuid.UUID, body: models.ReleaseIn) -> models.Decision:
        """Release a held request (under a two-person hold, one of two distinct releases)."""
        return release_as(node, str(request_id), staff_reference(body.staff_reference))

    @router.post("/v1/held/{request_id}/refuse", response_model=models.Decision)
    def refuse(request_id: uuid.UUID, body: models.RefuseIn) -> models.Decision:
        """Refuse a held request, with a ground from the closed list."""
        return refuse_as(node, str(request_id), staff_reference(body.staff_reference), body.ground)

    return router


def held_out(node: Node, held: Any, person_number: str) -> models.HeldRequestOut:
    """A held request as the API and the desk show it."""
    requester = node.directory.get(held.sender)
    return models.HeldRequestOut(
        request_id=held.message_id,
        requester=models.Institution(
            id=held.sender, name=requester.name() if requester else held.sender
        ),
        purpose=held.purpose,
        case_reference=held.case_reference,
        person_number=person_number,
        received_at=held.received_at,
        expires_at=held.expires_at,
        releases_needed=node.policy[models.Purpose(held.purpose)].releases_needed,
        released_by=node.releases(held.message_id),
    )


def release_as(node: Node, request_id: str, staff: StaffReference) -> models.Decision:
    """Release a held request as ``staff``; the decision, or the wait for a second release."""
    sent = node.release(request_id, staff=staff)
    released = node.releases(request_id)
    if sent is None:
        return models.Decision(
            request_id=request_id, state=Outcome.AWAITING_SECOND_RELEASE, released_by=released
        )
    return models.Decision(
        request_id=request_id,
        state=HeldState.RELEASED,
        response_id=sent.message_id,
        released_by=released,
    )


def refuse_as(
    node: Node, request_id: str, staff: StaffReference, ground: models.RefusalGround
) -> models.Decision:
    """Refuse a held request as ``staff``, on ``ground``."""
    sent = node.refuse_held(request_id, staff=staff, ground=ground)
    return models.Decision(
        request_id=request_id, state=HeldState.REFUSED, response_id=sent.message_id
    )
