"""The journal: hash-chained, sealed with the node's secret, content encrypted per dossier.

Tampering is done the way someone with access to the database would do it:
raw SQL on the tables, never through the journal's own API.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers.journal_run import (
    BRUSSELS,
    EUPEN,
    GENT,
    GENT_ID,
    POLICE_ID,
    START,
    Run,
    cli,
    node_config,
    record_run,
)
from psycopg import sql

from gateway.config import NodeConfig
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.journal import (
    ContentState,
    Event,
    Journal,
    JournalError,
    JournalSettings,
    load_or_create_secret,
)
from gateway.journal.seals import Seals
from gateway.journal.witness import HeadWitness
from gateway.model.errors import KeyMaterialError

# ---------------------------------------------------------------- fixtures


@dataclass
class Target:
    """Where a journal lives, and raw access to it as an intruder would have."""

    url: str
    sqlite_path: Path | None = None
    schema: str | None = None
    admin_url: str | None = None

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.sqlite_path is not None:
            conn = sqlite3.connect(self.sqlite_path, isolation_level=None)
            try:
                return conn.execute(statement, params).fetchall()
            finally:
                conn.close()
        assert self.admin_url is not None and self.schema is not None
        with psycopg.connect(self.admin_url, autocommit=True) as pg:
            pg.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            cursor = pg.execute(statement.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """An empty journal database: a SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        path = tmp_path / "journal.sqlite3"
        yield Target(f"sqlite:///{path}", sqlite_path=path)
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"journal_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    joiner = "&" if "?" in url else "?"
    yield Target(f"{url}{joiner}options=-csearch_path%3D{schema}", schema=schema, admin_url=url)
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def secret() -> bytes:
    return os.urandom(32)


@pytest.fixture
def journal(target: Target, secret: bytes, tmp_path: Path) -> Iterator[Journal]:
    with Journal(target.url, secret, head_path=tmp_path / "journal.head") as opened:
        yield opened


@pytest.fixture
def run(journal: Journal) -> Run:
    return record_run(journal)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> LocalFederation:
    """Keys and a signed directory for the CPAS of Brussels, Gent and Eupen."""
    return make_local_federation(tmp_path_factory.mktemp("federation"), [BRUSSELS, GENT, EUPEN])


def sqlite_bytes(path: Path) -> bytes:
    """Every byte SQLite keeps for a database: the file, its write-ahead log and index."""
    parts = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


# ------------------------------------------------------------ integrity


def test_an_untouched_journal_verifies_with_every_entry_counted(journal: Journal, run: Run) -> None:
    result = journal.verify()
    assert result.ok, result.reason
    assert result.entries == run.total == 18
    assert result.broken_at is None and not result.warnings


def test_an_altered_row_is_detected_at_that_entry(
    journal: Journal, run: Run, target: Target
) -> None:
    target.execute("UPDATE journal_entries SET peer = ? WHERE seq = ?", (POLICE_ID, 7))
    result = journal.verify()
    assert not result.ok
    assert result.broken_at == 7
    assert "altered" in (result.reason or "")


def test_an_altered_outcome_is_detected_even_when_the_row_is_resealed_without_the_secret(
    journal: Journal, run: Run, target: Target
) -> None:
    # Someone without the secret can only guess a seal; any guess fails.
    target.execute(
        "UPDATE journal_entries SET outcome = 'imported', entry_hash = ? WHERE seq = 5",
        (os.urandom(32).hex(),),
    )
    assert journal.verify().broken_at == 5


def test_an_inserted_row_is_detected_where_it_was_inserted(
    journal: Journal, run: Run, target: Target
) -> None:
    # Make room at entry 6 and slip in a copy of entry 5 there.
    target.execute("UPDATE journal_entries SET seq = -seq WHERE seq >= 6")
    target.execute("UPDATE journal_entries SET seq = 1 - seq WHERE seq < 0")
    columns = (
        "at, event, direction, message_id, message_type, peer, purpose, case_reference, "
        "correlation_id, person_tag, outcome, code, content, content_digest, retain_until, "
        "prev_hash, entry_hash"
    )
    target.execute(
        f"INSERT INTO journal_entries (seq, {columns}) SELECT 6, {columns}"
        " FROM journal_entries WHERE seq = 5"
    )
    result = journal.verify()
    assert not result.ok
    assert result.broken_at == 6


