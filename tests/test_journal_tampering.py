"""Journal verification under structural tampering and a rollback with its witness removed.

``journal verify`` must never crash: a column whose type was changed behind
the journal's back is tampering, reported with exit 1. A database rolled
back together with its deleted witness file is caught unless the operator
states that this journal never had a witness.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.journal_run import cli, node_config, record_run

from gateway.config import NodeConfig
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.journal import Event, Journal, JournalSettings


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> LocalFederation:
    return make_local_federation(tmp_path_factory.mktemp("world"), ["21004", "44021"], small=True)


@pytest.fixture
def configured(world: LocalFederation, tmp_path: Path) -> Iterator[tuple[Path, Journal]]:
    """A node configuration, its journal at the default places (witness included), a run."""
    path = node_config(world, tmp_path)
    with JournalSettings.from_config(NodeConfig.load(path)).open() as journal:
        record_run(journal)
        yield path, journal


def _sql(journal: Journal, statement: str, params: tuple[object, ...] = ()) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(journal.url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute(statement, params).fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize(
    "tampering",
    [
        "UPDATE journal_entries SET content = hex(content) WHERE content IS NOT NULL",
        "UPDATE journal_entries SET entry_hash = CAST(entry_hash AS BLOB) WHERE seq = 3",
        "UPDATE journal_entries SET at = 12345 WHERE seq = 2",
        "UPDATE journal_head SET seq = x'00ff'",
        "ALTER TABLE journal_entries DROP COLUMN code",
    ],
    ids=["content-as-text", "hash-as-blob", "time-as-integer", "head-as-blob", "column-dropped"],
)
def test_a_changed_column_type_is_reported_as_tampering_not_a_crash(
    configured: tuple[Path, Journal],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tampering: str,
) -> None:
    path, journal = configured
    _sql(journal, tampering)
    assert cli(monkeypatch, "journal", "verify", "--config", str(path)) == 1
    out = capsys.readouterr()
    assert "BROKEN" in out.out
    assert "Traceback" not in out.out + out.err


def _roll_back_with_the_witness_deleted(journal: Journal) -> None:
    old_head = _sql(journal, "SELECT seq, entry_hash, seal FROM journal_head")[0]
    journal.record(Event.SENT, message_type="transfer", message_id="late-1")
    journal.record(Event.SENT, message_type="transfer", message_id="late-2")
    _sql(journal, "DELETE FROM journal_entries WHERE seq > ?", (old_head[0],))
    _sql(journal, "UPDATE journal_head SET seq = ?, entry_hash = ?, seal = ?", old_head)
    assert journal.head_path is not None
    journal.head_path.unlink()


def test_a_rollback_with_the_witness_deleted_is_an_error(
    configured: tuple[Path, Journal],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, journal = configured
    _roll_back_with_the_witness_deleted(journal)
    assert cli(monkeypatch, "journal", "verify", "--config", str(path)) == 1
    assert "witness" in capsys.readouterr().out


def test_an_operator_can_say_the_witness_was_never_made(
    configured: tuple[Path, Journal],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, journal = configured
    assert journal.head_path is not None
    journal.head_path.unlink()
    argv = ("journal", "verify", "--config", str(path), "--no-witness")
    assert cli(monkeypatch, *argv) == 0
    assert "no head witness" in capsys.readouterr().out
