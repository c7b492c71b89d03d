"""DSE-RTR-001, DSE-TXT-001, DSE-VOL-001: what goes in comes back out."""

from __future__ import annotations

import unicodedata
from typing import Final

from .. import corpus
from .. import requirements as reqs
from ..context import Context
from ..outcomes import Failed, NotJudged
from .observe import (
    GENERATED,
    NAME_FIELDS,
    as_dossier,
    case_round_trip,
    difference_evidence,
    differences,
    fails_on_error,
    history_differences,
    judged,
    round_trip,
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


def _all_code_points(text: str) -> str:
    """Every character as its code point: two spellings that look alike are told apart."""
    return " ".join(f"U+{ord(ch):04X}" for ch in text)


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
        shown = (_all_code_points(first[0]), _all_code_points(first[1]))
        if unicodedata.normalize("NFC", first[0]) == unicodedata.normalize("NFC", first[1]):
            how = "the same letters in another Unicode composition"
        else:
            how = "other characters"
        raise Failed(
            f"the name {first[0]!r} ({shown[0]}) came back as {first[1]!r} ({shown[1]}): {how}",
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
        sent, returned = len(trip.source.aid_history), len(exported.aid_history)
        changed = sum(1 for item in found if "expected" in item)
        if returned != sent:
            message = f"the history of {sent} decisions came back with {returned}"
        else:
            message = (
                f"all {sent} decisions came back, but {changed} of their fields differ, "
                f"first {found[0]['field']}"
            )
        raise Failed(message, evidence | difference_evidence(found))
    return evidence


# -------------------------------------------------------------- DSE-TZN-001

ZONES: Final = ("Europe/Brussels", "Pacific/Auckland", "America/Los_Angeles")
"""Zones east and west of UTC, far enough apart that local midnight is another UTC day."""

ZONE_FILES: Final = (
    "everything-present.xml",
    "niss-born-1999-12-31.xml",
    "niss-born-2000-01-01.xml",
    "history-every-status.xml",
)
"""Dates at the edges of a day, a year and a century, and every status's periods."""


@check(
    reqs.TZN_001,
    lambda: [
        Case(zone.replace("/", "-").lower(), f"round trips with the local zone {zone}", zone)
        for zone in ZONES
    ],
)
def dates_survive_time_zones(ctx: Context, case: Case) -> Evidence:
    """Round trips under a non-UTC local zone give back what they give in UTC.

    Compared with the same file's round trip in the host's own zone (DSE-RTR-001's),
    so that only what the zone changes is judged here.
    """
    checked = []
    for name in ZONE_FILES:
        reference = round_trip(ctx, name, lambda name=name: ctx.dossier(name))
        if reference.failure is not None or reference.exam is None:
            raise NotJudged("the round trip fails in the host's own zone", by=reqs.RTR_001.id)
        at_home = as_dossier(reference.value)
        source = reference.source
        with ctx.time_zone(case.param), ctx.fresh_adapter() as adapter:
            try:
                ctx.import_(adapter, source)
                value = ctx.export(adapter, source.person.number)
            except Exception as exc:
                raise fails_on_error(f"a round trip under {case.param}", exc) from exc
        if value is None:
            raise Failed(f"under {case.param}, a person just imported exports nothing")
        # Compared as the adapter wrote it: a shifted birth date no longer
        # matches the person's number, which the model would refuse first.
        found = differences(at_home, as_dossier(value, what=f"the export under {case.param}"))
        if found:
            raise Failed(
                f"under the local zone {case.param}, {len(found)} field(s) came back "
                f"otherwise than in the host's zone, first {found[0]['field']}",
                {"zone": case.param, **difference_evidence(found)},
            )
        checked.append(len(source.aid_history))
    return {"zone": case.param, "dossiers": len(checked), "decisions": sum(checked)}
