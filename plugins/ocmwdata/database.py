"""The OCMWdata database connection: SQLite by default, PostgreSQL by URL.

One code path for both. The SQL is written once with ``?`` placeholders; the
differences are a handful of lines here: placeholders, DDL types (in
:mod:`ocmwdata.schema`), how writers are serialised and how new client numbers
are reserved. No ORM: the queries are few and the adapter wants to see them.

Every driver exception is turned into an :class:`~gateway.model.errors.AdapterError`
at this boundary: ``adapter.unavailable`` (transient) when the database cannot
be reached, is locked or dropped the connection, ``adapter.failed`` otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from gateway.model.codes import Refusal
from gateway.model.errors import AdapterError
from ocmwdata.schema import Dialect, statements

log = logging.getLogger(__name__)

Row = tuple[Any, ...]

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def dialect_of(url: str) -> Dialect:
    """``postgresql`` for a PostgreSQL URL, ``sqlite`` for anything else (a path or ``sqlite:///``)."""
    return "postgresql" if url.startswith(POSTGRES_PREFIXES) else "sqlite"


def sqlite_path(url: str) -> str:
    """The file of a SQLite URL: ``sqlite:///rel.db``, ``sqlite:////abs.db`` or a bare path."""
    return url[len(SQLITE_PREFIX) :] if url.startswith(SQLITE_PREFIX) else url


@functools.cache
def _postgres_sql(query: str) -> str:
    # The SQL of this package never holds a literal "?" or "%".
    return query.replace("?", "%s")


class Session:
    """One transaction's cursor, speaking ``?`` placeholders on both databases."""

    def __init__(self, cursor: sqlite3.Cursor | psycopg.Cursor[Any], dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect = dialect

    def _sql(self, query: str) -> str:
        return _postgres_sql(query) if self.dialect == "postgresql" else query

    def execute(self, query: str, params: Sequence[Any] = ()) -> Session:
        """Run one statement."""
        self._cursor.execute(self._sql(query), params)
        return self

    def executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many rows (batched by the driver)."""
        rows = list(rows)
        if rows:
            self._cursor.executemany(self._sql(query), rows)

    def fetchone(self) -> Row | None:
        """The next row of the last query, or ``None``."""
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def fetchall(self) -> list[Row]:
        """Every remaining row of the last query."""
        return [tuple(row) for row in self._cursor.fetchall()]

    def reserve_client_numbers(self, count: int) -> list[int]:
        """``count`` unused client numbers, so that related rows can be written in bulk.

        Call it inside a write transaction: on SQLite the transaction holds the
        database's write lock, so the maximum cannot move under us; PostgreSQL
        draws from the column's identity sequence.
        """
        if count <= 0:
            return []
        if self.dialect == "postgresql":
            self.execute(
                "SELECT nextval(pg_get_serial_sequence('clienten', 'client_nr'))"
                " FROM generate_series(1, ?)",
                (count,),
            )
            return [row[0] for row in self.fetchall()]
        self.execute("SELECT COALESCE(MAX(client_nr), 0) FROM clienten")
        row = self.fetchone()
        first = int(row[0] if row else 0) + 1
        return list(range(first, first + count))


class Database:
    """One connection to an OCMWdata database.

    Not thread-safe by itself: the adapter serialises its calls with a lock.
    The PostgreSQL connection is reopened on the next call after it broke, so
    a database restart costs one transient error, not a restart of the node.

    :param url: a file path, ``sqlite:///path`` or ``postgresql://...``.
    :param schema: PostgreSQL only: the schema to work in (created if absent).
    :param timeout: seconds to wait for a connection or a lock.
    """

    def __init__(self, url: str, *, schema: str | None = None, timeout: float = 5.0) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        if schema is not None and self.dialect != "postgresql":
            raise AdapterError(
                "The 'schema' option applies to PostgreSQL only.", code=Refusal.ADAPTER_CONFIG
            )
        self.schema = schema
        self.timeout = timeout
        self._conn: sqlite3.Connection | psycopg.Connection[Any] | None = None
        self._closed = False

    def __repr__(self) -> str:
        # Never show a PostgreSQL URL: it may carry a password.
        where = sqlite_path(self.url) if self.dialect == "sqlite" else "postgresql"
        return f"Database({where!r})"

    # ------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection | psycopg.Connection[Any]:
        if self.dialect == "sqlite":
            # Autocommit mode: transactions are opened explicitly below, so the
            # adapter decides when the write lock is taken. The node calls from
            # a worker thread other than the one that built the adapter; the
            # adapter's lock makes sharing the connection safe.
            conn = sqlite3.connect(
                sqlite_path(self.url),
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA foreign_keys = ON")
            return conn
        pg = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(1, round(self.timeout)),
            application_name="ocmwdata-adapter",
        )
        # A writer stuck behind another for longer than this gets a transient
        # error (as SQLite's busy timeout gives) instead of hanging the node.
        pg.execute(
            sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{round(self.timeout * 1000)}ms"))
        )
        if self.schema is not None:
            with pg.transaction():
                # CREATE SCHEMA IF NOT EXISTS is not safe against a concurrent
                # twin; the advisory lock makes two starting nodes take turns.
                pg.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key(),))
                pg.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
            pg.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return pg

    def _lock_key(self) -> str:
        return f"ocmwdata:{self.schema or 'public'}"

    def _connection(self) -> sqlite3.Connection | psycopg.Connection[Any]:
        if self._closed:
            raise AdapterError("The OCMWdata adapter has been closed.", code=Refusal.ADAPTER_CLOSED)
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        """Close the connection; later calls raise ``adapter.closed``."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except (sqlite3.Error, psycopg.Error):
                log.debug("closing the OCMWdata connection failed", exc_info=True)

    # ----------------------------------------------------------- transactions

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on an exception.

        ``write=True`` serialises writers up front (SQLite's ``BEGIN IMMEDIATE``,
        a PostgreSQL advisory lock), so two imports of the same person or the
        same message never race each other.
        """
        try:
            conn = self._connection()
            if isinstance(conn, sqlite3.Connection):
                with self._sqlite_transaction(conn, write=write) as session:
                    yield session
            else:
                with conn.transaction(), conn.cursor() as cursor:
                    session = Session(cursor, "postgresql")
                    if write:
                        session.execute(
                            "SELECT pg_advisory_xact_lock(hashtext(?))", (self._lock_key(),)
                        )
                    yield session
        except (sqlite3.Error, psycopg.Error) as exc:
            raise self._translate(exc) from exc

    @contextmanager
    def _sqlite_transaction(self, conn: sqlite3.Connection, *, write: bool) -> Iterator[Session]:
        cursor = conn.cursor()
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield Session(cursor, "sqlite")
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cursor.close()

    @contextmanager
    def unreachable(self) -> Iterator[None]:
        """Test hook: until the block ends, the database cannot be reached.

        The connection is dropped and every new one is attempted where no
        database can be: a SQLite file in a folder that does not exist, a
        PostgreSQL server on a closed port. The drivers' own errors then take
        the adapter's ordinary path (:meth:`_translate`), as in a real outage.
        """
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error, psycopg.Error):
                conn.close()
        url = self.url
        self.url = _unreachable(url, self.dialect)
        try:
            yield
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(sqlite3.Error, psycopg.Error):
                    conn.close()
            self.url = url

    def create_schema(self) -> None:
        """Create the vendor tables when absent (harmless when present)."""
        with self.transaction(write=True) as session:
            for statement in statements(self.dialect):
                session.execute(statement)

    def _translate(self, exc: sqlite3.Error | psycopg.Error) -> AdapterError:
        # Only the first line: PostgreSQL's detail lines may quote row values.
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(self._conn, psycopg.Connection) and self._conn.broken:
            self._conn = None  # reopened by the next call
        if isinstance(exc, sqlite3.OperationalError | psycopg.OperationalError):
            # Unreachable, locked, busy, a dropped connection, a serialisation
            # failure: all may pass, so the caller may retry.
            log.warning("OCMWdata database unavailable: %s", reason)
            return AdapterError(
                f"The OCMWdata database is unavailable ({reason}); try again later.",
                code=Refusal.ADAPTER_UNAVAILABLE,
                transient=True,
            )
        log.error("OCMWdata database error: %s", reason)
        return AdapterError(f"The OCMWdata database refused the operation ({reason}).")


def _unreachable(url: str, dialect: Dialect) -> str:
    """Where ``url``'s database cannot be: a missing folder, or a closed local port."""
    if dialect == "sqlite":
        path = sqlite_path(url)
        return f"{path}.unreachable/database.sqlite3"
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:1" if credentials else "127.0.0.1:1"
    return urlunsplit(parts._replace(netloc=netloc))
