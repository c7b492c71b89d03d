"""DSE-ERR-001 and DSE-INT-001: only project errors, and the gateway's checks intact."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Final, cast

from gateway.adapters import SimulatesOutage
from gateway.cli.validate import check_document
from gateway.model.directory import Directory, InstitutionKind
from gateway.model.dossier import Dossier
from gateway.model.errors import AdapterError, DestinationRefused, GatewayError
from gateway.model.identifiers import make_enterprise_number, validate_person_number
from gateway.testing.sample_directory import sample_directory

from .. import corpus, integrity
from .. import requirements as reqs
from ..context import Context, describe_exception
from ..outcomes import Failed, NotApplicable
from .observe import BIS_FILE, HELD_FILE, fails_on_error, give_people
from .registry import Case, Evidence, check, corpus_cases, one_case

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
            f"{doing} raised {type(exc).__name__}, not a gateway.model.errors.GatewayError",
            describe_exception(exc),
        ) from exc


@check(reqs.ERR_001, _error_cases)
def failures_are_project_errors(ctx: Context, case: Case) -> Evidence:
    """Malformed input and misuse give a result or a project error, never another exception."""
    held_dossier = ctx.dossier(HELD_FILE)
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


# -------------------------------------------------------------- DSE-ERR-002

NO_OUTAGE_HOOK: Final = (
    "the adapter cannot be certified for outages: it does not implement the SimulatesOutage "
    "test hook (gateway.adapters.SimulatesOutage), so the suite cannot make its store "
    "unavailable and see whether the node would retry"
)


def _during_outage(name: str, call: Callable[[], object]) -> str | None:
    """What is wrong with ``call`` during an outage, or ``None`` for a transient AdapterError."""
    try:
        value = call()
    except AdapterError as exc:
        if exc.transient:
            return None
        return f"{name} raised AdapterError [{exc.code}] with transient=False"
    except GatewayError as exc:
        return f"{name} raised {type(exc).__name__} [{exc.code}], not a transient AdapterError"
    except Exception as exc:
        return f"{name} let {type(exc).__module__}.{type(exc).__name__} escape: {exc}"
    return f"{name} returned {type(value).__name__} although the store was unavailable"


@check(reqs.ERR_002, one_case("store-unavailable", "the store unavailable, then back"))
def outage_is_transient(ctx: Context, case: Case) -> Evidence:
    """During an outage every call raises a transient AdapterError; afterwards all works."""
    if not ctx.has("outage"):
        raise Failed(NO_OUTAGE_HOOK)
    held = ctx.dossier(HELD_FILE)
    newcomer = ctx.dossier(BIS_FILE)
    message_id = str(uuid.uuid4())
    with ctx.fresh_adapter() as adapter:
        number = (
            give_people(ctx, adapter, [held])[0] if ctx.has("import") or ctx.has("seed") else None
        )
        calls: list[tuple[str, Callable[[], object]]] = []
        if ctx.has("export") and number is not None:
            calls.append(("export_dossier", lambda: ctx.export(adapter, number)))
        if ctx.has("import"):
            calls.append(("import_dossier", lambda: ctx.import_(adapter, newcomer, message_id)))
        problems: list[str] = []
        try:
            with cast(SimulatesOutage, adapter).store_unavailable():
                problems = [
                    problem
                    for name, call in calls
                    if (problem := _during_outage(name, call)) is not None
                ]
        except Exception as exc:
            raise fails_on_error("the store_unavailable() hook", exc) from exc
        evidence: Evidence = {"calls": [name for name, _ in calls], "problems": problems}
        if problems:
            raise Failed(
                f"during an outage {problems[0]}: the node would treat it as a permanent "
                "failure and dead-letter the message",
                evidence,
            )
        try:
            if number is not None and ctx.has("export") and ctx.export(adapter, number) is None:
                raise Failed("after the outage, the person held exports nothing", evidence)
            if ctx.has("import"):
                result = ctx.import_(adapter, newcomer, message_id)
                if getattr(result, "created", None) is not True:
                    raise Failed(
                        "after the outage, the import refused during it reported created="
                        f"{getattr(result, 'created', None)}: a failed import left a trace",
                        evidence,
                    )
        except Failed:
            raise
        except Exception as exc:
            raise fails_on_error("the first call after the outage", exc) from exc
    return evidence


# -------------------------------------------------------------- DSE-INT-002

_PROBES: Final = (
    *(
        (kind.value, f"{kind.description}: refused")
        for kind in InstitutionKind
        if kind.value != "cpas"
    ),
    ("closed-cpas", "a closed CPAS: refused"),
    ("merged-cpas", "a CPAS merged into another: refused"),
    ("unknown", "an id the directory does not list: refused"),
    ("active-cpas", "an active CPAS: allowed"),
)
_EXPECTED_CODE: Final = {
    "closed-cpas": "directory.closed",
    "merged-cpas": "directory.merged",
    "unknown": "directory.unknown",
    "active-cpas": "directory.ok",
}


def _probe_directory() -> Directory:
    # The sample directory: every CPAS, a closed and merged ones, one of each other kind.
    return sample_directory(dt.datetime.now(dt.UTC))


def _destination(directory: Directory, probe: str) -> str:
    """The id of an institution of the probe's kind (or one the directory does not list)."""
    if probe == "unknown":
        listed = {item.id for item in directory.institutions}
        return next(
            number
            for seed in range(900_000, 999_999)
            if (number := make_enterprise_number(seed)) not in listed
        )
    for item in directory.institutions:
        kind, status = item.kind.value, item.status.value
        if probe == "closed-cpas" and kind == "cpas" and status == "closed":
            return item.id
        if probe == "merged-cpas" and kind == "cpas" and status == "merged":
            return item.id
        if probe == "active-cpas" and kind == "cpas" and status == "active":
            return item.id
        if probe == kind and kind != "cpas":
            return item.id
    raise AssertionError(f"the sample directory lists no {probe}")  # pragma: no cover


