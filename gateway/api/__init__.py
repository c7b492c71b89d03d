"""The node's local API for the CPAS's own software (HTTP + JSON, OpenAPI 3).

- :mod:`gateway.api.app` -- the application, built from one router per subject:
  :mod:`~gateway.api.exchanges` (transfers, requests, the state of a message),
  :mod:`~gateway.api.held` (held requests), :mod:`~gateway.api.reports` (a
  person's report, a case's exchanges), :mod:`~gateway.api.operations`
  (health, metrics);
- :mod:`gateway.api.auth` -- client tokens and the right each route needs;
- :mod:`gateway.api.problems` -- every refusal a JSON problem with its HTTP status;
- :mod:`gateway.api.body_limit` -- the body-size limit around the whole application;
- :mod:`gateway.api.tokens` -- client applications and their hashed tokens;
- :mod:`gateway.api.metrics` -- the Prometheus text format;
- :mod:`gateway.api.server` -- uvicorn in a thread of ``cpas-gateway run``;
- :mod:`gateway.api.desk` -- the desk, web pages for held requests.

:func:`serve` is what ``run`` calls; ``cpas-gateway api spec`` prints
:func:`openapi_document` without a node. See docs/api.md.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.api.app import create_app
from gateway.api.body_limit import guarded
from gateway.api.server import ApiServer
from gateway.api.tokens import ApiTokens
from gateway.config import ApiConfig
from gateway.node import Node

__all__ = ["ApiServer", "ApiTokens", "create_app", "openapi_document", "serve"]


def serve(node: Node, config: ApiConfig) -> ApiServer:
    """Start serving the API of a started ``node`` as ``config`` says."""
    tokens = ApiTokens(node.store.url, node.cpas_id)
    app = create_app(node, tokens)
    return ApiServer(guarded(app, config.max_body_bytes), config).start()


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3 document, built without a node."""
    # The routes only, never called; the desk's pages are not part of the document.
    app = create_app(None, None, desk=False)  # type: ignore[arg-type]
    return app.openapi()


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
