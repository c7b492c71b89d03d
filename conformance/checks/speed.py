"""DSE-PRF-001: export and import times per case, against published thresholds (a warning)."""

from __future__ import annotations

from .. import requirements as reqs
from ..context import Context
from ..outcomes import Warned
from ..speed import per_case
from .registry import Case, Evidence, check, one_case


@check(reqs.PRF_001, one_case("every-case", "p50 and p95 of every case of the run"))
def within_published_times(ctx: Context, case: Case) -> Evidence:
    """Each case's p95 within its threshold; over it is a warning, never a failure."""
    rows = per_case({key: value for key, value in ctx.case_timings.items() if key != ctx.case_id})
    over = [row for row in rows if not row["withinThreshold"]]
    evidence: Evidence = {"cases": len(rows), "overThreshold": len(over), "slowest": over[:10]}
    if over:
        first = over[0]
        raise Warned(
            f"{len(over)} of {len(rows)} case timings over the published thresholds; first "
            f"{first['case']}: {first['operation']} p95 {first['p95Ms']:.0f} ms "
            f"(threshold {first['thresholdP95Ms']:.0f} ms)",
            evidence,
        )
    return evidence
