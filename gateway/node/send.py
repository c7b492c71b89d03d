"""The send path: destination checked, header made, sealed, recorded in the outbox, published.

The destination is checked against the signed directory *first* -- a
non-CPAS, unknown, closed or merged destination is refused before anything is
published -- then the message is sealed to the recipient and signed, recorded
in the outbox (with its journal entry, one transaction), and published with
publisher confirms kept in flight (:mod:`gateway.node.outbox` settles them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.adapters import Inspectable
from gateway.journal import Event
from gateway.model.base import format_timestamp
from gateway.model.codes import Fault, Refusal
from gateway.model.dossier import Dossier
from gateway.model.envelope import (
    Body,
    Header,
    MessageType,
    Purpose,
    RequestBody,
    TransferBody,
    person_number_in,
    seal,
)
from gateway.model.errors import ConfigError, DestinationRefused, GatewayError
from gateway.model.staff import StaffReference
from gateway.store import Outgoing as OutboxRecord

if TYPE_CHECKING:
    from gateway.node.node import Node

log = logging.getLogger(__name__)

SEND_BATCH = 200
BROKER_WAIT_SECONDS = 600.0
STORE_WAIT_SECONDS = 300.0
"""How long a bulk send waits for its store to come back before it stops (resumable)."""

T = TypeVar("T")


def share_of(person_number: str, shares: int) -> int:
    """The share (of ``shares``) a person falls in: the same in every process and every run.

    The first 8 bytes of the SHA-256 of the person number, modulo ``shares``
    (not :func:`hash`, which each Python process salts differently).
    """
    digest = hashlib.sha256(person_number.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shares


def check_share(share: tuple[int, int]) -> None:
    """Refuse a share ``(k, n)`` that is not one of ``n`` shares, ``0 <= k < n``."""
    k, n = share
    if n < 1 or not 0 <= k < n:
        raise ConfigError(f"A share is k of n shares with 0 <= k < n; {k} of {n} is not one.")


@dataclass(frozen=True)
class Sent:
    """A message handed to the broker: ``confirmed`` resolves on the broker's confirm."""

    message_id: str
    recipient: str
    confirmed: Future[None]


