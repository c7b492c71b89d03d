"""``cpas-gateway run --config FILE``: one node, until stopped (SIGTERM or Ctrl-C)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.config import NodeConfig
from gateway.node import build_node


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run one node until stopped")
    parser.add_argument("--config", type=Path, required=True, help="the node's TOML file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    node = build_node(NodeConfig.load(args.config))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    node.start()
    console.print(
        f"node {node.cpas_id} running: adapter {node.adapter.info.name}, "
        f"inbox {node.names.inbox(node.cpas_id)} on {node.broker.addresses}"
    )
    stop.wait()
    console.print("stopping: finishing the message in hand…")
    node.stop()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(node.stats.counts.items())) or "nothing"
    console.print(f"stopped ({counts})")
    return 0
