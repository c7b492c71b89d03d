"""``python -m bench``: run the benchmark, print the table, write the JSON.

Every figure that matters is a ratio or a target check made within the same
run, because the machines are noisy: the bare relay and the gateway are
measured minutes apart on the same broker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pika
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench import report
from bench.baseline import baseline_topology, run_baseline
from bench.bulk import run_bulk
from bench.harness import (
    ANTWERPEN,
    FICHESOCIALE,
    GENT,
    LIEGE,
    NAMUR,
    OCMWDATA,
    Bench,
    broker_version,
)
from bench.latency import run_latency
from bench.pipeline import run_pipeline, run_scaling
from bench.stages import run_stages
from bench.workload import NATIONAL_CASELOAD, caseloads, sample_envelopes
from gateway.config import amqp_url_from_env, split_urls

SECTIONS = ("baseline", "pipeline", "scaling", "latency", "bulk", "stages")
RATES = (100.0, 200.0, 500.0)
DEFAULT_JSON_FOLDER = Path("var/bench")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="The gateway's speed against the bare broker, side by side in one run.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few hundred dossiers everywhere, a small bulk run, short latency runs",
    )
    parser.add_argument(
        "--bulk", type=int, help=f"dossiers in the bulk migration (default {NATIONAL_CASELOAD:,})"
    )
    parser.add_argument("--dossiers", type=int, help="dossiers per pipeline direction")
    parser.add_argument("--messages", type=int, help="messages through the bare relay")
    parser.add_argument("--profile", type=int, help="dossiers in the per-stage replay")
    parser.add_argument(
        "--workers",
        help="the receiving node's processes at each step of the scaling curve "
        "(default 1,2,4; --quick: 1,2)",
    )
    parser.add_argument(
        "--scaling-dossiers", type=int, help="dossiers per step of the scaling curve"
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        help="seconds per offered rate (default: 10 s, and at least 2,000 messages)",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--json", type=Path, help=f"where to write the figures (default: {DEFAULT_JSON_FOLDER}/)"
    )
    parser.add_argument(
        "--amqp-url",
        default=split_urls(amqp_url_from_env())[0],
        help="the broker (default: CPAS_GATEWAY_AMQP_URL or the local broker)",
    )
    return parser


def _sizes(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    seconds = args.latency_seconds
    return {
        "mode": "quick" if quick else "full",
        "messages": args.messages or (1_000 if quick else 20_000),
        "dossiers": args.dossiers or (200 if quick else 5_000),
        "bulk": args.bulk if args.bulk is not None else (300 if quick else NATIONAL_CASELOAD),
        "profile": args.profile or (100 if quick else 3_000),
        "scaling": args.scaling_dossiers or (100 if quick else 2_000),
        "workers": [int(n) for n in (args.workers or ("1,2" if quick else "1,2,4")).split(",")],
        "latency_seconds": {
            rate: seconds if seconds else (0.4 if quick else max(10.0, 2_000 / rate))
            for rate in RATES
        },
        "latency_pool": 200 if quick else 2_000,
        "sample": 200 if quick else 1_000,
    }


def machine(amqp_url: str) -> dict[str, Any]:
    """What the figures were measured on."""
    cpu_model = None
    memory_mb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mb = int(line.split()[1]) // 1024
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_mb": memory_mb,
        "python": platform.python_version(),
        "pika": pika.__version__,
        "rabbitmq": broker_version(amqp_url),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        _parser().error(f"unknown sections: {', '.join(sorted(unknown))}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console(highlight=False)
    if not console.is_terminal:
        # Logs and CI: wide enough that the table's rows stay on one line.
        console = Console(highlight=False, width=150)
    sizes = _sizes(args)
    started = dt.datetime.now(dt.UTC)
    target = args.json or DEFAULT_JSON_FOLDER / (
        f"{sizes['mode']}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    )
    results: dict[str, Any] = {
        "schema": 1,
        "started_at": started.isoformat(timespec="seconds"),
        "mode": sizes["mode"],
        "sizes": {k: v for k, v in sizes.items() if k != "latency_seconds"}
        | {"latency_seconds": {str(int(r)): s for r, s in sizes["latency_seconds"].items()}},
        "machine": machine(args.amqp_url),
    }
    clock = time.monotonic()
    with Bench(args.amqp_url) as bench:
        gent, liege = bench.cpas_id(GENT), bench.cpas_id(LIEGE)
        # Where the run kept its things: all of it is gone when it ends.
        results["namespace"] = bench.names.namespace
        results["workdir"] = str(bench.root)
        results["cpas"] = {
            member.name: member.cpas_id for member in bench.federation.members.values()
        }
        sample = sample_envelopes(bench.federation, gent, liege, sizes["sample"])
        results["sample"] = sample.describe()

        def section(name: str, action: Callable[[], Any]) -> None:
            if name not in sections:
                return
            began = time.monotonic()
            with console.status(f"[bold]{name}[/]…"):
                results[name] = action()
            console.print(f"{name}: done in {time.monotonic() - began:.1f} s")

        bench.extra_topologies.append(baseline_topology(bench.names))
        section(
            "baseline",
            lambda: run_baseline(bench.amqp_url, bench.names, sample.transfers, sizes["messages"]),
        )
        section(
            "pipeline",
            lambda: [
                run_pipeline(
                    bench,
                    sender=(GENT, OCMWDATA),
                    receiver=(LIEGE, FICHESOCIALE),
                    count=sizes["dossiers"],
                ),
                run_pipeline(
                    bench,
                    sender=(NAMUR, FICHESOCIALE),
                    receiver=(ANTWERPEN, OCMWDATA),
                    count=sizes["dossiers"],
                ),
            ],
        )
        section(
            "scaling",
            lambda: run_scaling(
                bench,
                sender=(GENT, OCMWDATA),
                receiver=(LIEGE, FICHESOCIALE),
                count=sizes["scaling"],
                workers=sizes["workers"],
                sent_before=sizes["dossiers"] if "pipeline" in sections else 0,
            ),
        )
        section(
            "latency",
            lambda: run_latency(
                bench,
                rates=list(RATES),
                seconds=sizes["latency_seconds"],
                pool_size=sizes["latency_pool"],
            ),
        )
        if "bulk" in sections:
            began = time.monotonic()
            console.print(f"bulk: migrating {sizes['bulk']:,} dossiers between two node processes")
            with _progress(console) as progress:
                results["bulk"] = run_bulk(bench, sizes["bulk"], progress=progress)
            console.print(f"bulk: done in {time.monotonic() - began:.1f} s")
        section("stages", lambda: run_stages(bench, sizes["profile"]))

    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_seconds"] = round(time.monotonic() - clock, 1)
    report.derive(results)
    pipeline: list[dict[str, Any]] = results.get("pipeline", [])
    pipeline_rate = pipeline[0]["dossiers_per_s"] if pipeline else None
    results["caseloads"] = caseloads(pipeline_rate)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report.print_tables(console, results)
    console.print(f"figures written to {target}")
    return 0


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


if __name__ == "__main__":  # pragma: no cover - ``python -m bench`` goes through __main__
    sys.exit(main())
