"""The conformance suite as pytest tests: one test per requirement and case.

Collect it explicitly (``pytest --cpas-adapter NAME --pyargs cpas_conformance.suite``)
or import it into a test module of your own (``from cpas_conformance.suite import *``).
Each test runs the same check the ``cpas-conformance`` command runs
(:func:`cpas_conformance.runner.run_case`): a failed case fails with the
requirement's id and the evidence, a case that does not apply or cannot be
judged is skipped with the reason, and a speed warning (DSE-PRF-001) is a
pytest warning.

Test ids are ``test_conformance[<requirement id>/<case>]``, so
``-k DSE-MIN-001`` runs one requirement.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import pytest

from .checks import Case, Check, all_cases
from .context import Context
from .outcomes import Outcome
from .runner import run_case

__all__ = ["test_conformance"]

_CASES = [
    pytest.param(check, case, id=f"{check.requirement.id}/{case.id}") for check, case in all_cases()
]


@pytest.mark.parametrize(("cpas_check", "cpas_case"), _CASES)
def test_conformance(
    cpas_check: Check,
    cpas_case: Case,
    cpas_conformance: Context,
    record_property: Callable[[str, object], None],
) -> None:
    """One case of one requirement, judged by the suite's own check."""
    requirement = cpas_check.requirement
    record_property("requirement", requirement.id)
    record_property("mandatory", requirement.mandatory)
    result = run_case(cpas_conformance, cpas_check, cpas_case)
    if result.outcome is Outcome.FAILED:
        evidence = json.dumps(result.evidence, ensure_ascii=False, indent=2, default=str)
        pytest.fail(
            f"{requirement.id} {requirement.title}\n{result.message}\nevidence: {evidence}",
            pytrace=False,
        )
    if result.outcome is Outcome.SKIPPED:
        pytest.skip(f"{requirement.id}: {result.message}")
    if result.outcome is Outcome.WARNING:
        # A published threshold missed: shown in pytest's warnings summary, never a failure.
        warnings.warn(f"{requirement.id}: {result.message}", UserWarning, stacklevel=1)
