"""``python -m fichesociale``: fill a FicheSociale folder with synthetic people, or show one.

Usage::

    python -m fichesociale seed --folder DIR --cpas ID --count N [--seed S]
    python -m fichesociale export --folder DIR --cpas ID NUMBER
    python -m fichesociale count --folder DIR --cpas ID
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fichesociale.adapter import DEFAULT_FOLDER, FicheSocialeAdapter
from gateway.model.errors import GatewayError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fichesociale",
        description="The FicheSociale reference adapter's exchange folder.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--folder", default=DEFAULT_FOLDER, help="the exchange folder")
        sub.add_argument("--cpas", required=True, help="enterprise number of the CPAS")
        return sub

    seed = command("seed", "Write synthetic beneficiaries (sensitive data included).")
    seed.add_argument("--count", type=int, required=True, help="how many beneficiaries")
    seed.add_argument("--seed", type=int, default=0, help="random seed (same seed, same people)")
    export = command("export", "Print the canonical dossier XML of one person.")
    export.add_argument("number", help="NISS or BIS number")
    command("count", "Print how many beneficiaries have a fiche.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 on success, 1 on a refusal, 2 on bad usage."""
    args = _parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        adapter = FicheSocialeAdapter(args.cpas, {"folder": args.folder})
        try:
            if args.command == "seed":
                return _seed(adapter, args.count, args.seed, console)
            if args.command == "export":
                dossier = adapter.export_dossier(args.number)
                if dossier is None:
                    console.print(f"No fiche for {args.number} in {args.folder}.")
                    return 1
                sys.stdout.buffer.write(dossier.to_xml())
                return 0
            print(adapter.count_persons())
            return 0
        finally:
            adapter.close()
    except GatewayError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False, soft_wrap=True)
        return 1


def _seed(adapter: FicheSocialeAdapter, count: int, seed: int, console: Console) -> int:
    if count < 0:
        console.print("--count cannot be negative.")
        return 2
    with Progress(
        TextColumn("[bold]seeding fiches"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("seed", total=count)
        numbers = adapter.seed(count, seed=seed, progress=lambda n: progress.advance(task, n))
    console.print(f"{len(numbers)} fiches written to {adapter.folder / 'fiches'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
