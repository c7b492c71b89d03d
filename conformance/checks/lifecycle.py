"""DSE-IMP-003, DSE-PER-001, DSE-UPD-001, DSE-THR-001: the node's own ways of using an adapter.

A node imports batches, restarts, receives newer dossiers of people it holds,
and calls its adapter from a worker thread. These checks do the same.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final, cast

from gateway.adapters import Adapter, BatchImporter, ImportResult
from gateway.model.dossier import Decision, DecisionStatus, Dossier

from .. import requirements as reqs
from ..context import Context, describe_exception, in_other_thread
from ..outcomes import Failed, NotJudged
from .importing import content, import_result
from .observe import (
    BIS_FILE,
    HELD_FILE,
    OTHER_FILE,
    as_dossier,
    difference_evidence,
    differences,
    fails_on_error,
    give_people,
    inspectable,
)
from .registry import Case, Evidence, check, one_case


def batcher(adapter: Adapter) -> BatchImporter:
    """The adapter as :class:`BatchImporter` (callers checked ``ctx.has("batch")``)."""
    return cast(BatchImporter, adapter)


def import_batch(
    ctx: Context, adapter: Adapter, items: Sequence[tuple[Dossier, str]], which: str
) -> list[ImportResult]:
    """``import_batch``, timed as a batch, its results checked to be one per item."""
    values = ctx.import_batch(batcher(adapter), items)
    if not isinstance(values, list | tuple) or len(values) != len(items):
        raise Failed(
            f"the {which} batch of {len(items)} returned "
            f"{len(values) if isinstance(values, list | tuple) else type(values).__name__} results"
        )
    return [import_result(value, f"{which} batch's") for value in values]


def _count(ctx: Context, adapter: Adapter) -> int | None:
    return inspectable(adapter).count_persons() if ctx.has("inspect") else None


# -------------------------------------------------------------- DSE-IMP-003


@check(
    reqs.IMP_003,
    one_case("redelivered-batch", "a batch, then a batch mixing its ids with a new one"),
)
def batches_import_once(ctx: Context, case: Case) -> Evidence:
    """``import_batch`` keeps the rules of ``import_dossier`` item by item."""
    first, second, third = (ctx.dossier(name) for name in (HELD_FILE, BIS_FILE, OTHER_FILE))
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with ctx.fresh_adapter() as adapter:
        try:
            before = import_batch(ctx, adapter, [(first, ids[0]), (second, ids[1])], "first")
        except Failed:
            raise
        except Exception as exc:
            raise fails_on_error("import_batch of two new dossiers", exc) from exc
        if [item.created for item in before] != [True, True]:
            raise Failed(
                f"a batch of two new messages reported created={[item.created for item in before]}",
                {"results": [vars(item) for item in before]},
            )
        redelivered = [(second, ids[1]), (third, ids[2]), (first, ids[0]), (third, ids[2])]
        try:
            after = import_batch(ctx, adapter, redelivered, "redelivered")
        except Failed:
            raise
        except Exception as exc:
            raise Failed(
                f"a redelivered batch raised {type(exc).__name__}; known message ids must be "
                "recognised item by item",
                describe_exception(exc),
            ) from exc
        expected = [
            (False, before[1].local_reference),
            (True, None),
            (False, before[0].local_reference),
            (False, after[1].local_reference),
        ]
        got = [(item.created, item.local_reference) for item in after]
        evidence: Evidence = {
            "first": [[item.created, item.local_reference] for item in before],
            "redelivered": [[created, reference] for created, reference in got],
            "order": ["known", "new", "known", "the new one again"],
        }
        wrong = [
            index
            for index, ((created, reference), (want, wanted_ref)) in enumerate(
                zip(got, expected, strict=True)
            )
            if created is not want or (wanted_ref is not None and reference != wanted_ref)
        ]
        if wrong:
            raise Failed(
                f"the redelivered batch gave wrong results for item(s) {wrong} "
                "(expected: known ids created=False with their first reference, the new id "
                "created=True once)",
                evidence,
            )
        try:
            count = _count(ctx, adapter)
            missing = [
                dossier.person.number
                for dossier in (first, second, third)
                if ctx.has("export") and ctx.export(adapter, dossier.person.number) is None
            ]
        except Exception as exc:
            raise fails_on_error("reading back after the batches", exc) from exc
    if missing:
        raise Failed(f"{len(missing)} person(s) of the batches export nothing", evidence)
    if count is not None and count != 3:
        raise Failed(f"the store holds {count} people after batches of three", evidence)
    return evidence


# -------------------------------------------------------------- DSE-PER-001


def _import_once(
    ctx: Context, adapter: Adapter, dossier: Dossier, message_id: str, batch: bool
) -> ImportResult:
    if batch:
        return import_batch(ctx, adapter, [(dossier, message_id)], "one-item")[0]
    return import_result(ctx.import_(adapter, dossier, message_id), "first")


@check(reqs.PER_001, one_case("reopen", "import, close, and a new adapter on the same store"))
def imports_outlive_the_adapter(ctx: Context, case: Case) -> Evidence:
    """A second adapter on the same store exports what the first imported, and knows its ids."""
    people = [(ctx.dossier(HELD_FILE), False), (ctx.dossier(BIS_FILE), ctx.has("batch"))]
    ids = [str(uuid.uuid4()) for _ in people]
    exports = ctx.has("export")
    with ctx.fresh_store() as store:
        with store.open() as adapter:
            try:
                first = [
                    _import_once(ctx, adapter, dossier, message_id, batch)
                    for (dossier, batch), message_id in zip(people, ids, strict=True)
                ]
            except Exception as exc:
                raise NotJudged("the first imports failed", by=reqs.IMP_001.id) from exc
            for (dossier, batch), message_id in zip(people, ids, strict=True):
                again = _import_once(ctx, adapter, dossier, message_id, batch)
                if again.created is not False:
                    by = reqs.IMP_003.id if batch else reqs.IMP_002.id
                    raise NotJudged("a duplicate is not recognised even before closing", by=by)
            try:
                count_before = _count(ctx, adapter)
                before = [
                    ctx.export(adapter, dossier.person.number) if exports else None
                    for dossier, _ in people
                ]
            except Exception as exc:
                raise fails_on_error("reading back before closing", exc) from exc
        with store.open() as reopened:
            try:
                after = [
                    ctx.export(reopened, dossier.person.number) if exports else None
                    for dossier, _ in people
                ]
            except Exception as exc:
                raise fails_on_error("exporting from the reopened store", exc) from exc
            try:
                again = [
                    _import_once(ctx, reopened, dossier, message_id, batch)
                    for (dossier, batch), message_id in zip(people, ids, strict=True)
                ]
                count_after = _count(ctx, reopened)
            except Failed:
                raise
            except Exception as exc:
                raise fails_on_error("importing the same messages after reopening", exc) from exc
    evidence: Evidence = {
        "first": [[item.created, item.local_reference] for item in first],
        "afterReopening": [[item.created, item.local_reference] for item in again],
        "paths": ["import_batch" if batch else "import_dossier" for _, batch in people],
        "personsBefore": count_before,
        "personsAfter": count_after,
    }
    if exports:
        lost = [
            dossier.person.number
            for (dossier, _), value in zip(people, after, strict=True)
            if value is None
        ]
        if lost:
            raise Failed(
                f"{len(lost)} of {len(people)} imported people are gone after close() and "
                "reopening the store: nothing was made durable",
                evidence,
            )
        for old, new in zip(before, after, strict=True):
            old_dossier, new_dossier = as_dossier(old), as_dossier(new)
            if content(old_dossier) != content(new_dossier):
                found = differences(old_dossier, new_dossier)
                raise Failed(
                    "the export changed after reopening the store",
                    evidence | difference_evidence(found),
                )
    for index, (item, previous) in enumerate(zip(again, first, strict=True)):
        if item.created is not False or item.local_reference != previous.local_reference:
            raise Failed(
                f"after reopening the store, the message imported before through "
                f"{evidence['paths'][index]} was imported again (created={item.created}): "
                "message ids were not kept with the store",
                evidence,
            )
    if count_before != count_after:
        raise Failed(f"{count_before} people before reopening, {count_after} after", evidence)
    return evidence


# -------------------------------------------------------------- DSE-UPD-001

UPDATE_FILE: Final = HELD_FILE


def newer_version(dossier: Dossier, today: dt.date) -> Dossier:
    """Version 2 of a person's dossier: children, inquiry, an amount and statuses changed."""
    history = list(dossier.aid_history)
    periodic = [index for index, item in enumerate(history) if item.monthly_amount is not None]
    changed: list[Decision] = []
    for index, decision in enumerate(history):
        update: dict[str, Any] = {}
        if periodic and index == periodic[0]:
            amount = decision.monthly_amount or Decimal(0)
            update = {"monthly_amount": amount + Decimal("12.34"), "status": DecisionStatus.REVISED}
        elif periodic and index == periodic[-1]:
            end = max(decision.period_start, min(today, decision.period_end or today))
            update = {"status": DecisionStatus.ENDED, "period_end": end}
        changed.append(decision.model_copy(update=update))
    latest = max((item.decision_date for item in history), default=today - dt.timedelta(days=60))
    for number, template in enumerate(history[-1:] * 2 if history else []):
        day = min(today, latest + dt.timedelta(days=10 * (number + 1)))
        changed.append(
            template.model_copy(
                update={
                    "decision_id": f"UPD-{uuid.uuid4().hex[:12]}",
                    "decision_date": day,
                    "period_start": day,
                    "period_end": None,
                    "status": DecisionStatus.GRANTED,
                }
            )
        )
    household = dossier.household
    children = household.dependent_children + 1 if household.dependent_children < 20 else 19
    inquiry = min(today, (dossier.last_social_inquiry or latest) + dt.timedelta(days=30))
    data = dossier.model_copy(
        update={
            "dossier_id": uuid.uuid4(),
            "household": household.model_copy(update={"dependent_children": children}),
            "aid_history": changed,
            "last_social_inquiry": inquiry,
        }
    ).model_dump()
    return Dossier.model_validate(data)


