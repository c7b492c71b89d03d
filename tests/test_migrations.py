"""Upgrades keep every row: the store and the journal carry a schema version and migrate.

A store and a journal of the first release (its tables exactly, kept frozen in
``tests/schema_v1/``, no version recorded) are filled through the node's own
code -- outbox entries in flight, a journal chain with content, held
requests -- then migrated; every row must still be there and the chain must
still verify. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway import journal as journal_module
from gateway import store as store_module
from gateway.cli import main
from gateway.database import Database
from gateway.journal import Event, Journal, load_or_create_secret
from gateway.journal import tables as journal_tables
from gateway.migrations import Migration, Schema
from gateway.model.errors import ConfigError
from gateway.store import Outgoing, Store
from gateway.store import store as store_facade

FROZEN = Path(__file__).parent / "schema_v1"
NISS = "85073003328"
CPAS = "0204402160"


def test_migration_1_of_the_store_is_the_first_release_schema_unchanged() -> None:
    assert store_module.SCHEMA.migrations[0].statements.lstrip() == (
        FROZEN / "store.sql"
    ).read_text(encoding="utf-8")


def test_migration_1_of_the_journal_is_the_first_release_schema_unchanged() -> None:
    assert journal_module.SCHEMA.migrations[0].statements.lstrip() == (
        FROZEN / "journal.sql"
    ).read_text(encoding="utf-8")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the node keeps its store and journal: SQLite files, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state/node.sqlite3"
        return
    yield request.getfixturevalue("postgres_schema")


def _journal_url(store_url: str) -> str:
    if store_url.startswith("sqlite:///"):
        return str(Path(store_url.removeprefix("sqlite:///")).with_name("journal.sqlite3"))
    return store_url  # on PostgreSQL the journal shares the store's database


def _config(tmp_path: Path, store_url: str) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    path = tmp_path / "node.toml"
    path.write_text(
        f'cpas_id = "{CPAS}"\nstore = "{store_url}"\njournal = "{_journal_url(store_url)}"\n'
        f'keys = "{keys}"\ndirectory = "{tmp_path}/directory.xml"\n'
        f'trust_anchor = "{tmp_path}/federation.pub"\n\n[adapter]\nname = "ocmwdata"\n',
        encoding="utf-8",
    )
    return path


def _first_release(store_url: str, secret: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store and journal as the first release left them: its tables, its rows, no version."""
    with monkeypatch.context() as first:
        first.setattr(store_facade, "SCHEMA", store_module.SCHEMA.upto(1))
        first.setattr(journal_tables, "SCHEMA", journal_tables.SCHEMA.upto(1))
        # The first release wrote no ``actor`` column (journal migration 2 adds it).
        columns = tuple(name for name in journal_tables._COLUMNS if name != "actor")
        first.setattr(journal_tables, "_COLUMNS", columns)
        first.setattr(
            journal_tables,
            "_SELECT",
            journal_tables._SELECT.replace(", e.actor", ""),
        )
        store = Store(store_url, owner=CPAS)
        journal = Journal(_journal_url(store_url), secret, owner=CPAS)
        _fill(store, journal)
        store.close()
        journal.close()
    for url in {store_url, _journal_url(store_url)}:
        _execute(url, "DROP TABLE schema_version")


