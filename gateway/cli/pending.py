"""``cpas-gateway pending list|release|refuse``: the social worker's desk for held requests."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.config import NodeConfig
from gateway.node import Node, build_node


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("pending", help="requests held for a social worker's decision")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="show the requests waiting for a decision")
    listing.add_argument("--config", type=Path, required=True)
    listing.set_defaults(func=run_list)
    for name, helptext in (
        ("release", "answer with the dossier"),
        ("refuse", "answer with a refusal"),
    ):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("--config", type=Path, required=True)
        action.add_argument("request_id", help="the message id shown by `pending list`")
        action.set_defaults(func=run_decision, decision=name)


def _node(args: argparse.Namespace) -> Node:
    # Beside a running node: publish only, never take deliveries from its inbox.
    return build_node(NodeConfig.load(args.config), consume=False)


def run_list(args: argparse.Namespace) -> int:
    node = _node(args)
    table = Table(title="Requests held for a social worker's decision")
    for column in ("request id", "from", "purpose", "case", "person", "received", "expires"):
        table.add_column(column)
    for view in node.held_requests():
        held = view.request
        sender = node.directory.get(held.sender)
        table.add_row(
            held.message_id,
            sender.label if sender else held.sender,
            held.purpose,
            held.case_reference,
            view.person_number,
            held.received_at[:19],
            held.expires_at,
        )
    Console(highlight=False).print(table)
    return 0


def run_decision(args: argparse.Namespace) -> int:
    node = _node(args)
    with node:
        action = node.release if args.decision == "release" else node.refuse_held
        sent = action(args.request_id)
        sent.confirmed.result(timeout=30)
    Console(highlight=False).print(
        f"{args.decision}d: response {sent.message_id} sent to {sent.recipient}"
    )
    return 0
