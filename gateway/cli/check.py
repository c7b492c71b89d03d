"""``cpas-gateway check --config FILE``: the preflight, one line per check.

For a node serving several CPAS (``--config`` repeated, or ``--tenants DIR``)
every CPAS is checked, under a heading of its own, after a first check that
no two of them share a CPAS id, a database, keys or a broker user.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.errors import ConfigError
from gateway.hosting import load_tenants, tenant_files
from gateway.preflight import Preflight, Status, run_preflight

MARKS = {
    Status.OK: "[green]ok  [/green]",
    Status.WARN: "[yellow]warn[/yellow]",
    Status.FAIL: "[red]FAIL[/red]",
    Status.SKIPPED: "[dim]skip[/dim]",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check", help="preflight: check everything a node needs before it runs"
    )
    add_config_arguments(parser)
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` (repeatable) and ``--tenants DIR``: the CPAS a node serves."""
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        help="the node's TOML file; repeat it to serve several CPAS in one process",
    )
    parser.add_argument(
        "--tenants",
        type=Path,
        metavar="DIR",
        help="serve every CPAS configured in DIR (one *.toml file per CPAS)",
    )


def config_files(args: argparse.Namespace) -> list[Path]:
    """The configuration files named by ``--config`` and ``--tenants``."""
    return tenant_files(args.config, args.tenants)


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
    console = Console(highlight=False)
    files = config_files(args)
    if len(files) == 1:
        return _check_one(args, files[0], console)
    try:
        tenants = load_tenants(files)
    except ConfigError as exc:
        console.print(f"{MARKS[Status.FAIL]} CPAS of this node: ", end="")
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        console.print("the node would not start.")
        return 1
    console.print(f"{MARKS[Status.OK]} CPAS of this node: ", end="")
    console.print(
        f"{len(tenants)}, none sharing a CPAS id, keys, a store or journal, or a provisioned "
        "broker user with another",
        markup=False,
        highlight=False,
    )
    failed = 0
    for tenant in tenants:
        console.print(f"\nCPAS {tenant.cpas_id} ({tenant.source})", style="bold", markup=False)
        result = preflight_of(args, tenant.source)
        show(result, console)
        failed += bool(result.failures)
    if failed:
        console.print(
            f"\n{failed} of {len(tenants)} CPAS failed a check: they would not start "
            "(the others would)."
        )
        return 1
    console.print("\nall checks passed for every CPAS.")
    return 0


def _check_one(args: argparse.Namespace, config: Path, console: Console) -> int:
    result = preflight_of(args, config)
    show(result, console)
    failed = len(result.failures)
    if failed:
        console.print(f"{failed} check(s) failed: the node would not start.")
        return 1
    console.print("all checks passed.")
    return 0
