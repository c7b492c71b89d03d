"""``cpas-gateway dead-letters list|requeue``: what this node refused, and sending it back."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.cli.style import CONFIG
from gateway.config import NodeConfig
from gateway.dead_letters import list_dead_letters, requeue_dead_letters
from gateway.node import build_node


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dead-letters", help="list or requeue this node's dead letters")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", parents=[CONFIG], help="show the dead letters and why they are there"
    )
    listing.set_defaults(func=run_list)
    requeue = actions.add_parser(
        "requeue", parents=[CONFIG], help="send dead letters back to the inbox"
    )
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument("message_ids", nargs="*", default=[], help="message ids to requeue")
    requeue.set_defaults(func=run_requeue)


def run_list(args: argparse.Namespace) -> int:
    node = build_node(NodeConfig.load(args.config), consume=False)
    letters = list_dead_letters(node)
    table = Table(title=f"Dead letters of {node.cpas_id}: {len(letters)}")
    for column in ("message id", "type", "sender", "code", "reason", "deaths"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            letter.message_id,
            letter.type or "?",
            letter.sender or "?",
            letter.code,
            letter.reason or "",
            str(letter.deaths),
        )
    Console(highlight=False).print(table)
    return 0


def run_requeue(args: argparse.Namespace) -> int:
    node = build_node(NodeConfig.load(args.config), consume=False)
    requeued = requeue_dead_letters(node, None if args.all else args.message_ids)
    Console(highlight=False).print(
        f"requeued {len(requeued)} dead letters to {node.cpas_id}'s inbox"
    )
    return 0
