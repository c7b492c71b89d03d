"""The bulk migration's sending node, as its own process.

``python -m bench.runner --config node.toml --to ID --purpose P`` does what
``cpas-gateway send --config node.toml --all --to ID --purpose P`` does --
build the node from its configuration, :meth:`~gateway.node.Node.send_all`
-- and then waits for every receipt, counting them from the node's own
counters. It reports to the benchmark as JSON lines on standard output:
``progress`` events while it works, then one ``done`` event with the
timings (``time.monotonic()``, one clock for every process on Linux) and
its peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import peak_rss_mb
from gateway.config import NodeConfig
from gateway.model.envelope import Purpose
from gateway.node import Node, build_node

REPORT_SECONDS = 0.25
POLL_SECONDS = 0.01

_output = threading.Lock()


def _emit(event: str, **fields: Any) -> None:
    with _output:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def _receipts(node: Node) -> int:
    return node.stats["receipts.imported"] + node.stats["receipts.rejected"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runner", description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--purpose", default=Purpose.CONTINUITY_AFTER_MOVE.value)
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for receipts"
    )
    args = parser.parse_args(argv)

    node = build_node(NodeConfig.load(args.config))
    progress = {"exported": 0, "total": 0}
    finished = threading.Event()

    def report() -> None:
        while not finished.wait(REPORT_SECONDS):
            _emit("progress", **progress, receipts=_receipts(node))

    with node:
        reporter = threading.Thread(target=report, name="report", daemon=True)
        reporter.start()
        started = time.monotonic()
        sent = node.send_all(
            args.to,
            Purpose(args.purpose),
            progress=lambda done, total: progress.update(exported=done, total=total),
        )
        handed_over = time.monotonic()
        deadline = handed_over + args.timeout
        while _receipts(node) < len(sent) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        last_receipt = time.monotonic()
        finished.set()
        reporter.join()
        _emit(
            "done",
            sent=len(sent),
            receipts=_receipts(node),
            imported=node.stats["receipts.imported"],
            started=started,
            handed_over=handed_over,
            last_receipt=last_receipt,
            cpu_seconds=time.process_time(),
            peak_mb=peak_rss_mb(),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
