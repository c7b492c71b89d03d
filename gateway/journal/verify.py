"""Verifying a journal: the chain entry by entry, the content keys, the head and its witness.

Run in one database snapshot while the node appends. Each check names the
first entry that breaks and says in a sentence what is wrong there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from gateway.database import Database
from gateway.journal.events import VerifyResult
from gateway.journal.seals import GENESIS, Seals
from gateway.journal.tables import parse, select, values_of
from gateway.journal.witness import HeadWitness
from gateway.model.errors import GatewayError


def verify_journal(
    db: Database,
    seals: Seals,
    witness: HeadWitness | None,
    now: dt.datetime,
    anchors: Mapping[int, str],
    witness_expected: bool,
) -> VerifyResult:
    """Check the whole journal (see :meth:`gateway.journal.Journal.verify`)."""
    # One snapshot for the entries and the head, while the node appends:
    # otherwise an entry appended between the two reads would look like
    # one removed from the end.
    try:
        with db.snapshot() as cur:
            return _Verification(db, seals, witness, now).run(cur, dict(anchors), witness_expected)
    except GatewayError:
        raise
    except Exception as exc:  # a dropped column, a value no row of ours can hold...
        return VerifyResult(
            False,
            0,
            GENESIS,
            None,
            "The journal's tables do not hold what the gateway wrote "
            f"({type(exc).__name__}): they were changed outside the gateway.",
        )


class _Verification:
    def __init__(
        self, db: Database, seals: Seals, witness: HeadWitness | None, now: dt.datetime
    ) -> None:
        self._db = db
        self._seals = seals
        self._witness = witness
        self._now = now

    def run(self, cur: Any, anchors: dict[int, str], witness_expected: bool) -> VerifyResult:
        witness, warnings = (None, []) if self._witness is None else self._witness.read()
        expected_seq, prev = 1, GENESIS
        witness_hash = None
        cur.execute(self._db.sql(select("ORDER BY e.seq")))

        def broken(seq: int | None, reason: str) -> VerifyResult:
            return VerifyResult(False, expected_seq - 1, prev, seq, reason, tuple(warnings))

        while batch := cur.fetchmany(500):
            for row in batch:
                values = values_of(row)
                problem = _shape_problem(values)
                if problem is not None:
                    return broken(expected_seq, problem)
                seq = int(values["seq"])
                if seq != expected_seq:
                    if expected_seq == 1:
                        return broken(1, f"The journal starts at entry {seq}: entry 1 is missing.")
                    return broken(
                        expected_seq,
                        f"Entry {expected_seq} is missing: entry {expected_seq - 1} "
                        f"is followed by entry {seq}.",
                    )
                if values["prev_hash"] != prev:
                    return broken(
                        seq, f"Entry {seq} does not follow entry {seq - 1}: the chain is cut there."
                    )
                if not hmac.compare_digest(values["entry_hash"], self._seals.entry(values)):
                    return broken(
                        seq,
                        f"Entry {seq} was altered: its fields do not match its seal"
                        + (
                            " (or the journal secret is not the one it was written with)."
                            if seq == 1
                            else "."
                        ),
                    )
                problem = self._content_problem(values)
                if problem is not None:
                    return broken(seq, problem)
                anchor = anchors.pop(seq, None)
                if anchor is not None and anchor != values["entry_hash"]:
                    return broken(
                        seq, f"Entry {seq} is not the one noted earlier: the journal was rewritten."
                    )
                if witness is not None and seq == witness[0]:
                    witness_hash = values["entry_hash"]
                prev = values["entry_hash"]
                expected_seq += 1
        last = expected_seq - 1
        cur.execute(self._db.sql("SELECT seq, entry_hash, seal FROM journal_head WHERE id = 1"))
        head = cur.fetchone()
        if head is None or not self._seals.head_matches(head[0], head[1], head[2]):
            return broken(None, "The journal's head record was altered or removed.")
        head_seq, head_hash = int(head[0]), head[1]
        if head_seq > last:
            return broken(
                last + 1,
                f"Entries {last + 1} to {head_seq} were removed from the end of the journal.",
            )
        if head_seq < last or head_hash != prev:
            return broken(
                head_seq + 1, f"Entries after {head_seq} were not appended by this journal."
            )
        # The witness is written after each commit, so the very first entry
        # may be committed before its witness exists (a crash in between
        # leaves it so): beyond one entry, a missing witness was removed.
        if witness is None and witness_expected and self._witness is not None and last > 1:
            return broken(
                None,
                f"The head witness {self._witness.path} is missing, but the journal holds {last} "
                "entries: it was deleted, and the database may have been rolled back with it. "
                "If this journal never had a witness, say so (--no-witness).",
            )
        if witness is not None:
            witness_seq, witness_entry = witness
            if witness_seq > last:
                return broken(
                    last + 1,
                    f"The head witness has seen entry {witness_seq}, but the journal ends at "
                    f"entry {last}: entries were removed, or the database was restored from an "
                    "older copy.",
                )
            if witness_seq > 0 and witness_hash != witness_entry:
                return broken(
                    witness_seq,
                    f"Entry {witness_seq} is not the one the head witness has seen.",
                )
        if anchors:
            missing = min(anchors)
            return broken(missing, f"Entry {missing}, noted earlier, is no longer in the journal.")
        return VerifyResult(True, last, prev, warnings=tuple(warnings))

    def _content_problem(self, values: dict[str, Any]) -> str | None:
        seq, digest = int(values["seq"]), values["content_digest"]
        if digest is None:
            return None
        sealed = values["content"]
        if sealed is None or hashlib.sha256(bytes(sealed)).hexdigest() != digest:
            return f"The content of entry {seq} was altered or removed."
        if values["wrapped"] is None:
            if parse(values["retain_until"]) > self._now:
                return (
                    f"The content key of entry {seq} was removed before the end of its "
                    f"retention ({values['retain_until']})."
                )
            return None
        if self._seals.unwrap(seq, digest, values["wrapped"]) is None:
            return f"The content key of entry {seq} was altered or belongs to another entry."
        return None


def _shape_problem(values: Mapping[str, Any]) -> str | None:
    """Why a row cannot be one the journal wrote (a column's type changed), or ``None``."""
    texts = ("entry_hash", "prev_hash", "event", "at")
    if not isinstance(values["seq"], int) or any(not isinstance(values[k], str) for k in texts):
        return "A row holds a value of the wrong type: the table was changed outside the gateway."
    for name in ("content", "wrapped"):
        if values[name] is not None and not isinstance(values[name], bytes | memoryview):
            return (
                f"Entry {values['seq']} holds its {name} as {type(values[name]).__name__}, "
                "not bytes: the table was changed outside the gateway."
            )
    return None
