"""One CPAS's gateway node: the send and receive pipelines.

Send (:meth:`Node.send_transfer`): the destination is checked against the
signed directory *first* -- a non-CPAS, unknown, closed or merged destination
is refused before anything is published -- then the vendor adapter exports
the canonical dossier, the envelope is sealed to the recipient and signed,
recorded in the outbox, and published with publisher confirms kept in flight.

Receive (one worker thread, fed by the broker's I/O thread): parse the
envelope (hardened parser and XSD), recognise a duplicate by message id,
verify and open it, validate the body, import the dossier through the
adapter, record the outcome durably, send a signed receipt back, and only then
ack. Anything invalid goes to this node's dead-letter queue with a refusal
code, and the node keeps running.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from gateway.adapters import Adapter, AdapterRegistry, load_adapters
from gateway.broker import BrokerClient, Delivery, Names, cpas_topology
from gateway.config import NodeConfig
from gateway.directory import Directory, load_directory
from gateway.envelope import (
    Body,
    Envelope,
    Header,
    MessageType,
    Purpose,
    decrypt,
    seal,
    verify,
)
from gateway.errors import AdapterError, BrokerError, ConfigError, GatewayError
from gateway.keys import NodeKeys, load_node_keys, load_trust_anchor
from gateway.store import OutboxEntry, Store

log = logging.getLogger(__name__)

REFUSAL_CODE_HEADER = "x-cpas-refusal-code"
DEFAULT_NAMES = Names()
Reply = tuple[Header, bytes]
REFUSAL_REASON_HEADER = "x-cpas-refusal-reason"


@dataclass(frozen=True)
class Sent:
    """A message handed to the broker: ``confirmed`` resolves on the broker's confirm."""

    message_id: str
    recipient: str
    confirmed: Future[None]


