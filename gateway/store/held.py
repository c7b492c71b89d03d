"""Held requests: a request kept, sealed as it arrived, until a social worker decides.

A held request is released or refused once; under the two-person rule each
release by a different staff reference is recorded until enough have
released it (the node's desk, :mod:`gateway.node.desk`, applies the rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.database import Database
from gateway.model.codes import HeldState
from gateway.store.schema import now


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


_SELECT = (
    "SELECT message_id, sender, purpose, case_reference, envelope, received_at, expires_at,"
    " state FROM held_requests"
)


def _held(row: tuple[Any, ...]) -> HeldRequest:
    values = list(row)
    values[4] = bytes(values[4])
    return HeldRequest(*values)


class HeldRequests:
    """The held requests, in the store's ``held_requests`` and ``held_releases`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql(
                    "INSERT INTO held_requests (message_id, sender, purpose, case_reference,"
                    " envelope, received_at, expires_at, state)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'held') ON CONFLICT (message_id) DO NOTHING"
                ),
                (message_id, sender, purpose, case_reference, envelope, now(), expires_at),
            )

    def find(self, state: str | None = HeldState.HELD) -> list[HeldRequest]:
        """Held requests (by default those still waiting), oldest first."""
        sql = f"{_SELECT} ORDER BY received_at"
        args: tuple[str, ...] = ()
        if state is not None:
            sql = f"{_SELECT} WHERE state = ? ORDER BY received_at"
            args = (state,)
        return [_held(row) for row in self._db.query(sql, args)]

    def get(self, message_id: str) -> HeldRequest | None:
        rows = self._db.query(f"{_SELECT} WHERE message_id = ?", (message_id,))
        return _held(rows[0]) if rows else None

    def decide(self, message_id: str, state: str) -> bool:
        """Mark a held request released or refused; ``False`` if it was not waiting."""
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql(
                    "UPDATE held_requests SET state = ?, decided_at = ?"
                    " WHERE message_id = ? AND state = 'held'"
                ),
                (state, now(), message_id),
            )
            return bool(cur.rowcount)

    def add_release(self, message_id: str, staff_reference: str) -> list[str]:
        """Record that a social worker released a held request; return every releaser so far.

        Raises nothing for a second release by the same reference: the list
        simply does not grow, and the caller refuses it.
        """
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql(
                    "INSERT INTO held_releases (message_id, staff_reference, released_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (message_id, staff_reference) DO NOTHING"
                ),
                (message_id, staff_reference, now()),
            )
        return self.releases(message_id)

    def releases(self, message_id: str) -> list[str]:
        """The staff references that released a held request, in order."""
        rows = self._db.query(
            "SELECT staff_reference FROM held_releases WHERE message_id = ? ORDER BY released_at",
            (message_id,),
        )
        return [str(row[0]) for row in rows]
