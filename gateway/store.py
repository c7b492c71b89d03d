"""A node's durable state: the outbox, the record of received messages, receipts.

- **Outbox**: every message is recorded, with its envelope, *before* it is
  published, and marked confirmed when the broker confirms it. After a crash
  the unconfirmed ones are published again (the receiver deduplicates).
- **Inbox**: every received message id with what became of it (imported or
  rejected, and the receipt sent back), committed *before* the broker ack, so
  a redelivery is recognised and never imported twice.
- **Attempts**: per message id, how many times processing it failed while
  the node itself was healthy. Only these count towards refusing a message:
  the broker's own delivery count also grows when a node dies holding it.

SQLite by default (``sqlite:///path``), PostgreSQL by URL (``postgresql://``).
One connection guarded by a lock: the node touches the store from its worker
thread and from senders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

from gateway.database import Database
from gateway.migrations import Migration, MigrationReport, Schema
from gateway.model.codes import Fault, HeldState, Outcome
from gateway.ownership import claim

DIRECTORY_SERIAL: Final = "directory.serial"
"""The meta row holding the newest directory edition this node accepted."""

# Frozen: the tables of the first release. A change is a new migration below.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    message_id     TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    case_reference TEXT NOT NULL,
    correlation_id TEXT,
    envelope       {blob} NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT,
    confirmed_at   TEXT,
    outcome        TEXT,
    outcome_code   TEXT,
    outcome_at     TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unconfirmed ON outbox (confirmed_at);
CREATE TABLE IF NOT EXISTS inbox (
    message_id      TEXT PRIMARY KEY,
    type            TEXT NOT NULL,
    sender          TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    outcome_code    TEXT,
    local_reference TEXT,
    reply           {blob},
    received_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    message_id TEXT PRIMARY KEY,
    failures   INTEGER NOT NULL,
    last_code  TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS held_requests (
    message_id     TEXT PRIMARY KEY,
    sender         TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    case_reference TEXT NOT NULL,
    envelope       {blob} NOT NULL,
    received_at    TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    state          TEXT NOT NULL,
    decided_at     TEXT
);
"""

_HELD_RELEASES = """
CREATE TABLE IF NOT EXISTS held_releases (
    message_id      TEXT NOT NULL,
    staff_reference TEXT NOT NULL,
    released_at     TEXT NOT NULL,
    PRIMARY KEY (message_id, staff_reference)
);
"""

_DIRECTORY_EDITION = """
CREATE TABLE IF NOT EXISTS directory_edition (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    serial      {int} NOT NULL,
    signed      {blob} NOT NULL,
    received_at TEXT NOT NULL
);
"""

SCHEMA = Schema(
    "store",
    "the node's store",
    (
        Migration(1, "outbox, inbox, attempts, meta and held requests", _SCHEMA),
        Migration(2, "the directory edition received from the federation", _DIRECTORY_EDITION),
        Migration(3, "who released a held request (two-person holds)", _HELD_RELEASES),
    ),
    marker="outbox",
)
"""The store's migrations; :data:`SCHEMA.latest` is the version this release writes."""


@dataclass(frozen=True)
class Outgoing:
    """A message about to be published, as the outbox records it."""

    message_id: str
    type: str
    recipient: str
    purpose: str
    case_reference: str
    correlation_id: str | None
    envelope: bytes
    expires_at: str | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """A message this node sent and what became of it."""

    message_id: str
    type: str
    recipient: str
    purpose: str
    case_reference: str
    correlation_id: str | None
    envelope: bytes
    created_at: str
    expires_at: str | None
    confirmed_at: str | None
    outcome: str | None
    outcome_code: str | None

    @property
    def final(self) -> bool:
        """Whether the outcome is the last word (a held request will still be answered)."""
        return self.outcome is not None and self.outcome != Outcome.AWAITING_RELEASE


@dataclass(frozen=True)
class HeldRequest:
    """A request held for release by a social worker; the envelope stays sealed at rest."""

    message_id: str
    sender: str
    purpose: str
    case_reference: str
    envelope: bytes
    received_at: str
    expires_at: str
    state: str


