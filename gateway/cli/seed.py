"""``cpas-gateway seed``: fill a vendor system with synthetic beneficiaries."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from gateway.adapters import Seedable, load_adapters
from gateway.cli.options import add_option_argument, options_from
from gateway.model.errors import ConfigError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "seed", help="fill a vendor system with synthetic beneficiaries (for demos and tests)"
    )
    parser.add_argument("--adapter", required=True, help="installed adapter name")
    parser.add_argument("--cpas", required=True, help="enterprise number of the CPAS")
    parser.add_argument("--count", type=int, default=100, help="how many people")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same people)")
    add_option_argument(
        parser, "adapter option, e.g. url=sqlite:///vendor.sqlite3 or folder=./fiches"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    adapter = load_adapters().create(args.adapter, args.cpas, options_from(args))
    try:
        if not isinstance(adapter, Seedable):
            raise ConfigError(f"The adapter {args.adapter!r} cannot seed synthetic people.")
        numbers = adapter.seed(args.count, seed=args.seed)
    finally:
        adapter.close()
    Console(highlight=False).print(f"seeded {len(numbers)} synthetic people into {args.adapter}")
    return 0
