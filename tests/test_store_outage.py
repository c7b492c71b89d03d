"""A node outlives the loss of its store: it waits, reconnects and resumes on its own.

The PostgreSQL server here is the tests' own (``tests/postgres_server.py``),
stopped and started at will; the machine's shared server is never touched.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest
from conftest import GENT, LIEGE, NodeFactory
from helpers.ci import unavailable
from postgres_server import PrivatePostgres, postgres_bin

from gateway.dead_letters import list_dead_letters
from gateway.model.envelope import Purpose
from gateway.model.errors import StoreUnavailable
from gateway.node import Node
from gateway.store import Store

PURPOSE = Purpose.CONTINUITY_AFTER_MOVE


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    if postgres_bin() is None:
        unavailable("PostgreSQL (initdb, pg_ctl) is not installed on this machine")
    server = PrivatePostgres.create()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_store_url(private_postgres: PrivatePostgres) -> str:
    """A database of this test's own on the private server, which is running."""
    if not private_postgres.running:
        private_postgres.start()
    return private_postgres.database_url(f"store_{uuid.uuid4().hex[:10]}")


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_store_on_postgresql_is_unavailable_while_the_server_is_down_then_reconnects(
    private_postgres: PrivatePostgres, pg_store_url: str
) -> None:
    store = Store(pg_store_url)
    try:
        store.set_meta("before", "1")
        private_postgres.stop()
        with pytest.raises(StoreUnavailable) as away:
            store.set_meta("during", "1")
        assert away.value.code == "store.unavailable"
        assert "postgres@" in away.value.message  # the address, never a password
        private_postgres.start()
        store.set_meta("after", "1")
        assert store.get_meta("before") == store.get_meta("after") == "1"
        assert store.get_meta("during") is None
    finally:
        store.close()


def test_a_sqlite_store_locked_by_another_process_is_unavailable_until_released(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.sqlite3"
    store = Store(f"sqlite:///{path}")
    store._db._conn.execute("PRAGMA busy_timeout=100")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable):
            store.set_meta("name", "value")
        other.execute("ROLLBACK")
        store.set_meta("name", "value")
        assert store.get_meta("name") == "value"
    finally:
        other.close()
        store.close()


def _receiver_on(store_url: str, make_node: NodeFactory) -> Node:
    receiver = make_node(LIEGE, "fichesociale", start=False)
    receiver.store.close()
    receiver.store = Store(store_url)
    return receiver.start()


def _ready(amqp_url: str, queue: str) -> int:
    """Messages waiting in a queue, not handed to any consumer."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def test_a_receiver_whose_store_is_down_pauses_then_imports_everything_once_on_its_own(
    private_postgres: PrivatePostgres, pg_store_url: str, make_node: NodeFactory, amqp_url: str
) -> None:
    sender = make_node(GENT, "ocmwdata")
    receiver = _receiver_on(pg_store_url, make_node)
    numbers = sender.adapter.seed(30, seed=17)  # type: ignore[attr-defined]
    private_postgres.stop()
    sent = [sender.send_transfer(n, receiver.cpas_id, PURPOSE) for n in numbers]
    _wait(lambda: receiver.health().status == "store unavailable")
    inbox = receiver.names.inbox(receiver.cpas_id)
    # Consumption paused: what the node holds stays unacknowledged in the
    # broker, the rest waits there.
    assert not receiver.broker.consuming
    assert _ready(amqp_url, inbox) > 0
    assert receiver.stats["imported"] == 0
    private_postgres.start()
    outcomes = sender.wait_for_outcomes([s.message_id for s in sent], timeout=60)
    assert [outcomes[s.message_id].outcome for s in sent] == ["imported"] * len(sent)
    assert receiver.health().ok
    assert receiver.adapter.count_persons() == len(numbers)  # type: ignore[attr-defined]
    # No attempt of the node's was spent on the outage. (A delivery on its way
    # when consumption paused is given back by the AMQP client and comes again
    # marked redelivered: that is no attempt, and is not counted as one.)
    assert receiver.stats["errors"] == 0
    assert receiver.broker.consuming
    assert _ready(amqp_url, inbox) == 0
    assert list_dead_letters(receiver) == []


def test_a_sender_whose_store_is_down_records_every_receipt_once_it_is_back(
    private_postgres: PrivatePostgres, pg_store_url: str, make_node: NodeFactory
) -> None:
    sender = make_node(GENT, "ocmwdata", start=False)
    sender.store.close()
    sender.store = Store(pg_store_url)
    sender.start()
    receiver = make_node(LIEGE, "fichesociale")
    numbers = sender.adapter.seed(20, seed=19)  # type: ignore[attr-defined]
    sent = [sender.send_transfer(n, receiver.cpas_id, PURPOSE) for n in numbers]
    for item in sent:
        item.confirmed.result(timeout=10)
    private_postgres.stop()
    _wait(lambda: receiver.stats["imported"] == len(numbers))
    _wait(lambda: sender.health().status == "store unavailable")
    private_postgres.start()
    outcomes = sender.wait_for_outcomes([s.message_id for s in sent], timeout=60)
    assert [outcomes[s.message_id].outcome for s in sent] == ["imported"] * len(sent)
    assert sender.health().ok
    assert sender.stats["errors"] == 0
    assert list_dead_letters(sender) == []
