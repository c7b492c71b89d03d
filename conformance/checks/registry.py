"""The registry: each requirement, the cases it runs, and the function that judges one."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .. import corpus
from .. import requirements as reqs
from ..context import Context


@dataclass(frozen=True)
class Case:
    """One case of a requirement.

    :param id: short, stable, unique within the requirement (test ids and JUnit names).
    :param description: one line a reader of the report understands.
    :param param: what the case is about: a corpus file name, a probe...
    """

    id: str
    description: str
    param: str = ""


Evidence = dict[str, Any]
CheckFunction = Callable[[Context, Case], Evidence | None]


@dataclass(frozen=True)
class Check:
    """A requirement, the cases it runs, and the function that judges one case."""

    requirement: reqs.Requirement
    cases: Callable[[], Sequence[Case]]
    run: CheckFunction


CHECKS: dict[str, Check] = {}


def check(
    requirement: reqs.Requirement, cases: Callable[[], Sequence[Case]]
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the function that judges the cases of ``requirement``."""

    def register(function: CheckFunction) -> CheckFunction:
        if requirement.id in CHECKS:
            raise RuntimeError(f"{requirement.id} has two checks")
        CHECKS[requirement.id] = Check(requirement, cases, function)
        return function

    return register


def checks() -> list[Check]:
    """Every check, in the order of :data:`cpas_conformance.requirements.REQUIREMENTS`."""
    return [CHECKS[item.id] for item in reqs.REQUIREMENTS]


def all_cases() -> Iterator[tuple[Check, Case]]:
    """Every (check, case) pair of the suite, in report order."""
    for item in checks():
        for case in item.cases():
            yield item, case


def one_case(case_id: str, description: str) -> Callable[[], Sequence[Case]]:
    return lambda: (Case(case_id, description),)


def corpus_cases(files: Callable[[], Sequence[corpus.CorpusFile]]) -> Callable[[], list[Case]]:
    return lambda: [Case(item.case_id, item.description, item.name) for item in files()]