class Sender:
    """Everything a node sends goes through here (transfers, requests, responses)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    # ------------------------------------------------------------ transfers

    def send_transfer(
        self,
        person_number: str,
        to: str,
        purpose: Purpose,
        *,
        case_reference: str | None = None,
        staff: StaffReference | None = None,
    ) -> Sent:
        """Push a person's dossier to another CPAS (see :meth:`gateway.node.Node.send_transfer`)."""
        self.check_destination(to, person_number, staff)
        dossier = self._export(person_number)
        return self._transfer(dossier, to, purpose, case_reference, staff)

    def _export(self, person_number: str) -> Dossier:
        dossier = self._node.vendor.export(person_number)
        if dossier is None:
            raise GatewayError(
                "The vendor system holds no dossier for this person.",
                code=Refusal.SEND_UNKNOWN_PERSON,
            )
        return dossier

    def preview_transfer(
        self, person_number: str, to: str, purpose: Purpose, *, staff: StaffReference
    ) -> Dossier:
        """The dossier a transfer to ``to`` would carry now, journaled as shown to the person."""
        self.check_destination(to, person_number, staff)
        dossier = self._export(person_number)
        self.journal_shown(dossier, to, purpose, dossier.source.case_reference, staff)
        return dossier

    def journal_shown(
        self, dossier: Dossier, peer: str, purpose: Purpose, case_reference: str, staff: str
    ) -> None:
        self._node.journaling.event(
            Event.DOSSIER_SHOWN,
            peer=peer,
            purpose=purpose.value,
            case_reference=case_reference,
            person_number=dossier.person.number,
            content=dossier.to_xml(),
            actor=staff,
        )

    def send_all(
        self,
        to: str,
        purpose: Purpose,
        max_in_flight: int,
        progress: Callable[[int, int], None] | None,
        store_wait: float,
        share: tuple[int, int] = (0, 1),
    ) -> list[str]:
        """Transfer every person the vendor system holds to ``to`` (a merger, a caseload move).

        Resumable: a dossier whose case was already sent to ``to`` is skipped,
        so running it again after a crash sends only what is missing. At most
        ``max_in_flight`` messages wait for the broker's confirm at once, and
        it returns when the broker has confirmed them all (one it never
        confirms stays in the outbox, published again at the next start).
        ``progress(done, total)`` is called as it goes. A store that cannot
        be written (a database away, a full disk) is waited for up to
        ``store_wait`` seconds, then :class:`~gateway.model.errors.StoreUnavailable`
        is raised with nothing half-written: running it again resumes.

        ``share=(k, n)``: only the people of share ``k`` of ``n`` (a stable hash of the person
        number; the ``n`` shares partition the caseload), for ``n`` processes side by side;
        ``progress`` counts that share. ``0 <= k < n``, or ``ConfigError``.

        :returns: the message ids sent (ids only: a caseload is large).
        """
        node = self._node
        check_share(share)
        self.check_destination(to, None)
        if not isinstance(node.adapter, Inspectable):
            raise ConfigError(f"The adapter {node.adapter.info.name!r} cannot list its people.")

        def wait_for_store(action: Callable[[], T]) -> T:
            return node.availability.until_available(action, pause=False, give_up=store_wait)

        already = wait_for_store(lambda: node.store.sent_to(to, MessageType.TRANSFER.value))
        numbers = node.adapter.list_person_numbers()
        if share[1] > 1:
            numbers = [n for n in numbers if share_of(n, share[1]) == share[0]]
        if progress is not None:
            progress(0, len(numbers))
        sent: list[str] = []
        in_flight: deque[Future[None]] = deque()
        for start in range(0, len(numbers), SEND_BATCH):
            if node.failed.is_set():
                raise GatewayError(
                    f"The node stopped: {node.failure}; run the same command again.",
                    code=Fault.NODE_FAILED,
                )
            batch = []
            for number in numbers[start : start + SEND_BATCH]:
                dossier = node.vendor.export(number)
                if dossier is None or dossier.source.case_reference in already:
                    continue
                header = self.header(
                    MessageType.TRANSFER, to, purpose, dossier.source.case_reference
                )
                batch.append((header, TransferBody(dossier)))
            if not node.broker.is_ready:
                # The broker is away: wait for it rather than record a whole
                # batch that cannot be published now.
                node.broker.wait_ready(BROKER_WAIT_SECONDS)
            for item in wait_for_store(functools.partial(self.send_many, batch)):
                sent.append(item.message_id)
                in_flight.append(item.confirmed)
            while len(in_flight) > max_in_flight:
                with contextlib.suppress(Exception):  # the outbox republishes failures
                    in_flight.popleft().result(timeout=60)
            if progress is not None:
                progress(min(start + SEND_BATCH, len(numbers)), len(numbers))
        while in_flight:
            with contextlib.suppress(Exception):
                in_flight.popleft().result(timeout=60)
        node.outbox.confirmed.join()  # the outbox now says which were confirmed
        return sent

    def _transfer(
        self,
        dossier: Dossier,
        to: str,
        purpose: Purpose,
        case_reference: str | None,
        staff: StaffReference | None = None,
    ) -> Sent:
        header = self.header(
            MessageType.TRANSFER,
            to,
            purpose,
            case_reference or dossier.source.case_reference,
            actor=self.pseudonym(staff),
        )
        return self.send(header, TransferBody(dossier), staff=staff)

    # ------------------------------------------------------------- requests

    def send_request(
        self,
        person_number: str,
        to: str,
        purpose: Purpose,
        case_reference: str,
        *,
        ttl: dt.timedelta | None = None,
        staff: StaffReference | None = None,
    ) -> Sent:
        """Ask the CPAS ``to`` for a person's dossier (see :meth:`Node.send_request`)."""
        self.check_destination(to, person_number, staff)
        header = self.header(
            MessageType.REQUEST,
            to,
            purpose,
            case_reference,
            ttl=ttl or self._node.request_ttl,
            actor=self.pseudonym(staff),
        )
        body = RequestBody(person_number)
        return self.send(header, body, staff=staff)

    def response_header(self, request: Header, staff: StaffReference | None = None) -> Header:
        """The header of the answer to ``request``."""
        return self.header(
            MessageType.RESPONSE,
            request.sender,
            request.purpose,
            request.case_reference,
            correlation=request,
            actor=self.pseudonym(staff),
        )

    # ---------------------------------------------------------- the checks

    def check_destination(
        self, to: str, person_number: str | None, staff: StaffReference | None = None
    ) -> None:
        """The directory's verdict on ``to``; a refusal is journaled, then raised."""
        try:
            self._node.directory.check_destination(to)
        except DestinationRefused as refused:
            self._refused_outgoing(to, refused, person_number, staff)
            raise

    def _refused_outgoing(
        self,
        to: str,
        refused: DestinationRefused,
        person_number: str | None,
        staff: StaffReference | None = None,
    ) -> None:
        log.warning("refused to send to %s: %s", to, refused)
        self._node.journaling.event(
            Event.REFUSED_OUTGOING,
            peer=to,
            code=refused.code,
            person_number=person_number,
            actor=staff,
        )

    def _seal(self, header: Header, body: Body) -> bytes:
        node = self._node
        try:
            return seal(header, body.to_xml(), keys=node.keys, directory=node.directory).to_xml()
        except DestinationRefused as refused:
            # A newer directory edition came in since the destination was
            # checked: it decides, and the refusal is journaled like any other.
            person = person_number_in(body)
            self._refused_outgoing(header.recipient, refused, person)
            raise

    def pseudonym(self, staff: StaffReference | None) -> str | None:
        """The header's pseudonym of the acting social worker (none for the node's own acts)."""
        if staff is None:
            return None
        journal = self._node.journal
        if journal is None:
            raise ConfigError("A node without a journal cannot name who acted.")
        return journal.staff_pseudonym(staff)

    def header(
        self,
        type: MessageType,
        to: str,
        purpose: Purpose,
        case_reference: str,
        *,
        correlation: Header | None = None,
        ttl: dt.timedelta | None = None,
        actor: str | None = None,
    ) -> Header:
        """A new header from this node."""
        extra: dict[str, Any] = {} if ttl is None else {"ttl": ttl}
        return Header.new(
            type,
            sender=self._node.cpas_id,
            recipient=to,
            purpose=purpose,
            case_reference=case_reference,
            correlation_id=None if correlation is None else correlation.message_id,
            actor=actor,
            **extra,
        )

    # ------------------------------------------------------------ sending

    def send(self, header: Header, body: Body, *, staff: StaffReference | None = None) -> Sent:
        return self.send_many([(header, body)], staff=staff)[0]

    def send_many(
        self, messages: Sequence[tuple[Header, Body]], *, staff: StaffReference | None = None
    ) -> list[Sent]:
        """Seal, record in the outbox (one transaction), then publish: the outbox comes first."""
        node = self._node
        records = [
            OutboxRecord(
                message_id=str(header.message_id),
                type=header.type.value,
                recipient=header.recipient,
                purpose=header.purpose.value,
                case_reference=header.case_reference,
                correlation_id=None
                if header.correlation_id is None
                else str(header.correlation_id),
                envelope=self._seal(header, body),
                expires_at=format_timestamp(header.expires_at),
            )
            for header, body in messages
        ]
        if not records:
            return []
        # In flight before the outbox holds them: a republish after a
        # reconnection, running meanwhile, must not publish them a second time.
        node.outbox.claim(r.message_id for r in records)
        try:
            # The outbox and the journal together: a full disk or a lost
            # database leaves neither holding these messages.
            with node.store.batch(), node.journaling.batch():
                node.store.add_outgoing(records)
                for header, body in messages:
                    node.journaling.message(
                        Event.RESPONSE_SENT if header.type is MessageType.RESPONSE else Event.SENT,
                        header,
                        body,
                        actor=staff,
                    )
        except BaseException:
            node.outbox.release(r.message_id for r in records)
            raise
        futures = node.broker.publish_many(
            [node.outbox.outgoing(r.recipient, r.type, r.message_id, r.envelope) for r in records]
        )
        sent = []
        for record, future in zip(records, futures, strict=True):
            node.stats.add(f"sent.{record.type}")
            future.add_done_callback(functools.partial(node.outbox.on_confirmed, record.message_id))
            sent.append(Sent(record.message_id, record.recipient, future))
        return sent

    def publish(self, header: Header, data: bytes) -> Future[None]:
        """Publish a sealed reply (a receipt, a response) that is not kept in the outbox."""
        node = self._node
        outgoing = node.outbox.outgoing(
            header.recipient, header.type.value, str(header.message_id), data
        )
        return node.broker.publish_many([outgoing])[0]
