"""How a check ends, and what the suite records about it.

A check returns normally when its case passes (optionally with evidence) and
raises one of three exceptions otherwise:

:class:`Failed`
    The adapter broke the requirement; the evidence says how.
:class:`NotApplicable`
    The adapter declares it does not do what the case needs (an export-only
    adapter and an import case). Visible in every report, with the reason.
:class:`NotJudged`
    The case could not be judged because the adapter broke *another*
    requirement first (an invalid export cannot be compared). That other
    requirement reports the defect, so each defect fails exactly one
    requirement, yet the case is not counted as passed.
:class:`Warned`
    The case passed its correctness but missed a published threshold (the
    speed requirement): graded *warning*, never counted against the verdict.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    """The outcome of a case or of a requirement."""

    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"
    SKIPPED = "skipped"


class SkipKind(enum.StrEnum):
    """Why a case or a requirement was skipped."""

    NOT_APPLICABLE = "not-applicable"
    NOT_JUDGED = "not-judged"


class CheckOutcome(Exception):
    """Base of the ways a check ends other than passing."""

    def __init__(self, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = dict(evidence or {})


class Failed(CheckOutcome):
    """The adapter broke the requirement of the case."""


class Warned(CheckOutcome):
    """The case missed a published threshold of an optional requirement (a warning)."""


class NotApplicable(CheckOutcome):
    """The case does not apply to what the adapter declares it does."""


class NotJudged(CheckOutcome):
    """The case cannot be judged because another requirement failed first.

    :param by: the id of the requirement that reports the defect.
    """

    def __init__(self, message: str, *, by: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(f"not judged: {message} (see {by})", evidence)
        self.by = by


@dataclass(frozen=True)
class CaseResult:
    """What happened to one case of one requirement."""

    requirement_id: str
    case_id: str
    description: str
    outcome: Outcome
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    skip_kind: SkipKind | None = None
    judged_by: str | None = None
    """For a case not judged, the requirement that reports the defect."""

    def as_dict(self) -> dict[str, Any]:
        """The case as plain JSON data."""
        data: dict[str, Any] = {
            "case": self.case_id,
            "description": self.description,
            "outcome": self.outcome.value,
            "seconds": round(self.seconds, 6),
        }
        if self.message:
            data["message"] = self.message
        if self.skip_kind is not None:
            data["skip"] = self.skip_kind.value
        if self.judged_by is not None:
            data["judgedBy"] = self.judged_by
        if self.evidence:
            data["evidence"] = self.evidence
        return data
