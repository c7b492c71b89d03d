"""The inbox: every message received, what became of it, and the failed attempts.

- Each received message id is recorded with what became of it (imported or
  rejected, and the receipt sent back), committed *before* the broker ack, so
  a redelivery is recognised and never imported twice.
- Attempts: per message id, how many times processing it failed while the
  node itself was healthy. Only these count towards refusing a message: the
  broker's own delivery count also grows when a node dies holding it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.database import Database
from gateway.store.schema import now


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


class Inbox:
    """The messages this node received, in the store's ``inbox`` and ``attempts`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def lock(self, message_ids: Iterable[str]) -> None:
        """Lock these message ids until the transaction in hand ends (inside a batch).

        Two processes of one node deciding on copies of one message then
        take turns, and the second sees what the first recorded. On
        PostgreSQL: a transaction-level advisory lock per id, taken in one
        order (by key) so that two batches never wait for each other in a
        circle. On SQLite the batch's transaction already holds the file's
        write lock (``BEGIN IMMEDIATE``): nothing more to take.
        """
        if not self._db.postgres:
            return
        keys = sorted({_lock_key(message_id) for message_id in message_ids})
        if not keys:
            return
        with self._db.transaction() as cur:
            for key in keys:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))

    def get(self, message_id: str) -> InboxEntry | None:
        """What this node did with a message id, if it has seen it."""
        rows = self._db.query(
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

    def record(
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
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql(
                    "INSERT INTO inbox (message_id, type, sender, outcome, outcome_code,"
                    " local_reference, reply, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (message_id) DO NOTHING"
                ),
                (message_id, type, sender, outcome, outcome_code, local_reference, reply, now()),
            )

    def forget(self, message_id: str) -> None:
        """Forget a refused message, so that it is processed afresh when requeued."""
        with self._db.transaction() as cur:
            cur.execute(self._db.sql("DELETE FROM inbox WHERE message_id = ?"), (message_id,))
            cur.execute(self._db.sql("DELETE FROM attempts WHERE message_id = ?"), (message_id,))

    def count_failure(self, message_id: str, code: str) -> int:
        """One more failed attempt at processing a message; returns how many there were."""
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql(
                    "INSERT INTO attempts (message_id, failures, last_code, updated_at)"
                    " VALUES (?, 1, ?, ?) ON CONFLICT (message_id) DO UPDATE SET"
                    " failures = attempts.failures + 1, last_code = excluded.last_code,"
                    " updated_at = excluded.updated_at"
                ),
                (message_id, code, now()),
            )
            cur.execute(
                self._db.sql("SELECT failures FROM attempts WHERE message_id = ?"), (message_id,)
            )
            return int(cur.fetchone()[0])

    def failures(self, message_id: str) -> int:
        """How many attempts at processing a message failed (0 if none)."""
        rows = self._db.query("SELECT failures FROM attempts WHERE message_id = ?", (message_id,))
        return int(rows[0][0]) if rows else 0

    def counts(self) -> dict[tuple[str, str], int]:
        """(type, outcome) -> number of messages received."""
        rows = self._db.query("SELECT type, outcome, COUNT(*) FROM inbox GROUP BY type, outcome")
        return {(str(t), str(outcome)): int(n) for t, outcome, n in rows}

    def count(self, outcome: str | None = None) -> int:
        """Messages received (with ``outcome``, when given)."""
        if outcome is None:
            return int(self._db.query("SELECT COUNT(*) FROM inbox")[0][0])
        rows = self._db.query("SELECT COUNT(*) FROM inbox WHERE outcome = ?", (outcome,))
        return int(rows[0][0])


def _lock_key(message_id: str) -> int:
    """The advisory lock's key for a message id: 64 bits of its SHA-256, signed as PostgreSQL's."""
    return int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:8], "big", signed=True)
