"""DSE-RTR-001, DSE-TXT-001, DSE-VOL-001: what goes in comes back out."""

from __future__ import annotations

from .. import corpus
from .. import requirements as reqs
from ..context import Context
from ..outcomes import Failed, NotJudged
from .observe import (
    GENERATED,
    NAME_FIELDS,
    case_round_trip,
    difference_evidence,
    differences,
    history_differences,
    judged,
)
from .registry import Case, Evidence, check, corpus_cases


@check(reqs.RTR_001, corpus_cases(corpus.valid_files))
def round_trip_keeps_content(ctx: Context, case: Case) -> Evidence:
    """Import then export gives back the same canonical content."""
    trip = case_round_trip(ctx, case)
    exported = judged(trip.examined())
    found = differences(trip.source, exported)
    only_names = bool(found) and {item["field"] for item in found} <= NAME_FIELDS
    if only_names and case.param in {item.name for item in corpus.special_name_files()}:
        raise NotJudged("only the names differ", by=reqs.TXT_001.id)
    if found:
        raise Failed(
            f"{len(found)} difference(s) after import and export, first in {found[0]['field']}",
            difference_evidence(found),
        )
    return {
        "decisions": len(trip.source.aid_history),
        "importMs": round(trip.seconds[0] * 1000, 2),
        "exportMs": round(trip.seconds[1] * 1000, 2),
    }


# -------------------------------------------------------------- DSE-TXT-001


def _code_points(text: str) -> str:
    return " ".join(f"U+{ord(ch):04X}" for ch in text if not ch.isascii())


@check(reqs.TXT_001, corpus_cases(corpus.special_name_files))
def names_keep_every_character(ctx: Context, case: Case) -> Evidence:
    """Family and given names come back code point by code point."""
    trip = case_round_trip(ctx, case)
    if trip.failure is not None or trip.exam is None:
        raise NotJudged("the import or export failed", by=reqs.RTR_001.id)
    exported = judged(trip.exam)
    expected = [trip.source.person.family_name, *trip.source.person.given_names]
    actual = [exported.person.family_name, *exported.person.given_names]
    if expected != actual:
        first = next(
            ((left, right) for left, right in zip(expected, actual, strict=False) if left != right),
            (" ".join(expected), " ".join(actual)),
        )
        raise Failed(
            f"the name {first[0]!r} came back as {first[1]!r}",
            {
                "expected": expected,
                "actual": actual,
                "expectedBeyondAscii": _code_points(first[0]),
                "actualBeyondAscii": _code_points(first[1]),
            },
        )
    beyond = sorted({ch for name in expected for ch in name if not ch.isascii()})
    return {"names": expected, "charactersBeyondAscii": len(beyond)}


# -------------------------------------------------------------- DSE-VOL-001


@check(
    reqs.VOL_001,
    lambda: (
        Case(
            corpus.LARGE_HISTORY_FILE.removesuffix(".xml"),
            "the corpus's 200-decision history",
            corpus.LARGE_HISTORY_FILE,
        ),
        GENERATED,
    ),
)
def long_histories_come_back_whole(ctx: Context, case: Case) -> Evidence:
    """Every decision of a long history comes back, equal."""
    trip = case_round_trip(ctx, case)
    exported = judged(trip.examined())
    found = history_differences(trip.source, exported)
    evidence = {
        "decisions": len(trip.source.aid_history),
        "returned": len(exported.aid_history),
        "importMs": round(trip.seconds[0] * 1000, 2),
        "exportMs": round(trip.seconds[1] * 1000, 2),
    }
    if found:
        raise Failed(
            f"the history of {len(trip.source.aid_history)} decisions came back with "
            f"{len(exported.aid_history)}",
            evidence | difference_evidence(found),
        )
    return evidence
