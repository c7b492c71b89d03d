"""The :class:`Store` façade: one object a node opens, whose parts keep its tables.

Callers use the façade's methods; each one is answered by one part
(:class:`~gateway.store.outbox.Outbox`, :class:`~gateway.store.inbox.Inbox`,
:class:`~gateway.store.held.HeldRequests`, :class:`~gateway.store.meta.Meta`),
all on the store's one :class:`~gateway.database.Database`, so that
:meth:`Store.batch` spans them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager

from gateway.database import Database
from gateway.migrations import MigrationReport
from gateway.model.codes import Fault, HeldState
from gateway.ownership import claim
from gateway.store.held import HeldRequest, HeldRequests
from gateway.store.inbox import Inbox, InboxEntry
from gateway.store.meta import Meta
from gateway.store.outbox import Outbox, OutboxEntry, Outgoing
from gateway.store.schema import SCHEMA


class Store:
    """The node's durable state, in SQLite or PostgreSQL."""

    def __init__(self, url: str, *, owner: str | None = None) -> None:
        """Open (or create) the store at ``url``.

        :param owner: the CPAS whose node keeps this store: recorded when the
            store is created; a store recorded for another CPAS is refused
            (``store.other_node``).
        """
        self.url = url
        self._db = Database(url, schema=SCHEMA, what="the node's store")
        if owner is not None:
            claim(self._db, owner, what="store", setting="store", code=Fault.STORE_OTHER_NODE)
        self.outbox = Outbox(self._db)
        self.inbox = Inbox(self._db)
        self.held_requests = HeldRequests(self._db)
        self.meta = Meta(self._db)

    def batch(self) -> AbstractContextManager[None]:
        """One transaction for every write made inside the block (one commit, one fsync).

        The node processes deliveries in batches: their records commit together,
        before any of them is acked. Other threads wait for the block to end.
        """
        return self._db.batch()

    def close(self) -> None:
        self._db.close()

    @property
    def migration(self) -> MigrationReport | None:
        """What opening the store did to its schema."""
        return self._db.migration

    def ping(self) -> None:
        """Raise :class:`~gateway.model.errors.StoreUnavailable` unless the store can be written."""
        self._db.ping()

    # ---------------------------------------------------- meta and directory

    def get_meta(self, name: str) -> str | None:
        return self.meta.get(name)

    def set_meta(self, name: str, value: str) -> None:
        self.meta.set(name, value)

    def directory_edition(self) -> bytes | None:
        """The signed directory edition last applied from the federation's feed, if any."""
        return self.meta.directory_edition()

    def keep_directory_edition(self, serial: int, signed: bytes) -> None:
        """Keep a verified edition (the signed bytes, as received) so a restart uses it."""
        self.meta.keep_directory_edition(serial, signed)

    # ---------------------------------------------------------------- outbox

    def add_outgoing(self, entries: Sequence[Outgoing]) -> None:
        """Record messages before they are published (one transaction for all)."""
        self.outbox.add(entries)

    def mark_confirmed(self, message_ids: Sequence[str]) -> None:
        """The broker has confirmed these messages: they will not be published again."""
        self.outbox.mark_confirmed(message_ids)

    def unconfirmed(self) -> list[OutboxEntry]:
        """Messages recorded but never confirmed by the broker, oldest first."""
        return self.outbox.unconfirmed()

    def record_outcome(self, message_id: str, outcome: str, code: str | None) -> bool:
        """Record the receipt (or response) for a message we sent; ``False`` if unknown."""
        return self.outbox.record_outcome(message_id, outcome, code)

    def outgoing(self, message_id: str) -> OutboxEntry | None:
        return self.outbox.get(message_id)

    def outgoing_all(self) -> list[OutboxEntry]:
        return self.outbox.all()

    def sent_to(self, recipient: str, type: str) -> set[str]:
        """Case references already sent to ``recipient`` (a bulk send resumes after them)."""
        return self.outbox.sent_to(recipient, type)

    def unanswered_requests(self, now: str) -> list[OutboxEntry]:
        """Requests past their expiry that never got a final answer."""
        return self.outbox.unanswered_requests(now)

    def outbox_counts(self) -> dict[tuple[str, str], int]:
        """(type, state) -> number of messages in the outbox (see :meth:`Outbox.counts`)."""
        return self.outbox.counts()

    # ----------------------------------------------------------------- inbox

    def lock_messages(self, message_ids: Iterable[str]) -> None:
        """Inside :meth:`batch`: decide on these message ids alone until the batch ends.

        Another process of the node deciding on the same ids waits; what it
        then reads (:meth:`received`) includes what this batch recorded.
        """
        self.inbox.lock(message_ids)

    def received(self, message_id: str) -> InboxEntry | None:
        """What this node did with a message id, if it has seen it."""
        return self.inbox.get(message_id)

    def record_received(
        self,
        *,
        message_id: str,
        type: str,
        sender: str,
        outcome: str,
        outcome_code: str | None = None,
        local_reference: str | None = None,
        reply: bytes | None = None,
    ) -> None:
        """Record a processed message; committed before the broker ack."""
        self.inbox.record(
            message_id=message_id,
            type=type,
            sender=sender,
            outcome=outcome,
            outcome_code=outcome_code,
            local_reference=local_reference,
            reply=reply,
        )

    def forget_received(self, message_id: str) -> None:
        """Forget a refused message, so that it is processed afresh when requeued."""
        self.inbox.forget(message_id)

    def count_failure(self, message_id: str, code: str) -> int:
        """One more failed attempt at processing a message; returns how many there were."""
        return self.inbox.count_failure(message_id, code)

    def failures(self, message_id: str) -> int:
        """How many attempts at processing a message failed (0 if none)."""
        return self.inbox.failures(message_id)

    def inbox_counts(self) -> dict[tuple[str, str], int]:
        """(type, outcome) -> number of messages received."""
        return self.inbox.counts()

    def received_count(self, outcome: str | None = None) -> int:
        return self.inbox.count(outcome)

    # ---------------------------------------------------------- held requests

    def hold(
        self,
        *,
        message_id: str,
        sender: str,
        purpose: str,
        case_reference: str,
        envelope: bytes,
        expires_at: str,
    ) -> None:
        """Keep a request (sealed, as it arrived) until a social worker decides."""
        self.held_requests.hold(
            message_id=message_id,
            sender=sender,
            purpose=purpose,
            case_reference=case_reference,
            envelope=envelope,
            expires_at=expires_at,
        )

    def held(self, state: str | None = HeldState.HELD) -> list[HeldRequest]:
        """Held requests (by default those still waiting), oldest first."""
        return self.held_requests.find(state)

    def held_request(self, message_id: str) -> HeldRequest | None:
        return self.held_requests.get(message_id)

    def decide(self, message_id: str, state: str) -> bool:
        """Mark a held request released or refused; ``False`` if it was not waiting."""
        return self.held_requests.decide(message_id, state)

    def add_release(self, message_id: str, staff_reference: str) -> list[str]:
        """Record that a social worker released a held request; return every releaser so far."""
        return self.held_requests.add_release(message_id, staff_reference)

    def releases(self, message_id: str) -> list[str]:
        """The staff references that released a held request, in order."""
        return self.held_requests.releases(message_id)
