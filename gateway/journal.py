"""The node's journal: an append-only, tamper-evident record of every exchange.

Every message in and out, every receipt, every refusal (with its stable code)
and every held request with its release or refusal is one *entry*. The
journal feeds the person's report (:mod:`gateway.report`) and lets the CPAS
show that nothing was added, changed or removed afterwards.

How it is kept (the threat model is in ``docs/transparency.md``):

- **Hash chain sealed with the node's journal secret.** Each entry's seal is
  ``HMAC-SHA256(chain key, canonical entry)``, and the canonical entry holds
  its sequence number and the previous entry's seal. An altered, inserted or
  deleted row breaks the chain at that row. Keyed, not a bare hash: someone
  who can write the database but does not hold the secret cannot recompute
  the seals after an edit.
- **A sealed head.** The sequence number and seal of the last entry are kept
  in a one-row head table, itself sealed, updated in the same transaction as
  each append: deleting the last rows (which leaves a valid, shorter chain)
  is detected. Optionally the head is also written to a *witness* file
  outside the database (beside the secret, on the node's host), which detects
  a database rolled back as a whole to an earlier copy.
- **No person number in clear.** A NISS/BIS number is stored only as
  ``HMAC-SHA256(person key, 11 digits)``: the journal alone identifies no
  one, and :meth:`Journal.entries_for` finds a person's entries by that tag.
- **Content encrypted under a key per dossier.** The exact dossier XML sent
  or received is encrypted with AES-256-GCM under a fresh random key; the key
  is wrapped with a key derived from the secret and kept in a separate table.
  The chain covers the ciphertext's digest and the end of its retention,
  never the key: :meth:`Journal.destroy_expired` deletes the keys past
  retention, the content becomes unrecoverable, and the chain still verifies.

The chain, person and wrapping keys are derived from one 32-byte secret
(:func:`load_or_create_secret`) with HKDF, each for its own purpose.

SQLite by default (``sqlite:///path``), PostgreSQL by URL (``postgresql://``),
as for the node's store. One connection guarded by a lock: the node records
from its worker thread and from sender threads.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.database import Database
from gateway.migrations import Migration, MigrationReport, Schema
from gateway.model.codes import Fault
from gateway.model.errors import ConfigError, GatewayError, KeyMaterialError
from gateway.ownership import claim
from gateway.private_files import write_private_file

log = logging.getLogger(__name__)

SECRET_SIZE: Final = 32

SECRET_FILE: Final = "journal.secret"
HEAD_FILE: Final = "journal.head"
JOURNAL_FILE: Final = "journal.sqlite3"

GENESIS: Final = "0" * 64
"""The "previous seal" of the first entry."""

_ENTRY_CONTEXT: Final = "cpas-journal/entry/v1"
_HEAD_CONTEXT: Final = b"cpas-journal/head/v1\n"
_CONTENT_CONTEXT: Final = b"cpas-journal/content/v1\n"
_KEY_CONTEXT: Final = b"cpas-journal/key/v1\n"
_NONCE_SIZE: Final = 12


class JournalError(GatewayError):
    """The journal cannot be opened or appended to."""

    code = Fault.JOURNAL_UNAVAILABLE


class Event(StrEnum):
    """What an entry records; the strings are stable (reports and audits rely on them)."""

    SENT = "sent"
    """A transfer or request left this node (committed to the outbox)."""
    RECEIVED = "received"
    """A transfer or request arrived, verified and decrypted; ``outcome`` says what followed."""
    RECEIPT_SENT = "receipt-sent"
    """This node acknowledged a message: ``outcome`` imported or rejected, with ``code``."""
    RECEIPT_RECEIVED = "receipt-received"
    """The recipient acknowledged a message this node sent."""
    REFUSED_OUTGOING = "refused-outgoing"
    """This node refused to send (e.g. the destination is not a CPAS); nothing left."""
    REFUSED_INCOMING = "refused-incoming"
    """An arriving message was refused (signature, expiry, wrong recipient...)."""
    REQUEST_HELD = "request-held"
    """A request waits for a social worker's decision."""
    REQUEST_RELEASED = "request-released"
    """A social worker released a held request: the dossier may be sent."""
    REQUEST_REFUSED = "request-refused"
    """A social worker refused a held request: the dossier is not sent."""
    REQUEST_EXPIRED = "request-expired"
    """A request this node sent got no final answer before it expired."""
    RESPONSE_SENT = "response-sent"
    """This node answered a request: the dossier, or a refusal reason in ``outcome``."""
    RESPONSE_RECEIVED = "response-received"
    """A response to a request of this node arrived."""
    DIRECTORY_APPLIED = "directory-applied"
    """A newer directory edition from the federation's feed, verified, is in use from the
    next message on; ``outcome`` names the edition (``edition 5``)."""
    DIRECTORY_REFUSED = "directory-refused"
    """An edition on the federation's feed was refused (unsigned, forged, older than the
    one in use, not a directory): ``code`` says why; the edition in use stays."""
    REQUEUED = "requeued"
    """A dead letter the broker moved aside after its delivery limit, never refused by this
    node, was sent back to the inbox at start-up (the node had died holding it)."""
    DOSSIER_SHOWN = "dossier-shown"
    """A social worker was given the dossier that would go (a transfer, a held request's
    answer) to show the person before it leaves."""


