"""Running the checks and judging the results.

:func:`run_case` is the one place a case is run, whether from the command
line or from pytest: it decides whether the case applies, calls the check and
turns what happens into a :class:`~cpas_conformance.outcomes.CaseResult`.
:func:`run_suite` runs every case and gathers them into a :class:`SuiteResult`,
from which the reports are written.

The verdict: an adapter conforms when every mandatory requirement passed or
does not apply to what the adapter declares. A mandatory requirement that
failed, or that could not be judged, means it does not conform.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from gateway.model.dossier import SCHEMA_VERSION

from . import SUITE_VERSION
from .checks import Case, Check, all_cases
from .context import Context, describe_exception
from .outcomes import (
    CaseResult,
    Failed,
    NotApplicable,
    NotJudged,
    Outcome,
    SkipKind,
    Warned,
)
from .requirements import DECLARED_CAPABILITIES, Requirement
from .speed import per_case, timing_summary

log = logging.getLogger(__name__)

PACKAGES: Final = ("cpas-dossier-gateway", "pydantic", "lxml", "cryptography", "pluggy")
"""Packages whose versions every report records."""

_SECRET_KEYS: Final = ("password", "passwd", "secret", "token", "key")

_PROTOCOLS: Final = {
    "seed": "Seedable",
    "inspect": "Inspectable",
    "plant": "PlantsSensitiveData",
    "batch": "BatchImporter",
    "outage": "SimulatesOutage",
    "events": "ReceivesEvents",
}


def _not_applicable(context: Context, requirement: Requirement) -> str | None:
    """Why ``requirement`` does not apply to the adapter, or ``None`` when it does."""
    for capability in requirement.capability:
        if context.has(capability):
            continue
        if capability in DECLARED_CAPABILITIES:
            return f"not applicable: the adapter declares no {capability!r} capability"
        protocol = _PROTOCOLS[capability]
        return f"not applicable: the adapter does not implement {protocol} (optional)"
    return None


def run_case(context: Context, check: Check, case: Case) -> CaseResult:
    """Run one case of one requirement and say what happened; never raises for the adapter."""
    requirement = check.requirement
    started = time.perf_counter()
    context.begin_case(f"{requirement.id}/{case.id}")

    def result(
        outcome: Outcome, message: str = "", evidence: Any = None, **extra: Any
    ) -> CaseResult:
        return CaseResult(
            requirement.id,
            case.id,
            case.description,
            outcome,
            message,
            dict(evidence or {}),
            time.perf_counter() - started,
            **extra,
        )

    try:
        if context.profile.start_error is not None:
            raise Failed(context.profile.start_error)
        reason = _not_applicable(context, requirement)
        if reason is not None:
            raise NotApplicable(reason)
        evidence = check.run(context, case)
    except Failed as exc:
        return result(Outcome.FAILED, exc.message, exc.evidence)
    except Warned as exc:
        return result(Outcome.WARNING, exc.message, exc.evidence)
    except NotApplicable as exc:
        return result(Outcome.SKIPPED, exc.message, exc.evidence, skip_kind=SkipKind.NOT_APPLICABLE)
    except NotJudged as exc:
        return result(
            Outcome.SKIPPED,
            exc.message,
            exc.evidence,
            skip_kind=SkipKind.NOT_JUDGED,
            judged_by=exc.by,
        )
    except Exception as exc:
        # Checks turn what the adapter raises into outcomes; reaching here means
        # the adapter did something no check foresaw, so the case cannot pass.
        log.exception("%s %s could not complete", requirement.id, case.id)
        return result(
            Outcome.FAILED,
            f"the case could not complete: {type(exc).__name__}: {exc}",
            describe_exception(exc),
        )
    return result(Outcome.PASSED, evidence=evidence)


@dataclass(frozen=True)
class RequirementResult:
    """A requirement and the results of its cases."""

    requirement: Requirement
    cases: tuple[CaseResult, ...]

    def _count(self, outcome: Outcome, kind: SkipKind | None = None) -> int:
        return sum(
            1
            for case in self.cases
            if case.outcome is outcome and (kind is None or case.skip_kind is kind)
        )

    @property
    def outcome(self) -> Outcome:
        """Failed if any case failed; passed if every case that applies passed."""
        if self._count(Outcome.FAILED):
            return Outcome.FAILED
        if self._count(Outcome.WARNING):
            return Outcome.WARNING
        if self._count(Outcome.SKIPPED, SkipKind.NOT_JUDGED):
            return Outcome.SKIPPED
        if self._count(Outcome.PASSED):
            return Outcome.PASSED
        return Outcome.SKIPPED

    @property
    def skip_kind(self) -> SkipKind | None:
        """Why a skipped requirement was skipped."""
        if self.outcome is not Outcome.SKIPPED:
            return None
        if self._count(Outcome.SKIPPED, SkipKind.NOT_JUDGED):
            return SkipKind.NOT_JUDGED
        return SkipKind.NOT_APPLICABLE

    @property
    def satisfied(self) -> bool:
        """Passed (a warning included), or does not apply to the adapter."""
        return (
            self.outcome in (Outcome.PASSED, Outcome.WARNING)
            or self.skip_kind is SkipKind.NOT_APPLICABLE
        )

    @property
    def first_failure(self) -> CaseResult | None:
        """The first failed case, if any."""
        return next((case for case in self.cases if case.outcome is Outcome.FAILED), None)

    @property
    def summary(self) -> str:
        """One line: what happened, for tables and the HTML report."""
        total = len(self.cases)
        failure = self.first_failure
        if failure is not None:
            return (
                f"{self._count(Outcome.FAILED)} of {total} case(s) failed; "
                f"first {failure.case_id}: {failure.message}"
            )
        warned = [case for case in self.cases if case.outcome is Outcome.WARNING]
        if warned:
            return (
                f"{len(warned)} of {total} case(s) over a threshold; "
                f"first {warned[0].case_id}: {warned[0].message}"
            )
        judged = [case for case in self.cases if case.skip_kind is SkipKind.NOT_JUDGED]
        if judged:
            by = ", ".join(sorted({case.judged_by or "" for case in judged}))
            return f"{len(judged)} of {total} case(s) not judged: see {by}"
        if self.outcome is Outcome.SKIPPED:
            return self.cases[0].message if self.cases else "no cases"
        skipped = self._count(Outcome.SKIPPED)
        note = f" ({skipped} not applicable)" if skipped else ""
        return f"{self._count(Outcome.PASSED)} of {total} case(s) passed{note}"

    def as_dict(self) -> dict[str, Any]:
        """The requirement, its outcome, evidence and cases, as JSON data."""
        requirement = self.requirement
        evidence: dict[str, Any] = {
            "cases": len(self.cases),
            "passed": self._count(Outcome.PASSED),
            "warning": self._count(Outcome.WARNING),
            "failed": self._count(Outcome.FAILED),
            "notApplicable": self._count(Outcome.SKIPPED, SkipKind.NOT_APPLICABLE),
            "notJudged": self._count(Outcome.SKIPPED, SkipKind.NOT_JUDGED),
        }
        failure = self.first_failure
        if failure is not None:
            evidence["firstFailure"] = {
                "case": failure.case_id,
                "message": failure.message,
                **({"evidence": failure.evidence} if failure.evidence else {}),
            }
        data: dict[str, Any] = {
            "id": requirement.id,
            "title": requirement.title,
            "mandatory": requirement.mandatory,
            "appliesTo": list(requirement.capability),
            "outcome": self.outcome.value,
            "summary": self.summary,
            "evidence": evidence,
            "cases": [case.as_dict() for case in self.cases],
        }
        if self.skip_kind is not None:
            data["skip"] = self.skip_kind.value
        return data


def redact(options: Mapping[str, str]) -> dict[str, str]:
    """Options fit to publish: secrets and passwords in URLs replaced by ``***``."""
    shown = {}
    for key, value in options.items():
        if any(word in key.lower() for word in _SECRET_KEYS):
            shown[key] = "***"
            continue
        if "://" in value:
            parts = urlsplit(value)
            if parts.password:
                netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
                value = urlunsplit(parts._replace(netloc=netloc))
        shown[key] = value
    return shown


def environment() -> dict[str, Any]:
    """Where the suite ran: Python, platform and the versions of the packages that matter."""
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": packages,
    }


@dataclass
class SuiteResult:
    """A whole run: the adapter, every requirement's result, timings and the verdict."""

    context: Context
    requirements: list[RequirementResult]
    started: dt.datetime
    finished: dt.datetime
    warnings: list[str] = field(default_factory=list)

    @property
    def conformant(self) -> bool:
        """Every mandatory requirement passed or does not apply."""
        return all(item.satisfied for item in self.requirements if item.requirement.mandatory)

    @property
    def failed_ids(self) -> set[str]:
        """Ids of the requirements that failed."""
        return {item.requirement.id for item in self.requirements if item.outcome is Outcome.FAILED}

    def verdict_detail(self) -> str:
        """The verdict's reason in a line: how the mandatory requirements fared."""
        mandatory = [item for item in self.requirements if item.requirement.mandatory]

        def count(outcome: Outcome, kind: SkipKind | None = None) -> int:
            return sum(1 for it in mandatory if it.outcome is outcome and it.skip_kind is kind)

        parts = [f"{count(Outcome.PASSED)} of {len(mandatory)} mandatory requirements passed"]
        for number, label in (
            (count(Outcome.SKIPPED, SkipKind.NOT_APPLICABLE), "not applicable"),
            (count(Outcome.FAILED), "failed"),
            (count(Outcome.SKIPPED, SkipKind.NOT_JUDGED), "not judged"),
        ):
            if number:
                parts.append(f"{number} {label}")
        return ", ".join(parts)

    def counts(self) -> dict[str, int]:
        """How many requirements passed, failed and were skipped."""
        out = {outcome.value: 0 for outcome in Outcome}
        for item in self.requirements:
            out[item.outcome.value] += 1
        return out

    def adapter(self) -> dict[str, Any]:
        """What the adapter says it is, and where it comes from."""
        profile = self.context.profile
        info = profile.info
        target = self.context.target
        data: dict[str, Any] = {
            "name": info.name if info else target.name,
            "registeredAs": target.name,
            "vendor": info.vendor if info else None,
            "product": info.product if info else None,
            "version": info.version if info else None,
            "schemaVersions": list(info.schema_versions) if info else [],
            "capabilities": sorted(profile.capabilities),
            "servesCpas": self.context.cpas_id,
            "options": redact(target.options),
        }
        if target.distribution is not None:
            data["distribution"] = {
                "name": target.distribution[0],
                "version": target.distribution[1],
            }
        if profile.start_error:
            data["startError"] = profile.start_error
        return data

    def as_dict(self) -> dict[str, Any]:
        """The report's JSON document."""
        return {
            "suite": {"name": "cpas-conformance", "version": SUITE_VERSION},
            "schemaVersion": SCHEMA_VERSION,
            "adapter": self.adapter(),
            "seed": self.context.seed,
            "date": self.finished.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "started": self.started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "seconds": round((self.finished - self.started).total_seconds(), 3),
            "environment": environment(),
            "verdict": "conformant" if self.conformant else "not conformant",
            "verdictDetail": self.verdict_detail(),
            "conformant": self.conformant,
            "counts": self.counts(),
            "failedRequirements": sorted(self.failed_ids),
            "warnings": list(self.warnings),
            "requirements": [item.as_dict() for item in self.requirements],
            "timings": {
                operation: timing_summary(samples)
                for operation, samples in self.context.timings.items()
            },
            "timingsPerCase": per_case(self.context.case_timings),
        }


Progress = Callable[[Check, Case, CaseResult | None], None]
"""Told before each case (result ``None``) and after it (its result)."""


def run_suite(context: Context, progress: Progress | None = None) -> SuiteResult:
    """Run every case of every requirement against the context's adapter."""
    started = dt.datetime.now(dt.UTC)
    warnings = []
    if context.target.name is not None and not context.target.fresh_store_declared:
        warnings.append(
            "The options do not mention {workdir} or {workid}: unless the adapter makes a "
            "fresh store by itself, every case shares one store and results may be wrong."
        )
    by_requirement: dict[str, list[CaseResult]] = {}
    checks: dict[str, Check] = {}
    for check, case in all_cases():
        if progress is not None:
            progress(check, case, None)
        outcome = run_case(context, check, case)
        checks.setdefault(check.requirement.id, check)
        by_requirement.setdefault(check.requirement.id, []).append(outcome)
        if progress is not None:
            progress(check, case, outcome)
    results = [
        RequirementResult(check.requirement, tuple(by_requirement[requirement_id]))
        for requirement_id, check in checks.items()
    ]
    return SuiteResult(context, results, started, dt.datetime.now(dt.UTC), warnings)