def _fill(store: Store, journal: Journal) -> None:
    envelope = b"<envelope>sealed</envelope>"
    store.add_outgoing(
        [
            Outgoing(f"m-{n}", "transfer", "0206202353", "continuity", f"case-{n}", None, envelope)
            for n in range(3)
        ]
        + [Outgoing("q-1", "request", "0206202353", "new-application", "case-q", None, envelope)]
    )
    store.mark_confirmed(["m-0", "m-1"])  # m-2 and q-1 are still in flight
    store.record_outcome("m-0", "imported", None)
    store.record_received(
        message_id="in-1", type="transfer", sender="0206202353", outcome="imported"
    )
    store.count_failure("in-2", "adapter.failed")
    for n in range(2):
        store.hold(
            message_id=f"held-{n}",
            sender="0206202353",
            purpose="new-application",
            case_reference=f"case-h{n}",
            envelope=envelope,
            expires_at=(dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
        )
    store.decide("held-1", "released")
    store.set_meta("directory.serial", "1")
    for n in range(3):
        journal.record(
            Event.SENT,
            message_id=f"m-{n}",
            message_type="transfer",
            peer="0206202353",
            purpose="continuity",
            case_reference=f"case-{n}",
            person_number=NISS,
            content=b"<dossier>the exact XML</dossier>",
        )
    journal.record(Event.REQUEST_HELD, message_id="held-0", peer="0206202353")


def _execute(url: str, statement: str) -> None:
    if url.startswith("postgresql://"):
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(statement)
        return
    import sqlite3

    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
        conn.execute(statement)


def _assert_kept(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> None:
    """Every row is still there with its values; columns later migrations added are empty."""
    assert after.keys() == before.keys()
    for table, rows in before.items():
        width = len(rows[0]) if rows else 0
        assert [row[:width] for row in after[table]] == rows, table
        assert all(value is None for row in after[table] for value in row[width:]), table


def _rows(url: str, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables``, sorted, bytes as bytes (read without the gateway's code)."""
    if url.startswith("postgresql://"):
        with psycopg.connect(url) as pg:
            raw = {table: pg.execute(f"SELECT * FROM {table}").fetchall() for table in tables}
    else:
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            raw = {table: conn.execute(f"SELECT * FROM {table}").fetchall() for table in tables}
    return {
        table: sorted(
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows
        )
        for table, rows in raw.items()
    }


STORE_TABLES = ["outbox", "inbox", "attempts", "meta", "held_requests", "node_owner"]
JOURNAL_TABLES = ["journal_entries", "journal_keys", "journal_head"]


def test_migrate_keeps_every_row_of_a_first_release_store_and_journal_and_the_chain_verifies(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = load_or_create_secret(tmp_path / "keys-secret")
    _first_release(database_url, secret, monkeypatch)
    before_store = _rows(database_url, STORE_TABLES)
    before_journal = _rows(_journal_url(database_url), JOURNAL_TABLES)

    assert main(["migrate", "--config", str(_config(tmp_path, database_url))]) == 0
    said = capsys.readouterr().out
    store_latest, journal_latest = store_module.SCHEMA.latest, journal_module.SCHEMA.latest
    assert "store" in said and "journal" in said
    assert f"schema version 1 -> schema version {store_latest}" in said
    assert f"schema version 1 -> schema version {journal_latest}" in said

    _assert_kept(before_store, _rows(database_url, STORE_TABLES))
    _assert_kept(before_journal, _rows(_journal_url(database_url), JOURNAL_TABLES))
    store = Store(database_url, owner=CPAS)
    journal = Journal(_journal_url(database_url), secret, owner=CPAS)
    try:
        assert {e.message_id for e in store.unconfirmed()} == {"m-2", "q-1"}
        assert [h.message_id for h in store.held()] == ["held-0"]
        assert store.directory_edition() is None
        assert journal.verify(now=dt.datetime.now(dt.UTC)).ok
        assert [e.content for e in journal.entries_for(NISS)] == [
            b"<dossier>the exact XML</dossier>"
        ] * 3
    finally:
        store.close()
        journal.close()


def test_migrate_twice_changes_nothing_the_second_time(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _first_release(database_url, os.urandom(32), monkeypatch)
    config = _config(tmp_path, database_url)
    assert main(["migrate", "--config", str(config)]) == 0
    capsys.readouterr()
    rows = _rows(database_url, [*STORE_TABLES, "schema_version"])

    assert main(["migrate", "--config", str(config)]) == 0

    assert "store" in (said := capsys.readouterr().out)
    assert said.count("nothing to do") == 2
    assert _rows(database_url, [*STORE_TABLES, "schema_version"]) == rows


def test_a_node_opening_a_first_release_store_migrates_it_at_start(database_url: str) -> None:
    Database(database_url, schema=store_module.SCHEMA.upto(1), what="store").close()
    _execute(database_url, "DROP TABLE schema_version")

    store = Store(database_url)
    try:
        assert store.migration is not None
        assert (store.migration.before, store.migration.after) == (1, store_module.SCHEMA.latest)
        store.keep_directory_edition(3, b"<directory/>")
        assert store.directory_edition() == b"<directory/>"
        assert store.get_meta("directory.serial") == "3"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("component", "opening"),
    [
        ("store", lambda url: Store(url)),
        ("journal", lambda url: Journal(url, bytes(32))),
    ],
)
def test_a_store_or_journal_newer_than_the_code_is_refused_before_anything_is_written(
    database_url: str, component: str, opening: Any
) -> None:
    opening(database_url).close()
    _execute(
        database_url, f"UPDATE schema_version SET version = 99 WHERE component = '{component}'"
    )

    with pytest.raises(ConfigError) as refused:
        opening(database_url)

    assert refused.value.code == f"{component}.too_new"
    assert "schema version 99" in refused.value.message
    assert "newer release" in refused.value.message


def test_migrate_refuses_a_store_newer_than_the_code_with_its_code(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Store(database_url).close()
    _execute(database_url, "UPDATE schema_version SET version = 7 WHERE component = 'store'")

    assert main(["migrate", "--config", str(_config(tmp_path, database_url))]) == 1

    said = capsys.readouterr().err
    assert "[store.too_new]" in said and "Traceback" not in said


def test_a_migration_that_fails_leaves_the_database_at_its_version(database_url: str) -> None:
    first = Migration(1, "a table", "CREATE TABLE IF NOT EXISTS kept (id INTEGER)")
    broken = Migration(
        2,
        "a table, then a mistake",
        "CREATE TABLE half (id INTEGER); INSERT INTO no_such_table VALUES (1)",
    )
    Database(database_url, schema=Schema("probe", "probe", (first,), "kept"), what="p").close()

    with pytest.raises(Exception, match="no_such_table"):
        Database(database_url, schema=Schema("probe", "probe", (first, broken), "kept"), what="p")

    after = Database(database_url, schema=Schema("probe", "probe", (first,), "kept"), what="p")
    try:
        assert after.query("SELECT version FROM schema_version WHERE component = 'probe'") == [(1,)]
        with pytest.raises(Exception, match="half"):
            after.query("SELECT * FROM half")
    finally:
        after.close()