class Direction(StrEnum):
    """Whether the exchange an entry records goes out of this node or comes in."""

    OUT = "out"
    IN = "in"


EVENT_DIRECTIONS: Final[dict[Event, Direction]] = {
    Event.SENT: Direction.OUT,
    Event.RECEIVED: Direction.IN,
    Event.RECEIPT_SENT: Direction.OUT,
    Event.RECEIPT_RECEIVED: Direction.IN,
    Event.REFUSED_OUTGOING: Direction.OUT,
    Event.REFUSED_INCOMING: Direction.IN,
    Event.REQUEST_HELD: Direction.IN,
    Event.REQUEST_RELEASED: Direction.IN,
    Event.REQUEST_REFUSED: Direction.IN,
    Event.REQUEST_EXPIRED: Direction.OUT,
    Event.REQUEUED: Direction.IN,
    Event.DIRECTORY_APPLIED: Direction.IN,
    Event.DIRECTORY_REFUSED: Direction.IN,
    Event.RESPONSE_SENT: Direction.OUT,
    Event.RESPONSE_RECEIVED: Direction.IN,
    Event.DOSSIER_SHOWN: Direction.OUT,
}
"""The direction of each event when the caller does not give one."""


class ContentState(StrEnum):
    """What can be said about an entry's dossier content."""

    NONE = "none"
    """The entry carries no dossier."""
    KEPT = "kept"
    """The content is kept and its key exists (read it with :meth:`Journal.entries_for`)."""
    DESTROYED = "destroyed"
    """Its key was destroyed at the end of retention: the content cannot be read."""
    UNREADABLE = "unreadable"
    """Its key exists but does not open it: the journal was altered (``verify`` says where)."""