def test_a_row_appended_behind_the_journals_back_is_detected(
    journal: Journal, run: Run, target: Target
) -> None:
    last = run.total
    columns = (
        "at, event, direction, message_id, message_type, peer, purpose, case_reference, "
        "correlation_id, person_tag, outcome, code, content, content_digest, retain_until, "
        "prev_hash, entry_hash"
    )
    target.execute(
        f"INSERT INTO journal_entries (seq, {columns}) SELECT {last + 1}, {columns}"
        f" FROM journal_entries WHERE seq = {last}"
    )
    assert journal.verify().broken_at == last + 1


def test_a_row_deleted_in_the_middle_is_detected(
    journal: Journal, run: Run, target: Target
) -> None:
    target.execute("DELETE FROM journal_entries WHERE seq = 9")
    result = journal.verify()
    assert not result.ok
    assert result.broken_at == 9
    assert "missing" in (result.reason or "")


def test_the_first_row_deleted_is_detected(journal: Journal, run: Run, target: Target) -> None:
    target.execute("DELETE FROM journal_entries WHERE seq = 1")
    assert journal.verify().broken_at == 1


def test_the_last_rows_deleted_are_detected(journal: Journal, run: Run, target: Target) -> None:
    target.execute("DELETE FROM journal_entries WHERE seq > ?", (run.total - 2,))
    result = journal.verify()
    assert not result.ok
    assert result.broken_at == run.total - 1
    assert "removed from the end" in (result.reason or "")


def test_the_head_moved_back_without_the_secret_is_detected(
    journal: Journal, run: Run, target: Target
) -> None:
    target.execute("DELETE FROM journal_entries WHERE seq > ?", (run.total - 2,))
    (entry_hash,) = target.execute(
        "SELECT entry_hash FROM journal_entries WHERE seq = ?", (run.total - 2,)
    )[0]
    target.execute("UPDATE journal_head SET seq = ?, entry_hash = ?", (run.total - 2, entry_hash))
    result = journal.verify()
    assert not result.ok
    assert "head" in (result.reason or "")


def test_a_database_rewound_to_an_older_copy_is_caught_by_the_head_witness(
    journal: Journal, run: Run, target: Target, secret: bytes
) -> None:
    # An intruder who kept an old copy of the head row restores it after
    # deleting what came later: the database alone is consistent again...
    old_head = target.execute("SELECT seq, entry_hash, seal FROM journal_head")[0]
    journal.record(Event.SENT, message_type="transfer", peer=GENT_ID, message_id="late-1")
    journal.record(Event.SENT, message_type="transfer", peer=GENT_ID, message_id="late-2")
    target.execute("DELETE FROM journal_entries WHERE seq > ?", (old_head[0],))
    target.execute("UPDATE journal_head SET seq = ?, entry_hash = ?, seal = ?", old_head)
    with Journal(target.url, secret) as without_witness:
        assert without_witness.verify().ok
    # ...but the witness kept beside the secret has seen the later entries.
    result = journal.verify()
    assert not result.ok
    assert result.broken_at == run.total + 1
    assert "witness" in (result.reason or "")


def test_the_head_witness_never_moves_back_when_two_writers_finish_out_of_order(
    tmp_path: Path, secret: bytes
) -> None:
    # Two processes of one node append in turn, and write the witness after
    # their own commits: the one that committed first may write last.
    witness = HeadWitness(tmp_path / "journal.head", Seals(secret))
    witness.write(11, "b" * 64, holds=lambda seq, entry_hash: True)
    witness.write(10, "a" * 64, holds=lambda seq, entry_hash: True)
    assert witness.read() == ((11, "b" * 64), [])


