"""``cpas-gateway run --config FILE``: one node, until stopped (SIGTERM or Ctrl-C).

The preflight (``cpas-gateway check``) runs first: the node refuses to start
when a check fails, and says which and how to fix it.

At start it sends back to the inbox what only the broker's delivery limit
dead-lettered (see :func:`gateway.dead_letters.requeue_after_delivery_limit`).
A thread of the process that dies of an unexpected error ends the process
with exit status 1 and a clear log line, for the service manager to restart
it: a node never idles while holding deliveries.

``run --tenants DIR`` serves several CPAS in one process, one file per CPAS
in DIR (:mod:`gateway.cli.tenants`, :mod:`gateway.hosting`).

``run --workers N`` runs one node as N processes, to use N cores
(:mod:`gateway.cli.workers`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

from rich.console import Console

from gateway.cli import check, tenants
from gateway.cli.options import configure_run_logging
from gateway.cli.style import CONFIG_OR_TENANTS, UsageError
from gateway.cli.workers import Workers, worker_argv, worker_count
from gateway.config import ApiConfig, NodeConfig
from gateway.dead_letters import requeue_after_delivery_limit
from gateway.logs import parse_levels
from gateway.model.codes import Fault
from gateway.model.errors import ConfigError, GatewayError
from gateway.node import Node, build_node

if TYPE_CHECKING:
    from gateway.api import ApiServer

log = logging.getLogger(__name__)

FAILED = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", parents=[CONFIG_OR_TENANTS], help="run one node (or several CPAS) until stopped"
    )
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
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        metavar="N",
        help="run the node as N processes taking deliveries from its inbox (default 1; "
        "more than the machine's cores gains nothing)",
    )
    # One of the processes of `--workers N`, started by the command itself.
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    check.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.tenants is not None:
        if args.workers != 1:
            raise UsageError("--workers runs one node as several processes: not with --tenants.")
        return tenants.run(args)
    console = Console(highlight=False)
    levels = parse_levels(args.log_level)
    config = NodeConfig.load(args.config)
    configure_run_logging(args, config, levels)
    if args.worker is None:
        # A worker process was started after this very check by its command.
        result = check.preflight(args)
        if not result.passed:
            check.show(result, console, failures_only=True)
            raise ConfigError(
                f"the node does not start: {len(result.failures)} preflight check(s) failed "
                "(`cpas-gateway check` shows them all).",
                code=Fault.PREFLIGHT_FAILED,
            )
    if args.workers > 1:
        return _run_workers(args, config, console)
    primary = not args.worker
    node = build_node(config, follow_directory=True, primary=primary)
    stop = threading.Event()
    died: list[str] = []

    def thread_died(hook: threading.ExceptHookArgs) -> None:
        # Any thread (the broker's I/O thread too): stop rather than idle.
        log.critical(
            "thread %s died (%s: %s): the node stops",
            hook.thread.name if hook.thread else "?",
            hook.exc_type.__name__,
            hook.exc_value,
            exc_info=(hook.exc_type, hook.exc_value, hook.exc_traceback),  # type: ignore[arg-type]
        )
        died.append(hook.thread.name if hook.thread else "?")
        stop.set()

    previous_hook = threading.excepthook
    threading.excepthook = thread_died
    try:
        return _run_until_stopped(node, stop, died, console, config.api if primary else None)
    finally:
        threading.excepthook = previous_hook


def _run_workers(args: argparse.Namespace, config: NodeConfig, console: Console) -> int:
    """The node as ``--workers`` processes, until SIGTERM or Ctrl-C, or one of them ends."""
    workers = Workers(
        [
            worker_argv(
                str(args.config),
                k,
                verbose=args.verbose,
                log_format=args.log_format,
                log_levels=args.log_level,
            )
            for k in range(args.workers)
        ],
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    workers.start()
    pids = ", ".join(str(p.pid) for p in workers.processes)
    console.print(f"node {config.cpas_id}: {args.workers} worker processes ({pids})")
    status = workers.wait(stop)
    console.print("every worker stopped" if status == 0 else "stopped on an error")
    return status


def _run_until_stopped(
    node: Node, stop: threading.Event, died: list[str], console: Console, api: ApiConfig | None
) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    node.start()
    server = _serve_api(node, api, console)
    try:
        return _until_stopped(node, stop, died, console)
    finally:
        if server is not None:
            server.stop()


def _serve_api(node: Node, api: ApiConfig | None, console: Console) -> ApiServer | None:
    """The local API, when ``[api]`` configures it (not served otherwise)."""
    if api is None:
        return None
    from gateway.api import serve

    try:
        server = serve(node, api)
    except BaseException:
        node.stop()
        raise
    console.print(f"API on {server.address}")
    return server


def _until_stopped(node: Node, stop: threading.Event, died: list[str], console: Console) -> int:
    if node.primary:
        try:
            requeue_after_delivery_limit(node)
        except GatewayError as exc:
            log.warning("dead letters not checked at start: %s", exc)
    role = "" if node.primary else " (a further worker)"
    console.print(
        f"node {node.cpas_id} running{role}: adapter {node.adapter.info.name}, "
        f"inbox {node.names.inbox(node.cpas_id)} on {node.broker.addresses}, "
        f"directory edition {node.directory.serial} (new editions from "
        f"{node.names.directory_feed(node.cpas_id)})"
    )
    while not stop.wait(0.5):
        if node.failed.is_set():
            break
    if node.failed.is_set() or died:
        console.print(f"stopped on an error: {node.health().detail or ', '.join(died)}")
        node.stop()
        return FAILED
    console.print("stopping: finishing the message in hand…")
    node.stop()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(node.stats.counts.items())) or "nothing"
    console.print(f"stopped ({counts})")
    return 0
