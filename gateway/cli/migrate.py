"""``cpas-gateway migrate --config FILE``: the node's store and journal to this release's schema.

A node migrates at start too; this command does it beforehand (after an
upgrade, before starting the service) and says what it did. Safe to run
again: a database already at this release's version is left as it is.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from gateway import journal, store
from gateway.cli.style import CONFIG
from gateway.config import NodeConfig
from gateway.database import migrate_database
from gateway.journal import JournalSettings
from gateway.migrations import MigrationReport, Schema
from gateway.ownership import printable


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate",
        parents=[CONFIG],
        help="bring the node's store and journal to this release's schema",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    config = NodeConfig.load(args.config)
    # The schema only: no secret is read or made, no row is written but the version.
    _migrate(console, config.store, store.SCHEMA)
    _migrate(console, JournalSettings.from_config(config).url, journal.SCHEMA)
    return 0


def _migrate(console: Console, url: str, schema: Schema) -> None:
    _show(console, printable(url), migrate_database(url, schema))


def _show(console: Console, where: str, report: MigrationReport) -> None:
    name = report.component
    if not report.changed:
        console.print(f"{name} {where}: at schema version {report.after}, nothing to do")
        return
    start = "new" if report.before == 0 else f"schema version {report.before}"
    steps = "; ".join(f"{m.version}: {m.description}" for m in report.applied)
    console.print(f"{name} {where}: {start} -> schema version {report.after} ({steps})")
