"""``python -m bench.tenants``: the memory of one process serving 1, 10 and 50 CPAS.

For each count, a fresh process serves that many CPAS (:class:`gateway.hosting.Host`,
each tenant on the reference adapter OCMWdata with its own SQLite vendor
database, store and journal, and the full sample directory of every Belgian
CPAS) on the local broker. A node of its own, in this process, sends one
dossier to every tenant and waits for each receipt; then the serving process
reports its resident memory, its peak, its threads and the CPU it uses over a
few idle seconds. What one more CPAS costs is the slope between the smallest
and the largest count.

The tenants start without their preflight (what it checks is not what is
measured here). Nothing here asserts a figure: ``docs/performance.md`` holds
the numbers of one run and the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from gateway.broker import Names, delete_namespace
from gateway.config import NodeConfig, amqp_url_from_env
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.hosting import PER_CPAS_VARIABLES, Host, load_tenants
from gateway.model import municipalities
from gateway.model.envelope import Purpose
from gateway.model.errors import GatewayError
from gateway.node import build_node

COUNTS = (1, 10, 50)
IDLE_SECONDS = 5.0
SENDER = "11002"
"""Antwerpen's CPAS sends; the tenants are the next municipalities in NIS order."""


def _status(field: str) -> float:
    """A ``/proc/self/status`` figure in MB (or as a number for ``Threads``)."""
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+)", status, re.MULTILINE)
    assert match is not None, field
    value = int(match.group(1))
    return value if field == "Threads" else value / 1024


# ------------------------------------------------------------ the serving process


def serve(files: list[Path], idle_seconds: float) -> None:
    """Serve the tenants of ``files``; answer the parent's ``measure`` and ``stop`` lines."""
    bare = _status("VmRSS")
    started = time.monotonic()
    host = Host(load_tenants(files), say=lambda line: None)
    host.start()
    _tell(
        {
            "bare_mb": bare,
            "started_mb": _status("VmRSS"),
            "start_seconds": time.monotonic() - started,
            "serving": len(host.nodes),
        }
    )
    for line in sys.stdin:
        if line.strip() == "measure":
            cpu = time.process_time()
            time.sleep(idle_seconds)
            _tell(
                {
                    "rss_mb": _status("VmRSS"),
                    "peak_mb": _status("VmHWM"),
                    "threads": _status("Threads"),
                    "idle_cpu_percent": 100 * (time.process_time() - cpu) / idle_seconds,
                }
            )
        elif line.strip() == "stop":
            break
    host.stop()


def _tell(figures: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(figures) + "\n")
    sys.stdout.flush()


def _hear(stream: IO[str]) -> dict[str, Any]:
    line = stream.readline()
    if not line:
        raise RuntimeError("the serving process ended early")
    figures: dict[str, Any] = json.loads(line)
    return figures


# ------------------------------------------------------------ the benchmark


def measure(
    counts: tuple[int, ...], amqp_url: str, folder: Path, idle: float, console: Console
) -> list[dict]:
    # More candidates than needed: some municipalities' CPAS merged or closed.
    candidates = [m.nis_code for m in municipalities.municipalities() if m.nis_code != SENDER]
    candidates = candidates[: max(counts) + 40]
    console.print(f"a federation of {len(candidates) + 1} CPAS nodes: keys and signed directory…")
    world = make_local_federation(folder / "federation", [SENDER, *candidates])
    tenants = [nis for nis in candidates if _active(world, nis)][: max(counts)]
    names = Names(f"tenants-bench-{uuid.uuid4().hex[:8]}")
    files = [
        _config(world, nis, amqp_url, names, folder / f"vendor-{nis}.sqlite3") for nis in tenants
    ]
    sender = build_node(
        NodeConfig.load(_config(world, SENDER, amqp_url, names, folder / "sender.sqlite3"))
    )
    people = sender.adapter.seed(max(counts), seed=1)  # type: ignore[attr-defined]
    rows = []
    try:
        sender.start()
        for count in counts:
            console.print(f"{count} CPAS in one process…")
            rows.append(_one_count(files[:count], sender, people, idle))
    finally:
        sender.stop()
        sender.adapter.close()
        delete_namespace(amqp_url, world.members, names=names)
    return rows


