"""Client applications of the local API and their tokens, kept hashed in the node's store.

A token is shown once, when it is made (``cpas-gateway api token create``),
and kept only as a SHA-256 digest of its secret part: the secret is 256
random bits, so a plain digest is as good as a slow hash, and a stolen store
yields no usable token. A token names its node (``cpasgw_<cpas_id>_<id>_<secret>``),
so a token of another node is told apart from a mistyped one, and is refused
all the same.

Each client has rights (:data:`SCOPES`): a monitoring system gets ``monitor``
only, a vendor's software the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gateway.database import Database
from gateway.migrations import Migration, Schema
from gateway.model.codes import Fault
from gateway.model.errors import GatewayError

SCOPES: Final = {
    "exchange": "start transfers and requests, follow the state of messages",
    "decide": "list, preview, release and refuse held requests",
    "report": "read a person's report and preview the dossier that would go",
    "monitor": "read the node's health and metrics",
}
"""The rights a client can have, and what each allows."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_clients (
    token_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    digest     TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""

SCHEMA = Schema(
    "api",
    "the API's clients",
    (Migration(1, "the API's client applications and their hashed tokens", _SCHEMA),),
    marker="api_clients",
)
"""The API clients' migrations, in the store's database beside the store's own tables."""
_TOKEN: Final = re.compile(r"cpasgw_(\d{10})_([0-9a-f]{12})_([0-9a-f]{64})")
_NAME: Final = re.compile(r"[^\W_][\w '’.\-]{0,63}")


@dataclass(frozen=True)
class Client:
    """A client application of the API (never its token)."""

    token_id: str
    name: str
    scopes: frozenset[str]
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class TokenRefused(GatewayError):
    """The request carries no token, or one this node does not accept."""

    code = Fault.API_UNAUTHENTICATED


class ApiTokens:
    """The clients of one node's API, in its store's database (SQLite or PostgreSQL)."""

    def __init__(self, store_url: str, cpas_id: str) -> None:
        self.cpas_id = cpas_id
        self._db = Database(store_url, schema=SCHEMA, what="the API's clients")

    def close(self) -> None:
        self._db.close()

    def create(self, name: str, scopes: Iterable[str] | None = None) -> tuple[Client, str]:
        """A new client and its token (returned this once, never stored)."""
        if not _NAME.fullmatch(name):
            raise GatewayError(
                "A client's name is 1 to 64 letters, digits, spaces and ' . _ -.",
                code=Fault.API_CLIENT_NAME,
            )
        chosen = frozenset(SCOPES if scopes is None else scopes)
        unknown = chosen - set(SCOPES)
        if unknown or not chosen:
            raise GatewayError(
                f"Rights are chosen among {', '.join(SCOPES)}.", code=Fault.API_UNKNOWN_SCOPE
            )
        token_id = secrets.token_hex(6)
        secret = secrets.token_hex(32)
        now = _now()
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql(
                    "INSERT INTO api_clients (token_id, name, digest, scopes, created_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                ),
                (token_id, name, _digest(secret), " ".join(sorted(chosen)), now),
            )
        client = Client(token_id, name, chosen, now, None)
        return client, f"cpasgw_{self.cpas_id}_{token_id}_{secret}"

    def revoke(self, token_id: str) -> bool:
        """Revoke a client's token at once; ``False`` when no active one has this id."""
        with self._db.transaction() as cur:
            cur.execute(
                self._db.sql(
                    "UPDATE api_clients SET revoked_at = ? WHERE token_id = ?"
                    " AND revoked_at IS NULL"
                ),
                (_now(), token_id),
            )
            return bool(cur.rowcount)

    def clients(self) -> list[Client]:
        rows = self._db.query(
            "SELECT token_id, name, scopes, created_at, revoked_at FROM api_clients"
            " ORDER BY created_at, token_id"
        )
        return [_client(row) for row in rows]

    def authenticate(self, token: str | None) -> Client:
        """The active client holding ``token``, or :class:`TokenRefused` (never says which
        part was wrong beyond "missing", "another node's" and "not valid")."""
        if not token:
            raise TokenRefused("This call needs a client token (Authorization: Bearer ...).")
        match = _TOKEN.fullmatch(token.strip())
        if match is None:
            raise TokenRefused("The client token is not valid.", code=Fault.API_TOKEN_INVALID)
        cpas_id, token_id, secret = match.groups()
        if cpas_id != self.cpas_id:
            raise TokenRefused(
                "The client token belongs to another node.", code=Fault.API_TOKEN_OTHER_NODE
            )
        rows = self._db.query(
            "SELECT token_id, name, scopes, created_at, revoked_at, digest FROM api_clients"
            " WHERE token_id = ?",
            (token_id,),
        )
        # Compared even when no row matches: the time taken says nothing about the id.
        stored = rows[0][5] if rows else _digest("")
        if not hmac.compare_digest(stored, _digest(secret)) or not rows:
            raise TokenRefused("The client token is not valid.", code=Fault.API_TOKEN_INVALID)
        client = _client(rows[0][:5])
        if not client.active:
            raise TokenRefused("The client token was revoked.", code=Fault.API_TOKEN_REVOKED)
        return client


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _client(row: tuple[object, ...]) -> Client:
    token_id, name, scopes, created_at, revoked_at = row
    return Client(
        str(token_id),
        str(name),
        frozenset(str(scopes).split()),
        str(created_at),
        None if revoked_at is None else str(revoked_at),
    )
