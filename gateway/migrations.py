"""Schema versions and ordered migrations for the node's store and journal.

Each database a node keeps (the store, the journal) is a *component* with a
numbered history of migrations. The version a database is at is kept in the
table ``schema_version`` (one row per component: the store and the journal
may share one PostgreSQL database). Opening a database runs, in order, every
migration it lacks, each in its own transaction together with the new
version: a migration that fails leaves the database as it was, and running
them again does nothing more (``cpas-gateway migrate``).

A database of the first release has no ``schema_version`` table: its tables
are exactly those of migration 1, whose statements (``CREATE … IF NOT
EXISTS``) then change nothing but record version 1. Migration 1 is frozen:
a change to a table is always a new migration, never an edit of an old one.

A database at a version this code does not know (written by a newer release)
is refused with ``<component>.too_new`` before anything is read or written:
an older release must never write rows whose meaning it does not know.
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from gateway.model.codes import Fault
from gateway.model.errors import ConfigError

log = logging.getLogger(__name__)

VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "component TEXT PRIMARY KEY, version INTEGER NOT NULL, migrated_at TEXT NOT NULL)"
)
# The code of a database written by a newer release, per component.
_TOO_NEW: Final = {
    "store": Fault.STORE_TOO_NEW,
    "journal": Fault.JOURNAL_TOO_NEW,
    "api": Fault.API_TOO_NEW,
}


@dataclass(frozen=True)
class Migration:
    """One step of a component's schema: ``statements`` (``;``-separated DDL) take it to
    ``version``. ``{blob}`` and ``{int}`` stand for the dialect's binary and big integer types."""

    version: int
    description: str
    statements: str

    def sql(self, *, postgres: bool) -> list[str]:
        text = self.statements.format(
            blob="BYTEA" if postgres else "BLOB", int="BIGINT" if postgres else "INTEGER"
        )
        return [part.strip() for part in text.split(";") if part.strip()]


@dataclass(frozen=True)
class Schema:
    """A component's migrations, numbered 1, 2, … without gaps."""

    component: str
    """``store`` or ``journal``: the row of ``schema_version`` and the prefix of error codes."""
    what: str
    """What the database is, for messages ("the node's store")."""
    migrations: tuple[Migration, ...]
    marker: str
    """A table of migration 1: present without a recorded version, the database is one
    of the first release (schema 1, unversioned)."""

    def __post_init__(self) -> None:
        numbers = [m.version for m in self.migrations]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"the migrations of {self.component} are not numbered 1..n")

    @property
    def latest(self) -> int:
        """The version this code writes."""
        return len(self.migrations)

    def upto(self, version: int) -> Schema:
        """The same history stopped at ``version`` (what an earlier release knew)."""
        return Schema(self.component, self.what, self.migrations[:version], self.marker)


@dataclass(frozen=True)
class MigrationReport:
    """What opening a database did to its schema."""

    component: str
    before: int
    """The version found: 0 for a new database, 1 for one of the first release."""
    after: int
    applied: tuple[Migration, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.applied)


def installed_version(cur: Any, component: str, *, postgres: bool) -> int | None:
    """The version recorded for ``component``; ``None`` when none is (new or first release)."""
    param = "%s" if postgres else "?"
    cur.execute(f"SELECT version FROM schema_version WHERE component = {param}", (component,))
    row = cur.fetchone()
    return None if row is None else int(row[0])


def migrate(conn: Any, schema: Schema, *, postgres: bool, url: str) -> MigrationReport:
    """Bring the database on ``conn`` to ``schema.latest``; one transaction per migration.

    ``conn`` is a SQLite connection in autocommit mode (``isolation_level=None``)
    or a psycopg connection (``autocommit=False``). Two processes opening the
    same database at once migrate it once: SQLite's write lock
    (``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock serialises them.

    :raises ConfigError: ``<component>.too_new`` for a database written by a
        newer release.
    """
    before: int | None = None
    applied: list[Migration] = []
    while True:
        cur = conn.cursor()
        try:
            _begin(cur, postgres=postgres)
            cur.execute(VERSION_TABLE)
            current = installed_version(cur, schema.component, postgres=postgres) or 0
            first_release = current == 0 and _has_table(cur, schema.marker, postgres=postgres)
            if before is None:
                before = 1 if first_release else current
            if current > schema.latest:
                raise _too_new(schema, current, url)
            if current == schema.latest:
                conn.commit()
                break
            step = schema.migrations[current]
            for statement in step.sql(postgres=postgres):
                cur.execute(statement)
            _record(cur, schema.component, step.version, postgres=postgres)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        if first_release:
            log.info("%s is of the first release: recorded as schema version 1", schema.what)
            continue
        applied.append(step)
        log.info(
            "%s migrated to schema version %d: %s", schema.what, step.version, step.description
        )
    return MigrationReport(schema.component, before, schema.latest, tuple(applied))


def _has_table(cur: Any, name: str, *, postgres: bool) -> bool:
    if postgres:
        cur.execute("SELECT to_regclass(%s)", (name,))
        return cur.fetchone()[0] is not None
    cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return cur.fetchone() is not None


def _begin(cur: Any, *, postgres: bool) -> None:
    if postgres:
        # One lock for every component: creating schema_version itself must not race.
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
    else:
        cur.execute("BEGIN IMMEDIATE")


_LOCK_ID: Final = zlib.crc32(b"cpas-gateway schema migrations")


def _record(cur: Any, component: str, version: int, *, postgres: bool) -> None:
    param = "%s" if postgres else "?"
    cur.execute(
        "INSERT INTO schema_version (component, version, migrated_at)"
        f" VALUES ({param}, {param}, {param}) ON CONFLICT (component) DO UPDATE SET"
        " version = excluded.version, migrated_at = excluded.migrated_at",
        (component, version, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
    )


def _too_new(schema: Schema, found: int, url: str) -> ConfigError:
    return ConfigError(
        f"{schema.what.capitalize()} at {url} is at schema version {found}, newer than "
        f"version {schema.latest} this release of cpas-gateway knows: it was written by a "
        "newer release. Run that release (or a later one); never downgrade a node over its "
        "data — restore the backup taken before the upgrade instead.",
        code=_TOO_NEW.get(schema.component, Fault.CONFIG_INVALID),
    )


def summary(reports: Sequence[MigrationReport]) -> str:
    """One phrase per component: ``store schema 2 (migrated from 1)``."""
    parts = []
    for report in reports:
        if not report.changed:
            parts.append(f"{report.component} schema {report.after}")
        elif report.before == 0:
            parts.append(f"{report.component} schema {report.after} (created)")
        else:
            parts.append(
                f"{report.component} schema {report.after} (migrated from {report.before})"
            )
    return ", ".join(parts)
