"""``cpas-gateway send``: push one person's dossier to another CPAS."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.progress import Progress

from gateway.cli.bulk_send import (
    CONFIRM_WAIT_SECONDS,
    report_sent,
    send_in_parallel,
    send_share,
    share_argument,
)
from gateway.cli.staff import add_staff_argument, staff_from
from gateway.cli.style import CONFIG
from gateway.cli.workers import worker_count
from gateway.config import NodeConfig
from gateway.model.codes import Outcome
from gateway.model.envelope import Purpose
from gateway.model.errors import StoreUnavailable
from gateway.node import STORE_WAIT_SECONDS, Node, build_node


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "send", parents=[CONFIG], help="send a transfer from a node's configuration"
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--niss", help="NISS or BIS number of the person")
    who.add_argument(
        "--all",
        action="store_true",
        help="every person of the vendor system (resumable: what was sent is skipped)",
    )
    parser.add_argument("--to", required=True, help="enterprise number of the receiving CPAS")
    parser.add_argument(
        "--purpose", required=True, choices=[p.value for p in Purpose], help="the legal mission"
    )
    parser.add_argument("--case", help="case reference (default: the vendor's own)")
    add_staff_argument(parser)
    parser.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for the receipt (0: don't)"
    )
    parser.add_argument(
        "--store-wait",
        type=float,
        default=STORE_WAIT_SECONDS,
        help="with --all: seconds to wait for a store that cannot be written before stopping",
    )
    parser.add_argument(
        "--workers",
        type=worker_count,
        metavar="N",
        help="with --all: N processes side by side, each sending a share of the people "
        "(default 1; more than the machine's cores gains nothing)",
    )
    # What --workers gives each of its child processes.
    parser.add_argument("--share", type=share_argument, help=argparse.SUPPRESS)
    parser.add_argument("--json-progress", action="store_true", help=argparse.SUPPRESS)

    def checked_run(args: argparse.Namespace) -> int:
        if args.workers is not None and not args.all:
            parser.error("--workers goes with --all")
        return run(args)

    parser.set_defaults(func=checked_run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    if args.all and args.json_progress:
        return send_share(build_node(NodeConfig.load(args.config), consume=False), args)
    if args.all and (args.workers or 1) > 1:
        return send_in_parallel(args, console)
    node = build_node(NodeConfig.load(args.config))
    if args.all:
        return _send_all(node, args, console)
    with node:
        sent = node.send_transfer(
            args.niss,
            args.to,
            Purpose(args.purpose),
            case_reference=args.case,
            staff=staff_from(args),
        )
        sent.confirmed.result(timeout=30)
        console.print(f"sent {sent.message_id} to {sent.recipient}: the broker holds it")
        if args.wait <= 0:
            return 0
        entry = node.wait_for_outcomes([sent.message_id], args.wait).get(sent.message_id)
    if entry is None or entry.outcome is None:
        console.print(f"no receipt yet after {args.wait:.0f} s; `cpas-gateway run` will record it")
        return 0
    if entry.outcome == Outcome.IMPORTED:
        console.print(f"receipt: imported by {sent.recipient}")
        return 0
    console.print(f"receipt: rejected by {sent.recipient} [{entry.outcome_code}]")
    return 1


def _send_all(node: Node, args: argparse.Namespace, console: Console) -> int:
    with node, Progress(console=console) as progress:
        task = progress.add_task(f"Transferring to {args.to}", total=None)
        try:
            sent = node.send_all(
                args.to,
                Purpose(args.purpose),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                store_wait=args.store_wait,
                share=args.share or (0, 1),
            )
        except StoreUnavailable as exc:
            # Nothing is half-written: what the outbox holds goes out (the
            # running node publishes it), the rest is sent by the next run.
            progress.stop()
            console.print(f"the bulk send stopped: {exc.message}", markup=False)
            console.print(
                "Every dossier recorded so far is safe and will be delivered. Once the store "
                "can be written again, run the same command: it sends only what is missing."
            )
            return 1
        # The outbox, not the first attempt, says what the broker holds: a
        # message whose first publish was lost goes out again on reconnection.
        unconfirmed = len(node.wait_confirmed(sent, timeout=CONFIRM_WAIT_SECONDS))
        return report_sent(node, args, console, sent, unconfirmed)
