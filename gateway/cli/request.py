"""``cpas-gateway request``: ask a named old CPAS for a person's dossier."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from rich.console import Console

from gateway.cli.staff import add_staff_argument, staff_from
from gateway.cli.style import CONFIG
from gateway.config import NodeConfig
from gateway.model.codes import Outcome
from gateway.model.envelope import Purpose
from gateway.node import build_node

EXIT_REFUSED, EXIT_NO_ANSWER = 1, 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "request", parents=[CONFIG], help="ask another CPAS for a person's dossier"
    )
    parser.add_argument("--niss", required=True, help="NISS or BIS number of the person")
    parser.add_argument(
        "--from", dest="source", required=True, help="enterprise number of the CPAS asked"
    )
    parser.add_argument("--purpose", required=True, choices=[p.value for p in Purpose])
    parser.add_argument("--case", required=True, help="this CPAS's case reference")
    add_staff_argument(parser)
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the answer")
    parser.add_argument(
        "--ttl", type=float, help="seconds before the request expires (default: config)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    node = build_node(NodeConfig.load(args.config))
    ttl = None if args.ttl is None else dt.timedelta(seconds=args.ttl)
    with node:
        sent = node.send_request(
            args.niss,
            args.source,
            Purpose(args.purpose),
            args.case,
            ttl=ttl,
            staff=staff_from(args),
        )
        sent.confirmed.result(timeout=30)
        console.print(f"request {sent.message_id} sent to {args.source}")
        entry = node.wait_for_outcomes([sent.message_id], args.wait).get(sent.message_id)
    outcome = entry.outcome if entry else None
    expires = entry.expires_at if entry else "?"
    if outcome == Outcome.ANSWERED:
        console.print("answered: the dossier was imported into this CPAS's vendor system")
        return 0
    if outcome == Outcome.AWAITING_RELEASE:
        console.print(
            f"held by {args.source} for a social worker's decision; the answer will arrive "
            f"before the request expires ({expires})"
        )
        return EXIT_NO_ANSWER
    if outcome is None:
        console.print(f"no answer within {args.wait:.0f} s; the request expires at {expires}")
        return EXIT_NO_ANSWER
    console.print(f"{outcome}: [{entry.outcome_code if entry else ''}]", markup=False)
    return EXIT_REFUSED
