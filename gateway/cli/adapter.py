"""``cpas-gateway adapter``: start a vendor adapter package, list the installed adapters."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("adapter", help="start a new vendor adapter; list adapters")
    commands = parser.add_subparsers(dest="adapter_command", required=True, metavar="ACTION")

    new = commands.add_parser(
        "new",
        help="write an installable adapter package, with every place to fill in marked",
    )
    new.add_argument("name", metavar="NAME", help="the adapter's name, e.g. acme")
    new.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="the package's folder (default: NAME-cpas-adapter in the current folder)",
    )
    new.add_argument("--vendor", help="the vendor's product name (default: from NAME)")
    new.set_defaults(func=run_new)

    listing = commands.add_parser("list", help="the adapters installed in this environment")
    listing.set_defaults(func=run_list)


def run_new(args: argparse.Namespace) -> int:
    from gateway.scaffold import VENDOR_MARK, adapter_names, new_adapter_package

    names = adapter_names(args.name, args.vendor)
    folder: Path = args.dir or Path(names.distribution)
    files = new_adapter_package(args.name, folder, vendor=args.vendor)
    console = Console(highlight=False)
    console.print(f"wrote the {names.vendor} adapter package in {folder}:", markup=False)
    for path in files:
        console.print(f"  {path.relative_to(folder)}", markup=False)
    console.print(
        f"Next: write the places marked '{VENDOR_MARK}' in "
        f"{names.package}/adapter.py, then in {folder}: "
        'pip install -e ".[test]" && pytest',
        markup=False,
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    from gateway.adapters import load_adapters

    console = Console(highlight=False)
    for name in load_adapters().names:
        console.print(name, markup=False)
    return 0
