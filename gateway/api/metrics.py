"""The node's metrics in the Prometheus text format, read from the node at each scrape.

Durable counts (messages by direction, type and outcome; held requests;
outbox depth) come from the store, so they survive a restart; the counters of
this process (dead letters, events, import latency) from
:class:`~gateway.node.NodeStats`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway.node import LATENCY_BUCKETS, Node


class NodeCollector(Collector):
    """One scrape: what the node's store and counters say now."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node, store = self.node, self.node.store
        messages = GaugeMetricFamily(
            "cpas_gateway_messages",
            "Messages by direction, type and outcome (out: unconfirmed, confirmed or the "
            "recorded outcome).",
            labels=["direction", "type", "outcome"],
        )
        depth = 0
        for (kind, state), n in sorted(store.outbox_counts().items()):
            messages.add_metric(["out", kind, state], n)
            depth += n if state == "unconfirmed" else 0
        for (kind, outcome), n in sorted(store.inbox_counts().items()):
            messages.add_metric(["in", kind, outcome], n)
        yield messages
        yield GaugeMetricFamily(
            "cpas_gateway_outbox_depth",
            "Messages recorded in the outbox that the broker has yet to confirm.",
            value=depth,
        )
        yield GaugeMetricFamily(
            "cpas_gateway_held_requests",
            "Requests waiting for a social worker's decision.",
            value=len(store.held()),
        )
        yield CounterMetricFamily(
            "cpas_gateway_dead_letters",
            "Messages this node refused and filed in its dead-letter queue (this process).",
            value=node.stats["dead_lettered"],
        )
        events = CounterMetricFamily(
            "cpas_gateway_events",
            "What this process did, by event (sent.transfer, imported, refused...).",
            labels=["event"],
        )
        for name, n in sorted(node.stats.counts.items()):
            events.add_metric([name], n)
        yield events
        stats = node.stats
        buckets, total = [], 0
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), stats.import_seconds, strict=True):
            total += n
            buckets.append(("+Inf" if bound == float("inf") else str(bound), total))
        yield HistogramMetricFamily(
            "cpas_gateway_import_seconds",
            "Time the vendor system took to import one dossier.",
            buckets=buckets,
            sum_value=stats.import_seconds_sum,
        )


def metrics_text(node: Node) -> tuple[bytes, str]:
    """The node's metrics and their media type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return generate_latest(registry), CONTENT_TYPE_LATEST
