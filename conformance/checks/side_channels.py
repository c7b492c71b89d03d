"""DSE-SID-001: no side channel (see :mod:`cpas_conformance.watch`)."""

from __future__ import annotations

import uuid

from .. import requirements as reqs
from ..context import Context
from ..outcomes import Failed
from ..watch import broker_clients_held
from .lifecycle import batcher
from .minimality import make_markers
from .observe import BIS_FILE, HELD_FILE, OTHER_FILE, give_people, inspectable, planter, seedable
from .registry import Case, Evidence, check


def _fail_on(found: list[dict[str, str]], where: str) -> None:
    if found:
        first = found[0]
        raise Failed(
            f"{where}, the adapter used a side channel: {first['detail']} ({first['kind']})",
            {"sideChannels": found[:10], "count": len(found)},
        )


@check(
    reqs.SID_001,
    lambda: (
        Case("a-days-work", "imports, a batch, planting, seeding and exports, watched"),
        Case("whole-run", "everything the earlier cases of the run saw"),
        Case("broker-client", "the adapter's modules and attributes hold no AMQP client"),
    ),
)
def no_side_channels(ctx: Context, case: Case) -> Evidence:
    """Nothing written, connected or started outside the adapter's own store."""
    if case.id == "whole-run":
        _fail_on(ctx.side_channels, "during the run")
        return {"sideChannels": 0}
    if case.id == "broker-client":
        with ctx.fresh_adapter() as adapter:
            held = broker_clients_held(adapter)
        if held:
            raise Failed(
                f"the adapter's code holds the AMQP client {', '.join(held)}: an adapter never "
                "talks to the broker (the node does, sealed and signed)",
                {"modules": held},
            )
        return {}
    people = [ctx.dossier(HELD_FILE), ctx.dossier(BIS_FILE), ctx.dossier(OTHER_FILE)]
    current = ctx.case_id
    done = []
    with ctx.fresh_adapter() as adapter:
        numbers = give_people(ctx, adapter, people[:1])
        done.append("import" if ctx.has("import") else "seed")
        if ctx.has("import") and ctx.has("batch"):
            items = [(dossier, str(uuid.uuid4())) for dossier in people[1:]]
            ctx.import_batch(batcher(adapter), items)
            numbers += [dossier.person.number for dossier in people[1:]]
            done.append("import_batch")
        if ctx.has("seed"):
            numbers += seedable(adapter).seed(3, seed=ctx.seed)
            done.append("seed")
        if ctx.has("plant"):
            planter(adapter).add_sensitive(numbers[0], make_markers("notes")[0])
            done.append("add_sensitive")
        if ctx.has("export"):
            for number in numbers:
                ctx.export(adapter, number)
            done.append("export")
        if ctx.has("inspect"):
            inspectable(adapter).count_persons()
            inspectable(adapter).list_person_numbers()
            done.append("inspect")
    _fail_on([item for item in ctx.side_channels if item["case"] == current], "during a day's work")
    return {"calls": done}
