"""Round trips at fixed offered rates, open loop.

A paced sender issues message *i* at ``t0 + i / rate`` whatever happened to
the previous ones, and each latency is measured from that *intended* time,
not from when the send call actually ran: when the sender falls behind, the
delay counts (no coordinated omission). The round trip ends when the sender
records the message's fate: the receipt of a transfer (the receiver
imported it), or the answer to a request (the dossier is imported into the
asker's vendor system).

Gent's node (OCMWdata) runs in this process; Liège's (FicheSociale) runs in
its own process and answers requests automatically. Answers that never come
within the drain time are counted and enter the percentiles at the drain
deadline (a lower bound of their latency).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from bench.harness import FICHESOCIALE, GENT, LIEGE, OCMWDATA, Bench, TimedStore
from bench.stats import percentile, rate
from gateway.model.envelope import Purpose
from gateway.model.errors import GatewayError
from gateway.node import Node

TRANSFER = "transfer-to-receipt"
REQUEST = "request-to-response"
DRAIN_SECONDS = 15.0
WARM_UP = 50
"""Messages sent before each kind of run, not recorded: connections, caches, the parser."""


@dataclass(frozen=True)
class _Run:
    node: Node
    store: TimedStore
    to: str
    kind: str
    pool: list[str]


def _paced(run: _Run, offered: float, count: int, *, first: int) -> dict[str, Any]:
    """Send ``count`` messages at ``offered`` per second; return the latency figures."""
    before = len(run.store.outcome_times)
    intended: dict[str, float] = {}
    errors = 0
    start = time.monotonic() + 0.01
    for i in range(count):
        due = start + i / offered
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        number = run.pool[(first + i) % len(run.pool)]
        try:
            if run.kind == TRANSFER:
                sent = run.node.send_transfer(number, run.to, Purpose.CONTINUITY_AFTER_MOVE)
            else:
                sent = run.node.send_request(
                    number,
                    run.to,
                    Purpose.NEW_APPLICATION_INQUIRY,
                    f"BENCH/{first + i:07d}",
                )
        except GatewayError:
            errors += 1
            continue
        intended[sent.message_id] = due
    last_send = time.monotonic()
    run.store.wait_outcomes(before + len(intended), DRAIN_SECONDS)
    deadline = time.monotonic()
    latencies = [
        (run.store.outcome_times.get(mid, deadline) - due) * 1e3 for mid, due in intended.items()
    ]
    answered = sum(1 for mid in intended if mid in run.store.outcome_times)
    return {
        "kind": run.kind,
        "offered_per_s": offered,
        "sent": len(intended),
        "send_errors": errors,
        "achieved_per_s": round(rate(len(intended), last_send - start), 1),
        "answered": answered,
        "unanswered": len(intended) - answered,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "p999_ms": round(percentile(latencies, 99.9), 2),
        "max_ms": round(max(latencies, default=float("nan")), 2),
    }


def run_latency(
    bench: Bench,
    *,
    rates: list[float],
    seconds: dict[float, float],
    pool_size: int,
) -> list[dict[str, Any]]:
    """Both kinds of round trip at each rate, for ``seconds[rate]`` each."""
    bench.seed(OCMWDATA, GENT, pool_size)
    answers = bench.seed(FICHESOCIALE, LIEGE, pool_size, seed=2)
    peer = bench.peer(LIEGE, FICHESOCIALE)
    node, store = bench.local_node(GENT, OCMWDATA)
    own = node.adapter.list_person_numbers()  # type: ignore[attr-defined]
    rng = random.Random(11)
    results: list[dict[str, Any]] = []
    sent = 0
    try:
        for kind, pool in ((TRANSFER, own), (REQUEST, answers)):
            run = _Run(node, store, bench.cpas_id(LIEGE), kind, rng.sample(pool, len(pool)))
            _paced(run, 100.0, WARM_UP, first=sent)
            sent += WARM_UP
            for offered in rates:
                count = max(1, round(offered * seconds[offered]))
                results.append(_paced(run, offered, count, first=sent))
                sent += count
    finally:
        bench.stop_node(node)
        bench.stop_peer(peer)
    return results
