"""How fast an adapter exports and imports, against published thresholds.

Speed is graded, never failed: a conformant adapter may be slow, and the
report says so with the grade *warning* (DSE-PRF-001). Every export and
import is timed under the case that made it; each case's median (p50) and
95th percentile (p95) are compared with :data:`THRESHOLDS`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any, Final

DEFAULT_THRESHOLDS: Final = {"export": 0.2, "import": 0.2, "batch": 1.0}
"""p95 of one call, in seconds, for a dossier of ordinary size (a batch: a few of them)."""

THRESHOLDS: Final[Mapping[str, Mapping[str, float]]] = {
    "history-200-decisions": {"export": 0.5, "import": 0.5, "batch": 1.0},
    "history-1000-decisions": {"export": 2.0, "import": 2.0, "batch": 2.0},
}
"""Thresholds (p95, seconds) of the cases whose dossiers are long, by case id."""


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted samples."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def timing_summary(samples: list[float]) -> dict[str, Any]:
    """Count, mean, median, 95th percentile (nearest rank) and maximum, in milliseconds."""
    if not samples:
        return {"count": 0}
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "meanMs": round(statistics.fmean(ordered) * 1000, 3),
        "p50Ms": round(percentile(ordered, 0.5) * 1000, 3),
        "p95Ms": round(percentile(ordered, 0.95) * 1000, 3),
        "maxMs": round(ordered[-1] * 1000, 3),
    }


def threshold(case_id: str, operation: str) -> float:
    """The p95 threshold, in seconds, of ``operation`` in the case ``REQ/case``."""
    case = case_id.rsplit("/", 1)[-1]
    return THRESHOLDS.get(case, DEFAULT_THRESHOLDS)[operation]


def per_case(case_timings: Mapping[str, Mapping[str, list[float]]]) -> list[dict[str, Any]]:
    """Each case's timings with its thresholds and whether it keeps within them."""
    rows = []
    for case_id, operations in case_timings.items():
        for operation, samples in operations.items():
            if not samples or not case_id:
                continue
            summary = timing_summary(samples)
            limit = threshold(case_id, operation)
            rows.append(
                {
                    "case": case_id,
                    "operation": operation,
                    **summary,
                    "thresholdP95Ms": round(limit * 1000, 3),
                    "withinThreshold": summary["p95Ms"] <= limit * 1000,
                }
            )
    return rows
