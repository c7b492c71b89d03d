"""DSE-EXP-001 to DSE-EXP-004: what an export is, and whose."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.model.identifiers import make_niss

from .. import corpus
from .. import requirements as reqs
from ..context import Context, describe_exception
from ..outcomes import Failed, NotApplicable, NotJudged
from .observe import (
    GENERATED,
    HELD_FILE,
    NO_WAY_IN,
    OTHER_FILE,
    SEEDED_CASE,
    SEEDED_PEOPLE,
    Examination,
    as_dossier,
    case_round_trip,
    examine,
    fails_on_error,
    give_people,
    round_trip_owner,
    seedable,
)
from .registry import Case, Evidence, check, corpus_cases, one_case


def _export_cases() -> list[Case]:
    return [*corpus_cases(corpus.valid_files)(), GENERATED, SEEDED_CASE]


@dataclass(frozen=True)
class SeededExports:
    """The exports of seeded people: (person number, examination or failure)."""

    exports: tuple[tuple[str, Examination | Failed], ...]


def _seeded_exports(ctx: Context) -> SeededExports:
    """Seed a fresh adapter and export everyone (once per run), or say why it cannot be done."""
    if not ctx.has("seed"):
        if ctx.has("import"):
            raise NotApplicable("the adapter is not Seedable; the corpus cases check its exports")
        raise Failed(NO_WAY_IN)

    def observe() -> SeededExports | Failed:
        try:
            with ctx.fresh_adapter() as adapter:
                try:
                    numbers = list(seedable(adapter).seed(SEEDED_PEOPLE, seed=ctx.seed))
                except Exception as exc:
                    return fails_on_error("seed", exc)
                found: list[tuple[str, Examination | Failed]] = []
                for number in numbers:
                    try:
                        value = ctx.export(adapter, number)
                    except Exception as exc:
                        found.append((number, fails_on_error("export_dossier", exc)))
                        continue
                    if value is None:
                        found.append((number, Failed("a seeded person exports no dossier")))
                    else:
                        found.append((number, examine(value)))
                return SeededExports(tuple(found))
        except Failed as exc:
            return exc

    observed = ctx.cached(("seeded-exports",), observe)
    if isinstance(observed, Failed):
        raise observed
    return observed


def _judge_seeded(ctx: Context, *, rules: bool) -> Evidence:
    try:
        observed = _seeded_exports(ctx)
    except Failed:
        if rules:  # seeding or exporting failed: DSE-EXP-001 reports it
            raise NotJudged("the seeded people could not be exported", by=reqs.EXP_001.id) from None
        raise
    for number, exam in observed.exports:
        if isinstance(exam, Failed):
            if rules:
                raise NotJudged("a seeded person could not be exported", by=reqs.EXP_001.id)
            raise Failed(f"seeded person {number}: {exam.message}", exam.evidence)
        if exam.xsd_problem is not None:
            if rules:
                raise NotJudged("a seeded export is not valid against the XSD", by=reqs.EXP_001.id)
            raise Failed(f"seeded person {number}: {exam.xsd_problem}", {"person": number})
        if rules and exam.rules_problem is not None:
            raise Failed(f"seeded person {number}: {exam.rules_problem}", {"person": number})
    return {"exports": len(observed.exports)}


def _corpus_export(ctx: Context, case: Case) -> Examination:
    if not ctx.has("import"):
        raise NotApplicable(
            "the corpus cases import the file first and the adapter declares no 'import' "
            "capability; the seeded-people case checks its exports"
        )
    trip = case_round_trip(ctx, case)
    if trip.failure is not None or trip.exam is None:
        raise NotJudged("the import or export failed", by=round_trip_owner(case))
    return trip.exam


@check(reqs.EXP_001, _export_cases)
def export_validates_against_xsd(ctx: Context, case: Case) -> Evidence:
    """The export of the case's dossier (or of seeded people) validates against the XSD."""
    if case.param == SEEDED_CASE.param:
        return _judge_seeded(ctx, rules=False)
    exam = _corpus_export(ctx, case)
    if exam.xsd_problem is not None:
        raise Failed(exam.xsd_problem, {"file": case.param})
    return {"bytes": len(exam.xml or b"")}


@check(reqs.EXP_002, _export_cases)
def export_keeps_rules_beyond_xsd(ctx: Context, case: Case) -> Evidence:
    """The valid export parses back through the model's checks."""
    if case.param == SEEDED_CASE.param:
        return _judge_seeded(ctx, rules=True)
    exam = _corpus_export(ctx, case)
    if exam.xsd_problem is not None:
        raise NotJudged("the export is not valid against the XSD", by=reqs.EXP_001.id)
    if exam.rules_problem is not None:
        raise Failed(exam.rules_problem, {"file": case.param})
    return {}


# -------------------------------------------------------------- DSE-EXP-003


