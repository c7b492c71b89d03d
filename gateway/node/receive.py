"""The receive path: a batch of deliveries opened, checked, deduplicated, handled, imported.

Each delivery: parse the envelope (hardened parser and XSD), check the broker
identity, recognise a duplicate by message id, verify the signature, decrypt,
validate the body, then hand it to its type's handler
(:mod:`gateway.node.handlers`). The batch's records commit in one
transaction; the dossiers to import are handed to the vendor system between
two short transactions, never inside one; only then are replies published
and deliveries acked (:class:`~gateway.node.unit_of_work.UnitOfWork`).

Several processes of one node may take deliveries from the same inbox
(``cpas-gateway run --workers N``), so the work is split in two:

- *reading* a delivery (parsing, verifying, decrypting, validating: the
  CPU-bound part) happens before any transaction, in parallel across the
  processes;
- *deciding* (is this message id known? record it, journal it) happens in
  the batch's transaction, with the batch's message ids locked in the store
  (:meth:`~gateway.store.Store.lock_messages`): two copies of one message
  taken by two processes at once are told apart exactly, and only one of
  them is imported, journaled and answered with its own receipt.

Anything invalid goes to the dead-letter queue with a refusal code at its
first delivery: nothing a publisher sends raises out of the handler.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.adapters import BatchImporter, ImportResult, VendorEventKind
from gateway.broker import Delivery
from gateway.journal import Event
from gateway.model.codes import Outcome, Refusal
from gateway.model.envelope import (
    Body,
    Envelope,
    TransferBody,
    authenticate,
    body_from_xml,
    decrypt,
    verify,
)
from gateway.model.errors import AdapterError, EnvelopeRefused, GatewayError, StoreUnavailable
from gateway.node.availability import Unavailable
from gateway.node.replies import DECLINED, Refused, stored_reply
from gateway.node.unit_of_work import Import, UnitOfWork
from gateway.node.vendor import raise_if_vendor_away
from gateway.store import InboxEntry

if TYPE_CHECKING:
    from gateway.node.node import Node

log = logging.getLogger(__name__)


class Receiver:
    """Processes the batches of deliveries the node's worker thread takes from the broker."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def process_batch(self, batch: list[Delivery]) -> None:
        """Process deliveries; their records commit together, then replies and acks go out.

        Dossiers to import are handed to the vendor system between two short
        store transactions, never inside one: a vendor system that is slow or
        away (retried for minutes) must not keep the store locked for senders
        and for the command line. Each step is tried again, as a whole, until
        the store and the vendor system let it finish: nothing is acked before.
        """
        node = self._node
        # A delivery of a connection since lost comes again on the new one.
        batch = [delivery for delivery in batch if node.broker.is_current(delivery)]
        if not batch:
            return
        reads = [self._read(delivery) for delivery in batch]
        uow = node.availability.until_available(lambda: self._check_batch(reads))
        if uow.imports:
            node.availability.until_available(lambda: self._import_batch(uow.imports, uow))
        uow.run_deferred()

    def _check_batch(self, reads: list[Read]) -> UnitOfWork:
        """Decide on each delivery read, record what needs no import; one transaction.

        Rolled back, nothing of the batch may be acked: all of it is tried
        again, on a fresh unit of work.
        """
        node = self._node
        uow = UnitOfWork()
        with node.store.batch(), node.journaling.batch():
            node.store.lock_messages(
                str(read.envelope.header.message_id) for read in reads if read.envelope
            )
            for read in reads:
                try:
                    self._process(uow, read)
                except (StoreUnavailable, Unavailable):
                    raise
                except Exception as exc:  # a bug must not stop the node
                    node.replies.failed_attempt(uow, read.delivery, exc)
        return uow

    def _import_batch(self, imports: list[Import], uow: UnitOfWork) -> None:
        """Import the batch's dossiers and record them; one transaction for the records."""
        node = self._node
        mark = uow.mark()
        try:
            started = time.monotonic()
            results = self._run_imports(imports)
            node.stats.observe_import((time.monotonic() - started) / len(imports), len(imports))
            with node.store.batch(), node.journaling.batch():
                node.store.lock_messages(str(item.header.message_id) for item in imports)
                self._record_imports(uow, imports, results)
        except (StoreUnavailable, Unavailable):
            uow.roll_back_to(mark)
            raise
        except Exception as exc:
            uow.roll_back_to(mark)
            if len(imports) == 1:
                failed = functools.partial(self._record_failed_attempt, uow, imports[0], exc)
                node.availability.until_available(failed)
                return
            # Something in the batch breaks it: each on its own finds which.
            log.exception("importing a batch of %d failed; one by one", len(imports))
            for item in imports:
                node.availability.until_available(
                    functools.partial(self._import_batch, [item], uow)
                )

    def _record_failed_attempt(self, uow: UnitOfWork, item: Import, exc: Exception) -> None:
        node = self._node
        with node.store.batch(), node.journaling.batch():
            node.replies.failed_attempt(uow, item.delivery, exc, item.header)

    def _run_imports(self, imports: list[Import]) -> list[ImportResult | AdapterError]:
        """Hand the batch's dossiers to the vendor system.

        An adapter that imports in batches gets them all at once (one
        transaction, one flush); if the batch fails, each dossier is tried on
        its own so that one bad dossier does not hold back the others. The
        vendor system away (``adapter.unavailable``) holds the whole batch.
        """
        node = self._node
        if len(imports) > 1 and isinstance(node.adapter, BatchImporter):
            batch = [(item.dossier, str(item.header.message_id)) for item in imports]
            importer = node.adapter
            try:
                return list(node.vendor.retry(lambda: importer.import_batch(batch)))
            except AdapterError as exc:
                raise_if_vendor_away(exc)
        results: list[ImportResult | AdapterError] = []
        for item in imports:
            result = self._import_one(item)
            if isinstance(result, AdapterError):
                raise_if_vendor_away(result)
            results.append(result)
        return results

    def _import_one(self, item: Import) -> ImportResult | AdapterError:
        node = self._node
        message_id = str(item.header.message_id)
        try:
            return node.vendor.retry(
                lambda: node.adapter.import_dossier(item.dossier, message_id=message_id)
            )
        except AdapterError as exc:
            return exc

    def _record_imports(
        self, uow: UnitOfWork, imports: list[Import], results: list[ImportResult | AdapterError]
    ) -> None:
        """Record what the vendor system did with each dossier, and answer with a receipt.

        A copy of the same message imported meanwhile by another process of
        this node (or earlier in this batch) was recorded first: this one is
        a duplicate, answered with the receipt recorded for it.
        """
        node = self._node
        for item, result in zip(imports, results, strict=True):
            if isinstance(result, AdapterError):
                node.replies.adapter_failed(uow, item.delivery, item.header, result)
                continue
            if result.created:
                node.vendor.tell(
                    VendorEventKind.DOSSIER_IMPORTED,
                    item.header,
                    str(item.header.message_id),
                    person_number=item.dossier.person.number,
                    local_reference=result.local_reference,
                )
            first = node.store.received(str(item.header.message_id))
            if first is not None:
                node.stats.add("duplicates")
                node.replies.reply_then_ack(uow, item.delivery, stored_reply(first.reply))
                continue
            node.stats.add("imported" if result.created else "duplicates")
            reply = node.replies.receipt(item.header, Outcome.IMPORTED, None)
            node.replies.record(
                item.header,
                Outcome.IMPORTED,
                None,
                reply=reply,
                local_reference=result.local_reference,
            )
            if item.then is not None:
                item.then()
            elif result.created or not node.journaling.has(Event.RECEIVED, item.header):
                # Only a transfer comes here (a response's import is recorded by
                # its `then`). A dossier the vendor already had was journaled
                # when it came first -- unless the node stopped in between.
                body = TransferBody(item.dossier)
                node.journaling.message(Event.RECEIVED, item.header, body, outcome=Outcome.IMPORTED)
            node.replies.reply_then_ack(uow, item.delivery, reply)

    # ------------------------------------------------------- one delivery

    def _read(self, delivery: Delivery) -> Read:
        """Parse, check and open a delivery, before (and outside) the batch's transaction.

        Nothing is recorded here: what is decided from it is decided in the
        transaction (:meth:`_process`). A message whose id turns out to be
        known was opened for nothing; that is rare, and costs no more.
        """
        node = self._node
        try:
            envelope = _parse(delivery.body)
        except Refused as refusal:
            return Read(delivery, None, refusal)
        header = envelope.header
        # The signed sender's broker user published it -- or this node itself,
        # requeuing one of its own dead letters.
        publishers = {node.names.broker_user(header.sender), node.amqp_user}
        if node.provisioned and delivery.properties.user_id not in publishers:
            error = EnvelopeRefused(
                f"The message claims to come from {header.sender} but was published by the "
                f"broker user {delivery.properties.user_id!r}.",
                code=Refusal.ENVELOPE_BROKER_USER,
            )
            return Read(delivery, envelope, Refused(error, header=header, expose_reason=True))
        opened: Body | Exception
        try:
            opened = self._open(envelope)
        except Exception as exc:  # refused; or a bug, a failed attempt in the transaction
            opened = exc
        return Read(delivery, envelope, None, opened)

    def _process(self, uow: UnitOfWork, read: Read) -> None:
        node = self._node
        delivery = read.delivery
        node.stats.add("received")
        if delivery.redelivered:
            node.stats.add("redelivered")
        if read.refused is not None:
            node.replies.refuse(uow, delivery, read.refused)
            return
        assert read.envelope is not None  # read, and not refused
        header = read.envelope.header
        previous = node.store.received(str(header.message_id))
        if previous is not None:
            self._seen_before(uow, delivery, read.envelope, previous)
            return
        opened = read.opened
        try:
            if isinstance(opened, Exception):
                raise opened
            assert opened is not None
            node.handlers.handle(uow, delivery, header, opened)
        except Refused as refusal:
            node.replies.refuse(uow, delivery, refusal)

    def _seen_before(
        self,
        uow: UnitOfWork,
        delivery: Delivery,
        envelope: Envelope,
        previous: InboxEntry,
    ) -> None:
        """A message id this node recorded before: answer again, import nothing."""
        node = self._node
        header = envelope.header
        try:
            # A copy claiming a known message id must be the genuine
            # message: a forged one gets neither the stored reply nor a
            # refusal in the original's name.
            authenticate(envelope, me=node.cpas_id, directory=node.directory)
        except GatewayError as exc:
            node.replies.refuse(uow, delivery, Refused(exc, header=header, expose_reason=True))
            return
        # Seen before: a redelivery, the sender publishing its outbox
        # again, or a replay. Import nothing; send the stored reply again
        # in case the first one was lost.
        node.stats.add("duplicates")
        if not delivery.redelivered:
            node.journaling.event(Event.REFUSED_INCOMING, header, code=Refusal.ENVELOPE_REPLAY)
            log.info(
                "message %s from %s seen before: not processed again",
                header.message_id,
                header.sender,
            )
        if previous.outcome == Outcome.REJECTED and previous.outcome_code not in DECLINED:
            # Refused before -- but its dead letter may never have reached
            # the broker (the connection dropped before the confirm): file
            # it again rather than ack it away.
            error = EnvelopeRefused(
                f"The message was refused before ({previous.outcome_code}).",
                code=previous.outcome_code or Refusal.ENVELOPE_REFUSED,
            )
            # Only a redelivery gets the stored receipt again: a fresh
            # copy is someone replaying it, and is not answered.
            stored = stored_reply(previous.reply) if delivery.redelivered else None
            node.replies.refuse(
                uow, delivery, Refused(error, header=header, expose_reason=False), reply=stored
            )
            return
        node.replies.reply_then_ack(uow, delivery, stored_reply(previous.reply))

    def _open(self, envelope: Envelope) -> Body:
        node = self._node
        header = envelope.header
        try:
            verify(envelope, me=node.cpas_id, directory=node.directory)
        except GatewayError as exc:
            raise Refused(exc, header=header, expose_reason=True) from None
        try:
            plain = decrypt(envelope, keys=node.keys)
        except GatewayError as exc:
            raise Refused(exc, header=header, expose_reason=True, authenticated=True) from None
        try:
            return body_from_xml(plain, header.type)
        except GatewayError as exc:
            raise Refused(exc, header=header, expose_reason=False, authenticated=True) from None
        except Exception as exc:  # whatever else a sender's bytes make a library raise
            log.warning("unreadable body in %s: %s", header.message_id, type(exc).__name__)
            error = EnvelopeRefused("The sealed body cannot be read.", code=Refusal.ENVELOPE_BODY)
            raise Refused(error, header=header, expose_reason=False, authenticated=True) from None


@dataclass(frozen=True)
class Read:
    """A delivery as read before the batch's transaction."""

    delivery: Delivery
    envelope: Envelope | None
    refused: Refused | None
    """Refused before its message id counts: unreadable, or published by another broker user."""
    opened: Body | Exception | None = None
    """The body; or why it was refused (:class:`Refused`), or the error of a bug, raised again
    once its message id is known to be new."""


def _parse(data: bytes) -> Envelope:
    """The envelope in a delivery, or a refusal: nothing a publisher sends may raise further."""
    try:
        return Envelope.from_xml(data)
    except GatewayError as exc:
        raise Refused(exc, header=None, expose_reason=True) from None
    except Exception as exc:  # a parser's surprise is still the publisher's bytes
        log.warning("unreadable envelope: %s", type(exc).__name__)
        error = EnvelopeRefused(
            "The message cannot be read as an envelope.", code=Refusal.ENVELOPE_UNREADABLE
        )
        raise Refused(error, header=None, expose_reason=True) from None
