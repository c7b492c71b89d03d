"""``cpas-gateway run --config FILE``: a node, until stopped (SIGTERM or Ctrl-C).

The preflight (``cpas-gateway check``) runs first: the node refuses to start
when a check fails, and says which and how to fix it.

At start it sends back to the inbox what only the broker's delivery limit
dead-lettered (see :func:`gateway.dead_letters.requeue_after_delivery_limit`).
A thread of the process that dies of an unexpected error ends the process
with exit status 1 and a clear log line, for the service manager to restart
it: a node never idles while holding deliveries.

One process may serve several CPAS (``--config`` repeated, or ``--tenants
DIR``): see :mod:`gateway.hosting` for how they are kept apart and what
happens when one of them fails.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from rich.console import Console

from gateway.cli import check
from gateway.errors import ConfigError
from gateway.hosting import Host, Tenant, load_tenants, process_settings
from gateway.logs import configure_logging, parse_levels

log = logging.getLogger(__name__)

FAILED = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run a node until stopped (one CPAS or several)")
    check.add_config_arguments(parser)
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text, or one JSON object per line (default: log_format in the configuration)",
    )
    parser.add_argument(
        "--log-level",
        action="append",
        default=[],
        metavar="COMPONENT=LEVEL",
        help="level of one component, e.g. gateway.broker=DEBUG (repeatable)",
    )
    check.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    levels = parse_levels(args.log_level)
    tenants = load_tenants(check.config_files(args))
    _configure_logging(args, tenants, levels)
    host = Host(
        tenants,
        say=lambda line: console.print(line, markup=False, highlight=False),
        preflight=lambda tenant: check.preflight_of(args, tenant.source),
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
        return _run_until_stopped(host, stop, died, console)
    finally:
        threading.excepthook = previous_hook
        for handler in handlers:
            handler.removeFilter(tenant_field)


def _configure_logging(
    args: argparse.Namespace, tenants: list[Tenant], levels: dict[str, str]
) -> None:
    config = process_settings(tenants)
    verbose = logging.WARNING - 10 * min(args.verbose, 2)
    configure_logging(
        level=min(logging.getLevelNamesMapping()[config.log_level], verbose)
        if args.verbose
        else config.log_level,
        log_format=args.log_format or config.log_format,
        levels=config.log_levels | levels,
    )


def _run_until_stopped(host: Host, stop: threading.Event, died: list[str], console: Console) -> int:
    refused = host.start()
    for cpas_id, result in refused.items():
        if len(host.tenants) > 1:
            console.print(f"node {cpas_id} not started, its checks failed:", markup=False)
        check.show(result, console, failures_only=True)
    if not host.nodes:
        failures = sum(len(result.failures) for result in refused.values())
        raise ConfigError(
            f"the node does not start: {failures} preflight check(s) failed "
            "(`cpas-gateway check` shows them all).",
            code="preflight.failed",
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
    console.print("stopping: finishing the message in hand…")
    for cpas_id, stats in host.stop().items():
        counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.items())) or "nothing"
        prefix = f"node {cpas_id} " if len(host.tenants) > 1 else ""
        console.print(f"{prefix}stopped ({counts})")
    return FAILED if host.failed else 0