@dataclass(frozen=True)
class Entry:
    """One journal entry, as read back."""

    seq: int
    at: dt.datetime
    event: str
    direction: str
    message_id: str | None
    message_type: str | None
    peer: str | None
    purpose: str | None
    case_reference: str | None
    correlation_id: str | None
    outcome: str | None
    code: str | None
    content_state: ContentState
    retain_until: dt.datetime | None
    content: bytes | None = field(default=None, repr=False)
    """The dossier XML exactly as recorded; only from :meth:`Journal.entries_for`."""
    actor: str | None = None
    """Who acted: this CPAS's staff reference, or the pseudonym another CPAS's header gave."""


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


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :meth:`Journal.verify`; true when the journal is intact."""

    ok: bool
    entries: int
    """Entries checked and found sound (all of them when ``ok``)."""
    head: str
    """Seal of the last sound entry: note it down to compare with a later run."""
    broken_at: int | None = None
    """The first entry that breaks (missing, altered or not in its place), when known."""
    reason: str | None = None
    warnings: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class JournalSummary:
    """Counts for an operator: by event and message type, by refusal code, content kept."""

    entries: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    by_event: dict[tuple[str, str], int]
    """(event, message type or ``""``) -> count."""
    by_code: dict[str, int]
    """Refusal or rejection code -> count."""
    content_kept: int
    content_destroyed: int


# ------------------------------------------------------------------ secret


def load_or_create_secret(path: Path, *, create: bool = True) -> bytes:
    """The journal secret in ``path``: 32 random bytes, created (mode 0600) when absent.

    With ``create=False`` (commands that only read a journal) a missing file
    is an error rather than a new secret that would not match the journal.
    Raises :class:`~gateway.model.errors.KeyMaterialError` when the file is missing
    (and not to be created) or does not hold exactly 32 bytes. Losing the file
    makes the journal unverifiable and its content unreadable: back it up with
    the node's keys.
    """
    path = Path(path)
    if not create and not path.exists():
        raise KeyMaterialError(
            f"The journal secret {path} does not exist: the node has recorded nothing yet, "
            "or the secret was lost.",
            code=Fault.KEYS_MISSING,
        )
    try:
        # Exclusive: two processes starting together never overwrite each other's secret.
        write_private_file(path, os.urandom(SECRET_SIZE), exclusive=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise KeyMaterialError(
            f"The journal secret {path} cannot be created: {exc.strerror}.", code=Fault.KEYS_MISSING
        ) from None
    else:
        log.info("created the journal secret %s", path)
    try:
        secret = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeyMaterialError(
            f"The journal secret {path} cannot be read: {exc.strerror}.", code=Fault.KEYS_MISSING
        ) from None
    if len(secret) != SECRET_SIZE:
        raise KeyMaterialError(
            f"The journal secret {path} holds {len(secret)} bytes, not {SECRET_SIZE}.",
            code=Fault.KEYS_INVALID,
        )
    if mode & 0o077:
        log.warning("the journal secret %s is readable by others than its owner", path)
    return secret


DEFAULT_RETENTION_DAYS: Final = 730
"""How long the journal keeps the content of a dossier readable (two years)."""


class JournalConfig(Protocol):
    """What the journal reads of a node's configuration (:class:`gateway.config.NodeConfig`).

    The journal sits below the configuration: it names the fields it reads
    instead of importing the node's configuration model.
    """

    @property
    def cpas_id(self) -> str: ...
    @property
    def store(self) -> str: ...
    @property
    def keys(self) -> Path: ...
    @property
    def journal(self) -> str | None: ...
    @property
    def journal_secret(self) -> Path | None: ...
    @property
    def journal_head(self) -> Path | None: ...
    @property
    def journal_retention_days(self) -> int: ...


@dataclass(frozen=True)
class JournalSettings:
    """Where a node's journal, secret and head witness are, and how long content is kept."""

    url: str
    secret_path: Path
    head_path: Path | None
    retention_days: int
    owner: str | None = None

    @classmethod
    def from_config(cls, config: JournalConfig) -> JournalSettings:
        """Read the journal settings of a node configuration, with defaults for those absent.

        Defaults: the journal beside the store (``journal.sqlite3`` in the
        store's folder; the store's own database for PostgreSQL), the secret
        ``journal.secret`` and the witness ``journal.head`` in the keys folder,
        and :data:`DEFAULT_RETENTION_DAYS`.
        """
        secret = config.journal_secret or Path(config.keys) / SECRET_FILE
        return cls(
            url=config.journal or _beside_store(config.store),
            secret_path=secret,
            head_path=config.journal_head or secret.with_name(HEAD_FILE),
            retention_days=config.journal_retention_days,
            owner=config.cpas_id,
        )

    def open(self, *, create_secret: bool = True) -> Journal:
        """Open the journal; the secret is created when absent unless ``create_secret`` is off."""
        return Journal(
            self.url,
            load_or_create_secret(self.secret_path, create=create_secret),
            retention_days=self.retention_days,
            head_path=self.head_path,
            owner=self.owner,
        )


def open_journal(config: JournalConfig) -> Journal:
    """The journal of the node configured by ``config``."""
    return JournalSettings.from_config(config).open()


def _beside_store(store_url: str) -> str:
    if store_url.startswith(("postgresql://", "postgres://")):
        return store_url
    path = Path(store_url.removeprefix("sqlite:///"))
    return "sqlite:///" + str(path.with_name(JOURNAL_FILE))


# ---------------------------------------------------------------- journal

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

# The columns the seal covers, in the order they are sealed. The content
# itself is covered through its digest; the key never is.
_SEALED: Final = (
    "seq",
    "at",
    "event",
    "direction",
    "message_id",
    "message_type",
    "peer",
    "purpose",
    "case_reference",
    "correlation_id",
    "person_tag",
    "outcome",
    "code",
    "content_digest",
    "retain_until",
    "prev_hash",
)
_COLUMNS: Final = (*_SEALED, "content", "entry_hash", "actor")
# Sealed only when set, after the others: entries written before the column
# existed keep their seals.
_SEALED_WHEN_SET: Final = ("actor",)
_SELECT: Final = (
    "SELECT "
    + ", ".join(f"e.{name}" for name in _COLUMNS)
    + ", k.wrapped FROM journal_entries e LEFT JOIN journal_keys k ON k.seq = e.seq"
)


