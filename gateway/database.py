"""One connection to SQLite (the default) or PostgreSQL, shared by the node's store and journal.

Both keep what must survive a crash: rows are committed with ``synchronous=FULL``
on SQLite (a row committed before a broker ack survives a power cut too), in
WAL mode, and a busy timeout lets two processes share a file (a running node
and a command acting beside it). One connection per object, guarded by a
lock, as the node uses it from several threads.

:meth:`Database.batch` makes every write inside it part of one transaction:
one commit, one flush, for a whole batch of messages.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError, GatewayError


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class Database:
    """A database reached by URL: ``sqlite:///path`` (or a bare path) or ``postgresql://…``.

    :param schema: DDL run at every opening (``CREATE … IF NOT EXISTS``), with
        ``{blob}`` and ``{int}`` standing for the dialect's binary and big integer types.
    :param what: what the database is, for error messages ("the node's store").
    :param pragmas: extra SQLite pragmas (``secure_delete=ON``...).
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str,
        what: str,
        pragmas: Sequence[str] = (),
        unavailable_code: str = "store.unavailable",
    ) -> None:
        self.url = url
        self.postgres = is_postgres(url)
        self.lock = threading.RLock()
        self._batch_depth = 0
        if self.postgres:
            import psycopg

            try:
                self._conn: Any = psycopg.connect(url, autocommit=False)
            except psycopg.Error as exc:
                raise GatewayError(
                    f"{what.capitalize()} at {url} is unreachable: {' '.join(str(exc).split())}.",
                    code=unavailable_code,
                ) from None
            with self._conn.cursor() as cur:
                cur.execute(schema.format(blob="BYTEA", int="BIGINT"))
            self._conn.commit()
        elif url.startswith("sqlite:///") or "://" not in url:
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            for pragma in ("journal_mode=WAL", "busy_timeout=10000", "synchronous=FULL", *pragmas):
                self._conn.execute(f"PRAGMA {pragma}")
            self._conn.executescript(schema.format(blob="BLOB", int="INTEGER"))
        else:
            raise ConfigError(
                f"Unsupported URL {url!r} for {what}: use sqlite:///path or postgresql://…"
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
            cur = self._conn.cursor()
            if self._batch_depth:
                yield cur
                return
            if not self.postgres:
                cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cur
            except BaseException:
                self._conn.rollback()
                raise
            else:
                self._conn.commit()

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
            cur = self._conn.cursor()
            if self.postgres:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            else:
                cur.execute("BEGIN")
            try:
                yield cur
            finally:
                self._conn.rollback()

    def maintain(self, statement: str) -> None:
        """Run a statement that cannot run inside a transaction (``VACUUM``, a checkpoint)."""
        with self.lock:
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
            self._conn.close()
