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

The package, one concern a module:

- :mod:`~gateway.journal.events` — what an entry records and what is answered
  (:class:`Event`, :class:`Direction`, :class:`Entry`, :class:`VerifyResult`...);
- :mod:`~gateway.journal.secret` — the journal secret;
- :mod:`~gateway.journal.seals` — the keys derived from it and what they seal;
- :mod:`~gateway.journal.tables` — the schema, its migrations, rows read back;
- :mod:`~gateway.journal.chain` — appending an entry onto the sealed head;
- :mod:`~gateway.journal.witness` — the head witness file;
- :mod:`~gateway.journal.verify` — checking the whole journal;
- :mod:`~gateway.journal.journal` — :class:`Journal`, which puts them together;
- :mod:`~gateway.journal.settings` — where a node keeps its journal.
"""

from gateway.journal.chain import JournalError
from gateway.journal.events import (
    EVENT_DIRECTIONS,
    ContentState,
    Direction,
    Entry,
    Event,
    JournalSummary,
    VerifyResult,
)
from gateway.journal.journal import DEFAULT_RETENTION_DAYS, Journal
from gateway.journal.seals import GENESIS
from gateway.journal.secret import SECRET_FILE, SECRET_SIZE, load_or_create_secret
from gateway.journal.settings import (
    HEAD_FILE,
    JOURNAL_FILE,
    JournalConfig,
    JournalSettings,
    open_journal,
)
from gateway.journal.tables import SCHEMA

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "EVENT_DIRECTIONS",
    "GENESIS",
    "HEAD_FILE",
    "JOURNAL_FILE",
    "SCHEMA",
    "SECRET_FILE",
    "SECRET_SIZE",
    "ContentState",
    "Direction",
    "Entry",
    "Event",
    "Journal",
    "JournalConfig",
    "JournalError",
    "JournalSettings",
    "JournalSummary",
    "VerifyResult",
    "load_or_create_secret",
    "open_journal",
]
