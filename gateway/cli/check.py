"""``cpas-gateway check --config FILE``: the preflight, one line per check.

``check --tenants DIR`` checks every CPAS of a node serving several
(:mod:`gateway.cli.tenants`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.cli import tenants
from gateway.cli.style import CONFIG_OR_TENANTS
from gateway.preflight import Preflight, Status, run_preflight

MARKS = {
    Status.OK: "[green]ok  [/green]",
    Status.WARN: "[yellow]warn[/yellow]",
    Status.FAIL: "[red]FAIL[/red]",
    Status.SKIPPED: "[dim]skip[/dim]",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        parents=[CONFIG_OR_TENANTS],
        help="preflight: check everything a node needs before it runs",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The preflight's options, which ``run`` shares."""
    parser.add_argument(
        "--management-url",
        default=os.environ.get("CPAS_GATEWAY_MANAGEMENT_URL"),
        help="an administrator's management API URL, to compare the node user's permissions "
        "exactly (default: CPAS_GATEWAY_MANAGEMENT_URL; without it, AMQP probes)",
    )
    parser.add_argument(
        "--management-ca", type=Path, help="CA of an https:// management API's certificate"
    )


def preflight(args: argparse.Namespace) -> Preflight:
    return preflight_of(args, args.config)


def preflight_of(args: argparse.Namespace, config: Path) -> Preflight:
    """The preflight of the node configured in ``config``, with the command's options."""
    return run_preflight(
        config, management_url=args.management_url, management_ca=args.management_ca
    )


def show(result: Preflight, console: Console, *, failures_only: bool = False) -> None:
    """One line per check; under a failure, the fix."""
    for check in result.checks:
        if failures_only and check.status is not Status.FAIL:
            continue
        console.print(f"{MARKS[check.status]} {check.name}: ", end="")
        console.print(check.detail, markup=False, highlight=False)
        if check.fix:
            console.print("       fix: ", end="", style="bold")
            console.print(check.fix, markup=False, highlight=False)


def run(args: argparse.Namespace) -> int:
    if args.tenants is not None:
        return tenants.check(args)
    console = Console(highlight=False)
    result = preflight(args)
    show(result, console)
    failed = len(result.failures)
    if failed:
        console.print(f"{failed} check(s) failed: the node would not start.")
        return 1
    console.print("all checks passed.")
    return 0
