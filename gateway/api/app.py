"""The node's local API: HTTP + JSON for the vendor's software (see docs/api.md).

:func:`create_app` builds the FastAPI application over a running
:class:`~gateway.node.Node`; :func:`guarded` wraps it with the body-size
limit, outermost, so an oversized body is refused before anything reads it.

Every call but the OpenAPI document needs a client token
(``Authorization: Bearer …``) with the right for it. Every refusal is a
JSON :class:`~gateway.api.models.Problem`: the same stable codes as the
command line, an HTTP status that says whose fault it is, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import __version__
from gateway.api import models
from gateway.api.metrics import metrics_text
from gateway.api.tokens import SCOPES, ApiTokens, Client
from gateway.model.codes import Fault, HeldState, Outcome, Refusal
from gateway.model.dossier import OPAQUE_REFERENCE, Dossier
from gateway.model.errors import GatewayError, IdentifierInvalid
from gateway.model.identifiers import validate_person_number
from gateway.model.staff import StaffReference, staff_reference
from gateway.node import Node, Sent
from gateway.report import build_report, event_words, reason_words, render, render_preview

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY: Final = 65_536

_STATUS: Final[dict[str, int]] = {
    Fault.API_UNAUTHENTICATED: 401,
    Fault.API_TOKEN_INVALID: 401,
    Fault.API_TOKEN_REVOKED: 401,
    Fault.API_TOKEN_OTHER_NODE: 401,
    Fault.API_FORBIDDEN: 403,
    Fault.DESK_CSRF: 403,
    Fault.DESK_SIGNED_OUT: 401,
    Fault.API_NOT_FOUND: 404,
    Fault.MESSAGE_UNKNOWN: 404,
    Fault.PENDING_UNKNOWN: 404,
    Refusal.SEND_UNKNOWN_PERSON: 404,
    Fault.API_METHOD: 405,
    Fault.HOLD_SAME_STAFF: 409,
    Fault.HOLD_OWN_REQUEST: 409,
    Fault.API_BODY_TOO_LARGE: 413,
    Fault.STORE_UNAVAILABLE: 503,
    Fault.JOURNAL_UNAVAILABLE: 503,
    Fault.BROKER_UNAVAILABLE: 503,
    Refusal.ADAPTER_UNAVAILABLE: 503,
    Fault.NODE_FAILED: 503,
}
_UNPROCESSABLE: Final = ("api.invalid", "staff.", "directory.", "report.")
_MEDIA: Final = {"html": "text/html; charset=utf-8", "text": "text/plain; charset=utf-8"}
_RENDERED: Final[dict[int | str, dict[str, Any]]] = {
    200: {"content": {media: {} for media in _MEDIA.values()}}
}


def status_of(code: str) -> int:
    """The HTTP status of a refusal code: 4xx the client's, 503 a dependency away."""
    if code in _STATUS:
        return _STATUS[code]
    if code.startswith(_UNPROCESSABLE):
        return 422
    return 400


def problem(code: str, message: str, status: int | None = None) -> JSONResponse:
    status = status or status_of(code)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


_bearer = HTTPBearer(auto_error=False, description="A client token of this node.")