@check(
    reqs.INT_002,
    lambda: [
        *(Case(f"destination-{probe}", description, probe) for probe, description in _PROBES),
        Case(
            "fingerprint", "the gateway's functions after every adapter of the run", "fingerprint"
        ),
    ],
)
def gateway_functions_untouched(ctx: Context, case: Case) -> Evidence:
    """The gateway's functions are as shipped; only an active CPAS may receive."""
    if case.param == "fingerprint":
        with ctx.fresh_adapter():
            pass
        if ctx.tampering:
            first = ctx.tampering[0]
            raise Failed(
                f"the adapter changed the gateway's own functions ({first['changes'][0]}, "
                f"{first['when']}, in {first['case']}); the originals were put back",
                {"changes": ctx.tampering[:5], "times": len(ctx.tampering)},
            )
        return {"guardedModules": list(integrity.GUARDED_MODULES)}
    directory = ctx.cached(("probe-directory",), _probe_directory)
    destination = _destination(directory, case.param)
    expected = _EXPECTED_CODE.get(case.param, "directory.not_cpas")
    with ctx.fresh_adapter():
        verdict = directory.may_receive(destination)
        try:
            directory.check_destination(destination)
            refused_by_check = None
        except DestinationRefused as exc:
            refused_by_check = exc.code
    evidence: Evidence = {
        "destination": destination,
        "expected": expected,
        "actual": verdict.code,
        "checkDestination": refused_by_check or "allowed",
    }
    if verdict.code != expected or (refused_by_check or "directory.ok") != expected:
        what = case.description.split(":", 1)[0]
        raise Failed(
            f"with the adapter loaded, the directory answers {verdict.code} "
            f"(check_destination: {refused_by_check or 'allowed'}) for {what}, not {expected}",
            evidence,
        )
    return evidence
