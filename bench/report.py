"""Ratios, target checks and the tables, from one run's figures."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stages import LIBRARY_CALL, PIPELINE_STAGES
from bench.workload import NATIONAL_CASELOAD

PIPELINE_RATE = 1_500.0
"""Dossiers per second end to end, each direction."""
PIPELINE_SHARE = 0.25
"""Of the bare relay's messages per second, in the same run."""
REQUEST_P99_MS = 50.0
REQUEST_RATE = 200.0
BULK_SECONDS = 180.0
"""For the national caseload."""
PEAK_MB = 300.0


def _target(
    name: str, measured: float | None, unit: str, target: str, passed: bool, note: str = ""
) -> dict[str, Any]:
    ok = measured is not None and not math.isnan(measured) and passed
    return {
        "name": name,
        "measured": measured,
        "unit": unit,
        "target": target,
        "pass": ok,
        "note": note,
    }


def derive(results: dict[str, Any]) -> None:
    """Add the ratios, the unaccounted CPU and the target checks to ``results``."""
    targets: list[dict[str, Any]] = []
    relay = results.get("baseline", {}).get("messages_per_s")
    for run in results.get("pipeline", []):
        share = run["dossiers_per_s"] / relay if relay else None
        run["ratio_to_baseline"] = None if share is None else round(share, 4)
        targets.append(
            _target(
                f"pipeline {run['direction']}",
                run["dossiers_per_s"],
                "dossiers/s",
                f">= {PIPELINE_RATE:,.0f}",
                run["dossiers_per_s"] >= PIPELINE_RATE,
            )
        )
        targets.append(
            _target(
                f"pipeline {run['direction']} / bare relay",
                None if share is None else round(share * 100, 1),
                "%",
                f">= {PIPELINE_SHARE * 100:.0f}",
                share is not None and share >= PIPELINE_SHARE,
            )
        )
    for row in results.get("latency", []):
        if row["kind"] == "request-to-response" and row["offered_per_s"] == REQUEST_RATE:
            targets.append(
                _target(
                    f"request-to-response p99 at {REQUEST_RATE:.0f}/s",
                    row["p99_ms"],
                    "ms",
                    f"<= {REQUEST_P99_MS:.0f}",
                    row["p99_ms"] <= REQUEST_P99_MS,
                )
            )
    bulk = results.get("bulk")
    if bulk:
        full = bulk["dossiers"] >= NATIONAL_CASELOAD
        seconds = bulk["seconds"] if full else NATIONAL_CASELOAD / max(bulk["dossiers_per_s"], 1e-9)
        note = "" if full else f"projected from {bulk['dossiers']:,} dossiers at the measured rate"
        targets.append(
            _target(
                f"bulk migration of {NATIONAL_CASELOAD:,}",
                round(seconds, 1),
                "s",
                f"< {BULK_SECONDS:.0f}",
                seconds < BULK_SECONDS,
                note,
            )
        )
        small = "" if full else f"at {bulk['dossiers']:,} dossiers only"
        for role in ("sender", "receiver"):
            peak = bulk[role]["peak_mb"]
            targets.append(
                _target(
                    f"bulk {role} node peak memory",
                    None if peak is None else round(peak, 1),
                    "MB",
                    f"< {PEAK_MB:.0f}",
                    peak is not None and peak < PEAK_MB,
                    small,
                )
            )
    stages = results.get("stages")
    pipeline = next(iter(results.get("pipeline", [])), None)
    if stages and pipeline:
        cpu = pipeline["cpu_ms_per_dossier"]
        if cpu.get("sender") is not None and cpu.get("receiver") is not None:
            nodes = (cpu["sender"] + cpu["receiver"]) * 1e3
            stages["nodes_us_per_dossier_in_pipeline"] = round(nodes, 1)
            stages["unaccounted_us_per_dossier"] = round(nodes - stages["pipeline_total_us"], 1)
            broker = (cpu.get("broker") or 0.0) * 1e3
            stages["broker_server_us_per_dossier"] = round(broker, 1)
            cores = results.get("machine", {}).get("nproc") or 1
            stages["cpu_ceiling_dossiers_per_s"] = round(cores * 1e6 / (nodes + broker), 1)
    results["targets"] = targets


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def print_tables(console: Console, results: dict[str, Any]) -> None:
    """The run's figures and targets, then where the time goes."""
    table = Table(title=f"CPAS Dossier Gateway benchmark ({results['mode']} run)")
    table.add_column("measure", no_wrap=True)
    table.add_column("measured", justify="right")
    table.add_column("target", justify="right")
    table.add_column("result")
    checks = results.get("targets", [])

    def add_checks(prefix: str) -> None:
        for check in checks:
            if not check["name"].startswith(prefix):
                continue
            result = "[green]PASS[/]" if check["pass"] else "[red]FAIL[/]"
            if check["note"]:
                result += f" ({check['note']})"
            table.add_row(
                check["name"],
                f"{_fmt(check['measured'])} {check['unit']}",
                f"{check['target']} {check['unit']}",
                result,
            )

    baseline = results.get("baseline")
    if baseline:
        table.add_row(
            "bare relay (quorum queue, pipelined confirms, acks)",
            f"{_fmt(baseline['messages_per_s'])} msg/s",
            "",
            f"{baseline['messages']:,} messages, {baseline['mean_bytes']:,} B on average",
        )
    add_checks("pipeline")
    for step in results.get("scaling", []):
        cpu = step["cpu_ms_per_dossier"]
        receiver = step["receiver"]
        table.add_row(
            f"pipeline {step['direction']}, receiver as {receiver['workers']} worker(s)",
            f"{_fmt(step['dossiers_per_s'])} dossiers/s",
            "",
            f"{step['dossiers']:,} dossiers; CPU ms per dossier: sender {_fmt(cpu['sender'], 2)}, "
            f"receiver {_fmt(cpu['receiver'], 2)}, broker {_fmt(cpu['broker'], 2)}; "
            f"peak {_fmt(receiver['peak_mb_per_process'], 0)} MB per process",
        )
    for row in results.get("latency", []):
        table.add_row(
            f"{row['kind']} at {row['offered_per_s']:.0f}/s: p50 / p99 / p99.9",
            f"{_fmt(row['p50_ms'])} / {_fmt(row['p99_ms'])} / {_fmt(row['p999_ms'])} ms",
            "",
            f"{row['sent']:,} sent at {_fmt(row['achieved_per_s'])}/s, "
            f"{row['unanswered']} unanswered",
        )
    add_checks("request")
    bulk = results.get("bulk")
    if bulk:
        table.add_row(
            f"bulk migration of {bulk['dossiers']:,} (seeding excluded)",
            f"{_fmt(bulk['seconds'])} s",
            "",
            f"{_fmt(bulk['dossiers_per_s'])} dossiers/s; "
            f"seeding took {_fmt(bulk['seeding_seconds'])} s",
        )
    add_checks("bulk")
    for caseload in results.get("caseloads", [])[:1]:
        if caseload["seconds_at_measured_rate"] is not None:
            table.add_row(
                f"largest CPAS's caseload ({caseload['name']}, by population)",
                f"{caseload['seconds_at_measured_rate']:,.1f} s",
                "",
                f"{caseload['dossiers']:,} dossiers at the first pipeline's rate",
            )
    if table.row_count:
        console.print(table)

    stages = results.get("stages")
    if stages:
        detail = Table(
            title=f"CPU per dossier by stage ({stages['dossiers']:,} dossiers replayed, "
            f"median of {stages.get('rounds', 1)} rounds)"
        )
        detail.add_column("stage")
        detail.add_column("measured µs", justify="right")
        detail.add_column("budget µs", justify="right")
        detail.add_column("verdict")
        detail.add_column("share", justify="right")
        budget = stages.get("budget_us_per_dossier", {})
        verdict = stages.get("verdict", {})
        tight_budget = stages.get("budget_tight_loop_us_per_dossier", {})
        tight_verdict = stages.get("verdict_tight_loop", {})
        for stage in PIPELINE_STAGES:
            said = verdict.get(stage, "")
            shown = f"[green]{said}[/]" if said == "met" else f"[red]{said}[/]"
            if stage in tight_budget and stage in LIBRARY_CALL:
                shown += (
                    f" [dim](tight loop: {tight_verdict[stage]}, "
                    f"≤ {_fmt(tight_budget[stage], 0)})[/]"
                )
            detail.add_row(
                stage,
                _fmt(stages["cpu_us_per_dossier"][stage], 0),
                _fmt(budget.get(stage), 0) if stage in budget else "",
                shown,
                f"{stages['share_of_pipeline'][stage]:.0%}",
            )
        detail.add_row("[bold]sum of the stages[/]", _fmt(stages["pipeline_total_us"], 0))
        if "unaccounted_us_per_dossier" in stages:
            detail.add_row(
                "both nodes in the pipeline run (measured)",
                _fmt(stages["nodes_us_per_dossier_in_pipeline"], 0),
                "",
            )
            detail.add_row(
                "  of which store, threads, queues (the rest)",
                _fmt(stages["unaccounted_us_per_dossier"], 0),
                "",
            )
            detail.add_row(
                "RabbitMQ server (measured)", _fmt(stages["broker_server_us_per_dossier"], 0), ""
            )
            detail.add_row(
                "CPU ceiling on this machine",
                f"{_fmt(stages['cpu_ceiling_dossiers_per_s'], 0)} dossiers/s",
                "",
            )
        for stage in sorted(set(stages["cpu_us_per_dossier"]) - set(PIPELINE_STAGES)):
            detail.add_row(
                f"[dim]{stage} (other direction)[/]",
                _fmt(stages["cpu_us_per_dossier"][stage], 0),
            )
        tight = stages.get("library_tight_loop_us_per_dossier", {})
        for call, value in stages.get("library_us_per_dossier", {}).items():
            detail.add_row(
                f"[dim]library alone: {call}[/]",
                _fmt(value, 0),
                "",
                f"[dim]tight loop {_fmt(tight.get(call), 0)}[/]" if call in tight else "",
            )
        console.print(detail)