@dataclass
class NodeStats:
    """Counters an operator (and the tests) can read."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def __getitem__(self, name: str) -> int:
        return self.counts[name]


class _Refusal(Exception):
    """A message this node refuses: dead-letter it, and tell the sender when we can."""

    def __init__(
        self,
        error: GatewayError,
        *,
        header: Header | None,
        expose_reason: bool,
        authenticated: bool = False,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.header = header
        # Only a message whose signature verified may claim its message id:
        # otherwise a forged copy could make the genuine one look like a
        # duplicate.
        self.authenticated = authenticated
        # Before decryption every reason is about the header, which the
        # broker sees anyway; after it, a reason may quote personal data and
        # only its code leaves the node.
        self.expose_reason = expose_reason


class Node:
    """A CPAS's gateway: its keys, the verified directory, its vendor adapter, its store."""

    def __init__(
        self,
        cpas_id: str,
        *,
        directory: Directory,
        keys: NodeKeys,
        adapter: Adapter,
        store: Store,
        amqp_urls: Sequence[str],
        names: Names = DEFAULT_NAMES,
        delivery_limit: int = 5,
        prefetch: int = 64,
        import_retry_seconds: float = 120.0,
    ) -> None:
        self.cpas_id = cpas_id
        self.directory = directory
        self.keys = keys
        self.adapter = adapter
        self.store = store
        self.names = names
        self.stats = NodeStats()
        self._import_retry_seconds = import_retry_seconds
        # RabbitMQ checks the user_id property against the login: a node can
        # only publish under its own broker identity.
        self._amqp_user = urllib.parse.urlparse(amqp_urls[0]).username or "guest"
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._outcomes = threading.Condition()
        self.broker = BrokerClient(
            amqp_urls,
            cpas_topology([cpas_id], names=names, delivery_limit=delivery_limit),
            consume=names.inbox(cpas_id),
            on_delivery=self._queue.put,
            prefetch=prefetch,
            name=f"node-{cpas_id}",
        )

    # ------------------------------------------------------------ lifecycle

    def start(self, *, wait: float = 15.0) -> Node:
        """Connect, declare, start consuming, and publish what the outbox still holds."""
        self._worker = threading.Thread(
            target=self._work, name=f"worker-{self.cpas_id}", daemon=True
        )
        self._worker.start()
        self.broker.start(wait=wait)
        self._republish_unconfirmed()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop: take no new work, finish the message in hand, close."""
        self.broker.cancel_consumer()
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout)
        # Deliveries still queued were never acked: closing returns them to
        # the broker for the next start.
        self.broker.stop()

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- send

    def send_transfer(
        self,
        person_number: str,
        to: str,
        purpose: Purpose,
        *,
        case_reference: str | None = None,
    ) -> Sent:
        """Push a person's dossier to another CPAS (the person moved there).

        Raises :class:`~gateway.errors.DestinationRefused` before anything is
        published when the directory says ``to`` may not receive a dossier.
        """
        self.directory.check_destination(to)
        dossier = self.adapter.export_dossier(person_number)
        if dossier is None:
            raise GatewayError(
                "The vendor system holds no dossier for this person.", code="send.unknown_person"
            )
        header = Header.new(
            MessageType.TRANSFER,
            sender=self.cpas_id,
            recipient=to,
            purpose=purpose,
            case_reference=case_reference or dossier.source.case_reference,
        )
        return self._send(header, Body(MessageType.TRANSFER, dossier=dossier))

    def _send(self, header: Header, body: Body) -> Sent:
        envelope = seal(header, body.to_xml(), keys=self.keys, directory=self.directory)
        data = envelope.to_xml()
        message_id = str(header.message_id)
        self.store.add_outgoing(
            message_id=message_id,
            type=header.type.value,
            recipient=header.recipient,
            purpose=header.purpose.value,
            case_reference=header.case_reference,
            correlation_id=None if header.correlation_id is None else str(header.correlation_id),
            envelope=data,
        )
        self.stats.add(f"sent.{header.type.value}")
        return Sent(
            message_id,
            header.recipient,
            self._publish(message_id, header.recipient, header.type.value, data),
        )

    def _publish(self, message_id: str, recipient: str, type: str, data: bytes) -> Future[None]:
        future = self.broker.publish(
            self.names.route,
            recipient,
            data,
            message_id=message_id,
            message_type=type,
            user_id=self._amqp_user,
        )
        future.add_done_callback(lambda f: self._on_confirmed(message_id, f))
        return future

    def _on_confirmed(self, message_id: str, future: Future[None]) -> None:
        if future.exception() is None:
            self.store.mark_confirmed([message_id])
        else:
            log.warning("message %s not confirmed: %s", message_id, future.exception())

    def _republish_unconfirmed(self) -> None:
        pending = self.store.unconfirmed()
        for entry in pending:
            self._publish(entry.message_id, entry.recipient, entry.type, entry.envelope)
        if pending:
            log.info("republished %d unconfirmed messages from the outbox", len(pending))

    def wait_for_outcomes(
        self, message_ids: Iterable[str], timeout: float
    ) -> dict[str, OutboxEntry]:
        """Wait until every message has a receipt (or the timeout); return what is known."""
        wanted = set(message_ids)
        deadline = time.monotonic() + timeout
        while True:
            entries = {mid: self.store.outgoing(mid) for mid in wanted}
            known = {
                mid: e for mid, e in entries.items() if e is not None and e.outcome is not None
            }
            remaining = deadline - time.monotonic()
            if len(known) == len(wanted) or remaining <= 0:
                return {mid: e for mid, e in entries.items() if e is not None}
            with self._outcomes:
                self._outcomes.wait(min(remaining, 0.5))

    # -------------------------------------------------------------- receive

    def _work(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            try:
                self._process(delivery)
            except Exception:  # a bug must not stop the node: leave the message to the broker
                log.exception("unexpected error while processing a message; returning it")
                self.stats.add("errors")
                self.broker.reject(delivery, requeue=True)

    def _process(self, delivery: Delivery) -> None:
        self.stats.add("received")
        if delivery.redelivered:
            self.stats.add("redelivered")
        try:
            envelope = Envelope.from_xml(delivery.body)
        except GatewayError as exc:
            self._refuse(delivery, _Refusal(exc, header=None, expose_reason=True))
            return
        header = envelope.header
        previous = self.store.received(str(header.message_id))
        if previous is not None:
            # Seen before (a redelivery, or a replay): import nothing, and
            # send the stored receipt again in case the first one was lost.
            self.stats.add("duplicates")
            reply = None
            if previous.reply is not None:
                reply = (Envelope.from_xml(previous.reply).header, previous.reply)
            self._reply_then_ack(delivery, reply)
            return
        try:
            body = self._open(envelope)
        except _Refusal as refusal:
            self._refuse(delivery, refusal)
            return
        if header.type is MessageType.RECEIPT:
            self._record_receipt(header, body)
            self.broker.ack(delivery)
        elif header.type is MessageType.TRANSFER:
            self._import(delivery, header, body)
        else:
            unsupported = GatewayError(
                f"This node does not handle {header.type.value} messages.",
                code="envelope.type_unsupported",
            )
            self._refuse(
                delivery,
                _Refusal(unsupported, header=header, expose_reason=True, authenticated=True),
            )

    def _open(self, envelope: Envelope) -> Body:
        header = envelope.header
        try:
            verify(envelope, me=self.cpas_id, directory=self.directory)
        except GatewayError as exc:
            raise _Refusal(exc, header=header, expose_reason=True) from None
        try:
            plain = decrypt(envelope, keys=self.keys)
        except GatewayError as exc:
            raise _Refusal(exc, header=header, expose_reason=True, authenticated=True) from None
        try:
            return Body.from_xml(plain, header.type)
        except GatewayError as exc:
            raise _Refusal(exc, header=header, expose_reason=False, authenticated=True) from None

    def _import(self, delivery: Delivery, header: Header, body: Body) -> None:
        assert body.dossier is not None
        message_id = str(header.message_id)
        try:
            result = self._with_retry(
                lambda: self.adapter.import_dossier(body.dossier, message_id=message_id)
            )  # type: ignore[arg-type]
        except AdapterError as exc:
            if exc.transient:
                # The vendor system stayed unavailable: give the message back;
                # the broker's delivery limit bounds how often this happens.
                log.warning("vendor system unavailable, returning %s: %s", message_id, exc)
                self.stats.add("import.retry_exhausted")
                self.broker.reject(delivery, requeue=True)
                return
            self._refuse(
                delivery, _Refusal(exc, header=header, expose_reason=False, authenticated=True)
            )
            return
        self.stats.add("imported" if result.created else "duplicates")
        reply = self._receipt(header, "imported", None)
        self.store.record_received(
            message_id=message_id,
            type=header.type.value,
            sender=header.sender,
            outcome="imported",
            local_reference=result.local_reference,
            reply=None if reply is None else reply[1],
        )
        self._reply_then_ack(delivery, reply)

    def _with_retry(self, action):  # type: ignore[no-untyped-def]
        """Run an adapter call, retrying transient failures with a capped back-off."""
        try:
            for attempt in Retrying(
                retry=retry_if_exception(lambda e: isinstance(e, AdapterError) and e.transient),
                wait=wait_exponential(multiplier=0.2, max=10),
                stop=stop_after_delay(self._import_retry_seconds),
                reraise=True,
            ):
                with attempt:
                    try:
                        return action()
                    except AdapterError:
                        raise
                    except Exception as exc:
                        raise AdapterError(
                            f"The adapter failed: {exc}.", code="adapter.crashed"
                        ) from exc
        except RetryError as exc:  # pragma: no cover - reraise=True re-raises the last error
            raise exc.last_attempt.exception() from None  # type: ignore[misc]

    def _record_receipt(self, header: Header, body: Body) -> None:
        message_id = str(header.message_id)
        correlation = str(header.correlation_id) if header.correlation_id else ""
        if not self.store.record_outcome(correlation, body.outcome or "rejected", body.code):
            log.warning(
                "receipt %s for a message this node did not send (%s)", message_id, correlation
            )
        self.store.record_received(
            message_id=message_id, type=header.type.value, sender=header.sender, outcome="recorded"
        )
        self.stats.add(f"receipts.{body.outcome}")
        with self._outcomes:
            self._outcomes.notify_all()

    # -------------------------------------------------------------- replies

    def _receipt(self, original: Header, outcome: str, code: str | None) -> Reply | None:
        """A signed receipt for ``original``, or ``None`` when its sender cannot get one."""
        if (
            original.type is MessageType.RECEIPT
            or not self.directory.may_receive(original.sender).allowed
        ):
            return None
        header = Header.new(
            MessageType.RECEIPT,
            sender=self.cpas_id,
            recipient=original.sender,
            purpose=original.purpose,
            case_reference=original.case_reference,
            correlation_id=original.message_id,
        )
        body = Body(MessageType.RECEIPT, outcome=outcome, code=code)  # type: ignore[arg-type]
        return header, seal(
            header, body.to_xml(), keys=self.keys, directory=self.directory
        ).to_xml()

    def _reply_then_ack(self, delivery: Delivery, reply: Reply | None) -> None:
        """Publish the reply, and ack the delivery once the broker holds the reply."""
        if reply is None:
            self.broker.ack(delivery)
            return
        header, data = reply
        future = self.broker.publish(
            self.names.route,
            header.recipient,
            data,
            message_id=str(header.message_id),
            message_type=header.type.value,
            user_id=self._amqp_user,
        )

        def settle(f: Future[None]) -> None:
            error = f.exception()
            if isinstance(error, BrokerError) and error.code == "broker.unroutable":
                log.warning(
                    "reply %s could not be routed to %s", header.message_id, header.recipient
                )
            elif error is not None:
                # The connection dropped: without an ack the message comes
                # back, is recognised as a duplicate and the stored reply is
                # sent again.
                return
            self.broker.ack(delivery)

        future.add_done_callback(settle)

    def _refuse(self, delivery: Delivery, refusal: _Refusal) -> None:
        """Dead-letter a refused message with its code; tell its sender when it is a CPAS."""
        error, header = refusal.error, refusal.header
        log.warning("refused a message: %s", error)
        self.stats.add("refused")
        self.stats.add(f"refused.{error.code}")
        reply = None
        if header is not None:
            reply = self._receipt(header, "rejected", error.code)
        if header is not None and refusal.authenticated:
            self.store.record_received(
                message_id=str(header.message_id),
                type=header.type.value,
                sender=header.sender,
                outcome="rejected",
                outcome_code=error.code,
                reply=None if reply is None else reply[1],
            )
        headers = {REFUSAL_CODE_HEADER: error.code}
        if refusal.expose_reason:
            headers[REFUSAL_REASON_HEADER] = error.message
        dead = self.broker.publish(
            self.names.dead,
            self.cpas_id,
            delivery.body,
            message_id=delivery.properties.message_id,
            headers=headers,
            message_type=delivery.properties.type,
            user_id=self._amqp_user,
        )

        def after_dead_letter(f: Future[None]) -> None:
            if f.exception() is not None:
                # Could not file it with its reason: let the broker
                # dead-letter it as it is rather than lose it.
                self.broker.reject(delivery, requeue=False)
                return
            self.stats.add("dead_lettered")
            self._reply_then_ack(delivery, reply)

        dead.add_done_callback(after_dead_letter)


def build_node(config: NodeConfig, *, adapters: AdapterRegistry | None = None) -> Node:
    """Assemble a node: trust anchor, verified directory, keys, adapter and store."""
    anchor = load_trust_anchor(config.trust_anchor)
    try:
        directory_bytes = config.directory.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"The directory {config.directory} cannot be read: {exc.strerror}."
        ) from None
    directory = load_directory(directory_bytes, anchor)
    passphrase = None if config.key_passphrase is None else config.key_passphrase.encode()
    keys = load_node_keys(config.keys, passphrase)
    registry = adapters or load_adapters()
    adapter = registry.create(config.adapter.name, config.cpas_id, config.adapter.options)
    return Node(
        config.cpas_id,
        directory=directory,
        keys=keys,
        adapter=adapter,
        store=Store(config.store),
        amqp_urls=config.amqp_urls,
        names=Names(config.namespace),
        delivery_limit=config.delivery_limit,
        prefetch=config.prefetch,
        import_retry_seconds=config.import_retry_seconds,
    )
