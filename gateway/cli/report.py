"""``cpas-gateway report``: the person's own report, from a node's journal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.cli.style import CONFIG
from gateway.config import NodeConfig
from gateway.journal import JournalSettings
from gateway.model.directory import Directory, load_directory_file
from gateway.report import FORMATS, LANGUAGES, build_report, render


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        parents=[CONFIG],
        help="the report for one person: every exchange about them, in FR, NL or DE",
        description=(
            "Write the person's report from this node's journal: which CPAS sent or received "
            "what about them, when, why, whether it was imported, the dossier as it was sent, "
            "and the refused attempts. The journal is verified first and the result is stated "
            "in the report."
        ),
    )
    parser.add_argument("--niss", required=True, help="NISS or BIS number of the person")
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        help="language of the report (default: the person's own, from their dossier)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="text, html (one printable page), json"
    )
    parser.add_argument("--out", type=Path, help="write to this file instead of the terminal")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = NodeConfig.load(args.config)
    directory = load_verified_directory(config)
    with JournalSettings.from_config(config).open(create_secret=False) as journal:
        verified = journal.verify()
        report = build_report(
            journal,
            directory,
            cpas_id=config.cpas_id,
            person_number=args.niss,
            lang=args.lang,
            verified=verified,
        )
    text = render(report, args.format)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    Console(stderr=True, highlight=False).print(
        f"wrote the report ({report.lang}, {len(report.exchanges)} exchanges) to {args.out}",
        markup=False,
    )
    return 0


def load_verified_directory(config: NodeConfig) -> Directory:
    """The node's directory, checked against its trust anchor (as the node itself does)."""
    return load_directory_file(config.directory, config.trust_anchor)
