"""Refusals as JSON problems: a stable code, a sentence, and the HTTP status of whose fault it is.

Every refusal of the API is a :class:`~gateway.api.models.Problem`: the same
codes as the command line, 4xx when the client must change something, 503
when a dependency of the node is away, never a traceback.
"""

from __future__ import annotations

import logging
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.model.codes import Fault, Refusal
from gateway.model.errors import GatewayError, IdentifierInvalid

log = logging.getLogger(__name__)

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


def install_error_handlers(app: FastAPI) -> None:
    """Make every refusal and failure of ``app`` a problem."""

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
