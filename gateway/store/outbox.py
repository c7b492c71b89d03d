"""The outbox: every message recorded, with its envelope, *before* it is published.

A message is marked confirmed when the broker confirms it; after a crash the
unconfirmed ones are published again (the receiver deduplicates). The
receipt or response a message gets back is its outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.database import Database
from gateway.model.codes import Outcome
from gateway.store.schema import now


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


_SELECT = (
    "SELECT message_id, type, recipient, purpose, case_reference, correlation_id, envelope,"
    " created_at, expires_at, confirmed_at, outcome, outcome_code FROM outbox"
)


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    values = list(row)
    values[6] = bytes(values[6])
    return OutboxEntry(*values)


class Outbox:
    """The messages this node sent, in the store's ``outbox`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, entries: Sequence[Outgoing]) -> None:
        """Record messages before they are published (one transaction for all)."""
        created_at = now()
        with self._db.transaction() as cur:
            cur.executemany(
                self._db.sql(
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
                        created_at,
                        e.expires_at,
                    )
                    for e in entries
                ],
            )

    def mark_confirmed(self, message_ids: Sequence[str]) -> None:
        """The broker has confirmed these messages: they will not be published again."""
        if not message_ids:
            return
        confirmed_at = now()
        with self._db.transaction() as cur:
            cur.executemany(
                self._db.sql(
                    "UPDATE outbox SET confirmed_at = ?"
                    " WHERE message_id = ? AND confirmed_at IS NULL"
                ),
                [(confirmed_at, mid) for mid in message_ids],
            )

    def unconfirmed(self) -> list[OutboxEntry]:
        """Messages recorded but never confirmed by the broker, oldest first."""
        rows = self._db.query(f"{_SELECT} WHERE confirmed_at IS NULL ORDER BY created_at")
        return [_entry(row) for row in rows]

    def record_outcome(self, message_id: str, outcome: str, code: str | None) -> bool:
        """Record the receipt (or response) for a message we sent; ``False`` if unknown."""
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql(
                    "UPDATE outbox SET outcome = ?, outcome_code = ?, outcome_at = ?"
                    " WHERE message_id = ?"
                ),
                (outcome, code, now(), message_id),
            )
            return bool(cur.rowcount)

    def get(self, message_id: str) -> OutboxEntry | None:
        rows = self._db.query(f"{_SELECT} WHERE message_id = ?", (message_id,))
        return _entry(rows[0]) if rows else None

    def all(self) -> list[OutboxEntry]:
        return [_entry(row) for row in self._db.query(f"{_SELECT} ORDER BY created_at")]

    def sent_to(self, recipient: str, type: str) -> set[str]:
        """Case references already sent to ``recipient`` (a bulk send resumes after them)."""
        rows = self._db.query(
            "SELECT case_reference FROM outbox WHERE recipient = ? AND type = ?", (recipient, type)
        )
        return {row[0] for row in rows}

    def unanswered_requests(self, at: str) -> list[OutboxEntry]:
        """Requests past their expiry at ``at`` that never got a final answer."""
        rows = self._db.query(
            f"{_SELECT} WHERE type = 'request' AND expires_at < ?"
            " AND (outcome IS NULL OR outcome = 'awaiting-release')",
            (at,),
        )
        return [_entry(row) for row in rows]

    def counts(self) -> dict[tuple[str, str], int]:
        """(type, state) -> number of messages in the outbox; state ``unconfirmed``,
        ``confirmed`` (no outcome yet) or the recorded outcome."""
        rows = self._db.query(
            "SELECT type, CASE WHEN outcome IS NOT NULL THEN outcome"
            " WHEN confirmed_at IS NULL THEN 'unconfirmed' ELSE 'confirmed' END, COUNT(*)"
            " FROM outbox GROUP BY 1, 2"
        )
        return {(str(t), str(state)): int(n) for t, state, n in rows}
