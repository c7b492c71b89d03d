"""The bulk migration: a whole caseload from one vendor to the other, two node processes.

Charleroi's node (OCMWdata) sends every person its vendor system holds to
Bruxelles's node (FicheSociale), as a merger or a change of vendor would.
Both nodes are processes of their own, started from the node configuration
files an operator writes: the receiver is ``cpas-gateway run --config``, the
sender :mod:`bench.runner` (``send_all`` as ``cpas-gateway send --all`` does,
then waiting for every receipt).

Seeding the sender's vendor system is *excluded* from the wall time (it is
timed and reported apart, and done before either node starts, so it does not
count in their memory either). The wall time runs from the sender's first
export to its last receipt. Peak memory is each process's ``VmHWM``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress, TaskID

from bench.harness import (
    BRUXELLES,
    CHARLEROI,
    FICHESOCIALE,
    OCMWDATA,
    Bench,
    child_environment,
    follow,
    spawn,
)
from bench.stats import rate

REPOSITORY = Path(__file__).resolve().parent.parent


def run_bulk(bench: Bench, count: int, *, progress: Progress | None = None) -> dict[str, Any]:
    """Migrate ``count`` dossiers; return wall time, rate and each node's peak memory."""
    on_chunk = None
    if progress is not None:
        seeding_task = progress.add_task("seeding OCMWdata (not timed)", total=count)
        on_chunk = lambda people: progress.update(seeding_task, completed=people)  # noqa: E731
    seeding = time.monotonic()
    bench.seed(OCMWDATA, CHARLEROI, count, seed=3, on_chunk=on_chunk)
    seeding = time.monotonic() - seeding

    receiver = bench.peer(BRUXELLES, FICHESOCIALE)
    config = bench.node_config(CHARLEROI, OCMWDATA)
    env = child_environment(bench.amqp_url)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH")]))
    lines: list[str] = []
    sender = spawn(
        [
            sys.executable,
            "-m",
            "bench.runner",
            "--config",
            str(config),
            "--to",
            bench.cpas_id(BRUXELLES),
        ],
        env=env,
        stderr_to=config.with_name("runner.stderr"),
    )
    follow(sender, lines)
    tasks: dict[str, TaskID] = {}
    if progress is not None:
        tasks["sent"] = progress.add_task("exported, sealed, sent", total=count)
        tasks["receipts"] = progress.add_task("imported, receipt back", total=count)
    done: dict[str, Any] | None = None
    read = 0
    try:
        while done is None and (sender.poll() is None or read < len(lines)):
            receiver.sample_peak()
            while read < len(lines):
                event = _event(lines[read])
                read += 1
                if event is None:
                    continue
                if event["event"] == "done":
                    done = event
                elif progress is not None:
                    progress.update(tasks["sent"], completed=event["exported"])
                    progress.update(tasks["receipts"], completed=event["receipts"])
            time.sleep(0.2)
        sender.wait(120)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
        counts = bench.stop_peer(receiver)
    if done is None:
        raise RuntimeError(f"the sending node ended without a report (exit {sender.returncode})")
    if progress is not None:
        progress.update(tasks["sent"], completed=done["sent"])
        progress.update(tasks["receipts"], completed=done["receipts"])
    seconds = done["last_receipt"] - done["started"]
    return {
        "dossiers": count,
        "sent": done["sent"],
        "receipts": done["receipts"],
        "imported_by_receiver": counts.get("imported", 0),
        "seconds": round(seconds, 2),
        "send_seconds": round(done["handed_over"] - done["started"], 2),
        "dossiers_per_s": round(rate(done["receipts"], seconds), 1),
        "seeding_seconds": round(seeding, 2),
        "seeding_included": False,
        "sender": {"cpas": bench.town(CHARLEROI), "adapter": OCMWDATA, "peak_mb": done["peak_mb"]},
        "receiver": {
            "cpas": bench.town(BRUXELLES),
            "adapter": FICHESOCIALE,
            "peak_mb": receiver.peak_mb,
        },
    }


def _event(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
