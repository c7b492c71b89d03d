"""The acting social worker: a pseudonym in the signed header, the reference in the journal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_envelope import LIEGE, _open, _refusal, _transfer, world

from gateway.federation.localnet import LocalFederation
from gateway.journal import Event, Journal, load_or_create_secret
from gateway.model.envelope import Envelope
from gateway.model.errors import SchemaInvalid

__all__ = ["world"]  # the fixture
PSEUDONYM = "abcdefghijklmnopqrstuvwxyz"


def test_the_actor_travels_in_the_header_and_the_envelope_still_opens(
    world: LocalFederation,
) -> None:
    envelope, body = _transfer(world, actor=PSEUDONYM)
    assert b"<actor>" + PSEUDONYM.encode() + b"</actor>" in envelope.to_xml()
    assert _open(world, envelope, LIEGE) == body
    assert Envelope.from_xml(envelope.to_xml()).header.actor == PSEUDONYM


def test_a_changed_actor_breaks_the_signature(world: LocalFederation) -> None:
    envelope, _ = _transfer(world, actor=PSEUDONYM)
    header = envelope.header.model_copy(update={"actor": "z" * 26})
    assert _refusal(world, envelope.model_copy(update={"header": header})) == "envelope.signature"


def test_an_actor_that_is_not_a_pseudonym_is_refused_by_the_schema(
    world: LocalFederation,
) -> None:
    envelope, _ = _transfer(world, actor=PSEUDONYM)
    named = envelope.to_xml().replace(PSEUDONYM.encode(), b"Marie Dupont")
    with pytest.raises(SchemaInvalid):
        Envelope.from_xml(named)


def _journal(folder: Path) -> Journal:
    return Journal(
        f"sqlite:///{folder}/journal.sqlite3", load_or_create_secret(folder / "journal.secret")
    )


def test_the_staff_pseudonym_is_stable_per_node_and_differs_between_nodes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _journal(tmp_path / "a"), _journal(tmp_path / "b")
    assert a.staff_pseudonym("AS-0042") == a.staff_pseudonym("AS-0042")
    assert a.staff_pseudonym("AS-0042") != b.staff_pseudonym("AS-0042")
    assert len(a.staff_pseudonym("AS-0042")) == 26


def test_who_acted_is_sealed_into_the_journal_entry(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.record(Event.SENT, message_type="request", peer="0212344876", actor="AS-0042")
    assert journal.verify().ok
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        db.execute("UPDATE journal_entries SET actor = 'AS-0043'")
    assert journal.verify().broken_at == 1


def test_a_journal_written_before_entries_named_who_acted_opens_and_verifies(
    tmp_path: Path,
) -> None:
    journal = _journal(tmp_path)
    journal.record(Event.SENT, message_type="request", peer="0212344876")
    journal.close()
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        # As the release before the column left it: schema 1, no ``actor``.
        db.execute("ALTER TABLE journal_entries DROP COLUMN actor")
        db.execute("UPDATE schema_version SET version = 1 WHERE component = 'journal'")
    reopened = _journal(tmp_path)
    reopened.record(Event.SENT, message_type="request", peer="0212344876", actor="AS-0042")
    assert reopened.verify().ok
    assert [e.actor for e in reopened.tail()] == [None, "AS-0042"]
