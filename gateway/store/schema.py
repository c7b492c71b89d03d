"""The store's tables: the first release's, frozen, and each migration since.

A change to the tables is a new :class:`~gateway.migrations.Migration` at the
end of :data:`SCHEMA`; the statements of a released migration never change.
"""

from __future__ import annotations

import datetime as dt

from gateway.migrations import Migration, Schema

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


def now() -> str:
    """The time as every ``*_at`` column holds it (UTC, ISO 8601, milliseconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
