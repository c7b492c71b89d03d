"""What an operator (and the tests) read of a node: its counters and its health."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the import latency histogram."""


@dataclass
class NodeStats:
    """Counters an operator (and the tests) can read."""

    counts: Counter[str] = field(default_factory=Counter)
    import_seconds: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    """Imports per latency bucket (:data:`LATENCY_BUCKETS`, then the rest)."""
    import_seconds_sum: float = 0.0

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def observe_import(self, seconds: float, n: int = 1) -> None:
        """``n`` dossiers imported, each in ``seconds`` (a batch's time shared out)."""
        bucket = next((i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b), -1)
        self.import_seconds[bucket] += n
        self.import_seconds_sum += seconds * n

    def __getitem__(self, name: str) -> int:
        return self.counts[name]


@dataclass(frozen=True)
class Health:
    """How the node is doing: ``ok``, or what it waits for, or why it stopped."""

    status: str
    """``ok``, ``store unavailable``, ``vendor system unavailable``, ``broker unavailable``
    or ``failed``."""
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"
