"""``cpas-gateway journal``: verify, read and purge a node's journal."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from gateway.cli.style import CONFIG
from gateway.config import NodeConfig
from gateway.journal import ContentState, Journal, JournalSettings

BELGIAN_TIME = ZoneInfo("Europe/Brussels")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "journal", help="verify, read and purge this node's tamper-evident journal"
    )
    commands = parser.add_subparsers(dest="journal_command", required=True, metavar="ACTION")

    verify = commands.add_parser(
        "verify",
        parents=[CONFIG],
        help="check the hash chain: exit 0 when intact, 1 with the first broken entry",
    )
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="N:SEAL",
        type=_anchor,
        help="a head printed by an earlier verify and kept away from this host (repeatable)",
    )
    verify.add_argument(
        "--no-witness",
        action="store_true",
        help="this journal never had a head witness file: its absence is not an error",
    )
    tail = commands.add_parser(
        "tail", parents=[CONFIG], help="the last entries (no person numbers, no content)"
    )
    tail.add_argument("-n", type=int, default=20, help="how many entries (default 20)")
    summary = commands.add_parser(
        "summary", parents=[CONFIG], help="counts by message type, event and refusal code"
    )
    purge = commands.add_parser(
        "purge",
        parents=[CONFIG],
        help="destroy the content keys past retention (the chain stays verifiable)",
    )
    for sub, func in ((verify, _verify), (tail, _tail), (summary, _summary), (purge, _purge)):
        sub.set_defaults(func=func)


def _open(args: argparse.Namespace) -> Journal:
    # A command never creates the secret: a new one would not match the journal.
    return JournalSettings.from_config(NodeConfig.load(args.config)).open(create_secret=False)


def _console() -> Console:
    return Console(highlight=False)


def _local(moment: dt.datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(BELGIAN_TIME):%Y-%m-%d %H:%M:%S}"


def _verify(args: argparse.Namespace) -> int:
    console = _console()
    with _open(args) as journal:
        result = journal.verify(anchors=dict(args.anchor), witness_expected=not args.no_witness)
    for warning in result.warnings:
        console.print(f"warning: {warning}", markup=False)
    if result.ok:
        console.print(f"chain intact, {result.entries} entries", markup=False)
        console.print(f"head: {result.entries}:{result.head}", markup=False)
        return 0
    where = "unknown" if result.broken_at is None else str(result.broken_at)
    console.print(f"chain BROKEN at entry {where}: {result.reason}", markup=False)
    console.print(f"{result.entries} entries before it are sound.", markup=False)
    return 1


def _anchor(value: str) -> tuple[int, str]:
    seq, _, seal = value.partition(":")
    if not seq.isdigit() or len(seal) != 64:
        raise argparse.ArgumentTypeError(f"{value!r} is not N:SEAL as `journal verify` prints it")
    return int(seq), seal.lower()


def _tail(args: argparse.Namespace) -> int:
    with _open(args) as journal:
        entries = journal.tail(args.n)
    table = Table(title=f"last {len(entries)} journal entries (Belgian time)")
    for column in ("#", "time", "event", "type", "peer", "purpose", "outcome", "code", "content"):
        # What identifies an entry stays on one line; the rest may wrap.
        table.add_column(
            column,
            justify="right" if column == "#" else "left",
            no_wrap=column in ("#", "time", "event", "type", "peer", "code"),
        )
    for entry in entries:
        table.add_row(
            str(entry.seq),
            _local(entry.at),
            entry.event,
            entry.message_type or "",
            entry.peer or "",
            entry.purpose or "",
            entry.outcome or "",
            entry.code or "",
            "" if entry.content_state is ContentState.NONE else entry.content_state.value,
        )
    _console().print(table)
    return 0


def _summary(args: argparse.Namespace) -> int:
    with _open(args) as journal:
        summary = journal.summary()
    console = _console()
    console.print(
        f"{summary.entries} entries, from {_local(summary.first_at) or '-'} "
        f"to {_local(summary.last_at) or '-'} (Belgian time)",
        markup=False,
    )
    events = Table(title="by event and message type")
    events.add_column("event")
    events.add_column("type")
    events.add_column("count", justify="right")
    for (event, message_type), count in sorted(summary.by_event.items()):
        events.add_row(event, message_type, str(count))
    console.print(events)
    codes = Table(title="refusals and rejections by code", min_width=40)
    codes.add_column("code")
    codes.add_column("count", justify="right")
    for code, count in summary.by_code.items():
        codes.add_row(code, str(count))
    console.print(codes)
    content = Table(title="dossier content")
    content.add_column("kept (readable)", justify="right")
    content.add_column("destroyed (past retention)", justify="right")
    content.add_row(str(summary.content_kept), str(summary.content_destroyed))
    console.print(content)
    return 0


def _purge(args: argparse.Namespace) -> int:
    with _open(args) as journal:
        destroyed = journal.destroy_expired()
        days = journal.retention.days
    _console().print(
        f"destroyed {destroyed} content keys past retention (content recorded from now on is "
        f"kept {days} days)",
        markup=False,
    )
    return 0
