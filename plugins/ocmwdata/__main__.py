"""``python -m ocmwdata``: look after an OCMWdata database from the command line.

``seed`` fills it with synthetic beneficiaries (sensitive data included);
``count`` says how many clients it holds.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.model.errors import GatewayError
from ocmwdata.adapter import DEFAULT_URL, OcmwdataAdapter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ocmwdata", description="Look after an OCMWdata database."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("seed", "add synthetic beneficiaries"),
        ("count", "show how many clients the database holds"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--url", default=DEFAULT_URL, help=f"database (default {DEFAULT_URL})")
        command.add_argument("--schema", help="PostgreSQL schema")
        command.add_argument("--cpas", required=True, help="enterprise number of the CPAS")
        if name == "seed":
            command.add_argument("--count", type=int, required=True, help="how many people")
            command.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status."""
    args = _parser().parse_args(argv)
    console = Console(stderr=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = {"url": args.url} | ({"schema": args.schema} if args.schema else {})
    try:
        with OcmwdataAdapter(args.cpas, options) as adapter:
            if args.command == "count":
                print(adapter.count_persons())
                return 0
            with Progress(
                TextColumn("drawing people"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("seed", total=args.count)
                numbers = adapter.seed(
                    args.count,
                    seed=args.seed,
                    progress=lambda drawn: progress.advance(task, drawn),
                )
            console.print(
                f"{len(numbers)} people added; the database holds {adapter.count_persons()}."
            )
    except GatewayError as exc:
        # The error's code is in square brackets, which rich would take for markup.
        console.print(str(exc), style="red", markup=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
