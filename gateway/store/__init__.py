"""A node's durable state: the outbox, the record of received messages, held requests.

- **Outbox** (:mod:`~gateway.store.outbox`): every message is recorded, with
  its envelope, *before* it is published, and marked confirmed when the
  broker confirms it. After a crash the unconfirmed ones are published again
  (the receiver deduplicates).
- **Inbox** (:mod:`~gateway.store.inbox`): every received message id with
  what became of it (imported or rejected, and the receipt sent back),
  committed *before* the broker ack, so a redelivery is recognised and never
  imported twice; and the failed attempts per message id, which alone count
  towards refusing a message.
- **Held requests** (:mod:`~gateway.store.held`): requests kept sealed until
  a social worker releases or refuses them.
- **Meta** (:mod:`~gateway.store.meta`): named settings and the directory
  edition in force; the tables and their migrations are in
  :mod:`~gateway.store.schema`.

:class:`Store` (:mod:`~gateway.store.store`) is the one object a node opens;
its parts are the collaborators above. SQLite by default (``sqlite:///path``),
PostgreSQL by URL (``postgresql://``). One connection guarded by a lock: the
node touches the store from its worker thread and from senders.

Everything other code imports is re-exported here.
"""

from __future__ import annotations

from gateway.store.held import HeldRequest, HeldRequests
from gateway.store.inbox import Inbox, InboxEntry
from gateway.store.meta import DIRECTORY_SERIAL, Meta
from gateway.store.outbox import Outbox, OutboxEntry, Outgoing
from gateway.store.schema import SCHEMA
from gateway.store.store import Store

__all__ = [
    "DIRECTORY_SERIAL",
    "SCHEMA",
    "HeldRequest",
    "HeldRequests",
    "Inbox",
    "InboxEntry",
    "Meta",
    "Outbox",
    "OutboxEntry",
    "Outgoing",
    "Store",
]
