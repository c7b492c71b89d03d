"""``run --tenants DIR`` and ``check --tenants DIR``: a node serving several CPAS.

Not a command of its own: ``run`` and ``check`` hand over to these functions
when given a folder of node configurations, one file per CPAS (see
:mod:`gateway.hosting` for how the CPAS are kept apart and fail apart).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from rich.console import Console

from gateway.cli import check as single
from gateway.cli.options import configure_run_logging
from gateway.hosting import Host, Tenant, load_tenants, process_settings, tenant_files
from gateway.logs import parse_levels
from gateway.model.codes import Fault
from gateway.model.errors import ConfigError
from gateway.preflight import Status

log = logging.getLogger(__name__)

FAILED = 1


# ------------------------------------------------------------------ check


def check(args: argparse.Namespace) -> int:
    """The preflight of every CPAS in ``args.tenants``, after the check that none collide."""
    console = Console(highlight=False)
    try:
        tenants = load_tenants(tenant_files(args.tenants))
    except ConfigError as exc:
        console.print(f"{single.MARKS[Status.FAIL]} CPAS of this node: ", end="")
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        console.print("the node would not start.")
        return FAILED
    console.print(f"{single.MARKS[Status.OK]} CPAS of this node: ", end="")
    console.print(
        f"{len(tenants)}, none sharing a CPAS id, keys, a store or journal, or a provisioned "
        "broker user with another",
        markup=False,
        highlight=False,
    )
    failed = 0
    for tenant in tenants:
        console.print(f"\nCPAS {tenant.cpas_id} ({tenant.source})", style="bold", markup=False)
        result = single.preflight_of(args, tenant.source)
        single.show(result, console)
        failed += bool(result.failures)
    if failed:
        console.print(
            f"\n{failed} of {len(tenants)} CPAS failed a check: they would not start "
            "(the others would)."
        )
        return FAILED
    console.print("\nall checks passed for every CPAS.")
    return 0


# ------------------------------------------------------------------ run


def run(args: argparse.Namespace) -> int:
    """Serve every CPAS in ``args.tenants`` until stopped (SIGTERM or Ctrl-C)."""
    console = Console(highlight=False)
    levels = parse_levels(args.log_level)
    tenants = load_tenants(tenant_files(args.tenants))
    _configure_logging(args, tenants, levels)
    host = Host(
        tenants,
        say=lambda line: console.print(line, markup=False, highlight=False),
        preflight=lambda tenant: single.preflight_of(args, tenant.source),
    )
    tenant_field = host.log_filter()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(tenant_field)
    stop = threading.Event()
    died: list[str] = []

    def thread_died(hook: threading.ExceptHookArgs) -> None:
        name = hook.thread.name if hook.thread else "?"
        log.critical(
            "thread %s died (%s: %s)",
            name,
            hook.exc_type.__name__,
            hook.exc_value,
            exc_info=(hook.exc_type, hook.exc_value, hook.exc_traceback),  # type: ignore[arg-type]
        )
        # A tenant's thread stops that tenant; any other thread stops the run.
        if not host.thread_died(name, hook.exc_value or hook.exc_type()):
            died.append(name)
            stop.set()

    previous_hook = threading.excepthook
    threading.excepthook = thread_died
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        return _serve(host, stop, died, console)
    finally:
        threading.excepthook = previous_hook
        for handler in handlers:
            handler.removeFilter(tenant_field)


def _configure_logging(
    args: argparse.Namespace, tenants: list[Tenant], levels: dict[str, str]
) -> None:
    configure_run_logging(args, process_settings(tenants), levels)


def _serve(host: Host, stop: threading.Event, died: list[str], console: Console) -> int:
    refused = host.start()
    for cpas_id, result in refused.items():
        console.print(f"node {cpas_id} not started, its checks failed:", markup=False)
        single.show(result, console, failures_only=True)
    if not host.nodes:
        failures = sum(len(result.failures) for result in refused.values())
        raise ConfigError(
            f"no CPAS of this node starts: {failures} preflight check(s) failed "
            "(`cpas-gateway check --tenants` shows them all).",
            code=Fault.PREFLIGHT_FAILED,
        )
    if refused:
        console.print(
            f"{len(refused)} of {len(host.tenants)} CPAS not started (checks failed): "
            "their checks run again every minute; the others run."
        )
    serving = host.watch(stop)
    if not serving or died:
        if died:
            console.print(f"stopped on an error: {', '.join(died)}")
        host.stop()
        return FAILED
    console.print("stopping: finishing the messages in hand…")
    for cpas_id, stats in host.stop().items():
        counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.items())) or "nothing"
        console.print(f"node {cpas_id} stopped ({counts})")
    return FAILED if host.failed else 0