def create_app(node: Node, tokens: ApiTokens, *, desk: bool = True) -> FastAPI:
    """The API over ``node``, its clients authenticated by ``tokens``; ``desk``: with the
    desk's pages under ``/desk`` (see :mod:`gateway.api.desk`)."""
    app = FastAPI(
        title="CPAS Dossier Gateway — node API",
        version=__version__,
        description=(
            "The local API of one CPAS's gateway node, for the CPAS's own software: start "
            "transfers and requests, decide held requests, follow messages, read a person's "
            "report. Every action names the acting social worker by an opaque staff reference."
        ),
        responses={401: {"model": models.Problem}, 403: {"model": models.Problem}},
        docs_url=None,
        redoc_url=None,
    )
    _install_error_handlers(app)

    def client_with(scope: str) -> Any:
        def authenticated(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> Client:
            client = tokens.authenticate(None if credentials is None else credentials.credentials)
            if scope not in client.scopes:
                raise GatewayError(
                    f"This client may not {SCOPES[scope]} (right {scope!r} not granted).",
                    code=Fault.API_FORBIDDEN,
                )
            return client

        return Depends(authenticated)

    exchange, decide, report, monitor = (client_with(s) for s in SCOPES)

    @app.post(
        "/v1/transfers",
        status_code=202,
        response_model=models.Accepted,
        tags=["exchanges"],
        dependencies=[exchange],
    )
    def start_transfer(body: models.TransferIn) -> models.Accepted:
        """Send a person's dossier, as the vendor system holds it now, to the new CPAS."""
        staff, number = _acting_on(body)
        sent = node.send_transfer(
            number, body.recipient, body.purpose, case_reference=body.case_reference, staff=staff
        )
        return _accepted(sent)

    @app.post(
        "/v1/transfers/preview",
        tags=["exchanges"],
        dependencies=[report],
        response_class=Response,
        responses=_RENDERED,
    )
    def preview_transfer(body: models.TransferPreviewIn) -> Response:
        """The dossier a transfer would carry, in the person's language, to show them first."""
        staff, number = _acting_on(body)
        dossier = node.preview_transfer(number, body.recipient, body.purpose, staff=staff)
        return _preview(node, dossier, body.recipient, body.format, body.language)

    @app.post(
        "/v1/requests",
        status_code=202,
        response_model=models.Accepted,
        tags=["exchanges"],
        dependencies=[exchange],
    )
    def start_request(body: models.RequestIn) -> models.Accepted:
        """Ask the CPAS that holds a person's dossier for it; follow it with the message state."""
        staff, number = _acting_on(body)
        sent = node.send_request(
            number, body.holder, body.purpose, body.case_reference, staff=staff
        )
        return _accepted(sent)

    @app.get(
        "/v1/messages/{message_id}",
        response_model=models.MessageState,
        tags=["exchanges"],
        dependencies=[exchange],
    )
    def message_state(message_id: uuid.UUID, lang: models.Language = "fr") -> models.MessageState:
        """What became of a message this node sent or received."""
        return _message_state(node, str(message_id), lang)

    @app.get(
        "/v1/held",
        response_model=list[models.HeldRequestOut],
        tags=["held requests"],
        dependencies=[decide],
    )
    def held_requests() -> list[models.HeldRequestOut]:
        """Requests of other CPAS waiting for this CPAS's social workers, oldest first."""
        return [held_out(node, view.request, view.person_number) for view in node.held_requests()]

    @app.post(
        "/v1/held/{request_id}/preview",
        tags=["held requests"],
        dependencies=[decide],
        response_class=Response,
        responses=_RENDERED,
    )
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
        return _preview(node, dossier, held.sender, body.format, body.language)

    @app.post(
        "/v1/held/{request_id}/release",
        response_model=models.Decision,
        tags=["held requests"],
        dependencies=[decide],
    )
    def release(request_id: uuid.UUID, body: models.ReleaseIn) -> models.Decision:
        """Release a held request (under a two-person hold, one of two distinct releases)."""
        return release_as(node, str(request_id), staff_reference(body.staff_reference))

    @app.post(
        "/v1/held/{request_id}/refuse",
        response_model=models.Decision,
        tags=["held requests"],
        dependencies=[decide],
    )
    def refuse(request_id: uuid.UUID, body: models.RefuseIn) -> models.Decision:
        """Refuse a held request, with a ground from the closed list."""
        return refuse_as(node, str(request_id), staff_reference(body.staff_reference), body.ground)

    @app.post(
        "/v1/reports",
        tags=["person"],
        dependencies=[report],
        response_class=Response,
        responses={200: {"content": {m: {} for m in (*_MEDIA.values(), "application/json")}}},
    )
    def person_report(body: models.ReportIn) -> Response:
        """The person's own report: every exchange about them and who acted, in their language."""
        text, media = report_for(node, body.person_number, body.language, body.format)
        return Response(text, media_type=media)

    @app.get(
        "/v1/cases/{case_reference}/exchanges",
        response_model=list[models.Exchange],
        tags=["exchanges"],
        dependencies=[exchange],
    )
    def case_exchanges(
        case_reference: Annotated[str, PathParameter(pattern=OPAQUE_REFERENCE)],
        lang: models.Language = "fr",
    ) -> list[models.Exchange]:
        """Every exchange this node journaled under a case reference, oldest first: who sent
        what to whom, what came of it, and which social worker acted (never the dossier)."""
        return case_exchanges_of(node, case_reference, lang)

    @app.get("/v1/health", tags=["operations"], dependencies=[monitor])
    def health() -> JSONResponse:
        """Broker, store, adapter, directory edition and key validity; 503 unless all is well."""
        state = _health(node)
        return JSONResponse(state, status_code=200 if state["status"] == "ok" else 503)

    @app.get(
        "/metrics", tags=["operations"], dependencies=[monitor], response_class=PlainTextResponse
    )
    def metrics() -> Response:
        """Prometheus text format: messages by type and outcome, dead letters, held requests,
        import latency, outbox depth."""
        body, media = metrics_text(node)
        return Response(body, media_type=media)

    if desk:
        from gateway.api.desk import desk_router

        app.include_router(desk_router(node, tokens))
    return app


# ------------------------------------------------------------ operations (also the desk's)


def _preview(node: Node, dossier: Dossier, recipient: str, fmt: str, lang: str | None) -> Response:
    text = render_preview(
        dossier, node.directory, cpas_id=node.cpas_id, recipient=recipient, fmt=fmt, lang=lang
    )
    return Response(text, media_type=_MEDIA[fmt])


def _acting_on(body: Any) -> tuple[StaffReference, str]:
    """The body's staff reference and person number, checked (the social worker first: an
    action that names none is refused before anything else is looked at)."""
    staff = staff_reference(body.staff_reference)
    _, number = validate_person_number(body.person_number)
    return staff, number


def _accepted(sent: Sent) -> models.Accepted:
    return models.Accepted(message_id=sent.message_id, recipient=sent.recipient, state="published")


def release_as(node: Node, request_id: str, staff: StaffReference) -> models.Decision:
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
    sent = node.refuse_held(request_id, staff=staff, ground=ground)
    return models.Decision(
        request_id=request_id, state=HeldState.REFUSED, response_id=sent.message_id
    )


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
    return render(built, fmt), _MEDIA.get(fmt, "application/json")


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


def held_out(node: Node, held: Any, person_number: str) -> models.HeldRequestOut:
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


def _health(node: Node) -> dict[str, Any]:
    overall = node.health()
    store = "ok"
    try:
        node.store.ping()
        if node.journal is not None:
            node.journal.ping()
    except GatewayError as exc:
        store = exc.code
    now = dt.datetime.now(dt.UTC)
    me = node.directory.get(node.cpas_id)

    def valid_until(keys: list[Any]) -> str | None:
        valid = [k.valid_until for k in keys if k.valid_from <= now < k.valid_until]
        return None if not valid else max(valid).isoformat(timespec="seconds")

    signing = None if me is None else valid_until(me.signing_keys)
    encryption = None if me is None else valid_until(me.encryption_keys)
    keys_ok = signing is not None and encryption is not None
    ok = overall.ok and store == "ok" and keys_ok
    return {
        "status": "ok" if ok else "degraded",
        "node": overall.status,
        "detail": overall.detail,
        "broker": "ok" if node.broker.is_ready else "unavailable",
        "store": store,
        "adapter": {
            "name": node.adapter.info.name,
            "status": "unavailable" if overall.status == "vendor system unavailable" else "ok",
        },
        "directory": {
            "serial": node.directory.serial,
            "issued_at": node.directory.issued_at.isoformat(timespec="seconds"),
        },
        "keys": {
            "valid": keys_ok,
            "signing_valid_until": signing,
            "encryption_valid_until": encryption,
        },
        "held_requests": len(node.store.held()),
    }


# ------------------------------------------------------------ refusals


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def refused(request: Request, exc: GatewayError) -> JSONResponse:
        # A number with wrong check digits is bad input, whatever its own code.
        status = 422 if isinstance(exc, IdentifierInvalid) else None
        return problem(exc.code, exc.message, status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(Fault.API_MALFORMED, "The body is not valid JSON.", 400)
        # Where and what, never the value: it may be a national number.
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        what = str(first.get("msg", "invalid"))
        return problem(Fault.API_INVALID, f"{where or 'body'}: {what}.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, GatewayError):  # raised while the body was read
            return problem(exc.__cause__.code, exc.__cause__.message)
        if exc.status_code == 404:
            return problem(Fault.API_NOT_FOUND, "There is no such operation.", 404)
        if exc.status_code == 405:
            return problem(Fault.API_METHOD, "This operation does not take that method.", 405)
        return problem(Fault.API_ERROR, str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("the API failed on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(Fault.API_INTERNAL, "The node could not do this; its log says why.", 500)


# ------------------------------------------------------------ body size

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(GatewayError):
    """A body streamed past the limit (one announced too large never reaches the app)."""

    code = Fault.API_BODY_TOO_LARGE


def guarded(app: Asgi, max_body_bytes: int = DEFAULT_MAX_BODY) -> Asgi:
    """``app`` behind a body-size limit: larger bodies get 413 ``api.body_too_large``,
    whether announced (Content-Length) or streamed (chunked), before the app acts."""

    async def refuse(send: Send) -> None:
        body = json.dumps(
            {
                "code": Fault.API_BODY_TOO_LARGE,
                "message": f"The body is larger than {max_body_bytes} bytes.",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            await refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body_bytes:
                    raise BodyTooLarge(f"The body is larger than {max_body_bytes} bytes.")
            return message

        await app(scope, counting_receive, send)

    return limited