def test_a_journal_started_afresh_replaces_the_witness_of_another_journal(
    tmp_path: Path, secret: bytes
) -> None:
    witness = HeadWitness(tmp_path / "journal.head", Seals(secret))
    witness.write(14, "b" * 64, holds=lambda seq, entry_hash: True)
    witness.write(1, "a" * 64, holds=lambda seq, entry_hash: False)
    assert witness.read() == ((1, "a" * 64), [])


def test_a_rewrite_by_someone_holding_the_secret_is_caught_by_an_anchor_noted_earlier(
    journal: Journal, run: Run, target: Target, secret: bytes
) -> None:
    noted = journal.verify()
    # Whoever holds the secret (and the witness file) can rebuild a whole
    # journal that verifies...
    for table in ("journal_entries", "journal_keys", "journal_head"):
        target.execute(f"DELETE FROM {table}")
    with Journal(target.url, secret) as forger:
        for seq in range(1, run.total + 1):
            forger.record(Event.SENT, message_id=f"forged-{seq}", message_type="transfer")
        assert forger.verify().ok
        # ...but not one that matches the head noted earlier, away from the node.
        result = forger.verify(anchors={noted.entries: noted.head})
    assert not result.ok
    assert result.broken_at == run.total
    assert "rewritten" in (result.reason or "")


def test_a_content_key_deleted_before_its_retention_ends_is_detected(
    journal: Journal, run: Run, target: Target
) -> None:
    seq = next(iter(run.people["bob"].contents))
    target.execute("DELETE FROM journal_keys WHERE seq = ?", (seq,))
    result = journal.verify()
    assert result.broken_at == seq
    assert "before the end of its retention" in (result.reason or "")


def test_content_swapped_between_two_entries_is_detected(
    journal: Journal, run: Run, target: Target
) -> None:
    first, second = sorted(s for p in run.people.values() for s in p.contents)[:2]
    (content,) = target.execute("SELECT content FROM journal_entries WHERE seq = ?", (second,))[0]
    target.execute("UPDATE journal_entries SET content = ? WHERE seq = ?", (content, first))
    assert journal.verify().broken_at == first


def test_a_journal_opened_with_another_secret_verifies_nothing_and_appends_nothing(
    journal: Journal, run: Run, target: Target
) -> None:
    with Journal(target.url, os.urandom(32)) as stranger:
        assert stranger.verify().broken_at == 1
        with pytest.raises(JournalError) as refused:
            stranger.record(Event.SENT, message_type="transfer", peer=GENT_ID)
    assert refused.value.code == "journal.head_invalid"
    assert journal.count() == run.total


