"""What the checks share: examining exports, round trips, comparisons, giving people.

Observations several requirements judge are made once per run through
:meth:`~cpas_conformance.context.Context.cached`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from gateway.adapters import Adapter, Inspectable, PlantsSensitiveData, Seedable
from gateway.model import hardened_xml
from gateway.model.dossier import Dossier
from gateway.model.errors import GatewayError

from .. import corpus
from .. import requirements as reqs
from ..context import Context, describe_exception
from ..outcomes import Failed, NotJudged
from .registry import Case, Evidence

SEEDED_PEOPLE: Final = 20
"""How many seeded people the ``seeded-people`` case exports."""


NAME_FIELDS: Final = frozenset({"person.family_name", "person.given_names"})

MAX_DIFFERENCES: Final = 5
"""Differences quoted in evidence; the count says how many there were."""

NO_WAY_IN: Final = (
    "the suite cannot give this adapter anyone to export: it declares no 'import' "
    "capability and does not implement Seedable (an export-only adapter must be Seedable "
    "to be certified)"
)

SEEDED_CASE: Final = Case(
    "seeded-people", f"{SEEDED_PEOPLE} people put in by Seedable.seed", "seeded"
)
"""The case of DSE-EXP-001/002 exporting seeded people (the only one an export-only adapter has)."""

GENERATED_CASE: Final = f"history-{corpus.MAX_DECISIONS}-decisions"
GENERATED: Final = Case(
    GENERATED_CASE,
    f"a generated history of {corpus.MAX_DECISIONS} decisions, the schema's maximum",
    GENERATED_CASE,
)
"""The case, beyond the corpus, of a history as long as the schema allows."""

# Corpus files the checks put into stores: every optional element present, a
# family with children (someone else to hold), and a person with a BIS number.
HELD_FILE: Final = "everything-present.xml"
OTHER_FILE: Final = "household-family-dependants.xml"
BIS_FILE: Final = "bis-number-sex-known.xml"


def seedable(adapter: Adapter) -> Seedable:
    """The adapter as :class:`Seedable` (callers checked ``ctx.has("seed")``)."""
    return cast(Seedable, adapter)


def inspectable(adapter: Adapter) -> Inspectable:
    """The adapter as :class:`Inspectable` (callers checked ``ctx.has("inspect")``)."""
    return cast(Inspectable, adapter)


def planter(adapter: Adapter) -> PlantsSensitiveData:
    """The adapter as :class:`PlantsSensitiveData` (callers checked ``ctx.has("plant")``)."""
    return cast(PlantsSensitiveData, adapter)


def fails_on_error(doing: str, exc: Exception) -> Failed:
    """An exception raised by the adapter while ``doing`` something that must succeed."""
    return Failed(f"{doing} raised {type(exc).__name__}: {exc}", describe_exception(exc))


@dataclass(frozen=True)
class Examination:
    """An export as the receiving CPAS sees it.

    :param xml: the bytes that travel (``Dossier.to_xml``), when it could be serialised.
    :param xsd_problem: why it is not a document valid against the XSD, if it is not.
    :param rules_problem: which rule beyond the XSD it breaks, if one.
    :param dossier: the dossier the receiver reads back from the XML, when valid.
    """

    xml: bytes | None
    xsd_problem: str | None = None
    rules_problem: str | None = None
    dossier: Dossier | None = None


def examine(value: object) -> Examination:
    """Serialise an export and read it back as a receiving node does."""
    if not isinstance(value, Dossier):
        return Examination(None, f"export_dossier returned {type(value).__name__}, not a Dossier")
    try:
        # The base class's serialiser, whatever the adapter returned: a
        # subclass must not get to choose the bytes that travel.
        xml = Dossier.to_xml(value)
    except Exception as exc:
        return Examination(None, f"the dossier cannot be serialised ({type(exc).__name__}: {exc})")
    try:
        root = hardened_xml.parse(xml)
        hardened_xml.validate(root, "dossier.xsd")
    except GatewayError as exc:
        return Examination(xml, f"[{exc.code}] {exc.message}")
    try:
        return Examination(xml, dossier=Dossier.from_element(root))
    except GatewayError as exc:
        return Examination(xml, rules_problem=f"[{exc.code}] {exc.message}")


def judged(exam: Examination, *, what: str = "the export") -> Dossier:
    """The dossier of a valid export, or :class:`NotJudged` naming the requirement it broke."""
    if exam.xsd_problem is not None:
        raise NotJudged(f"{what} is not valid against the XSD", by=reqs.EXP_001.id)
    if exam.rules_problem is not None or exam.dossier is None:
        raise NotJudged(f"{what} breaks a rule beyond the XSD", by=reqs.EXP_002.id)
    return exam.dossier


def as_dossier(value: object, *, what: str = "the export") -> Dossier:
    """An export as the adapter wrote it, valid or not; :class:`NotJudged` if not a Dossier."""
    if not isinstance(value, Dossier):
        raise NotJudged(f"{what} is not a Dossier", by=reqs.EXP_001.id)
    return value


@dataclass(frozen=True)
class RoundTrip:
    """One dossier imported into a fresh adapter and exported again.

    :param source: the dossier imported.
    :param result: what ``import_dossier`` returned.
    :param failure: the import or export raised, or no dossier came back.
    :param exam: the export, examined.
    :param seconds: import and export time.
    :param value: the export as the adapter returned it.
    """

    source: Dossier
    result: object = None
    failure: Failed | None = None
    exam: Examination | None = None
    seconds: tuple[float, float] = (0.0, 0.0)
    value: object = None

    def examined(self) -> Examination:
        """The examined export; raises the failure when the round trip did not complete."""
        if self.failure is not None or self.exam is None:
            raise self.failure or Failed("the round trip did not complete")
        return self.exam


def round_trip(ctx: Context, key: str, source: Callable[[], Dossier]) -> RoundTrip:
    """The round trip of one dossier, observed once per run and judged by several requirements."""
    return ctx.cached(("round-trip", key), lambda: _observe_round_trip(ctx, source()))


def _observe_round_trip(ctx: Context, dossier: Dossier) -> RoundTrip:
    try:
        with ctx.fresh_adapter() as adapter:
            try:
                result = ctx.import_(adapter, dossier)
            except Exception as exc:
                return RoundTrip(dossier, failure=fails_on_error("import_dossier", exc))
            imported = ctx.timings["import"][-1]
            try:
                value = ctx.export(adapter, dossier.person.number)
            except Exception as exc:
                failure = fails_on_error("export_dossier of the person just imported", exc)
                return RoundTrip(dossier, result, failure)
            exported = ctx.timings["export"][-1]
    except Failed as exc:
        return RoundTrip(dossier, failure=exc)
    if value is None:
        failure = Failed("export_dossier gave no dossier for the person just imported")
        return RoundTrip(dossier, result, failure)
    return RoundTrip(dossier, result, None, examine(value), (imported, exported), value)


def case_round_trip(ctx: Context, case: Case) -> RoundTrip:
    """The round trip of the dossier a case is about: a corpus file or the generated history."""
    if case.param == GENERATED_CASE:
        return round_trip(ctx, GENERATED_CASE, ctx.people.generated_history)
    return round_trip(ctx, case.param, lambda: ctx.dossier(case.param))


def round_trip_owner(case: Case) -> str:
    """The requirement that judges whether a case's round trip completes."""
    return reqs.VOL_001.id if case.param == GENERATED_CASE else reqs.RTR_001.id


