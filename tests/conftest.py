"""Fixtures shared by the test suite: the real broker, PostgreSQL, and a small federation.

Broker and PostgreSQL tests use the servers running on this machine. Where
nothing answers and a Docker engine exists, pytest-docker starts
``docker-compose.yml``. Under ``CI=true`` an unreachable server fails the run
loudly: those tests must run in CI, never be skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

AMQP_URL = os.environ.get("CPAS_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/")
POSTGRES_URL = os.environ.get("CPAS_TEST_POSTGRES_URL", "postgresql://postgres@localhost:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "localhost", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def _require(url: str, port: int, what: str, request: pytest.FixtureRequest) -> str:
    if _answers(url, port):
        return url
    if _docker_engine():
        request.getfixturevalue("docker_services").wait_until_responsive(
            check=lambda: _answers(url, port), timeout=90.0, pause=1.0
        )
        return url
    message = f"{what} is unreachable at {url} and there is no Docker engine to start one"
    if IN_CI:
        pytest.fail(f"{message}: these tests must run in CI.", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(Path(__file__).resolve().parent.parent / "docker-compose.yml")


@pytest.fixture(scope="session")
def amqp_url(request: pytest.FixtureRequest) -> str:
    """The running RabbitMQ broker (tests using it are marked ``broker``)."""
    return _require(AMQP_URL, 5672, "The RabbitMQ broker", request)


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """The running PostgreSQL server (tests using it are marked ``postgres``)."""
    return _require(POSTGRES_URL, 5432, "PostgreSQL", request)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use, so `-m "not broker"` gives a fast run."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "amqp_url" in fixtures:
            item.add_marker(pytest.mark.broker)
        if "postgres_url" in fixtures:
            item.add_marker(pytest.mark.postgres)
