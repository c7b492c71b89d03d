"""Two nodes on the real broker, each serving its local API over real HTTP on 127.0.0.1.

Gent (the old CPAS, relational vendor) holds the dossiers; its policy holds
requests for a new application (one social worker releases) and requests for
continuity after a move (two must); it answers the third purpose at once.
Liège (the new CPAS, file vendor) asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import GENT, LIEGE, NodeFactory

from gateway.api import ApiServer, ApiTokens, create_app, guarded
from gateway.config import ApiConfig
from gateway.model.envelope import Purpose
from gateway.node import Action, Node

HOLD = Purpose.NEW_APPLICATION_INQUIRY
TWO_PERSON = Purpose.CONTINUITY_AFTER_MOVE
AUTO = Purpose.COMPETENT_CPAS_DETERMINATION
MAX_BODY = 4_096


@dataclass
class NodeApi:
    """One node, its API server, and a client holding a token with every right."""

    node: Node
    server: ApiServer
    tokens: ApiTokens
    token: str
    http: httpx.Client

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if token != "":
            headers.setdefault("Authorization", f"Bearer {token or self.token}")
        return self.http.request(method, path, headers=headers, **kwargs)

    def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, json=body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, **kwargs)

    def state(self, message_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/messages/{message_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


def serve_api(node: Node) -> NodeApi:
    tokens = ApiTokens(node.store.url, node.cpas_id)
    _, token = tokens.create("test vendor")
    app = guarded(create_app(node, tokens), MAX_BODY)
    server = ApiServer(app, ApiConfig(listen="127.0.0.1:0", max_body_bytes=MAX_BODY)).start()
    http = httpx.Client(base_url=server.address, timeout=30)
    return NodeApi(node, server, tokens, token, http)


@dataclass
class Pair:
    gent: NodeApi
    liege: NodeApi
    number: str
    """A person whose dossier Gent's vendor system holds."""


@pytest.fixture
def pair(make_node: NodeFactory) -> Iterator[Pair]:
    gent_node = make_node(
        GENT,
        "ocmwdata",
        policy={HOLD: Action.HOLD, TWO_PERSON: Action.TWO_PERSON_HOLD},
    )
    liege_node = make_node(LIEGE, "fichesociale")
    (number,) = gent_node.adapter.seed(1, seed=14)  # type: ignore[attr-defined]
    apis = [serve_api(gent_node), serve_api(liege_node)]
    yield Pair(apis[0], apis[1], number)
    for api in apis:
        api.http.close()
        api.server.stop()
        api.tokens.close()


def until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def ask(pair: Pair, purpose: Purpose, staff: str = "LG-AS-0042") -> str:
    """Liège asks Gent for the person's dossier through its API; the request id."""
    response = pair.liege.post(
        "/v1/requests",
        {
            "person_number": pair.number,
            "holder": pair.gent.node.cpas_id,
            "purpose": purpose.value,
            "case_reference": "LG-2026-140",
            "staff_reference": staff,
        },
    )
    assert response.status_code == 202, response.text
    return str(response.json()["message_id"])


def transfer(pair: Pair) -> str:
    """Gent transfers the person's dossier to Liège through its API; the message id."""
    response = pair.gent.post(
        "/v1/transfers",
        {
            "person_number": pair.number,
            "recipient": pair.liege.node.cpas_id,
            "purpose": "continuity-after-move",
            "staff_reference": "GT-SW-117",
        },
    )
    assert response.status_code == 202, response.text
    return str(response.json()["message_id"])


def held_at_gent(pair: Pair, request_id: str) -> None:
    until(lambda: pair.liege.state(request_id)["state"] == "held")