def differences(expected: Dossier, actual: Dossier) -> list[Evidence]:
    """The canonical content that differs: person, household, aid history, last inquiry.

    Decisions are matched by id; their order is not significant.
    """
    found: list[Evidence] = []

    def compare(field: str, left: object, right: object) -> None:
        if left != right:
            found.append({"field": field, "expected": plain(left), "actual": plain(right)})

    for name in ("niss", "bis", "family_name", "given_names", "birth_date", "language"):
        compare(f"person.{name}", getattr(expected.person, name), getattr(actual.person, name))
    compare("household.category", expected.household.category, actual.household.category)
    compare(
        "household.dependent_children",
        expected.household.dependent_children,
        actual.household.dependent_children,
    )
    compare("last_social_inquiry", expected.last_social_inquiry, actual.last_social_inquiry)
    found += history_differences(expected, actual)
    return found


def history_differences(expected: Dossier, actual: Dossier) -> list[Evidence]:
    """How the aid histories differ, decision by decision (matched by id)."""
    found: list[Evidence] = []
    ids = [decision.decision_id for decision in actual.aid_history]
    duplicated = sorted({item for item in ids if ids.count(item) > 1})
    if duplicated:
        found.append({"field": "aid_history", "duplicated": duplicated[:MAX_DIFFERENCES]})
    wanted = {decision.decision_id: decision for decision in expected.aid_history}
    got = {decision.decision_id: decision for decision in actual.aid_history}
    missing = [item for item in wanted if item not in got]
    extra = [item for item in got if item not in wanted]
    if missing:
        found.append({"field": "aid_history", "missing": len(missing), "first": missing[0]})
    if extra:
        found.append({"field": "aid_history", "unexpected": len(extra), "first": extra[0]})
    for decision_id, decision in wanted.items():
        other = got.get(decision_id)
        if other is None:
            continue
        for name in type(decision).model_fields:
            left, right = getattr(decision, name), getattr(other, name)
            if left != right:
                found.append(
                    {
                        "field": f"aid_history[{decision_id}].{name}",
                        "expected": plain(left),
                        "actual": plain(right),
                    }
                )
    return found


def plain(value: object) -> Any:
    """A value as JSON evidence."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def difference_evidence(found: list[Evidence]) -> Evidence:
    return {"differences": len(found), "first": found[:MAX_DIFFERENCES]}


def give_people(ctx: Context, adapter: Adapter, dossiers: Sequence[Dossier]) -> list[str]:
    """Put people into a fresh adapter: by importing ``dossiers``, or else by seeding.

    :raises Failed: when the adapter can do neither, or fails doing it.
    """
    if ctx.has("import"):
        numbers = []
        for dossier in dossiers:
            try:
                ctx.import_(adapter, dossier)
            except Exception as exc:
                raise fails_on_error("import_dossier", exc) from exc
            numbers.append(dossier.person.number)
        return numbers
    if ctx.has("seed"):
        try:
            numbers = list(seedable(adapter).seed(len(dossiers), seed=ctx.seed))
        except Exception as exc:
            raise fails_on_error("seed", exc) from exc
        if len(numbers) != len(dossiers):
            raise Failed(f"seed({len(dossiers)}) returned {len(numbers)} person numbers")
        return numbers
    raise Failed(NO_WAY_IN)
