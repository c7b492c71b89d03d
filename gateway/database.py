"""One connection to SQLite (the default) or PostgreSQL, shared by the node's store and journal.

Both keep what must survive a crash: rows are committed with ``synchronous=FULL``
on SQLite (a row committed before a broker ack survives a power cut too), in
WAL mode, and a busy timeout lets two processes share a file (a running node
and a command acting beside it). One connection per object, guarded by a
lock, as the node uses it from several threads.

:meth:`Database.batch` makes every write inside it part of one transaction:
one commit, one flush, for a whole batch of messages.

A database that goes away -- PostgreSQL restarting, the network cut, the
SQLite file locked by another process, a full disk -- raises
:class:`~gateway.model.errors.StoreUnavailable`, whatever the statement; the
transaction in hand is rolled back as a whole. A lost connection is opened
again at the next use, so the caller only has to try again later.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.migrations import MigrationReport, Schema, migrate
from gateway.model.errors import ConfigError, StoreUnavailable

CONNECT_TIMEOUT_SECONDS = 5
"""How long opening a PostgreSQL connection may take before the store counts as unavailable."""

_SQLITE_UNAVAILABLE = ("locked", "busy", "full", "disk i/o", "unable to open", "readonly")
"""SQLite errors that say the file cannot be used now, not that a statement is wrong."""


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Database:
    """A database reached by URL: ``sqlite:///path`` (or a bare path) or ``postgresql://…``.

    :param schema: the component's migrations, run at opening up to the latest
        (:mod:`gateway.migrations`); :attr:`migration` says what the first opening did.
    :param what: what the database is, for error messages ("the node's store").
    :param pragmas: extra SQLite pragmas (``secure_delete=ON``...).
    """

    def __init__(
        self,
        url: str,
        *,
        schema: Schema,
        what: str,
        pragmas: Sequence[str] = (),
        unavailable_code: str = "store.unavailable",
    ) -> None:
        self.url = url
        self.postgres = is_postgres(url)
        self.lock = threading.RLock()
        self._what = what
        self._code = unavailable_code
        self._schema = schema
        self._pragmas = tuple(pragmas)
        self._batch_depth = 0
        self._conn: Any = None
        self.migration: MigrationReport | None = None
        if not self.postgres and not (url.startswith("sqlite:///") or "://" not in url):
            raise ConfigError(
                f"Unsupported URL {url!r} for {what}: use sqlite:///path or postgresql://…"
            )
        with self.lock, self._translated():
            self._connect()

    def _connect(self) -> None:
        """Open the connection and bring the schema to this release's version."""
        if self.postgres:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict

            options: dict[str, Any] = {}
            if "connect_timeout" not in conninfo_to_dict(self.url):
                options["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
            self._conn = psycopg.connect(self.url, autocommit=False, **options)
        else:
            path = Path(self.url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn = conn
            for pragma in (
                "journal_mode=WAL",
                "busy_timeout=10000",
                "synchronous=FULL",
                *self._pragmas,
            ):
                conn.execute(f"PRAGMA {pragma}")
        try:
            report = migrate(
                self._conn, self._schema, postgres=self.postgres, url=_safe_url(self.url)
            )
        except BaseException:
            self._drop_connection()
            raise
        if self.migration is None:
            self.migration = report

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _ensure_connected(self) -> None:
        """Open the connection again if an earlier failure dropped it."""
        if self._conn is None:
            with self._translated():
                self._connect()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn "the database is not there" into :class:`StoreUnavailable`; let bugs through."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            reason = _first_line(exc)
            if not any(word in reason.lower() for word in _SQLITE_UNAVAILABLE):
                raise
            if "disk i/o" in reason.lower() or "unable to open" in reason.lower():
                self._drop_connection()
            raise self._unavailable(reason) from exc
        except OSError as exc:  # the folder of a SQLite file cannot be made
            raise self._unavailable(exc.strerror or str(exc)) from exc
        except Exception as exc:
            if not self.postgres:
                raise
            import psycopg

            if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                raise
            if self._conn is None or self._conn.broken or self._conn.closed:
                self._drop_connection()  # opened again at the next use
            else:
                with contextlib.suppress(Exception):
                    self._conn.rollback()
            raise self._unavailable(_first_line(exc)) from exc

    def _unavailable(self, reason: str) -> StoreUnavailable:
        return StoreUnavailable(
            f"{self._what.capitalize()} at {_safe_url(self.url)} is unavailable: {reason}.",
            code=self._code,
        )

    def sql(self, text: str) -> str:
        """Statements are written with ``?``; PostgreSQL wants ``%s``."""
        return text.replace("?", "%s") if self.postgres else text

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Any]:
        """A cursor in a transaction committed at the end (or joining the current batch).

        On SQLite a writer takes the write lock at once (``BEGIN IMMEDIATE``),
        so two processes never interleave their read-then-write; a reader gets
        a consistent snapshot.
        """
        with self.lock:
            if self._batch_depth:
                with self._translated():
                    yield self._cursor()
                return
            self._ensure_connected()
            with self._translated():
                cur = self._cursor()
                if not self.postgres:
                    cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield cur
                    self._cursor()  # a connection lost inside the block commits nothing
                    self._conn.commit()
                except BaseException:
                    # Also when the commit itself fails: a busy or full SQLite
                    # file may leave the transaction open.
                    self._rollback()
                    raise

    def _cursor(self) -> Any:
        if self._conn is None:
            raise self._unavailable("the connection was lost")
        return self._conn.cursor()

    def _rollback(self) -> None:
        # A connection that just died cannot roll back: dropping it does.
        try:
            if self._conn is not None:
                self._conn.rollback()
        except Exception:
            self._drop_connection()

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers a write transaction."""
        with self.transaction() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write inside the block; other threads wait for its end."""
        with self.lock:
            if self._batch_depth:
                self._batch_depth += 1
                try:
                    yield
                finally:
                    self._batch_depth -= 1
                return
            with self.transaction():
                self._batch_depth = 1
                try:
                    yield
                finally:
                    self._batch_depth = 0

    @property
    def in_batch(self) -> bool:
        return bool(self._batch_depth)

    def query(self, text: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read statement."""
        with self.transaction(write=False) as cur:
            cur.execute(self.sql(text), args)
            return list(cur.fetchall())

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """A cursor over one consistent view of the database, for a long read; changes nothing."""
        with self.lock:
            self._ensure_connected()
            with self._translated():
                cur = self._cursor()
                if self.postgres:
                    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                else:
                    cur.execute("BEGIN")
                try:
                    yield cur
                finally:
                    self._rollback()

    def maintain(self, statement: str) -> None:
        """Run a statement that cannot run inside a transaction (``VACUUM``, a checkpoint)."""
        with self.lock:
            self._ensure_connected()
            if self.postgres:
                self._conn.autocommit = True
                try:
                    self._conn.execute(statement)
                finally:
                    self._conn.autocommit = False
            else:
                self._conn.execute(statement)

    def close(self) -> None:
        with self.lock:
            self._drop_connection()


def migrate_database(url: str, schema: Schema) -> MigrationReport:
    """Open the database at ``url`` only to bring it to ``schema``'s latest version.

    Reads no secret and writes nothing but the schema and its version.
    """
    database = Database(url, schema=schema, what=schema.what)
    database.close()
    assert database.migration is not None  # set by the opening
    return database.migration


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}@{host}"
