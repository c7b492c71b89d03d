"""What the journal records and what it answers: events, directions, entries, results.

The strings of :class:`Event` and :class:`Direction` are stable: reports,
audits and the desk rely on them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


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
