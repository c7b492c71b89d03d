"""DSE-ERR-001 and DSE-INT-001: only project errors, and the gateway's checks intact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from gateway.cli.validate import check_document
from gateway.dossier import Dossier
from gateway.errors import GatewayError
from gateway.identifiers import validate_person_number

from .. import corpus
from .. import requirements as reqs
from ..context import Context, describe_exception
from ..outcomes import Failed, NotApplicable
from .observe import HELD_FILE, give_people
from .registry import Case, Evidence, check, corpus_cases

# -------------------------------------------------------------- DSE-ERR-001

_MALFORMED: Final = {
    "empty": "",
    "letters": "not-a-number",
    "too-short": "8507310",
    "too-long": "850731001301234",
    "sql-fragment": "{held}' OR '1'='1",
    "path-fragment": "../../../../etc/passwd",
    "full-width-digits": "{held-full-width}",
    "nul-byte": "{held-10}\x00",
    "wrong-check-digits": "{held-wrong}",
    "very-long": "9" * 10_000,
}
"""Probes: ``{held...}`` is filled in from the person the store holds."""

SAME_NUMBER: Final = frozenset({"full-width-digits"})
"""Probes that write the held person's own number differently: the gateway's own
identifier checks read full-width digits as digits, so an adapter may find the
person (and nobody else) or refuse; it must not crash."""


def _wrong_check_digits(number: str) -> str:
    for step in range(1, 97):
        candidate = f"{number[:9]}{(int(number[9:]) + step) % 100:02d}"
        try:
            validate_person_number(candidate)
        except GatewayError:
            return candidate
    raise AssertionError("every check digit validates")  # pragma: no cover - impossible


def _probe_value(template: str, held: str) -> str:
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in held)
    return (
        template.replace("{held}", held)
        .replace("{held-full-width}", full_width)
        .replace("{held-10}", held[:10])
        .replace("{held-wrong}", _wrong_check_digits(held))
    )


def _error_cases() -> list[Case]:
    cases = [
        Case(f"export-{name}", f"export of a malformed person number ({name})", name)
        for name in _MALFORMED
    ]
    cases.append(Case("export-after-close", "export after close()", "export-after-close"))
    cases.append(Case("import-after-close", "import after close()", "import-after-close"))
    return cases


def _only_project_errors(doing: str, call: Callable[[], object]) -> object:
    """Run ``call``: its result, ``None`` for a project error, :class:`Failed` for anything else."""
    try:
        return call()
    except GatewayError:
        return None
    except Exception as exc:
        raise Failed(
            f"{doing} raised {type(exc).__name__}, not a gateway.errors.GatewayError",
            describe_exception(exc),
        ) from exc


@check(reqs.ERR_001, _error_cases)
def failures_are_project_errors(ctx: Context, case: Case) -> Evidence:
    """Malformed input and misuse give a result or a project error, never another exception."""
    held_dossier = corpus.valid_dossier(HELD_FILE)
    held = held_dossier.person.number
    if case.param == "import-after-close":
        if not ctx.has("import"):
            raise NotApplicable("the adapter declares no 'import' capability")
        with ctx.fresh_adapter() as adapter:
            _only_project_errors("close()", adapter.close)
            _only_project_errors(
                "import_dossier after close()", lambda: ctx.import_(adapter, held_dossier)
            )
        return {}
    if not ctx.has("export"):
        raise NotApplicable("the adapter declares no 'export' capability")
    with ctx.fresh_adapter() as adapter:
        holds_someone = ctx.has("import") or ctx.has("seed")
        if holds_someone:
            # Someone to find: an injection or a lax match would return their dossier.
            held = give_people(ctx, adapter, [held_dossier])[0]
        if case.param == "export-after-close":
            _only_project_errors("close()", adapter.close)
            _only_project_errors("export_dossier after close()", lambda: ctx.export(adapter, held))
            return {}
        probe = _probe_value(_MALFORMED[case.param], held)
        value = _only_project_errors(
            "export_dossier of a malformed person number", lambda: ctx.export(adapter, probe)
        )
    shown = probe if len(probe) <= 40 else f"{probe[:20]}… ({len(probe)} characters)"
    if case.param in SAME_NUMBER and isinstance(value, Dossier) and value.person.number == held:
        return {"probe": shown, "found": "the person held, under their own number"}
    if value is not None:
        raise Failed(
            f"export_dossier returned {type(value).__name__} for {shown!r}, "
            "which is not a person number it holds",
            {"probe": shown},
        )
    return {"probe": shown, "storeHeldSomeone": holds_someone}


# -------------------------------------------------------------- DSE-INT-001


@check(reqs.INT_001, corpus_cases(corpus.invalid_files))
def gateway_checks_intact(ctx: Context, case: Case) -> Evidence:
    """After the adapter started, a hostile document is refused with its expected code."""
    expected = next(item.code for item in corpus.invalid_files() if item.name == case.param)
    with ctx.fresh_adapter():
        try:
            kind = check_document(corpus.read_invalid(case.param))
        except GatewayError as exc:
            if exc.code != expected:
                raise Failed(
                    f"refused with [{exc.code}] instead of [{expected}]",
                    {"expected": expected, "actual": exc.code, "message": exc.message},
                ) from exc
            return {"code": exc.code}
        except Exception as exc:
            raise Failed(
                f"checking the document raised {type(exc).__name__}", describe_exception(exc)
            ) from exc
    raise Failed(f"the gateway accepted it as a valid {kind}", {"expected": expected})
