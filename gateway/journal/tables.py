"""The journal's tables: their schema and migrations, their columns, and rows read back.

Every statement that names the entries' columns is built here, from one list
(:data:`_COLUMNS`), so a column added by a migration is added in one place.
Times are stored as fixed-width UTC text (:func:`stamp`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from gateway.database import Database
from gateway.journal.events import ContentState, Entry, JournalSummary
from gateway.journal.seals import SEALED, Seals
from gateway.migrations import Migration, Schema
from gateway.model.codes import Fault

# Frozen: the tables of the first release. A change is a new migration.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_entries (
    seq            {int} PRIMARY KEY,
    at             TEXT NOT NULL,
    event          TEXT NOT NULL,
    direction      TEXT NOT NULL,
    message_id     TEXT,
    message_type   TEXT,
    peer           TEXT,
    purpose        TEXT,
    case_reference TEXT,
    correlation_id TEXT,
    person_tag     TEXT,
    outcome        TEXT,
    code           TEXT,
    content        {blob},
    content_digest TEXT,
    retain_until   TEXT,
    prev_hash      TEXT NOT NULL,
    entry_hash     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_entries_person ON journal_entries (person_tag);
CREATE INDEX IF NOT EXISTS journal_entries_message ON journal_entries (message_id);
CREATE TABLE IF NOT EXISTS journal_keys (
    seq          {int} PRIMARY KEY,
    wrapped      {blob} NOT NULL,
    retain_until TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_keys_retention ON journal_keys (retain_until);
CREATE TABLE IF NOT EXISTS journal_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        {int} NOT NULL,
    entry_hash TEXT NOT NULL,
    seal       TEXT NOT NULL
);
"""

SCHEMA = Schema(
    "journal",
    "the journal database",
    (
        Migration(1, "entries, content keys and the sealed head", _SCHEMA),
        Migration(
            2,
            "who acted: a staff reference or its pseudonym",
            "ALTER TABLE journal_entries ADD COLUMN actor TEXT",
        ),
        Migration(
            3,
            "the exchanges of a case found by its reference",
            "CREATE INDEX IF NOT EXISTS journal_entries_case ON journal_entries (case_reference)",
        ),
    ),
    marker="journal_entries",
)
"""The journal's migrations; :data:`SCHEMA.latest` is the version this release writes."""

_COLUMNS: Final = (*SEALED, "content", "entry_hash", "actor")
_SELECT: Final = (
    "SELECT "
    + ", ".join(f"e.{name}" for name in _COLUMNS)
    + ", k.wrapped FROM journal_entries e LEFT JOIN journal_keys k ON k.seq = e.seq"
)


def open_database(url: str) -> Database:
    """The journal's database at ``url``, its schema brought to :data:`SCHEMA`."""
    # Deleted rows are overwritten with zeros: a destroyed content key must
    # not linger in a free page of the file.
    return Database(
        url,
        schema=SCHEMA,
        what="the journal database",
        pragmas=("secure_delete=ON",),
        unavailable_code=Fault.JOURNAL_UNAVAILABLE,
    )


def select(rest: str) -> str:
    """A query of whole entries with their wrapped key (``wrapped``), ``rest`` appended."""
    return f"{_SELECT} {rest}".rstrip()


def insert_entry(db: Database, cur: Any, row: dict[str, Any]) -> None:
    """Insert one entry's row (every column of :data:`_COLUMNS`)."""
    cur.execute(
        db.sql(
            f"INSERT INTO journal_entries ({', '.join(_COLUMNS)})"
            f" VALUES ({', '.join('?' for _ in _COLUMNS)})"
        ),
        tuple(row[name] for name in _COLUMNS),
    )


def values_of(row: Sequence[Any]) -> dict[str, Any]:
    """A row of :func:`select` by column name."""
    return dict(zip((*_COLUMNS, "wrapped"), row, strict=True))


def read_entry(row: Sequence[Any], seals: Seals, *, decrypt: bool) -> Entry:
    """The :class:`Entry` a row of :func:`select` stands for, its content opened if asked."""
    values = values_of(row)
    state = ContentState.NONE
    content = None
    if values["content_digest"] is not None:
        if values["wrapped"] is None:
            state = ContentState.DESTROYED
        else:
            state = ContentState.KEPT
            if decrypt:
                content = seals.open_content(values)
                if content is None:
                    state = ContentState.UNREADABLE
    return Entry(
        seq=int(values["seq"]),
        at=parse(values["at"]),
        event=values["event"],
        direction=values["direction"],
        message_id=values["message_id"],
        message_type=values["message_type"],
        peer=values["peer"],
        purpose=values["purpose"],
        case_reference=values["case_reference"],
        correlation_id=values["correlation_id"],
        outcome=values["outcome"],
        code=values["code"],
        content_state=state,
        retain_until=None if values["retain_until"] is None else parse(values["retain_until"]),
        content=content,
        actor=values["actor"],
    )


def summarize(db: Database) -> JournalSummary:
    """Counts by event and message type, by refusal code, and of content kept or destroyed."""
    total, first, last = db.query("SELECT COUNT(*), MIN(at), MAX(at) FROM journal_entries")[0]
    by_event = {
        (event, message_type or ""): int(n)
        for event, message_type, n in db.query(
            "SELECT event, message_type, COUNT(*) FROM journal_entries"
            " GROUP BY event, message_type ORDER BY event, message_type"
        )
    }
    by_code = {
        code: int(n)
        for code, n in db.query(
            "SELECT code, COUNT(*) FROM journal_entries WHERE code IS NOT NULL"
            " GROUP BY code ORDER BY COUNT(*) DESC, code"
        )
    }
    with_content, kept = db.query(
        "SELECT COUNT(e.seq), COUNT(k.seq) FROM journal_entries e"
        " LEFT JOIN journal_keys k ON k.seq = e.seq WHERE e.content_digest IS NOT NULL"
    )[0]
    return JournalSummary(
        entries=int(total),
        first_at=None if first is None else parse(first),
        last_at=None if last is None else parse(last),
        by_event=by_event,
        by_code=by_code,
        content_kept=int(kept),
        content_destroyed=int(with_content) - int(kept),
    )


def text(value: object | None) -> str | None:
    return None if value is None else str(value)


def aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a journal time must carry its time zone")
    return value.astimezone(dt.UTC)


def stamp(value: dt.datetime) -> str:
    # Fixed width, UTC: compares as text in SQL the way it compares in time.
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)
