"""``cpas-gateway demo``: two nodes, two vendors, dossiers moving both ways."""

from __future__ import annotations

import argparse
import tempfile
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
    parser.add_argument(
        "--tls",
        action="store_true",
        help="start a private RabbitMQ node with mutual TLS (generated certificates) and use it",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    console = Console()
    if not args.tls:
        url = amqp_url_from_env()
        return run_demo(url, count=args.count, workdir=args.workdir, console=console)

    from gateway.demo_tls import private_tls_broker

    root = args.workdir or Path(tempfile.mkdtemp(prefix="cpas-demo-tls-"))
    with private_tls_broker(root / "broker", console) as (url, tls):
        return run_demo(url, count=args.count, workdir=root, console=console, tls=tls)