def _active(world: LocalFederation, nis: str) -> bool:
    try:
        world.directory.check_destination(world.member(nis).cpas_id)
    except GatewayError:
        return False
    return True


def _config(world: LocalFederation, nis: str, amqp_url: str, names: Names, vendor: Path) -> Path:
    cpas_id = world.member(nis).cpas_id
    world.node_config(
        cpas_id,
        "ocmwdata",
        {"url": f"sqlite:///{vendor}"},
        amqp_url=amqp_url,
        namespace=names.namespace,
    )
    return world.member(nis).folder / "node.toml"


def _one_count(files: list[Path], sender: Any, people: list[str], idle: float) -> dict:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.tenants",
            "--idle-seconds",
            str(idle),
            "--serve",
            *map(str, files),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # The files carry each CPAS's broker address: none of it from the environment.
        env={k: v for k, v in os.environ.items() if k.upper() not in PER_CPAS_VARIABLES}
        | {"CPAS_GATEWAY_ADAPTERS": "ocmwdata"},
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        started = _hear(process.stdout)
        recipients = [NodeConfig.load(f).cpas_id for f in files]
        sent = [
            sender.send_transfer(person, to, Purpose.CONTINUITY_AFTER_MOVE).message_id
            for person, to in zip(people, recipients, strict=False)
        ]
        outcomes = sender.wait_for_outcomes(sent, 300)
        imported = sum(1 for e in outcomes.values() if e.outcome in ("imported", "duplicate"))
        process.stdin.write("measure\n")
        process.stdin.flush()
        figures = _hear(process.stdout)
        process.stdin.write("stop\n")
        process.stdin.flush()
        process.wait(120)
    finally:
        if process.poll() is None:
            process.kill()
    return {"tenants": len(files), "answered": imported, **started, **figures}


def show(rows: list[dict], console: Console) -> None:
    table = Table(title="One process serving many CPAS")
    for column in (
        "CPAS",
        "dossiers answered",
        "RSS (MB)",
        "peak (MB)",
        "threads",
        "idle CPU",
        "start (s)",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["tenants"]),
            f"{row['answered']}/{row['tenants']}",
            f"{row['rss_mb']:.0f}",
            f"{row['peak_mb']:.0f}",
            str(row["threads"]),
            f"{row['idle_cpu_percent']:.1f} %",
            f"{row['start_seconds']:.1f}",
        )
    console.print(table)
    first, last = rows[0], rows[-1]
    if last["tenants"] > first["tenants"]:
        slope = (last["rss_mb"] - first["rss_mb"]) / (last["tenants"] - first["tenants"])
        console.print(
            f"each additional CPAS: {slope:.1f} MB; {last['tenants']} CPAS in one process: "
            f"{last['rss_mb']:.0f} MB, against {last['tenants']} × {first['rss_mb']:.0f} MB = "
            f"{last['tenants'] * first['rss_mb']:.0f} MB as separate nodes "
            f"(the interpreter and its libraries alone: {first['bare_mb']:.0f} MB)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tenants", description=__doc__)
    parser.add_argument(
        "--counts",
        default=",".join(map(str, COUNTS)),
        help="how many CPAS per process, comma-separated (default: 1,10,50)",
    )
    parser.add_argument("--amqp-url", default=amqp_url_from_env())
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--serve", nargs="+", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.serve:
        serve(args.serve, args.idle_seconds)
        return 0
    counts = tuple(sorted({int(c) for c in args.counts.split(",")}))
    console = Console()
    with tempfile.TemporaryDirectory(prefix="cpas-tenants-") as folder:
        rows = measure(counts, args.amqp_url, Path(folder), args.idle_seconds, console)
    show(rows, console)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
