"""The benchmark keeps working: a quick run writes every section, with sane figures.

One ``python -m bench --quick`` run, as documented in docs/performance.md,
is shared by the tests below. They check counts and that rates are
positive -- never how fast anything went: the machine running the suite
decides that.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from bench.library import CALLS
from bench.stages import LIBRARY_CALL, LIBRARY_FACTOR, PARSE, PARSE_BUDGET_US, PIPELINE_STAGES

REPOSITORY = Path(__file__).resolve().parent.parent
SECTIONS = (
    "sample", "baseline", "pipeline", "scaling", "latency", "bulk", "stages", "targets", "machine",
)  # fmt: skip

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def figures(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON of one quick run against the test broker."""
    output = tmp_path_factory.mktemp("bench") / "quick.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(output), "--amqp-url", amqp_url],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    data: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return data


def test_a_quick_run_writes_every_section(figures: dict[str, Any]) -> None:
    assert figures["mode"] == "quick"
    assert set(SECTIONS) <= set(figures)


def test_the_bare_relay_delivers_every_message(figures: dict[str, Any]) -> None:
    relay = figures["baseline"]
    assert relay["confirmed"] == relay["consumed"] == relay["messages"] > 0
    assert relay["nacked"] == 0 and relay["error"] is None
    assert relay["messages_per_s"] > 0


def test_the_relay_uses_the_sizes_of_real_envelopes(figures: dict[str, Any]) -> None:
    sizes = figures["sample"]["transfer_bytes"]
    assert sizes["min"] <= figures["baseline"]["mean_bytes"] <= sizes["max"]
    assert figures["sample"]["decisions_per_dossier"]["max"] > 0


def test_the_pipeline_imports_and_receipts_every_dossier_both_ways(
    figures: dict[str, Any],
) -> None:
    runs = figures["pipeline"]
    assert {run["direction"] for run in runs} == {
        "ocmwdata → fichesociale",
        "fichesociale → ocmwdata",
    }
    for run in runs:
        dossiers = run["dossiers"]
        assert run["sent"] == run["imported_by_receiver"] == dossiers > 0
        assert run["receipts"] == {"imported": dossiers, "rejected": 0}
        assert run["dossiers_per_s"] > 0 and run["ratio_to_baseline"] > 0


def test_the_scaling_curve_moves_every_dossier_with_each_number_of_receiving_workers(
    figures: dict[str, Any],
) -> None:
    steps = figures["scaling"]
    assert [step["receiver"]["workers"] for step in steps] == figures["sizes"]["workers"]
    assert len(steps) >= 2
    for step in steps:
        dossiers = step["dossiers"]
        assert step["sent"] == step["imported_by_receiver"] == dossiers > 0
        assert step["receipts"] == {"imported": dossiers, "rejected": 0}
        assert step["cpu_ms_per_dossier"]["receiver"] > 0
        assert step["receiver"]["peak_mb_per_process"] > 0


def test_latency_is_measured_for_both_round_trips_at_every_rate(figures: dict[str, Any]) -> None:
    rows = figures["latency"]
    assert {(row["kind"], row["offered_per_s"]) for row in rows} == {
        (kind, rate)
        for kind in ("transfer-to-receipt", "request-to-response")
        for rate in (100.0, 200.0, 500.0)
    }
    for row in rows:
        assert row["sent"] > 0 and row["send_errors"] == 0
        assert row["answered"] + row["unanswered"] == row["sent"]
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["p999_ms"] <= row["max_ms"]


def test_the_bulk_run_migrates_every_dossier_between_two_processes(
    figures: dict[str, Any],
) -> None:
    bulk = figures["bulk"]
    assert bulk["sent"] == bulk["receipts"] == bulk["imported_by_receiver"] == bulk["dossiers"]
    assert bulk["seeding_included"] is False
    assert bulk["seconds"] > 0 and bulk["dossiers_per_s"] > 0
    assert bulk["sender"]["peak_mb"] > 0 and bulk["receiver"]["peak_mb"] > 0


def test_the_profile_gives_every_stage_its_cpu(figures: dict[str, Any]) -> None:
    stages = figures["stages"]
    assert stages["dossiers"] > 0
    for stage in PIPELINE_STAGES:
        assert stages["cpu_us_per_dossier"][stage] > 0
    assert math.isclose(sum(stages["share_of_pipeline"].values()), 1.0, abs_tol=0.01)


def test_every_budgeted_stage_gets_a_budget_and_a_verdict(figures: dict[str, Any]) -> None:
    stages = figures["stages"]
    budgeted = {PARSE, *LIBRARY_CALL}
    assert set(stages["budget_us_per_dossier"]) == set(stages["verdict"]) == budgeted
    assert stages["budget_us_per_dossier"][PARSE] == PARSE_BUDGET_US
    assert set(stages["verdict"].values()) <= {"met", "not met"}
    assert set(stages["verdict_tight_loop"]) == budgeted


def test_each_cryptographic_budget_rests_on_the_bare_library_call_of_the_same_run(
    figures: dict[str, Any],
) -> None:
    stages = figures["stages"]
    for where in ("library_us_per_dossier", "library_tight_loop_us_per_dossier"):
        assert set(stages[where]) == set(CALLS)
        assert all(value > 0 for value in stages[where].values())
    for stage, call in LIBRARY_CALL.items():
        expected = round(stages["library_us_per_dossier"][call] * LIBRARY_FACTOR, 1)
        assert stages["budget_us_per_dossier"][stage] == expected


def test_every_target_gets_a_verdict(figures: dict[str, Any]) -> None:
    names = {check["name"] for check in figures["targets"]}
    assert {
        "pipeline ocmwdata → fichesociale",
        "pipeline ocmwdata → fichesociale / bare relay",
        "request-to-response p99 at 200/s",
        "bulk migration of 240,000",
        "bulk sender node peak memory",
        "bulk receiver node peak memory",
    } <= names
    assert all(isinstance(check["pass"], bool) for check in figures["targets"])


def test_the_run_leaves_no_queue_and_no_folder_behind(
    figures: dict[str, Any], amqp_url: str
) -> None:
    namespace = figures["namespace"]
    queues = [f"{namespace}.baseline", f"{namespace}.stages"]
    queues += [f"{namespace}.inbox.{cpas_id}" for cpas_id in figures["cpas"].values()]
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        for queue in queues:
            channel = connection.channel()
            with pytest.raises(ChannelClosedByBroker):
                channel.queue_declare(queue, passive=True)
    finally:
        connection.close()
    assert not Path(figures["workdir"]).exists()
