"""``cpas-gateway backup`` and ``cpas-gateway restore``: a node's keys, state and journal.

``backup --config node.toml --to DIR`` copies, while the node runs, what the
node cannot be rebuilt without (see :mod:`gateway.backup`); ``restore --from
DIR`` puts it back where it was, never over existing files.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.backup import backup_node, restore_node
from gateway.cli.style import CONFIG


def register(subparsers: Any) -> None:
    backup = subparsers.add_parser(
        "backup",
        parents=[CONFIG],
        help="copy a node's keys, store, journal, secret and directory into a folder",
    )
    backup.add_argument("--to", type=Path, required=True, metavar="DIR", help="a new folder")
    backup.set_defaults(func=run_backup)
    restore = subparsers.add_parser(
        "restore", help="put a node's backup back where it came from (never over existing files)"
    )
    restore.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR")
    restore.set_defaults(func=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    report = backup_node(args.config, args.to)
    console = Console(highlight=False)
    for name, origin in report.pieces.items():
        console.print(f"  {name:<18} from {origin}", markup=False, soft_wrap=True)
    console.print(
        f"backup written to {report.folder}: keep it as safe as the keys it holds", soft_wrap=True
    )
    return 0


def run_restore(args: argparse.Namespace) -> int:
    pieces = restore_node(args.source)
    console = Console(highlight=False)
    for name, origin in pieces.items():
        console.print(f"  {name:<18} to {origin}", markup=False, soft_wrap=True)
    console.print("restored: run `cpas-gateway check` then start the node")
    return 0
