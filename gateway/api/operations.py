"""Operations: the node's health (503 unless all is well) and its Prometheus metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from gateway.api.auth import Rights
from gateway.api.metrics import metrics_text
from gateway.model.errors import GatewayError
from gateway.node import Node


def operations_router(node: Node, rights: Rights) -> APIRouter:
    """The routes a monitoring system reads."""
    router = APIRouter(tags=["operations"], dependencies=[rights.monitor])

    @router.get("/v1/health")
    def health() -> JSONResponse:
        """Broker, store, adapter, directory edition and key validity; 503 unless all is well."""
        state = health_of(node)
        return JSONResponse(state, status_code=200 if state["status"] == "ok" else 503)

    @router.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus text format: messages by type and outcome, dead letters, held requests,
        import latency, outbox depth."""
        body, media = metrics_text(node)
        return Response(body, media_type=media)

    return router


def health_of(node: Node) -> dict[str, Any]:
    """The node's health as ``/v1/health`` answers it."""
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
