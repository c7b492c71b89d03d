"""``--option KEY=VALUE``: adapter options on the command line, for the commands that need them."""

from __future__ import annotations

import argparse

from gateway.cli.style import UsageError


def add_option_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Add a repeatable ``--option KEY=VALUE`` to ``parser``."""
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help=help)


def options_from(args: argparse.Namespace) -> dict[str, str]:
    """The ``--option`` pairs as a dictionary; :class:`UsageError` for one without ``=``."""
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {item!r} is not KEY=VALUE.")
        options[key] = value
    return options
