"""The checks: one function per requirement, and the cases each one runs.

Every check is written once and serves both ways of running the suite: the
``cpas-conformance`` command (:mod:`cpas_conformance.runner`) and pytest
(:mod:`cpas_conformance.suite`). A check receives the run's
:class:`~cpas_conformance.context.Context` and one :class:`Case`; it returns
evidence when the case passes and raises an outcome from
:mod:`cpas_conformance.outcomes` otherwise.

Cases are data: one per corpus file, per kind of sensitive data, per probe.
They do not depend on the adapter, so pytest can collect them before any
adapter is built; whether a case applies is decided when it runs.

Each defect is reported under the one requirement it breaks. Where a case
cannot be judged because an earlier property already failed (an export that
is not valid cannot be compared), it raises
:class:`~cpas_conformance.outcomes.NotJudged` naming the requirement that
reports the defect.
"""

from __future__ import annotations

# Importing the modules registers their checks.
from . import (
    describing,
    exporting,
    importing,
    lifecycle,
    minimality,
    optional,
    robustness,
    round_trips,
    side_channels,
    speed,
)
from .registry import CHECKS, Case, Check, CheckFunction, Evidence, all_cases, check, checks

__all__ = [
    "CHECKS",
    "Case",
    "Check",
    "CheckFunction",
    "Evidence",
    "all_cases",
    "check",
    "checks",
    "describing",
    "exporting",
    "importing",
    "lifecycle",
    "minimality",
    "optional",
    "robustness",
    "round_trips",
    "side_channels",
    "speed",
]
