"""Fixtures shared by the test suite: the real broker, PostgreSQL, and a small federation.

Broker and PostgreSQL tests use the servers running on this machine. Where
nothing answers and a Docker engine exists, pytest-docker starts
``docker-compose.yml``. Under ``CI=true`` an unreachable server fails the run
loudly: those tests must run in CI, never be skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
from brokers import BrokerNode, BrokerUnavailable, TlsListener, rabbitmq_installed
from helpers.ci import unavailable
from psycopg import sql

from gateway.adapters import load_adapters
from gateway.broker import (
    BrokerTLS,
    Names,
    delete_namespace,
)
from gateway.federation.local_pki import LocalPki, make_local_pki
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.journal import Journal, load_or_create_secret
from gateway.node import Node
from gateway.store import Store
from gateway.testing import MEMORY_URL, MemoryBroker

# Fixtures shared by several test modules.
pytest_plugins = ["helpers.broker_users", "helpers.node_configs", "helpers.api_nodes"]

AMQP_URL = os.environ.get("CPAS_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/")
MANAGEMENT_URL = os.environ.get("CPAS_TEST_MANAGEMENT_URL", "http://guest:guest@localhost:15672/")
POSTGRES_URL = os.environ.get("CPAS_TEST_POSTGRES_URL", "postgresql://postgres@localhost:5432/test")


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
    unavailable(f"{what} is unreachable at {url} and there is no Docker engine to start one")


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(Path(__file__).resolve().parent.parent / "docker-compose.yml")


@pytest.fixture(scope="session")
def amqp_url(request: pytest.FixtureRequest) -> str:
    """The running RabbitMQ broker (tests using it are marked ``broker``)."""
    return _require(AMQP_URL, 5672, "The RabbitMQ broker", request)


@pytest.fixture(scope="session")
def management_url(request: pytest.FixtureRequest, amqp_url: str) -> str:
    """RabbitMQ's management API (the rabbitmq_management plugin), for provisioning tests."""
    return _require(MANAGEMENT_URL, 15672, "The RabbitMQ management API", request)


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """The running PostgreSQL server (tests using it are marked ``postgres``)."""
    return _require(POSTGRES_URL, 5432, "PostgreSQL", request)


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """The URL of a PostgreSQL schema of its own, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as pg:
        pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    joiner = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{joiner}options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_url, autocommit=True) as pg:
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use, so `-m "not broker"` gives a fast run."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "amqp_url" in fixtures or "management_url" in fixtures:
            item.add_marker(pytest.mark.broker)
        if "postgres_url" in fixtures:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """What commands remember between runs (the last directory edition seen) stays in the test."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


# ---------------------------------------------------------------- federation & nodes

GENT, LIEGE, NAMUR = "44021", "62063", "92094"
"""Three real municipalities whose CPAS run nodes in the tests."""


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> LocalFederation:
    """Federation key, node keys for Gent, Liège and Namur, the signed sample directory."""
    return make_local_federation(tmp_path_factory.mktemp("federation"), [GENT, LIEGE, NAMUR])


@pytest.fixture
def sandbox(amqp_url: str, federation: LocalFederation) -> Iterator[Names]:
    """This test's own exchanges and queues, deleted afterwards."""
    names = Names(f"test-{uuid.uuid4().hex[:10]}")
    yield names
    delete_namespace(amqp_url, federation.members, names=names)


NodeFactory = Callable[..., Node]


# ---------------------------------------------------------------- a broker of our own


@dataclass(frozen=True)
class TlsBroker:
    node: BrokerNode
    pki: LocalPki
    folder: Path

    @property
    def url(self) -> str:
        return self.node.tls_url

    @property
    def good(self) -> BrokerTLS:
        """What a node with the right certificate is configured with."""
        return BrokerTLS(
            ca_file=self.pki.ca_file, cert_file=self.pki.client.cert, key_file=self.pki.client.key
        )


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """A RabbitMQ node of the tests' own: plain and TLS listeners (client certificates
    required), management API over HTTP and HTTPS; certificates made here."""
    if not rabbitmq_installed():
        unavailable("RabbitMQ is not installed on this machine (the TLS tests start their own)")
    folder = tmp_path_factory.mktemp("tls")
    pki = make_local_pki(folder / "pki")
    node = BrokerNode.single(
        folder / "broker",
        name="cpastls",
        tls=TlsListener(pki.ca_file, pki.server.cert, pki.server.key),
        management=True,
    )
    try:
        node.start()
    except BrokerUnavailable as exc:
        node.remove()
        pytest.fail(f"the TLS tests' broker node did not start: {exc}", pytrace=False)
    yield TlsBroker(node, pki, folder)
    node.remove()


@contextlib.contextmanager
def building_nodes(
    federation: LocalFederation, folder: Path, **defaults: Any
) -> Iterator[NodeFactory]:
    """Build nodes for member CPAS with a reference adapter; stop them all at the end.

    Calling the factory again for the same CPAS and adapter reuses the vendor
    data and the node's store (a restart). ``defaults`` and the factory's
    keyword arguments go to :class:`Node` (``start=False``: not started).
    """
    registry = load_adapters()
    nodes: list[Node] = []

    def factory(nis_code: str, adapter: str, *, start: bool = True, **kwargs: Any) -> Node:
        member = federation.member(nis_code)
        here = folder / f"{adapter}-{member.cpas_id}"
        here.mkdir(exist_ok=True)
        options = (
            {"url": f"sqlite:///{here}/vendor.sqlite3"}
            if adapter == "ocmwdata"
            else {"folder": str(here / "fiches")}
        )
        settings: dict[str, Any] = (
            {"directory": federation.directory, "keys": member.node_keys} | defaults | kwargs
        )
        journal = Journal(
            f"sqlite:///{here}/journal.sqlite3",
            load_or_create_secret(here / "journal.secret"),
            head_path=here / "journal.head",
        )
        node = Node(
            member.cpas_id,
            adapter=registry.create(adapter, member.cpas_id, options),
            store=Store(f"sqlite:///{here}/node.sqlite3"),
            journal=journal,
            **settings,
        )
        nodes.append(node)
        return node.start() if start else node

    try:
        yield factory
    finally:
        for node in nodes:
            node.stop()
            node.adapter.close()


@pytest.fixture
def make_node(
    amqp_url: str, federation: LocalFederation, sandbox: Names, tmp_path: Path
) -> Iterator[NodeFactory]:
    """Build and start a node on the real broker (see :func:`building_nodes`).

    Keyword arguments go to :class:`Node` (``directory``, ``keys``,
    ``amqp_urls`` and ``start=False`` override).
    """
    with building_nodes(federation, tmp_path, amqp_urls=[amqp_url], names=sandbox) as factory:
        yield factory


@pytest.fixture
def memory_broker() -> MemoryBroker:
    """An in-memory broker of this test's own (gateway.testing)."""
    return MemoryBroker()


@pytest.fixture
def make_memory_node(
    memory_broker: MemoryBroker, federation: LocalFederation, tmp_path: Path
) -> Iterator[NodeFactory]:
    """As ``make_node``, on this test's in-memory broker: no RabbitMQ needed."""
    with building_nodes(
        federation, tmp_path, amqp_urls=[MEMORY_URL], broker=memory_broker.client
    ) as factory:
        yield factory
