"""Named settings of the store (``meta``) and the directory edition in force.

The node keeps the signed directory edition it last applied from the
federation's feed, so that a restart uses it, and its serial as the meta row
:data:`DIRECTORY_SERIAL`.
"""

from __future__ import annotations

from typing import Final

from gateway.database import Database
from gateway.store.schema import now

DIRECTORY_SERIAL: Final = "directory.serial"
"""The meta row holding the newest directory edition this node accepted."""

_SET = (
    "INSERT INTO meta (name, value) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


class Meta:
    """The store's ``meta`` and ``directory_edition`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str) -> str | None:
        rows = self._db.query("SELECT value FROM meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set(self, name: str, value: str) -> None:
        with self._db.transaction() as cur:
            cur.execute(self._db.sql(_SET), (name, value))

    def directory_edition(self) -> bytes | None:
        """The signed directory edition last applied from the federation's feed, if any."""
        rows = self._db.query("SELECT signed FROM directory_edition WHERE id = 1")
        return bytes(rows[0][0]) if rows else None

    def keep_directory_edition(self, serial: int, signed: bytes) -> None:
        """Keep a verified edition (the signed bytes, as received) so a restart uses it."""
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql(
                    "INSERT INTO directory_edition (id, serial, signed, received_at)"
                    " VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET serial = excluded.serial,"
                    " signed = excluded.signed, received_at = excluded.received_at"
                ),
                (serial, signed, now()),
            )
            cur.execute(self._db.sql(_SET), (DIRECTORY_SERIAL, str(serial)))
