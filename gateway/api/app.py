"""The node's local API: HTTP + JSON for the vendor's software (see docs/api.md).

:func:`create_app` builds the FastAPI application over a running
:class:`~gateway.node.Node` from one router per subject
(:mod:`~gateway.api.exchanges`, :mod:`~gateway.api.held`,
:mod:`~gateway.api.reports`, :mod:`~gateway.api.operations`) and the desk's
pages; :func:`~gateway.api.body_limit.guarded` wraps it with the body-size
limit, outermost, so an oversized body is refused before anything reads it.

Every call but the OpenAPI document needs a client token
(``Authorization: Bearer …``) with the right for it (:mod:`~gateway.api.auth`).
Every refusal is a JSON :class:`~gateway.api.models.Problem`
(:mod:`~gateway.api.problems`): the same stable codes as the command line,
an HTTP status that says whose fault it is, never a traceback.
"""

from __future__ import annotations

from fastapi import FastAPI

from gateway import __version__
from gateway.api import models
from gateway.api.auth import rights
from gateway.api.exchanges import exchanges_router
from gateway.api.held import held_router
from gateway.api.operations import operations_router
from gateway.api.problems import install_error_handlers
from gateway.api.reports import reports_router
from gateway.api.tokens import ApiTokens
from gateway.node import Node


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
    install_error_handlers(app)
    needs = rights(tokens)
    for router in (exchanges_router, held_router, reports_router, operations_router):
        app.include_router(router(node, needs))
    if desk:
        from gateway.api.desk import desk_router

        app.include_router(desk_router(node, tokens))
    return app
