"""``cpas-gateway demo``: two nodes, two vendors, dossiers moving both ways."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.cli.options import add_option_argument, options_from
from gateway.config import amqp_url_from_env
from gateway.model.errors import ConfigError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="move dossiers between two vendors through the local broker"
    )
    parser.add_argument("--count", type=int, default=20, help="people seeded on each side")
    parser.add_argument(
        "--workdir", type=Path, help="keep everything here (default: a temp folder)"
    )
    parser.add_argument(
        "--adapter",
        metavar="NAME",
        help="run Gent's node on this installed adapter (yours) instead of OCMWdata",
    )
    add_option_argument(parser, "option of --adapter's adapter; {workdir} is the node's own folder")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="start a private RabbitMQ node with mutual TLS (generated certificates) and use it",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    options = options_from(args)
    if options and not args.adapter:
        raise ConfigError("--option is for the adapter named by --adapter.")
    console = Console()
    settings: dict[str, Any] = {"adapter": args.adapter, "options": options}
    if not args.tls:
        return run_demo(
            amqp_url_from_env(), count=args.count, workdir=args.workdir, console=console, **settings
        )

    from gateway.demo_tls import private_tls_broker

    root = args.workdir or Path(tempfile.mkdtemp(prefix="cpas-demo-tls-"))
    with private_tls_broker(root / "broker", console) as (url, tls):
        return run_demo(url, count=args.count, workdir=root, console=console, tls=tls, **settings)
