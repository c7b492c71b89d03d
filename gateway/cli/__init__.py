"""The ``cpas-gateway`` command line.

Each sub-command lives in its own module exposing ``register(subparsers)``;
this module only wires them together, sets up logging and turns project
errors into one clear line, ``cpas-gateway: error: [code] message``, never a
traceback. Exit statuses (shared with ``cpas-conformance``, see
:mod:`gateway.cli.style`): 0 done, 1 the answer is no or what was asked
failed, 2 what was asked cannot be run, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.cli.style import (
    EXIT_INTERRUPTED,
    EXIT_NO,
    EXIT_USAGE,
    UsageError,
    print_error,
)
from gateway.logs import configure_logging
from gateway.model.errors import GatewayError

PROG = "cpas-gateway"

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
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
    except UsageError as exc:
        print_error(PROG, exc)
        return EXIT_USAGE
    except GatewayError as exc:
        print_error(PROG, exc)
        return EXIT_NO
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
