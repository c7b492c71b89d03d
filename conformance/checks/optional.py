"""DSE-INS-001, DSE-SED-001 and DSE-EVT-001: the optional Inspectable, Seedable and
ReceivesEvents protocols."""

from __future__ import annotations

from typing import cast

from gateway.adapters import ReceivesEvents, VendorEvent, VendorEventKind
from gateway.model.codes import RefusalReason
from gateway.model.errors import GatewayError
from gateway.model.identifiers import validate_person_number

from .. import requirements as reqs
from ..context import Context
from ..outcomes import Failed
from .observe import (
    BIS_FILE,
    HELD_FILE,
    MAX_DIFFERENCES,
    OTHER_FILE,
    examine,
    fails_on_error,
    give_people,
    inspectable,
    judged,
    seedable,
)
from .registry import Case, Evidence, check, one_case


@check(reqs.INS_001, one_case("count-and-list", "an empty store, then three people"))
def inspectable_tells_the_truth(ctx: Context, case: Case) -> Evidence:
    """``count_persons`` and ``list_person_numbers`` agree with what the store holds."""
    people = [ctx.dossier(name) for name in (HELD_FILE, BIS_FILE, OTHER_FILE)]
    with ctx.fresh_adapter() as adapter:
        try:
            empty_count = inspectable(adapter).count_persons()
            empty_list = list(inspectable(adapter).list_person_numbers())
        except Exception as exc:
            raise fails_on_error("counting an empty store", exc) from exc
        if empty_count != 0 or empty_list:
            raise Failed(
                f"a fresh store counts {empty_count} and lists {len(empty_list)} people",
                {"count": empty_count, "listed": empty_list[:MAX_DIFFERENCES]},
            )
        numbers = give_people(ctx, adapter, people)
        try:
            count = inspectable(adapter).count_persons()
            listed = list(inspectable(adapter).list_person_numbers())
        except Exception as exc:
            raise fails_on_error("counting the store", exc) from exc
    evidence = {"count": count, "listed": sorted(listed), "held": sorted(numbers)}
    if count != len(numbers) or sorted(listed) != sorted(numbers):
        raise Failed(f"the store holds {len(numbers)} people but counts {count}", evidence)
    return evidence


# -------------------------------------------------------------- DSE-SED-001


@check(reqs.SED_001, one_case("seed-five", "seed(5, seed=1) on a fresh adapter"))
def seeding_gives_valid_people(ctx: Context, case: Case) -> Evidence:
    """``seed`` returns distinct, valid person numbers, each exporting that person."""
    with ctx.fresh_adapter() as adapter:
        try:
            numbers = list(seedable(adapter).seed(5, seed=1))
        except Exception as exc:
            raise fails_on_error("seed", exc) from exc
        if len(numbers) != 5 or len(set(numbers)) != 5:
            raise Failed(f"seed(5) returned {len(set(numbers))} distinct numbers of {len(numbers)}")
        for number in numbers:
            try:
                validate_person_number(number)
            except GatewayError as exc:
                raise Failed(f"seed returned {number!r}: {exc.message}") from exc
        if not ctx.has("export"):
            return {"people": numbers}
        for number in numbers:
            try:
                value = ctx.export(adapter, number)
            except Exception as exc:
                raise fails_on_error("export_dossier of a seeded person", exc) from exc
            if value is None:
                raise Failed(f"seeded person {number} exports no dossier")
            dossier = judged(examine(value), what="a seeded person's export")
            if dossier.person.number != number:
                raise Failed(f"seeded person {number} exports {dossier.person.number}'s dossier")
    return {"people": numbers}


# -------------------------------------------------------------- DSE-EVT-001

_PEER = "0212344876"


def _events() -> list[VendorEvent]:
    """One event of every kind, every field set (ids fixed: the run is reproducible)."""
    return [
        VendorEvent(
            kind,
            message_id=f"00000000-0000-4000-8000-{n:012d}",
            peer=_PEER,
            at=f"2026-03-0{n % 9 + 1}T10:00:00Z",
            purpose="new-application-inquiry",
            case_reference=f"EVT-{n}",
            person_number="85073003328",
            code=RefusalReason.REFUSED_BY_SOCIAL_WORKER,
            local_reference=f"LOCAL-{n}",
        )
        for n, kind in enumerate(VendorEventKind, 1)
    ]


@check(reqs.EVT_001, one_case("every-kind-once", "one event of each kind, then the first again"))
def events_are_recorded_exactly_once(ctx: Context, case: Case) -> Evidence:
    """``read_events`` gives back each event ``receive_event`` got, once, field for field."""
    given = _events()
    with ctx.fresh_adapter() as adapter:
        receiver = cast(ReceivesEvents, adapter)
        try:
            for event in [*given, given[0]]:
                receiver.receive_event(event)
            recorded = list(receiver.read_events())
        except Exception as exc:
            raise fails_on_error("receive_event", exc) from exc
        evidence: dict[str, object] = {"given": len(given), "recorded": len(recorded)}
        by_id = sorted(recorded, key=lambda e: e.event_id)
        if by_id != sorted(given, key=lambda e: e.event_id):
            raise Failed(
                f"{len(given)} distinct events given (one twice), {len(recorded)} recorded, "
                "or their fields changed",
                evidence | {"kinds": [e.kind.value for e in by_id][:MAX_DIFFERENCES]},
            )
        if not ctx.has("import"):
            return evidence
        message_id = "00000000-0000-4000-8000-00000000e001"
        try:
            ctx.import_(adapter, ctx.dossier(HELD_FILE), message_id)
            after = list(receiver.read_events())
        except Exception as exc:
            raise fails_on_error("importing, then reading the events", exc) from exc
        imported = [
            e
            for e in after
            if e.message_id == message_id and e.kind is VendorEventKind.DOSSIER_IMPORTED
        ]
        if len(imported) != 1:
            raise Failed(
                f"an import recorded {len(imported)} dossier-imported events, not one", evidence
            )
    return evidence | {"import_event": True}