def _first_import_export(ctx: Context, dossier: Dossier) -> Dossier:
    """What the adapter exports after a first import of ``dossier`` (its own translation)."""
    with ctx.fresh_adapter() as adapter:
        ctx.import_(adapter, dossier)
        return as_dossier(ctx.export(adapter, dossier.person.number))


@check(reqs.UPD_001, one_case("version-2", "version 1 of a person, then version 2"))
def newer_dossier_updates(ctx: Context, case: Case) -> Evidence:
    """The export after importing version 2 is what a first import of version 2 exports.

    Compared with the adapter's own export of version 2 on a fresh store, not with
    version 2 itself: how the adapter translates a dossier is judged by DSE-RTR-001
    and DSE-TXT-001; this requirement judges only whether the update took effect.
    """
    first = ctx.dossier(UPDATE_FILE)
    second = newer_version(first, dt.date.today())
    try:
        expected = _first_import_export(ctx, second)
    except Exception as exc:
        raise NotJudged(
            "a first import of version 2 does not round-trip", by=reqs.RTR_001.id
        ) from exc
    with ctx.fresh_adapter() as adapter:
        try:
            one = import_result(ctx.import_(adapter, first), "first")
        except Exception as exc:
            raise NotJudged("importing version 1 failed", by=reqs.IMP_001.id) from exc
        try:
            two = import_result(ctx.import_(adapter, second), "update's")
            value = ctx.export(adapter, first.person.number)
            count = _count(ctx, adapter)
        except Failed:
            raise
        except Exception as exc:
            raise fails_on_error("importing version 2 of a person held", exc) from exc
    evidence: Evidence = {
        "version1": {"created": one.created, "localReference": one.local_reference},
        "version2": {"created": two.created, "localReference": two.local_reference},
        "persons": count,
    }
    exported = as_dossier(value, what="the export after the update")
    found = differences(expected, exported)
    if found:
        raise Failed(
            f"the export after version 2 differs from version 2 in {len(found)} place(s), "
            f"first {found[0]['field']}: the update was not applied",
            evidence | difference_evidence(found),
        )
    if count is not None and count != 1:
        raise Failed(f"the update of one person left {count} people in the store", evidence)
    return evidence


