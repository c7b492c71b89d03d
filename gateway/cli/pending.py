"""``cpas-gateway pending list|release|refuse``: the social worker's desk for held requests."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from gateway.cli.staff import add_staff_argument, staff_from
from gateway.cli.style import CONFIG
from gateway.config import NodeConfig
from gateway.model.codes import RefusalGround
from gateway.node import Node, build_node


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("pending", help="requests held for a social worker's decision")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", parents=[CONFIG], help="show the requests waiting for a decision"
    )
    listing.set_defaults(func=run_list)
    for name, helptext in (
        ("release", "answer with the dossier"),
        ("refuse", "answer with a refusal"),
    ):
        action = actions.add_parser(name, parents=[CONFIG], help=helptext)
        action.add_argument("request_id", help="the message id shown by `pending list`")
        add_staff_argument(action, " (required under a two-person hold)")
        if name == "refuse":
            action.add_argument(
                "--ground", choices=[g.value for g in RefusalGround], help="why (journaled)"
            )
        action.set_defaults(func=run_decision, decision=name)


def _node(args: argparse.Namespace) -> Node:
    # Beside a running node: publish only, never take deliveries from its inbox.
    return build_node(NodeConfig.load(args.config), consume=False)


def run_list(args: argparse.Namespace) -> int:
    node = _node(args)
    console = Console(highlight=False)
    views = node.held_requests()
    console.print(f"{len(views)} request(s) held for a social worker's decision")
    # One block per request rather than a table: ids and numbers stay whole,
    # ready to copy into `pending release` or the vendor system.
    for view in views:
        held = view.request
        sender = node.directory.get(held.sender)
        console.print(
            f"\nrequest {held.message_id}\n"
            f"  from     {sender.label if sender else held.sender}\n"
            f"  purpose  {held.purpose}, case {held.case_reference}\n"
            f"  person   {view.person_number}\n"
            f"  received {held.received_at[:19]}Z, expires {held.expires_at}",
            markup=False,
        )
    return 0


def run_decision(args: argparse.Namespace) -> int:
    staff = staff_from(args)
    node = _node(args)
    console = Console(highlight=False)
    with node:
        if args.decision == "release":
            sent = node.release(args.request_id, staff=staff)
        else:
            ground = None if args.ground is None else RefusalGround(args.ground)
            sent = node.refuse_held(args.request_id, staff=staff, ground=ground)
        if sent is None:
            console.print("released once: a second social worker must release it too")
            return 0
        sent.confirmed.result(timeout=30)
    console.print(f"{args.decision}d: response {sent.message_id} sent to {sent.recipient}")
    return 0
