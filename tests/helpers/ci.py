"""A server or tool a test needs is missing: skip on a developer's machine, fail in CI.

CI sets ``CI=true`` (GitHub Actions, GitLab CI and most others do): there,
every test must run, and a missing broker, database or tool is an error.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Fail the test in CI, skip it elsewhere; ``reason`` says what is missing."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must run this test)", pytrace=False)
    pytest.skip(reason)
