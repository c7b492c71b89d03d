"""The :class:`Journal`: record, read, verify and purge a node's journal."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from gateway.journal import chain, tables
from gateway.journal.events import (
    EVENT_DIRECTIONS,
    Direction,
    Entry,
    Event,
    JournalSummary,
    VerifyResult,
)
from gateway.journal.seals import Seals
from gateway.journal.secret import SECRET_SIZE
from gateway.journal.tables import aware, stamp, text
from gateway.journal.verify import verify_journal
from gateway.journal.witness import HeadWitness
from gateway.migrations import MigrationReport
from gateway.model.codes import Fault
from gateway.model.errors import ConfigError, KeyMaterialError
from gateway.ownership import claim

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS: Final = 730
"""How long the journal keeps the content of a dossier readable (two years)."""


class Journal:
    """A node's append-only, tamper-evident journal (SQLite or PostgreSQL).

    :param url: ``sqlite:///path`` (or a bare path) or ``postgresql://...``;
        a PostgreSQL schema is chosen the libpq way, e.g.
        ``?options=-csearch_path%3Dmyschema``.
    :param secret: the node's 32-byte journal secret
        (:func:`~gateway.journal.load_or_create_secret`).
    :param retention_days: how long the content of a dossier recorded from now
        on stays readable; each entry keeps the end of its own retention.
    :param head_path: optional witness file for the head, kept outside the
        database (see :mod:`gateway.journal`).
    :param owner: the CPAS whose node keeps this journal: recorded when the
        journal is created, and a journal recorded for another CPAS is refused
        (``journal.other_node``) before anything is read or written.
    """

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        head_path: Path | None = None,
        owner: str | None = None,
    ) -> None:
        if len(secret) != SECRET_SIZE:
            raise KeyMaterialError(
                f"A journal secret is {SECRET_SIZE} bytes, not {len(secret)}.",
                code=Fault.KEYS_INVALID,
            )
        if retention_days < 1:
            raise ConfigError("The journal retention is at least one day.")
        self.url = url
        self.retention = dt.timedelta(days=retention_days)
        self.head_path = None if head_path is None else Path(head_path)
        self._seals = Seals(secret)
        self._witness = None if self.head_path is None else HeadWitness(self.head_path, self._seals)
        self._batch_head: tuple[int, str] | None = None
        self._db = tables.open_database(url)
        self._lock = self._db.lock
        if owner is not None:
            claim(self._db, owner, what="journal", setting="journal", code=Fault.JOURNAL_OTHER_NODE)
        chain.start(self._db, self._seals)

    # ------------------------------------------------------------ plumbing

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def migration(self) -> MigrationReport | None:
        """What opening the journal did to its schema."""
        return self._db.migration

    def close(self) -> None:
        self._db.close()

    def ping(self) -> None:
        """Raise :class:`~gateway.model.errors.StoreUnavailable` unless the journal is writable."""
        self._db.ping()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction (one commit, one witness write) for every entry recorded inside.

        The node records a batch of deliveries this way, before acking any of them.
        """
        with self._lock:
            outermost = not self._db.in_batch
            try:
                with self._db.batch():
                    yield
            except BaseException:
                if outermost:
                    self._batch_head = None  # rolled back: the witness must not claim it
                raise
            if outermost and self._batch_head is not None:
                self._write_witness(*self._batch_head)
                self._batch_head = None

    # --------------------------------------------------------------- seals

    def person_tag(self, person_number: str) -> str:
        """The keyed hash under which a person's entries are filed (never the number)."""
        return self._seals.person_tag(person_number)

    def staff_pseudonym(self, staff_reference: str) -> str:
        """The pseudonym of one of this CPAS's staff references, as envelope headers carry it.

        A keyed hash under this node's journal secret: stable (the same social
        worker always gets the same pseudonym, so the CPAS can resolve it by
        recomputing it over its own references) and meaningless to anyone else.
        """
        return self._seals.staff_pseudonym(staff_reference)

    # --------------------------------------------------------------- write

    def record(
        self,
        event: Event | str,
        *,
        direction: Direction | str | None = None,
        message_id: object | None = None,
        message_type: str | None = None,
        peer: str | None = None,
        purpose: str | None = None,
        case_reference: str | None = None,
        correlation_id: object | None = None,
        person_number: str | None = None,
        outcome: str | None = None,
        code: str | None = None,
        content: bytes | None = None,
        at: dt.datetime | None = None,
        actor: str | None = None,
    ) -> int:
        """Append one entry and return its sequence number.

        :param event: one of :class:`Event` (:class:`ValueError` otherwise).
        :param direction: ``out`` or ``in``; by default the event's own
            (:data:`EVENT_DIRECTIONS`).
        :param message_id: the message this entry is about (a UUID or its string).
        :param message_type: ``transfer``, ``request``, ``response`` or ``receipt``.
        :param peer: enterprise number of the other institution.
        :param correlation_id: the message this one answers. An entry without
            a person number is filed under the person of the entry it
            answers, so a receipt belongs to the same person as the dossier.
        :param person_number: NISS or BIS number; kept only as a keyed hash.
        :param outcome: what became of the message (``imported``, ``rejected``,
            a refusal reason of a response...).
        :param code: the stable refusal or rejection code.
        :param content: the canonical dossier XML, kept encrypted until the
            end of retention.
        :param at: when it happened (aware; default now).
        :param actor: who acted: this CPAS's staff reference, or the pseudonym
            of another CPAS's social worker as its envelope header gave it.
        """
        event = Event(event)
        moment = aware(at) if at is not None else dt.datetime.now(dt.UTC)
        fields = {
            "at": stamp(moment),
            "event": event.value,
            "direction": Direction(direction or EVENT_DIRECTIONS[event]).value,
            "message_id": text(message_id),
            "message_type": text(message_type),
            "peer": text(peer),
            "purpose": text(purpose),
            "case_reference": text(case_reference),
            "correlation_id": text(correlation_id),
            "outcome": text(outcome),
            "code": text(code),
            "actor": text(actor),
        }
        retain_until = None if content is None else stamp(moment + self.retention)
        with self._lock:
            seq, entry_hash = chain.append(
                self._db, self._seals, fields, person_number, content, retain_until
            )
            if self._db.in_batch:
                self._batch_head = (seq, entry_hash)  # written once the batch commits
            else:
                self._write_witness(seq, entry_hash)
        return seq

    def _write_witness(self, seq: int, entry_hash: str) -> None:
        if self._witness is not None:
            self._witness.write(seq, entry_hash, self._holds)

    def _holds(self, seq: int, entry_hash: str) -> bool:
        """Whether this journal holds entry ``seq`` with this seal (a witness's head)."""
        rows = self._db.query(
            "SELECT 1 FROM journal_entries WHERE seq = ? AND entry_hash = ?", (seq, entry_hash)
        )
        return bool(rows)

    # ---------------------------------------------------------------- read

    def has_entry(self, event: Event | str, message_id: object) -> bool:
        """Whether an entry of this event exists for this message (a redelivery's check)."""
        rows = self._db.query(
            "SELECT 1 FROM journal_entries WHERE event = ? AND message_id = ? LIMIT 1",
            (Event(event).value, text(message_id)),
        )
        return bool(rows)

    def entries_for(self, person_number: str) -> list[Entry]:
        """Every entry about this person, oldest first, with its content while its key exists."""
        rows = self._db.query(
            tables.select("WHERE e.person_tag = ? ORDER BY e.seq"),
            (self.person_tag(person_number),),
        )
        return [tables.read_entry(row, self._seals, decrypt=True) for row in rows]

    def entries_of_case(self, case_reference: str) -> list[Entry]:
        """Every entry recorded under a case reference, oldest first, without their content."""
        rows = self._db.query(
            tables.select("WHERE e.case_reference = ? ORDER BY e.seq"), (case_reference,)
        )
        return [tables.read_entry(row, self._seals, decrypt=False) for row in rows]

    def tail(self, n: int = 20) -> list[Entry]:
        """The last ``n`` entries, oldest first, without their content."""
        rows = self._db.query(tables.select("ORDER BY e.seq DESC LIMIT ?"), (max(0, n),))
        return [tables.read_entry(row, self._seals, decrypt=False) for row in reversed(rows)]

    def count(self) -> int:
        """How many entries the journal holds."""
        return int(self._db.query("SELECT COUNT(*) FROM journal_entries")[0][0])

    def summary(self) -> JournalSummary:
        """Counts by event and message type, by refusal code, and of content kept or destroyed."""
        return tables.summarize(self._db)

    # -------------------------------------------------------------- verify

    def verify(
        self,
        now: dt.datetime | None = None,
        *,
        anchors: Mapping[int, str] | None = None,
        witness_expected: bool = True,
    ) -> VerifyResult:
        """Check the whole journal; report the first entry that breaks, if any.

        Detected: an altered entry (any sealed field, its content or its
        content key), an entry inserted or deleted anywhere (the end
        included, through the sealed head and the witness file), a content
        key deleted before the end of its retention, an altered head.

        A table or column changed behind the journal's back (a dropped
        column, content stored as text, a seal as bytes) is tampering too:
        reported as a broken journal, never raised.

        :param anchors: seals noted earlier outside the node (entry number ->
            seal, as a previous ``verify`` printed its head): an entry whose
            seal differs was rewritten, even by someone holding the secret.
        :param witness_expected: a journal kept with a witness file whose file
            is missing is broken (a database rolled back with its witness
            deleted looks just like that); ``False`` when the operator knows
            this journal never had one.
        """
        moment = aware(now) if now is not None else dt.datetime.now(dt.UTC)
        return verify_journal(
            self._db, self._seals, self._witness, moment, anchors or {}, witness_expected
        )

    # ----------------------------------------------------------- retention

    def destroy_expired(self, now: dt.datetime | None = None) -> int:
        """Delete the content keys whose retention ended by ``now``; return how many.

        The content of those entries can no longer be read by anyone; the
        entries themselves, and the chain, stay as they are.
        """
        moment = aware(now) if now is not None else dt.datetime.now(dt.UTC)
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql("DELETE FROM journal_keys WHERE retain_until <= ?"), (stamp(moment),)
            )
            destroyed = int(cur.rowcount)
        if destroyed:
            self._scrub()
            log.info("destroyed %d content keys past retention", destroyed)
        return destroyed

    def _scrub(self) -> None:
        """Push deleted keys out of the files where old copies may remain."""
        if self._db.postgres:
            self._db.maintain("VACUUM journal_keys")
        else:
            # The write-ahead log still holds the pages as they were before
            # the delete until it is checkpointed and truncated.
            self._db.maintain("PRAGMA wal_checkpoint(TRUNCATE)")
