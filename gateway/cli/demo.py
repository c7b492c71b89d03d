"""``cpas-gateway demo``: two nodes, two vendors, dossiers moving both ways."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.config import amqp_url_from_env


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="move dossiers between two vendors through the local broker"
    )
    parser.add_argument("--count", type=int, default=20, help="people seeded on each side")
    parser.add_argument(
        "--workdir", type=Path, help="keep everything here (default: a temp folder)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(amqp_url_from_env(), count=args.count, workdir=args.workdir, console=Console())
