"""DSE-INS-001 and DSE-SED-001: the optional Inspectable and Seedable protocols."""

from __future__ import annotations

from gateway.errors import GatewayError
from gateway.identifiers import validate_person_number

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