def _unknown_number(ctx: Context, kind: str) -> str:
    """A check-digit-valid number nobody in the run holds, drawn from the run's seed."""
    template = make_niss(dt.date(1961, 4, 23), 517, bis_offset=40 if kind == "bis" else 0)
    return ctx.people.person_number(template, f"unknown-{kind}")


@check(
    reqs.EXP_003,
    lambda: (
        Case("empty-store-niss", "a NISS, asked of an empty store", "niss"),
        Case("empty-store-bis", "a BIS number, asked of an empty store", "bis"),
        Case("someone-else-held", "a NISS, asked of a store holding someone else", "held"),
    ),
)
def unknown_person_gives_none(ctx: Context, case: Case) -> Evidence:
    """A check-digit-valid number nobody holds exports ``None``."""
    number = _unknown_number(ctx, "bis" if case.param == "bis" else "niss")
    with ctx.fresh_adapter() as adapter:
        if case.param == "held":
            give_people(ctx, adapter, [ctx.dossier(HELD_FILE)])
        try:
            value = ctx.export(adapter, number)
        except Exception as exc:
            raise Failed(
                f"export_dossier raised {type(exc).__name__} for a person it does not hold; "
                "it must return None",
                {"person": number, **describe_exception(exc)},
            ) from exc
    if value is not None:
        raise Failed(
            f"export_dossier returned {type(value).__name__} for a person it does not hold",
            {"person": number},
        )
    return {"person": number}


# -------------------------------------------------------------- DSE-EXP-004


@check(reqs.EXP_004, one_case("source-is-own-cpas", "a dossier received from another CPAS"))
def export_names_own_cpas(ctx: Context, case: Case) -> Evidence:
    """``source.cpas_id`` of an export is the CPAS the adapter serves."""
    received = ctx.dossier(HELD_FILE)
    with ctx.fresh_adapter() as adapter:
        number = give_people(ctx, adapter, [received])[0]
        try:
            value = ctx.export(adapter, number)
        except Exception as exc:
            raise fails_on_error("export_dossier", exc) from exc
    if value is None:
        raise Failed("export_dossier gave no dossier for a person it holds", {"person": number})
    # The source is judged as the adapter wrote it: whether the rest of the
    # export is valid is DSE-EXP-001/002's business, not this requirement's.
    dossier = as_dossier(value)
    evidence = {"expected": ctx.cpas_id, "actual": dossier.source.cpas_id}
    if dossier.source.cpas_id != ctx.cpas_id:
        raise Failed(
            f"the export names {dossier.source.cpas_id} as source, not the adapter's "
            f"own CPAS {ctx.cpas_id}",
            evidence | {"receivedFrom": received.source.cpas_id},
        )
    return evidence


# -------------------------------------------------------------- DSE-EXP-005


@check(
    reqs.EXP_005,
    one_case("passed-on", "two dossiers received from two other CPAS, exported again"),
)
def passed_on_under_own_reference(ctx: Context, case: Case) -> Evidence:
    """A received dossier is passed on under the exporting CPAS's case reference and contact."""
    received = [ctx.dossier(HELD_FILE), ctx.dossier(OTHER_FILE)]
    with ctx.fresh_adapter() as adapter:
        give_people(ctx, adapter, received)
        exports = []
        for dossier in received:
            try:
                value = ctx.export(adapter, dossier.person.number)
            except Exception as exc:
                raise fails_on_error("export_dossier of a person received", exc) from exc
            if value is None:
                raise Failed("export_dossier gave no dossier for a person it holds")
            exports.append(as_dossier(value))
    evidence: Evidence = {
        "received": [
            {
                "caseReference": item.source.case_reference,
                "mailbox": item.source.contact.mailbox,
                "phone": item.source.contact.phone,
            }
            for item in received
        ],
        "exported": [
            {
                "caseReference": item.source.case_reference,
                "mailbox": item.source.contact.mailbox,
                "phone": item.source.contact.phone,
            }
            for item in exports
        ],
    }
    for sent, got in zip(received, exports, strict=True):
        if got.source.case_reference == sent.source.case_reference:
            raise Failed(
                f"the dossier is passed on under its sender's case reference "
                f"{sent.source.case_reference!r}, not the exporting CPAS's own",
                evidence,
            )
        contact, theirs = got.source.contact, sent.source.contact
        if contact.mailbox == theirs.mailbox or (
            theirs.phone is not None and contact.phone == theirs.phone
        ):
            raise Failed(
                f"the dossier is passed on with its sender's contact point "
                f"{theirs.mailbox!r}, not the exporting CPAS's own",
                evidence,
            )
    if exports[0].source.contact != exports[1].source.contact:
        raise Failed(
            "two exports of one CPAS give two different contact points: the contact must be "
            "the exporting CPAS's own, whoever sent the dossier",
            evidence,
        )
    return evidence
