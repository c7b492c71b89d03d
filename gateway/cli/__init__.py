"""The ``cpas-gateway`` command line.

Each sub-command lives in its own module exposing ``register(subparsers)``;
this module only wires them together, sets up logging and turns project
errors into one clear line and exit code 1 -- never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from rich.console import Console

from gateway import __version__
from gateway.errors import GatewayError
from gateway.logs import configure_logging

# Modules under gateway.cli that add sub-commands, in the order of --help.
COMMAND_MODULES = (
    "validate",
    "keys",
    "directory",
    "seed",
    "check",
    "migrate",
    "backup",
    "run",
    "send",
    "request",
    "pending",
    "broker",
    "dead_letters",
    "report",
    "journal",
    "demo",
    "adapter",
    "api",
)

err_console = Console(stderr=True, highlight=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cpas-gateway",
        description="Move a minimal, signed and encrypted social dossier between CPAS.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"gateway.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"gateway.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(level=logging.WARNING - 10 * min(args.verbose, 2))
    try:
        return int(args.func(args) or 0)
    except GatewayError as exc:
        err_console.print(f"error: {exc}", markup=False)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
