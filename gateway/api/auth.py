"""Who calls: a client token (``Authorization: Bearer …``) with the right for the operation.

:func:`rights` turns the node's :class:`~gateway.api.tokens.ApiTokens` into
one FastAPI dependency per right (:data:`~gateway.api.tokens.SCOPES`); each
route names the one it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.tokens import SCOPES, ApiTokens, Client
from gateway.model.codes import Fault
from gateway.model.errors import GatewayError

_bearer = HTTPBearer(auto_error=False, description="A client token of this node.")


@dataclass(frozen=True)
class Rights:
    """One dependency per right: a route lists the one it needs in ``dependencies``."""

    exchange: Any
    decide: Any
    report: Any
    monitor: Any


def client_with(tokens: ApiTokens, scope: str) -> Any:
    """A dependency that authenticates the caller and requires ``scope``."""

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


def rights(tokens: ApiTokens) -> Rights:
    return Rights(**{scope: client_with(tokens, scope) for scope in SCOPES})
