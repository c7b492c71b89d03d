"""``cpas-gateway api spec|token``: the node's local API, for the vendor's software.

``api spec`` prints the OpenAPI 3 document (no node needed); ``api token
create|revoke|list`` manage the client applications allowed to call it. A
token is shown once, at creation: the node keeps only its hash.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.api.tokens import SCOPES, ApiTokens
from gateway.cli.style import CONFIG
from gateway.config import NodeConfig
from gateway.model.codes import Fault


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("api", help="the node's local API: its document and clients")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    spec = actions.add_parser("spec", help="print the OpenAPI 3 document (JSON)")
    spec.set_defaults(func=run_spec)
    token = actions.add_parser("token", help="client applications and their tokens")
    tokens = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    create = tokens.add_parser(
        "create", parents=[CONFIG], help="a new client; its token is shown once"
    )
    create.add_argument("--name", required=True, help="the client application, e.g. 'Acme CPAS'")
    create.add_argument(
        "--scope",
        action="append",
        choices=sorted(SCOPES),
        help="a right of the client (repeatable; default: all). "
        + "; ".join(f"{k}: {v}" for k, v in SCOPES.items()),
    )
    create.set_defaults(func=run_create)
    revoke = tokens.add_parser(
        "revoke", parents=[CONFIG], help="refuse a client's token from now on"
    )
    revoke.add_argument("token_id", help="the id `api token list` shows")
    revoke.set_defaults(func=run_revoke)
    listing = tokens.add_parser(
        "list", parents=[CONFIG], help="the clients, their rights, revoked or not"
    )
    listing.set_defaults(func=run_list)


def run_spec(args: argparse.Namespace) -> int:
    from gateway.api import openapi_json

    sys.stdout.write(openapi_json())
    return 0


def _tokens(path: Path) -> ApiTokens:
    config = NodeConfig.load(path)
    return ApiTokens(config.store, config.cpas_id)


def run_create(args: argparse.Namespace) -> int:
    client, token = _tokens(args.config).create(args.name, args.scope)
    console = Console(highlight=False)
    console.print(
        f"client {client.name!r} (id {client.token_id}), rights: {', '.join(sorted(client.scopes))}"
    )
    console.print("token (shown once, keep it in the client's secret store):", markup=False)
    sys.stdout.write(token + "\n")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from gateway.model.errors import GatewayError

    if not _tokens(args.config).revoke(args.token_id):
        raise GatewayError(
            f"No active client has the id {args.token_id}.", code=Fault.API_NO_CLIENT
        )
    Console(highlight=False).print(f"revoked: {args.token_id}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    clients = _tokens(args.config).clients()
    console.print(f"{len(clients)} client(s)")
    for client in clients:
        state = "active" if client.active else f"revoked {client.revoked_at}"
        console.print(
            f"{client.token_id}  {client.name}  [{', '.join(sorted(client.scopes))}]  "
            f"created {client.created_at}, {state}",
            markup=False,
        )
    return 0
