"""The full pipeline, end to end: one vendor's system to another's, receipts back.

The sender is a node in this process; its vendor system is seeded first
(seeding is timed apart and not part of the rate). The receiver is another
CPAS's node in its own process (``cpas-gateway run --config``). The clock
starts when the sender starts :meth:`~gateway.node.Node.send_all` (listing,
exporting, sealing and signing, recording in the outbox, publishing) and
stops when the sender records the last receipt: every dossier was imported
by the receiving vendor and its signed receipt verified by the sender.

CPU time is read for the sender (this process), the receiver (its process,
or all of them with ``--workers``) and the broker (its Erlang VM), so the
cost of a dossier can be split between the three.

The scaling curve (:func:`run_scaling`) runs the same pipeline with the
receiving node as 1, 2, 4... worker processes (``cpas-gateway run
--workers N``), the sender's vendor system topped up before each step.
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Bench, CpuMeter
from bench.stats import rate
from gateway.model.envelope import Purpose


def run_pipeline(
    bench: Bench,
    *,
    sender: tuple[str, str],
    receiver: tuple[str, str],
    count: int,
    timeout: float | None = None,
    workers: int = 1,
    sent_before: int = 0,
) -> dict[str, Any]:
    """Move ``count`` dossiers from ``sender`` to ``receiver`` (each a NIS code and an adapter).

    :param workers: the receiving node's processes (``run --workers``).
    :param sent_before: dossiers this sender already sent to this receiver in
        the run (a bulk send skips them): the vendor system is seeded up to
        that many and ``count`` more.
    """
    (sender_nis, sender_adapter), (receiver_nis, receiver_adapter) = sender, receiver
    seeding = time.monotonic()
    bench.seed(sender_adapter, sender_nis, sent_before + count)
    seeding = time.monotonic() - seeding
    peer = bench.peer(receiver_nis, receiver_adapter, workers=workers)
    node, store = bench.local_node(sender_nis, sender_adapter)
    try:
        meter = CpuMeter(peer_pids=peer.pids).start()
        started = time.monotonic()
        sent = node.send_all(bench.cpas_id(receiver_nis), Purpose.CONTINUITY_AFTER_MOVE)
        handed_over = time.monotonic()
        complete = store.wait_outcomes(len(sent), timeout or max(120.0, count / 20))
        finished = max(store.outcome_times.values(), default=time.monotonic())
        cpu = meter.used()
    finally:
        bench.stop_node(node)
        peak = peer.sample_peak()
        counts = bench.stop_peer(peer)
    # Read once the node has stopped: it records an outcome just before counting it.
    receipts = {
        "imported": node.stats["receipts.imported"],
        "rejected": node.stats["receipts.rejected"],
    }
    seconds = finished - started
    return {
        "direction": f"{sender_adapter} → {receiver_adapter}",
        "sender": {"cpas": bench.town(sender_nis), "adapter": sender_adapter},
        "receiver": {
            "cpas": bench.town(receiver_nis),
            "adapter": receiver_adapter,
            "workers": workers,
            "peak_mb_per_process": None if peak is None else round(peak, 1),
        },
        "dossiers": count,
        "sent": len(sent),
        "receipts": receipts,
        "imported_by_receiver": counts.get("imported", 0),
        "complete": complete,
        "seeding_seconds": round(seeding, 2),
        "send_seconds": round(handed_over - started, 3),
        "seconds": round(seconds, 3),
        "dossiers_per_s": round(rate(receipts["imported"], seconds), 1),
        "cpu_ms_per_dossier": {
            party: None if used is None or not sent else round(used / len(sent) * 1e3, 3)
            for party, used in cpu.items()
        },
    }


def run_scaling(
    bench: Bench,
    *,
    sender: tuple[str, str],
    receiver: tuple[str, str],
    count: int,
    workers: list[int],
    sent_before: int = 0,
) -> list[dict[str, Any]]:
    """The pipeline with the receiving node as each number of ``workers`` in turn.

    :param sent_before: dossiers this pair already moved earlier in the run.
    """
    return [
        run_pipeline(
            bench,
            sender=sender,
            receiver=receiver,
            count=count,
            workers=n,
            sent_before=sent_before + step * count,
        )
        for step, n in enumerate(workers)
    ]