class Journal:
    """A node's append-only, tamper-evident journal (SQLite or PostgreSQL).

    :param url: ``sqlite:///path`` (or a bare path) or ``postgresql://...``;
        a PostgreSQL schema is chosen the libpq way, e.g.
        ``?options=-csearch_path%3Dmyschema``.
    :param secret: the node's 32-byte journal secret
        (:func:`load_or_create_secret`).
    :param retention_days: how long the content of a dossier recorded from now
        on stays readable; each entry keeps the end of its own retention.
    :param head_path: optional witness file for the head, kept outside the
        database (see the module docstring).
    :param owner: the CPAS whose node keeps this journal: recorded when the
        journal is created, and a journal recorded for another CPAS is refused
        (``journal.other_node``) before anything is read or written.
    """

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        head_path: Path | None = None,
        owner: str | None = None,
    ) -> None:
        if len(secret) != SECRET_SIZE:
            raise KeyMaterialError(
                f"A journal secret is {SECRET_SIZE} bytes, not {len(secret)}.",
                code=Fault.KEYS_INVALID,
            )
        if retention_days < 1:
            raise ConfigError("The journal retention is at least one day.")
        self.url = url
        self.retention = dt.timedelta(days=retention_days)
        self.head_path = None if head_path is None else Path(head_path)
        self._chain_key = _derive(secret, b"chain")
        self._person_key = _derive(secret, b"person")
        self._wrap = AESGCM(_derive(secret, b"wrap"))
        self._staff_key = _derive(secret, b"staff")
        self._batch_head: tuple[int, str] | None = None
        # Deleted rows are overwritten with zeros: a destroyed content key must
        # not linger in a free page of the file.
        self._db = Database(
            url,
            schema=SCHEMA,
            what="the journal database",
            pragmas=("secure_delete=ON",),
            unavailable_code=Fault.JOURNAL_UNAVAILABLE,
        )
        self._lock = self._db.lock
        self._postgres = self._db.postgres
        if owner is not None:
            claim(self._db, owner, what="journal", setting="journal", code=Fault.JOURNAL_OTHER_NODE)
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO journal_head (id, seq, entry_hash, seal) VALUES (1, 0, ?, ?)"
                    " ON CONFLICT (id) DO NOTHING"
                ),
                (GENESIS, self._head_seal(0, GENESIS)),
            )

    # ------------------------------------------------------------ plumbing

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def migration(self) -> MigrationReport | None:
        """What opening the journal did to its schema."""
        return self._db.migration

    def close(self) -> None:
        self._db.close()

    def ping(self) -> None:
        """Raise :class:`~gateway.model.errors.StoreUnavailable` unless the journal is writable."""
        self._db.ping()

    def _tx(self, *, write: bool = True) -> AbstractContextManager[Any]:
        # On SQLite a writer locks at once, so that another process appending
        # meanwhile cannot make two entries share a number.
        return self._db.transaction(write=write)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction (one commit, one witness write) for every entry recorded inside.

        The node records a batch of deliveries this way, before acking any of them.
        """
        with self._lock:
            outermost = not self._db.in_batch
            try:
                with self._db.batch():
                    yield
            except BaseException:
                if outermost:
                    self._batch_head = None  # rolled back: the witness must not claim it
                raise
            if outermost and self._batch_head is not None:
                self._write_witness(*self._batch_head)
                self._batch_head = None

    def _sql(self, sql: str) -> str:
        return self._db.sql(sql)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.query(sql, args)

    # --------------------------------------------------------------- seals

    def person_tag(self, person_number: str) -> str:
        """The keyed hash under which a person's entries are filed (never the number)."""
        digits = "".join(ch for ch in person_number if ch.isdigit())
        return hmac.new(self._person_key, digits.encode("ascii"), hashlib.sha256).hexdigest()

    def staff_pseudonym(self, staff_reference: str) -> str:
        """The pseudonym of one of this CPAS's staff references, as envelope headers carry it.

        A keyed hash under this node's journal secret: stable (the same social
        worker always gets the same pseudonym, so the CPAS can resolve it by
        recomputing it over its own references) and meaningless to anyone else.
        """
        digest = hmac.new(self._staff_key, staff_reference.encode("utf-8"), hashlib.sha256)
        return base64.b32encode(digest.digest()[:16]).decode("ascii").rstrip("=").lower()

    def _entry_seal(self, row: dict[str, Any]) -> str:
        optional = [[name, row[name]] for name in _SEALED_WHEN_SET if row.get(name) is not None]
        canonical = json.dumps(
            [_ENTRY_CONTEXT, *(row[name] for name in _SEALED), *optional],
            separators=(",", ":"),
            ensure_ascii=True,
        ).encode("ascii")
        return hmac.new(self._chain_key, canonical, hashlib.sha256).hexdigest()

    def _head_seal(self, seq: int, entry_hash: str) -> str:
        message = _HEAD_CONTEXT + f"{seq}\n{entry_hash}".encode("ascii")
        return hmac.new(self._chain_key, message, hashlib.sha256).hexdigest()

    # --------------------------------------------------------------- write

    def record(
        self,
        event: Event | str,
        *,
        direction: Direction | str | None = None,
        message_id: object | None = None,
        message_type: str | None = None,
        peer: str | None = None,
        purpose: str | None = None,
        case_reference: str | None = None,
        correlation_id: object | None = None,
        person_number: str | None = None,
        outcome: str | None = None,
        code: str | None = None,
        content: bytes | None = None,
        at: dt.datetime | None = None,
        actor: str | None = None,
    ) -> int:
        """Append one entry and return its sequence number.

        :param event: one of :class:`Event` (:class:`ValueError` otherwise).
        :param direction: ``out`` or ``in``; by default the event's own
            (:data:`EVENT_DIRECTIONS`).
        :param message_id: the message this entry is about (a UUID or its string).
        :param message_type: ``transfer``, ``request``, ``response`` or ``receipt``.
        :param peer: enterprise number of the other institution.
        :param correlation_id: the message this one answers. An entry without
            a person number is filed under the person of the entry it
            answers, so a receipt belongs to the same person as the dossier.
        :param person_number: NISS or BIS number; kept only as a keyed hash.
        :param outcome: what became of the message (``imported``, ``rejected``,
            a refusal reason of a response...).
        :param code: the stable refusal or rejection code.
        :param content: the canonical dossier XML, kept encrypted until the
            end of retention.
        :param at: when it happened (aware; default now).
        :param actor: who acted: this CPAS's staff reference, or the pseudonym
            of another CPAS's social worker as its envelope header gave it.
        """
        event = Event(event)
        moment = _aware(at) if at is not None else dt.datetime.now(dt.UTC)
        fields = {
            "at": _stamp(moment),
            "event": event.value,
            "direction": Direction(direction or EVENT_DIRECTIONS[event]).value,
            "message_id": _text(message_id),
            "message_type": _text(message_type),
            "peer": _text(peer),
            "purpose": _text(purpose),
            "case_reference": _text(case_reference),
            "correlation_id": _text(correlation_id),
            "outcome": _text(outcome),
            "code": _text(code),
            "actor": _text(actor),
        }
        retain_until = None if content is None else _stamp(moment + self.retention)
        with self._lock:
            seq, entry_hash = self._append(fields, person_number, content, retain_until)
            if self._db.in_batch:
                self._batch_head = (seq, entry_hash)  # written once the batch commits
            else:
                self._write_witness(seq, entry_hash)
        return seq

    def _append(
        self,
        fields: dict[str, str | None],
        person_number: str | None,
        content: bytes | None,
        retain_until: str | None,
    ) -> tuple[int, str]:
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "SELECT seq, entry_hash, seal FROM journal_head WHERE id = 1"
                    + (" FOR UPDATE" if self._postgres else "")
                )
            )
            head_seq, head_hash, head_seal = cur.fetchone()
            if not hmac.compare_digest(head_seal, self._head_seal(head_seq, head_hash)):
                # Appending onto a head we cannot vouch for would hide the
                # break; most often the secret is not the one the journal
                # was written with.
                raise JournalError(
                    "The journal's head does not match this node's journal secret: wrong "
                    "secret, or the journal was altered (run `cpas-gateway journal verify`).",
                    code=Fault.JOURNAL_HEAD_INVALID,
                )
            seq = int(head_seq) + 1
            tag = None if person_number is None else self.person_tag(person_number)
            if tag is None and fields["correlation_id"] is not None:
                cur.execute(
                    self._sql(
                        "SELECT person_tag FROM journal_entries WHERE message_id = ?"
                        " AND person_tag IS NOT NULL ORDER BY seq LIMIT 1"
                    ),
                    (fields["correlation_id"],),
                )
                found = cur.fetchone()
                tag = None if found is None else found[0]
            row: dict[str, Any] = {
                **fields,
                "seq": seq,
                "person_tag": tag,
                "content": None,
                "content_digest": None,
                "retain_until": None,
                "prev_hash": head_hash,
            }
            wrapped = None
            if content is not None:
                key = AESGCM.generate_key(bit_length=256)
                nonce = os.urandom(_NONCE_SIZE)
                sealed = nonce + AESGCM(key).encrypt(nonce, bytes(content), _content_aad(seq))
                row["content"] = sealed
                row["content_digest"] = hashlib.sha256(sealed).hexdigest()
                row["retain_until"] = retain_until
                wrap_nonce = os.urandom(_NONCE_SIZE)
                wrapped = wrap_nonce + self._wrap.encrypt(
                    wrap_nonce, key, _key_aad(seq, row["content_digest"])
                )
            row["entry_hash"] = self._entry_seal(row)
            cur.execute(
                self._sql(
                    f"INSERT INTO journal_entries ({', '.join(_COLUMNS)})"
                    f" VALUES ({', '.join('?' for _ in _COLUMNS)})"
                ),
                tuple(row[name] for name in _COLUMNS),
            )
            if wrapped is not None:
                cur.execute(
                    self._sql(
                        "INSERT INTO journal_keys (seq, wrapped, retain_until) VALUES (?, ?, ?)"
                    ),
                    (seq, wrapped, row["retain_until"]),
                )
            cur.execute(
                self._sql("UPDATE journal_head SET seq = ?, entry_hash = ?, seal = ? WHERE id = 1"),
                (seq, row["entry_hash"], self._head_seal(seq, row["entry_hash"])),
            )
        return seq, row["entry_hash"]

    def _write_witness(self, seq: int, entry_hash: str) -> None:
        """Write the head to the witness file, after the commit, still under the lock.

        After the commit: a witness may lag the database (a crash between
        the two leaves it one entry behind until the next append), but it
        never claims an entry the database does not hold, so ``verify``
        raises no false alarm.
        """
        if self.head_path is None:
            return
        document = {"seq": seq, "entry_hash": entry_hash, "seal": self._head_seal(seq, entry_hash)}
        try:
            # Written at every commit: replaced atomically, not flushed to disk each time.
            write_private_file(self.head_path, json.dumps(document).encode("ascii"), durable=False)
        except OSError as exc:
            log.error("the journal head witness %s cannot be written: %s", self.head_path, exc)

    # ---------------------------------------------------------------- read

    def has_entry(self, event: Event | str, message_id: object) -> bool:
        """Whether an entry of this event exists for this message (a redelivery's check)."""
        rows = self._query(
            "SELECT 1 FROM journal_entries WHERE event = ? AND message_id = ? LIMIT 1",
            (Event(event).value, _text(message_id)),
        )
        return bool(rows)

    def entries_for(self, person_number: str) -> list[Entry]:
        """Every entry about this person, oldest first, with its content while its key exists."""
        rows = self._query(
            f"{_SELECT} WHERE e.person_tag = ? ORDER BY e.seq", (self.person_tag(person_number),)
        )
        return [self._entry(row, decrypt=True) for row in rows]

    def entries_of_case(self, case_reference: str) -> list[Entry]:
        """Every entry recorded under a case reference, oldest first, without their content."""
        rows = self._query(
            f"{_SELECT} WHERE e.case_reference = ? ORDER BY e.seq", (case_reference,)
        )
        return [self._entry(row, decrypt=False) for row in rows]

    def tail(self, n: int = 20) -> list[Entry]:
        """The last ``n`` entries, oldest first, without their content."""
        rows = self._query(f"{_SELECT} ORDER BY e.seq DESC LIMIT ?", (max(0, n),))
        return [self._entry(row, decrypt=False) for row in reversed(rows)]

    def count(self) -> int:
        """How many entries the journal holds."""
        return int(self._query("SELECT COUNT(*) FROM journal_entries")[0][0])

    def summary(self) -> JournalSummary:
        """Counts by event and message type, by refusal code, and of content kept or destroyed."""
        total, first, last = self._query("SELECT COUNT(*), MIN(at), MAX(at) FROM journal_entries")[
            0
        ]
        by_event = {
            (event, message_type or ""): int(n)
            for event, message_type, n in self._query(
                "SELECT event, message_type, COUNT(*) FROM journal_entries"
                " GROUP BY event, message_type ORDER BY event, message_type"
            )
        }
        by_code = {
            code: int(n)
            for code, n in self._query(
                "SELECT code, COUNT(*) FROM journal_entries WHERE code IS NOT NULL"
                " GROUP BY code ORDER BY COUNT(*) DESC, code"
            )
        }
        with_content, kept = self._query(
            "SELECT COUNT(e.seq), COUNT(k.seq) FROM journal_entries e"
            " LEFT JOIN journal_keys k ON k.seq = e.seq WHERE e.content_digest IS NOT NULL"
        )[0]
        return JournalSummary(
            entries=int(total),
            first_at=None if first is None else _parse(first),
            last_at=None if last is None else _parse(last),
            by_event=by_event,
            by_code=by_code,
            content_kept=int(kept),
            content_destroyed=int(with_content) - int(kept),
        )

    def _entry(self, row: Sequence[Any], *, decrypt: bool) -> Entry:
        values = dict(zip((*_COLUMNS, "wrapped"), row, strict=True))
        state = ContentState.NONE
        content = None
        if values["content_digest"] is not None:
            if values["wrapped"] is None:
                state = ContentState.DESTROYED
            else:
                state = ContentState.KEPT
                if decrypt:
                    content = self._open_content(values)
                    if content is None:
                        state = ContentState.UNREADABLE
        return Entry(
            seq=int(values["seq"]),
            at=_parse(values["at"]),
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
            retain_until=None if values["retain_until"] is None else _parse(values["retain_until"]),
            content=content,
            actor=values["actor"],
        )

    def _unwrap(self, seq: int, digest: str, wrapped: bytes) -> bytes | None:
        wrapped = bytes(wrapped)
        try:
            return self._wrap.decrypt(
                wrapped[:_NONCE_SIZE], wrapped[_NONCE_SIZE:], _key_aad(seq, digest)
            )
        except (InvalidTag, ValueError):
            return None

    def _open_content(self, values: dict[str, Any]) -> bytes | None:
        seq = int(values["seq"])
        key = self._unwrap(seq, values["content_digest"], values["wrapped"])
        sealed = None if values["content"] is None else bytes(values["content"])
        if key is None or sealed is None:
            return None
        try:
            return AESGCM(key).decrypt(
                sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], _content_aad(seq)
            )
        except (InvalidTag, ValueError):
            return None

    # -------------------------------------------------------------- verify

    def verify(
        self,
        now: dt.datetime | None = None,
        *,
        anchors: Mapping[int, str] | None = None,
        witness_expected: bool = True,
    ) -> VerifyResult:
        """Check the whole journal; report the first entry that breaks, if any.

        Detected: an altered entry (any sealed field, its content or its
        content key), an entry inserted or deleted anywhere (the end
        included, through the sealed head and the witness file), a content
        key deleted before the end of its retention, an altered head.

        A table or column changed behind the journal's back (a dropped
        column, content stored as text, a seal as bytes) is tampering too:
        reported as a broken journal, never raised.

        :param anchors: seals noted earlier outside the node (entry number ->
            seal, as a previous ``verify`` printed its head): an entry whose
            seal differs was rewritten, even by someone holding the secret.
        :param witness_expected: a journal kept with a witness file whose file
            is missing is broken (a database rolled back with its witness
            deleted looks just like that); ``False`` when the operator knows
            this journal never had one.
        """
        now = _aware(now) if now is not None else dt.datetime.now(dt.UTC)
        # One snapshot for the entries and the head, while the node appends:
        # otherwise an entry appended between the two reads would look like
        # one removed from the end.
        try:
            with self._db.snapshot() as cur:
                return self._verify(cur, now, dict(anchors or {}), witness_expected)
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

    def _verify(
        self, cur: Any, now: dt.datetime, anchors: dict[int, str], witness_expected: bool
    ) -> VerifyResult:
        witness, warnings = self._read_witness()
        expected_seq, prev = 1, GENESIS
        witness_hash = None
        cur.execute(self._sql(f"{_SELECT} ORDER BY e.seq"))

        def broken(seq: int | None, reason: str) -> VerifyResult:
            return VerifyResult(False, expected_seq - 1, prev, seq, reason, tuple(warnings))

        while batch := cur.fetchmany(500):
            for row in batch:
                values = dict(zip((*_COLUMNS, "wrapped"), row, strict=True))
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
                if not hmac.compare_digest(values["entry_hash"], self._entry_seal(values)):
                    return broken(
                        seq,
                        f"Entry {seq} was altered: its fields do not match its seal"
                        + (
                            " (or the journal secret is not the one it was written with)."
                            if seq == 1
                            else "."
                        ),
                    )
                problem = self._content_problem(values, now)
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
        cur.execute(self._sql("SELECT seq, entry_hash, seal FROM journal_head WHERE id = 1"))
        head = cur.fetchone()
        if head is None or not hmac.compare_digest(head[2], self._head_seal(head[0], head[1])):
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
        if witness is None and witness_expected and self.head_path is not None and last > 1:
            return broken(
                None,
                f"The head witness {self.head_path} is missing, but the journal holds {last} "
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

    def _content_problem(self, values: dict[str, Any], now: dt.datetime) -> str | None:
        seq, digest = int(values["seq"]), values["content_digest"]
        if digest is None:
            return None
        sealed = values["content"]
        if sealed is None or hashlib.sha256(bytes(sealed)).hexdigest() != digest:
            return f"The content of entry {seq} was altered or removed."
        if values["wrapped"] is None:
            if _parse(values["retain_until"]) > now:
                return (
                    f"The content key of entry {seq} was removed before the end of its "
                    f"retention ({values['retain_until']})."
                )
            return None
        if self._unwrap(seq, digest, values["wrapped"]) is None:
            return f"The content key of entry {seq} was altered or belongs to another entry."
        return None

    def _read_witness(self) -> tuple[tuple[int, str] | None, list[str]]:
        """The witness file's head, or ``None`` with the reason as a warning."""
        if self.head_path is None:
            return None, []
        try:
            document = json.loads(self.head_path.read_text(encoding="ascii"))
            seq, entry_hash, seal = int(document["seq"]), document["entry_hash"], document["seal"]
        except FileNotFoundError:
            return None, [f"There is no head witness at {self.head_path} (yet)."]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return None, [f"The head witness {self.head_path} cannot be read: {exc}."]
        if not hmac.compare_digest(str(seal), self._head_seal(seq, str(entry_hash))):
            return None, [f"The head witness {self.head_path} does not carry a valid seal."]
        return (seq, str(entry_hash)), []

    # ----------------------------------------------------------- retention

    def destroy_expired(self, now: dt.datetime | None = None) -> int:
        """Delete the content keys whose retention ended by ``now``; return how many.

        The content of those entries can no longer be read by anyone; the
        entries themselves, and the chain, stay as they are.
        """
        moment = _aware(now) if now is not None else dt.datetime.now(dt.UTC)
        with self._tx() as cur:
            cur.execute(
                self._sql("DELETE FROM journal_keys WHERE retain_until <= ?"), (_stamp(moment),)
            )
            destroyed = int(cur.rowcount)
        if destroyed:
            self._scrub()
            log.info("destroyed %d content keys past retention", destroyed)
        return destroyed

    def _scrub(self) -> None:
        """Push deleted keys out of the files where old copies may remain."""
        if self._postgres:
            self._db.maintain("VACUUM journal_keys")
        else:
            # The write-ahead log still holds the pages as they were before
            # the delete until it is checkpointed and truncated.
            self._db.maintain("PRAGMA wal_checkpoint(TRUNCATE)")


# ---------------------------------------------------------------- helpers


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"cpas-journal/v1/" + purpose
    ).derive(secret)


def _content_aad(seq: int) -> bytes:
    # Binds the ciphertext to its entry: moved to another row, it does not open.
    return _CONTENT_CONTEXT + str(seq).encode("ascii")


def _key_aad(seq: int, digest: str) -> bytes:
    return _KEY_CONTEXT + f"{seq}\n{digest}".encode("ascii")


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a journal time must carry its time zone")
    return value.astimezone(dt.UTC)


def _stamp(value: dt.datetime) -> str:
    # Fixed width, UTC: compares as text in SQL the way it compares in time.
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)
