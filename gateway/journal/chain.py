"""Appending to the chain: the next entry sealed onto the head, in one transaction.

The head record (sequence number and seal of the last entry, itself sealed)
is read and locked, checked against the chain key, and moved on with the new
entry: deleting the last rows, which leaves a valid shorter chain, is
detected by the head.
"""

from __future__ import annotations

from typing import Any

from gateway.database import Database
from gateway.journal.seals import GENESIS, Seals
from gateway.journal.tables import insert_entry
from gateway.model.codes import Fault
from gateway.model.errors import GatewayError


class JournalError(GatewayError):
    """The journal cannot be opened or appended to."""

    code = Fault.JOURNAL_UNAVAILABLE


def start(db: Database, seals: Seals) -> None:
    """Write the head of an empty journal, unless it has one."""
    with db.transaction() as cur:
        cur.execute(
            db.sql(
                "INSERT INTO journal_head (id, seq, entry_hash, seal) VALUES (1, 0, ?, ?)"
                " ON CONFLICT (id) DO NOTHING"
            ),
            (GENESIS, seals.head(0, GENESIS)),
        )


def append(
    db: Database,
    seals: Seals,
    fields: dict[str, str | None],
    person_number: str | None,
    content: bytes | None,
    retain_until: str | None,
) -> tuple[int, str]:
    """Append one entry of ``fields``; return its sequence number and seal.

    An entry without a person number is filed under the person of the entry
    its ``correlation_id`` answers.
    """
    # On SQLite a writer locks at once, so that another process appending
    # meanwhile cannot make two entries share a number.
    with db.transaction() as cur:
        cur.execute(
            db.sql(
                "SELECT seq, entry_hash, seal FROM journal_head WHERE id = 1"
                + (" FOR UPDATE" if db.postgres else "")
            )
        )
        head_seq, head_hash, head_seal = cur.fetchone()
        if not seals.head_matches(head_seq, head_hash, head_seal):
            # Appending onto a head we cannot vouch for would hide the
            # break; most often the secret is not the one the journal
            # was written with.
            raise JournalError(
                "The journal's head does not match this node's journal secret: wrong "
                "secret, or the journal was altered (run `cpas-gateway journal verify`).",
                code=Fault.JOURNAL_HEAD_INVALID,
            )
        seq = int(head_seq) + 1
        row: dict[str, Any] = {
            **fields,
            "seq": seq,
            "person_tag": _person_tag(db, cur, seals, person_number, fields["correlation_id"]),
            "content": None,
            "content_digest": None,
            "retain_until": None,
            "prev_hash": head_hash,
        }
        sealed = None if content is None else seals.seal_content(seq, content)
        if sealed is not None:
            row["content"] = sealed.sealed
            row["content_digest"] = sealed.digest
            row["retain_until"] = retain_until
        row["entry_hash"] = seals.entry(row)
        insert_entry(db, cur, row)
        if sealed is not None:
            cur.execute(
                db.sql("INSERT INTO journal_keys (seq, wrapped, retain_until) VALUES (?, ?, ?)"),
                (seq, sealed.wrapped, retain_until),
            )
        cur.execute(
            db.sql("UPDATE journal_head SET seq = ?, entry_hash = ?, seal = ? WHERE id = 1"),
            (seq, row["entry_hash"], seals.head(seq, row["entry_hash"])),
        )
    return seq, row["entry_hash"]


def _person_tag(
    db: Database, cur: Any, seals: Seals, person_number: str | None, correlation_id: str | None
) -> str | None:
    if person_number is not None:
        return seals.person_tag(person_number)
    if correlation_id is None:
        return None
    cur.execute(
        db.sql(
            "SELECT person_tag FROM journal_entries WHERE message_id = ?"
            " AND person_tag IS NOT NULL ORDER BY seq LIMIT 1"
        ),
        (correlation_id,),
    )
    found = cur.fetchone()
    return None if found is None else str(found[0])
