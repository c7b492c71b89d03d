"""DSE-IMP-001 and DSE-IMP-002: imports report what they did, once per message."""

from __future__ import annotations

import uuid
from typing import Any, Final

from gateway.adapters import ImportResult
from gateway.model.dossier import Dossier

from .. import requirements as reqs
from ..context import Context, describe_exception
from ..outcomes import Failed, NotJudged
from .observe import BIS_FILE, HELD_FILE, as_dossier, differences, fails_on_error, inspectable
from .registry import Case, Evidence, check

# -------------------------------------------------------------- DSE-IMP-001

_IMPORT_CASES: Final = (
    Case("niss-person", "a person with a NISS", HELD_FILE),
    Case("bis-person", "a person with a BIS number", BIS_FILE),
)
_UPDATE_CASE: Final = Case("update", "a person already held, under a new message id", HELD_FILE)


def import_result(value: object, which: str) -> ImportResult:
    if not isinstance(value, ImportResult):
        raise Failed(
            f"the {which} import returned {type(value).__name__}, not gateway.adapters.ImportResult"
        )
    if not isinstance(value.local_reference, str) or not value.local_reference:
        raise Failed(f"the {which} import gave no local reference")
    return value


@check(reqs.IMP_001, lambda: (*_IMPORT_CASES, _UPDATE_CASE))
def new_message_creates(ctx: Context, case: Case) -> Evidence:
    """A message id not seen before reports ``created`` and a local reference.

    The update case imports the person again under a second new message id:
    ``created`` is about the message, so it is true again, with the reference
    of the record the person already has.
    """
    dossier = ctx.dossier(case.param)
    with ctx.fresh_adapter() as adapter:
        try:
            value = ctx.import_(adapter, dossier)
        except Exception as exc:
            raise fails_on_error("import_dossier", exc) from exc
        result = import_result(value, "first")
        if result.created is not True:
            raise Failed(
                "the first import of a message reported created=False",
                {"localReference": result.local_reference},
            )
        evidence: Evidence = {"localReference": result.local_reference}
        if case.id != _UPDATE_CASE.id:
            return evidence
        try:
            value = ctx.import_(adapter, dossier)
        except Exception as exc:
            raise fails_on_error(
                "import_dossier of a person held, under a new message id", exc
            ) from exc
    update = import_result(value, "update's")
    evidence["update"] = {"created": update.created, "localReference": update.local_reference}
    if update.created is not True:
        raise Failed(
            "a new message id updating a person held reported created=False: created says "
            "whether this message was stored now, and it was",
            evidence,
        )
    if update.local_reference != result.local_reference:
        raise Failed("the update reported another reference than the person's record", evidence)
    return evidence


# -------------------------------------------------------------- DSE-IMP-002


def content(dossier: Dossier) -> dict[str, Any]:
    """What an export says, without what each export makes anew (its id and time)."""
    return dossier.model_dump(mode="json", exclude={"dossier_id", "created_at"})


@check(reqs.IMP_002, lambda: _IMPORT_CASES)
def duplicate_import_is_one_record(ctx: Context, case: Case) -> Evidence:
    """The same message id twice: ``created`` false, same reference, nothing changed."""
    dossier = ctx.dossier(case.param)
    message_id = str(uuid.uuid4())
    counts = ctx.has("inspect")
    exports = ctx.has("export")
    with ctx.fresh_adapter() as adapter:
        try:
            first = import_result(ctx.import_(adapter, dossier, message_id), "first")
        except Failed as exc:
            # What a first import returns is DSE-IMP-001's; a duplicate needs a good first.
            raise NotJudged(f"the first import failed ({exc.message})", by=reqs.IMP_001.id) from exc
        except Exception as exc:
            raise NotJudged("the first import raised", by=reqs.IMP_001.id) from exc
        try:
            before = inspectable(adapter).count_persons() if counts else None
            exported_before = ctx.export(adapter, dossier.person.number) if exports else None
        except Exception as exc:
            raise fails_on_error("reading back after the first import", exc) from exc
        try:
            second = import_result(ctx.import_(adapter, dossier, message_id), "second")
        except Failed:
            raise
        except Exception as exc:
            raise Failed(
                f"importing a message again raised {type(exc).__name__}; a duplicate must be "
                "recognised and change nothing",
                describe_exception(exc),
            ) from exc
        try:
            after = inspectable(adapter).count_persons() if counts else None
            exported_after = ctx.export(adapter, dossier.person.number) if exports else None
        except Exception as exc:
            raise fails_on_error("reading back after the duplicate", exc) from exc
    evidence: Evidence = {
        "messageId": message_id,
        "first": {"created": first.created, "localReference": first.local_reference},
        "second": {"created": second.created, "localReference": second.local_reference},
        "recordsCounted": counts,
        "exportCompared": exports,
    }
    if second.created is not False:
        raise Failed("the second import of the same message reported created=True", evidence)
    if second.local_reference != first.local_reference:
        raise Failed("the second import reported another local reference", evidence)
    if before != after:
        evidence |= {"personsBefore": before, "personsAfter": after}
        raise Failed(f"the store held {before} people and {after} after the duplicate", evidence)
    if exports:
        # Two exports compared with each other, as written: their validity is
        # DSE-EXP-001/002's business.
        old = as_dossier(exported_before, what="the export before the duplicate")
        new = as_dossier(exported_after, what="the export after the duplicate")
        if content(old) != content(new):
            found = differences(old, new)
            raise Failed("the export changed after the duplicate", evidence | {"changes": found})
    return evidence