@dataclass(frozen=True)
class InboxEntry:
    """A message this node received and what it did with it."""

    message_id: str
    type: str
    sender: str
    outcome: str
    outcome_code: str | None
    local_reference: str | None
    reply: bytes | None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Store:
    """The node's durable state, in SQLite or PostgreSQL."""

    def __init__(self, url: str, *, owner: str | None = None) -> None:
        """Open (or create) the store at ``url``.

        :param owner: the CPAS whose node keeps this store: recorded when the
            store is created; a store recorded for another CPAS is refused
            (``store.other_node``).
        """
        self.url = url
        self._db = Database(url, schema=SCHEMA, what="the node's store")
        if owner is not None:
            claim(self._db, owner, what="store", setting="store", code=Fault.STORE_OTHER_NODE)

    def batch(self) -> AbstractContextManager[None]:
        """One transaction for every write made inside the block (one commit, one fsync).

        The node processes deliveries in batches: their records commit together,
        before any of them is acked. Other threads wait for the block to end.
        """
        return self._db.batch()

    def _tx(self) -> AbstractContextManager[Any]:
        return self._db.transaction()

    def _sql(self, sql: str) -> str:
        return self._db.sql(sql)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.query(sql, args)

    def close(self) -> None:
        self._db.close()

    @property
    def migration(self) -> MigrationReport | None:
        """What opening the store did to its schema."""
        return self._db.migration

    def ping(self) -> None:
        """Raise :class:`~gateway.model.errors.StoreUnavailable` unless the store can be written."""
        self._db.ping()

    # ------------------------------------------------------------------ meta

    def get_meta(self, name: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, name: str, value: str) -> None:
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO meta (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                ),
                (name, value),
            )

    # ------------------------------------------------------------- directory

    def directory_edition(self) -> bytes | None:
        """The signed directory edition last applied from the federation's feed, if any."""
        rows = self._query("SELECT signed FROM directory_edition WHERE id = 1")
        return bytes(rows[0][0]) if rows else None

    def keep_directory_edition(self, serial: int, signed: bytes) -> None:
        """Keep a verified edition (the signed bytes, as received) so a restart uses it."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO directory_edition (id, serial, signed, received_at)"
                    " VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET serial = excluded.serial,"
                    " signed = excluded.signed, received_at = excluded.received_at"
                ),
                (serial, signed, _now()),
            )
            cur.execute(
                self._sql(
                    "INSERT INTO meta (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                ),
                (DIRECTORY_SERIAL, str(serial)),
            )

    # ---------------------------------------------------------------- outbox

    def add_outgoing(self, entries: Sequence[Outgoing]) -> None:
        """Record messages before they are published (one transaction for all)."""
        now = _now()
        with self._tx() as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO outbox (message_id, type, recipient, purpose, case_reference,"
                    " correlation_id, envelope, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [
                    (
                        e.message_id,
                        e.type,
                        e.recipient,
                        e.purpose,
                        e.case_reference,
                        e.correlation_id,
                        e.envelope,
                        now,
                        e.expires_at,
                    )
                    for e in entries
                ],
            )

    def mark_confirmed(self, message_ids: Sequence[str]) -> None:
        """The broker has confirmed these messages: they will not be published again."""
        if not message_ids:
            return
        now = _now()
        with self._tx() as cur:
            cur.executemany(
                self._sql(_CONFIRM_SQL),
                [(now, mid) for mid in message_ids],
            )

    def unconfirmed(self) -> list[OutboxEntry]:
        """Messages recorded but never confirmed by the broker, oldest first."""
        return [
            _outbox(row)
            for row in self._query(
                f"{_OUTBOX_SELECT} WHERE confirmed_at IS NULL ORDER BY created_at"
            )
        ]

    def record_outcome(self, message_id: str, outcome: str, code: str | None) -> bool:
        """Record the receipt (or response) for a message we sent; ``False`` if unknown."""
        with self._tx() as cur:
            cur.execute(
                self._sql(_OUTCOME_SQL),
                (outcome, code, _now(), message_id),
            )
            return bool(cur.rowcount)

    def outgoing(self, message_id: str) -> OutboxEntry | None:
        rows = self._query(f"{_OUTBOX_SELECT} WHERE message_id = ?", (message_id,))
        return _outbox(rows[0]) if rows else None

    def outgoing_all(self) -> list[OutboxEntry]:
        return [_outbox(row) for row in self._query(f"{_OUTBOX_SELECT} ORDER BY created_at")]

    # ----------------------------------------------------------------- inbox

    def received(self, message_id: str) -> InboxEntry | None:
        """What this node did with a message id, if it has seen it."""
        rows = self._query(
            "SELECT message_id, type, sender, outcome, outcome_code, local_reference, reply"
            " FROM inbox WHERE message_id = ?",
            (message_id,),
        )
        if not rows:
            return None
        message_id, type, sender, outcome, code, reference, reply = rows[0]
        return InboxEntry(
            message_id,
            type,
            sender,
            outcome,
            code,
            reference,
            None if reply is None else bytes(reply),
        )

    def record_received(
        self,
        *,
        message_id: str,
        type: str,
        sender: str,
        outcome: str,
        outcome_code: str | None = None,
        local_reference: str | None = None,
        reply: bytes | None = None,
    ) -> None:
        """Record a processed message; committed before the broker ack."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO inbox (message_id, type, sender, outcome, outcome_code,"
                    " local_reference, reply, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (message_id) DO NOTHING"
                ),
                (message_id, type, sender, outcome, outcome_code, local_reference, reply, _now()),
            )

    def sent_to(self, recipient: str, type: str) -> set[str]:
        """Case references already sent to ``recipient`` (a bulk send resumes after them)."""
        rows = self._query(
            "SELECT case_reference FROM outbox WHERE recipient = ? AND type = ?", (recipient, type)
        )
        return {row[0] for row in rows}

    def forget_received(self, message_id: str) -> None:
        """Forget a refused message, so that it is processed afresh when requeued."""
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM inbox WHERE message_id = ?"), (message_id,))
            cur.execute(self._sql("DELETE FROM attempts WHERE message_id = ?"), (message_id,))

    def count_failure(self, message_id: str, code: str) -> int:
        """One more failed attempt at processing a message; returns how many there were."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO attempts (message_id, failures, last_code, updated_at)"
                    " VALUES (?, 1, ?, ?) ON CONFLICT (message_id) DO UPDATE SET"
                    " failures = attempts.failures + 1, last_code = excluded.last_code,"
                    " updated_at = excluded.updated_at"
                ),
                (message_id, code, _now()),
            )
            cur.execute(
                self._sql("SELECT failures FROM attempts WHERE message_id = ?"), (message_id,)
            )
            return int(cur.fetchone()[0])

    def failures(self, message_id: str) -> int:
        """How many attempts at processing a message failed (0 if none)."""
        rows = self._query("SELECT failures FROM attempts WHERE message_id = ?", (message_id,))
        return int(rows[0][0]) if rows else 0

    def unanswered_requests(self, now: str) -> list[OutboxEntry]:
        """Requests past their expiry that never got a final answer."""
        rows = self._query(
            f"{_OUTBOX_SELECT} WHERE type = 'request' AND expires_at < ?"
            " AND (outcome IS NULL OR outcome = 'awaiting-release')",
            (now,),
        )
        return [_outbox(row) for row in rows]

    # ---------------------------------------------------------- held requests

    def hold(
        self,
        *,
        message_id: str,
        sender: str,
        purpose: str,
        case_reference: str,
        envelope: bytes,
        expires_at: str,
    ) -> None:
        """Keep a request (sealed, as it arrived) until a social worker decides."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO held_requests (message_id, sender, purpose, case_reference,"
                    " envelope, received_at, expires_at, state)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'held') ON CONFLICT (message_id) DO NOTHING"
                ),
                (message_id, sender, purpose, case_reference, envelope, _now(), expires_at),
            )

    def held(self, state: str | None = HeldState.HELD) -> list[HeldRequest]:
        """Held requests (by default those still waiting), oldest first."""
        sql = f"{_HELD_SELECT} ORDER BY received_at"
        args: tuple[str, ...] = ()
        if state is not None:
            sql = f"{_HELD_SELECT} WHERE state = ? ORDER BY received_at"
            args = (state,)
        return [_held(row) for row in self._query(sql, args)]

    def held_request(self, message_id: str) -> HeldRequest | None:
        rows = self._query(f"{_HELD_SELECT} WHERE message_id = ?", (message_id,))
        return _held(rows[0]) if rows else None

    def decide(self, message_id: str, state: str) -> bool:
        """Mark a held request released or refused; ``False`` if it was not waiting."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "UPDATE held_requests SET state = ?, decided_at = ?"
                    " WHERE message_id = ? AND state = 'held'"
                ),
                (state, _now(), message_id),
            )
            return bool(cur.rowcount)

    def add_release(self, message_id: str, staff_reference: str) -> list[str]:
        """Record that a social worker released a held request; return every releaser so far.

        Raises nothing for a second release by the same reference: the list
        simply does not grow, and the caller refuses it.
        """
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO held_releases (message_id, staff_reference, released_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (message_id, staff_reference) DO NOTHING"
                ),
                (message_id, staff_reference, _now()),
            )
        return self.releases(message_id)

    def releases(self, message_id: str) -> list[str]:
        """The staff references that released a held request, in order."""
        rows = self._query(
            "SELECT staff_reference FROM held_releases WHERE message_id = ? ORDER BY released_at",
            (message_id,),
        )
        return [str(row[0]) for row in rows]

    def outbox_counts(self) -> dict[tuple[str, str], int]:
        """(type, state) -> number of messages in the outbox; state ``unconfirmed``,
        ``confirmed`` (no outcome yet) or the recorded outcome."""
        rows = self._query(
            "SELECT type, CASE WHEN outcome IS NOT NULL THEN outcome"
            " WHEN confirmed_at IS NULL THEN 'unconfirmed' ELSE 'confirmed' END, COUNT(*)"
            " FROM outbox GROUP BY 1, 2"
        )
        return {(str(t), str(state)): int(n) for t, state, n in rows}

    def inbox_counts(self) -> dict[tuple[str, str], int]:
        """(type, outcome) -> number of messages received."""
        rows = self._query("SELECT type, outcome, COUNT(*) FROM inbox GROUP BY type, outcome")
        return {(str(t), str(outcome)): int(n) for t, outcome, n in rows}

    def received_count(self, outcome: str | None = None) -> int:
        if outcome is None:
            return int(self._query("SELECT COUNT(*) FROM inbox")[0][0])
        return int(self._query("SELECT COUNT(*) FROM inbox WHERE outcome = ?", (outcome,))[0][0])


_CONFIRM_SQL = "UPDATE outbox SET confirmed_at = ? WHERE message_id = ? AND confirmed_at IS NULL"
_OUTCOME_SQL = (
    "UPDATE outbox SET outcome = ?, outcome_code = ?, outcome_at = ? WHERE message_id = ?"
)
_OUTBOX_SELECT = (
    "SELECT message_id, type, recipient, purpose, case_reference, correlation_id, envelope,"
    " created_at, expires_at, confirmed_at, outcome, outcome_code FROM outbox"
)
_HELD_SELECT = (
    "SELECT message_id, sender, purpose, case_reference, envelope, received_at, expires_at,"
    " state FROM held_requests"
)


def _outbox(row: tuple[Any, ...]) -> OutboxEntry:
    values = list(row)
    values[6] = bytes(values[6])
    return OutboxEntry(*values)


def _held(row: tuple[Any, ...]) -> HeldRequest:
    values = list(row)
    values[4] = bytes(values[4])
    return HeldRequest(*values)