def test_threads_recording_at_once_make_one_unbroken_chain(journal: Journal) -> None:
    def record(worker: int) -> None:
        for i in range(25):
            journal.record(
                Event.SENT,
                message_id=f"{worker}-{i}",
                message_type="transfer",
                peer=GENT_ID,
                person_number="85073003328",
                content=b"<dossier/>" * (i + 1),
            )

    threads = [threading.Thread(target=record, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = journal.verify()
    assert result.ok, result.reason
    assert result.entries == 100


def test_verifying_while_the_node_records_raises_no_false_alarm(
    target: Target, secret: bytes, tmp_path: Path
) -> None:
    head = tmp_path / "journal.head"
    with (
        Journal(target.url, secret, head_path=head) as node,
        Journal(target.url, secret, head_path=head) as operator,
    ):
        done = threading.Event()

        def record() -> None:
            for i in range(150):
                node.record(Event.SENT, message_id=str(i), message_type="transfer", peer=GENT_ID)
            done.set()

        writer = threading.Thread(target=record)
        writer.start()
        results = []
        while not done.is_set():
            results.append(operator.verify())
        writer.join()
        results.append(operator.verify())
    assert all(result.ok for result in results), next(r.reason for r in results if not r.ok)
    assert results[-1].entries == 150


# --------------------------------------------------------------- content


def test_a_persons_entries_carry_the_recorded_content_byte_for_byte(
    journal: Journal, run: Run
) -> None:
    for person in run.people.values():
        entries = journal.entries_for(person.number)
        assert [e.seq for e in entries] == person.seqs
        found = {e.seq: e.content for e in entries if e.content is not None}
        assert found == person.contents


def test_a_receipt_is_filed_under_the_person_of_the_message_it_answers(
    journal: Journal, run: Run
) -> None:
    entries = journal.entries_for(run.people["alice"].number)
    assert [e.event for e in entries] == [Event.SENT, Event.RECEIPT_RECEIVED]


def test_a_person_number_is_found_whatever_way_it_is_written(journal: Journal, run: Run) -> None:
    digits = run.people["alice"].number
    written = f"{digits[:2]}.{digits[2:4]}.{digits[4:6]}-{digits[6:9]}.{digits[9:]}"
    assert journal.entries_for(written) == journal.entries_for(digits)


def test_content_past_retention_cannot_be_recovered_while_the_chain_still_verifies(
    target: Target, secret: bytes, tmp_path: Path
) -> None:
    with Journal(target.url, secret, retention_days=30) as journal:
        record_run(journal, start=START)
        recent = record_run(journal, start=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        wrapped = [
            bytes(row[0]) for row in target.execute("SELECT wrapped FROM journal_keys ORDER BY seq")
        ]
        destroyed = journal.destroy_expired()
        assert destroyed == 5
        assert journal.verify().ok
        old_and_new = journal.entries_for(recent.people["bob"].number)
        states = [e.content_state for e in old_and_new if e.content_state is not ContentState.NONE]
        assert states == [ContentState.DESTROYED, ContentState.KEPT]
        assert [e.content for e in old_and_new if e.content is not None] == list(
            recent.people["bob"].contents.values()
        )
        if target.sqlite_path is not None:
            # Not even a stale copy of a destroyed key survives in the files.
            raw = sqlite_bytes(target.sqlite_path)
            gone = wrapped[:5]
            assert not [key for key in gone if key in raw]
            assert all(key in raw for key in wrapped[5:])


def test_the_niss_appears_nowhere_in_clear_in_the_database_files(
    tmp_path: Path, secret: bytes
) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(f"sqlite:///{path}", secret) as journal:
        run = record_run(journal)
        while_open = sqlite_bytes(path)
    after_close = sqlite_bytes(path)
    for person in run.people.values():
        n = person.number
        variants = {
            n,
            f"{n[:2]}.{n[2:4]}.{n[4:6]}-{n[6:9]}.{n[9:]}",
            f"{n[:6]}-{n[6:9]}-{n[9:]}",
            f"{n[:6]} {n[6:9]} {n[9:]}",
            f"{n[:6]}-{n[6:9]}.{n[9:]}",
            f"{n[:2]}{n[2:4]}{n[4:6]}{n[6:9]}.{n[9:]}",
        }
        for raw in (while_open, after_close):
            for variant in variants:
                for encoding in ("ascii", "utf-16-le", "utf-16-be"):
                    assert variant.encode(encoding) not in raw, (variant, encoding)


def test_dossier_content_appears_nowhere_in_clear_in_the_database_files(
    tmp_path: Path, secret: bytes
) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(f"sqlite:///{path}", secret) as journal:
        run = record_run(journal)
        raw = sqlite_bytes(path)
    assert b"urn:be:cpas:dse:dossier" not in raw
    for person in run.people.values():
        assert person.family_name.encode() not in raw
        assert person.dossier.person.birth_date.isoformat().encode() not in raw


# ------------------------------------------------------- reading, secret


def test_summary_counts_by_event_type_and_refusal_code(journal: Journal, run: Run) -> None:
    summary = journal.summary()
    assert summary.entries == run.total
    assert summary.by_event[("sent", "transfer")] == 2
    assert summary.by_event[("receipt-received", "receipt")] == 3
    assert summary.by_code == {
        "adapter.failed": 1,
        "directory.not_cpas": 1,
        "envelope.signature": 1,
    }
    assert (summary.content_kept, summary.content_destroyed) == (5, 0)


def test_tail_gives_the_last_entries_oldest_first_without_content(
    journal: Journal, run: Run
) -> None:
    entries = journal.tail(3)
    assert [e.seq for e in entries] == [run.total - 2, run.total - 1, run.total]
    assert all(e.content is None for e in entries)


def test_an_unknown_event_is_refused(journal: Journal) -> None:
    with pytest.raises(ValueError):
        journal.record("shredded", message_type="transfer")


def test_the_secret_is_created_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "journal.secret"
    path.parent.mkdir()
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first


def test_a_missing_secret_is_not_invented_by_a_command_that_only_reads(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError) as missing:
        load_or_create_secret(tmp_path / "journal.secret", create=False)
    assert missing.value.code == "keys.missing"


def test_a_secret_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.secret"
    path.write_bytes(b"short")
    with pytest.raises(KeyMaterialError):
        load_or_create_secret(path)


# ------------------------------------------------------------------ CLI


@pytest.fixture
def configured(federation: LocalFederation, tmp_path: Path) -> Iterator[tuple[Path, Journal, Run]]:
    """A node configuration and its journal (at the default places), with a run recorded."""
    path = node_config(federation, tmp_path)
    settings = JournalSettings.from_config(NodeConfig.load(path))
    with settings.open() as journal:
        yield path, journal, record_run(journal)


def test_journal_verify_command_exits_0_when_intact(
    configured: tuple[Path, Journal, Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, run = configured
    assert cli(monkeypatch, "journal", "verify", "--config", str(path)) == 0
    assert f"chain intact, {run.total} entries" in capsys.readouterr().out


def test_journal_verify_command_checks_the_head_it_printed_before_as_an_anchor(
    configured: tuple[Path, Journal, Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, journal, _ = configured
    assert cli(monkeypatch, "journal", "verify", "--config", str(path)) == 0
    head = capsys.readouterr().out.split("head: ")[1].split()[0]
    journal.record(Event.SENT, message_type="transfer", peer=GENT_ID)
    argv = ("journal", "verify", "--config", str(path), "--anchor")
    assert cli(monkeypatch, *argv, head) == 0
    forged = head[:-1] + ("0" if head[-1] != "0" else "1")
    assert cli(monkeypatch, *argv, forged) == 1
    assert "rewritten" in capsys.readouterr().out


def test_journal_verify_command_exits_1_naming_the_first_broken_entry(
    configured: tuple[Path, Journal, Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, journal, _ = configured
    database = journal.url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        conn.execute("DELETE FROM journal_entries WHERE seq = 4")
    conn.close()
    assert cli(monkeypatch, "journal", "verify", "--config", str(path)) == 1
    assert "BROKEN at entry 4" in capsys.readouterr().out


def test_journal_tail_command_shows_entries_without_person_numbers(
    configured: tuple[Path, Journal, Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, run = configured
    monkeypatch.setenv("COLUMNS", "200")
    assert cli(monkeypatch, "journal", "tail", "--config", str(path), "-n", "5") == 0
    out = capsys.readouterr().out
    assert "envelope.signature" in out
    assert not any(person.number in out for person in run.people.values())


def test_journal_summary_command_counts_refusal_codes(
    configured: tuple[Path, Journal, Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, _ = configured
    monkeypatch.setenv("COLUMNS", "200")
    assert cli(monkeypatch, "journal", "summary", "--config", str(path)) == 0
    out = capsys.readouterr().out
    assert "directory.not_cpas" in out and "refusals and rejections by code" in out


def test_journal_purge_command_destroys_the_keys_past_retention(
    configured: tuple[Path, Journal, Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, journal, _ = configured
    journal.record(
        Event.SENT,
        message_type="transfer",
        peer=GENT_ID,
        content=b"<dossier/>",
        at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3650),
    )
    assert cli(monkeypatch, "journal", "purge", "--config", str(path)) == 0
    assert "destroyed 1 content keys" in capsys.readouterr().out
    assert journal.summary().content_destroyed == 1
    assert journal.verify().ok