# -------------------------------------------------------------- DSE-THR-001


@check(reqs.THR_001, one_case("worker-thread", "built in one thread, called from another"))
def works_from_another_thread(ctx: Context, case: Case) -> Evidence:
    """Imports, a batch, exports and close, called from a thread other than the builder's."""
    people = [ctx.dossier(HELD_FILE), ctx.dossier(BIS_FILE), ctx.dossier(OTHER_FILE)]
    done: list[str] = []
    with ctx.fresh_adapter() as adapter:
        held = people[0].person.number
        if not ctx.has("import"):
            held = give_people(ctx, adapter, people[:1])[0]

        def work() -> None:
            if ctx.has("import"):
                ctx.import_(adapter, people[0])
                done.append("import_dossier")
                if ctx.has("batch"):
                    items = [(people[1], str(uuid.uuid4())), (people[2], str(uuid.uuid4()))]
                    ctx.import_batch(batcher(adapter), items)
                    done.append("import_batch")
            if ctx.has("export"):
                if ctx.export(adapter, held) is None:
                    raise Failed("export_dossier of a person held gave no dossier")
                done.append("export_dossier")

        try:
            in_other_thread(work, "adapter-worker")
        except Failed as exc:
            raise Failed(
                f"called from another thread: {exc.message}", {"calledFine": done}
            ) from exc
        except Exception as exc:
            failing = next(
                name
                for name in ("import_dossier", "import_batch", "export_dossier")
                if name not in done
            )
            raise Failed(
                f"{failing} called from a thread other than the one that built the adapter "
                f"raised {type(exc).__name__}: {exc}",
                {"calledFine": done, **describe_exception(exc)},
            ) from exc
    return {"calls": done}
