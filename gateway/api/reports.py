"""A person's report and the exchanges of a case, read from the node's journal.

The desk's pages (:mod:`gateway.api.desk`) read them through the same functions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParameter
from fastapi.responses import Response

from gateway.api import models
from gateway.api.auth import Rights
from gateway.api.rendered import MEDIA
from gateway.model.codes import Fault
from gateway.model.dossier import OPAQUE_REFERENCE
from gateway.model.errors import GatewayError
from gateway.model.identifiers import validate_person_number
from gateway.node import Node
from gateway.report import build_report, event_words, reason_words, render


def reports_router(node: Node, rights: Rights) -> APIRouter:
    """The routes that read the journal: a person's report, a case's exchanges."""
    router = APIRouter()

    @router.post(
        "/v1/reports",
        tags=["person"],
        dependencies=[rights.report],
        response_class=Response,
        responses={200: {"content": {m: {} for m in (*MEDIA.values(), "application/json")}}},
    )
    def person_report(body: models.ReportIn) -> Response:
        """The person's own report: every exchange about them and who acted, in their language."""
        text, media = report_for(node, body.person_number, body.language, body.format)
        return Response(text, media_type=media)

    @router.get(
        "/v1/cases/{case_reference}/exchanges",
        response_model=list[models.Exchange],
        tags=["exchanges"],
        dependencies=[rights.exchange],
    )
    def case_exchanges(
        case_reference: Annotated[str, PathParameter(pattern=OPAQUE_REFERENCE)],
        lang: models.Language = "fr",
    ) -> list[models.Exchange]:
        """Every exchange this node journaled under a case reference, oldest first: who sent
        what to whom, what came of it, and which social worker acted (never the dossier)."""
        return case_exchanges_of(node, case_reference, lang)

    return router


def report_for(node: Node, person_number: str, lang: str | None, fmt: str) -> tuple[str, str]:
    """The person's report as text and its media type."""
    if node.journal is None:
        raise GatewayError("This node keeps no journal.", code=Fault.JOURNAL_UNAVAILABLE)
    _, number = validate_person_number(person_number)
    built = build_report(
        node.journal,
        node.directory,
        cpas_id=node.cpas_id,
        person_number=number,
        lang=lang,
        verified=node.journal.verify(),
    )
    return render(built, fmt), MEDIA.get(fmt, "application/json")


def case_exchanges_of(node: Node, case_reference: str, lang: str) -> list[models.Exchange]:
    """The steps of a case as this node's journal recorded them, in ``lang``."""
    if node.journal is None:
        raise GatewayError("This node keeps no journal.", code=Fault.JOURNAL_UNAVAILABLE)
    exchanges = []
    for entry in node.journal.entries_of_case(case_reference):
        peer = None
        if entry.peer is not None:
            institution = node.directory.get(entry.peer)
            name = institution.name(lang) if institution else entry.peer
            peer = models.Institution(id=entry.peer, name=name)
        said = entry.code or entry.outcome
        exchanges.append(
            models.Exchange(
                at=entry.at.isoformat(),
                event=entry.event,
                event_words=event_words(entry.event, lang),
                direction=entry.direction,
                message_id=entry.message_id,
                type=entry.message_type,
                peer=peer,
                purpose=entry.purpose,
                outcome=entry.outcome,
                code=entry.code,
                words=reason_words(said, lang),
                actor=entry.actor,
            )
        )
    return exchanges
