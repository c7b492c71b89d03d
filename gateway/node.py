"""One CPAS's gateway node: the send and receive pipelines.

Send: the destination is checked against the signed directory *first* -- a
non-CPAS, unknown, closed or merged destination is refused before anything is
published -- then the message is sealed to the recipient and signed, recorded
in the outbox, and published with publisher confirms kept in flight.

Receive (one worker thread, fed by the broker's I/O thread): parse the
envelope (hardened parser and XSD), check the broker identity and recognise a
duplicate by message id, verify the signature, decrypt, validate the body,
then act by type:

- ``transfer``: import the dossier through the adapter, answer with a receipt;
- ``request``: apply this node's policy for the purpose -- answer
  automatically, hold for a social worker, or refuse -- and answer with a
  response (the dossier, or a typed refusal);
- ``response``: import the dossier (or record the refusal) against the
  request it answers, and answer a dossier with a receipt;
- ``receipt``: record the fate of a message this node sent.

The outcome is stored durably, the reply published, and only then is the
delivery acked. Anything invalid goes to this node's dead-letter queue with a
refusal code, the sender gets a signed rejection where it is a CPAS, and the
node keeps running.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from gateway.adapters import Adapter, AdapterRegistry, Inspectable, load_adapters
from gateway.broker import BrokerClient, Delivery, Names, cpas_topology
from gateway.config import NodeConfig
from gateway.directory import Directory, load_directory
from gateway.dossier import Dossier, format_timestamp
from gateway.envelope import (
    Body,
    Envelope,
    Header,
    MessageType,
    Purpose,
    RefusalReason,
    decrypt,
    seal,
    verify,
)
from gateway.errors import AdapterError, BrokerError, ConfigError, EnvelopeRefused, GatewayError
from gateway.keys import NodeKeys, load_node_keys, load_trust_anchor
from gateway.store import HeldRequest, OutboxEntry, Store

log = logging.getLogger(__name__)

REFUSAL_CODE_HEADER = "x-cpas-refusal-code"
REFUSAL_REASON_HEADER = "x-cpas-refusal-reason"
DEFAULT_NAMES = Names()
DEFAULT_REQUEST_TTL = dt.timedelta(hours=24)
SWEEP_SECONDS = 5.0
DIRECTORY_SERIAL = "directory.serial"

Reply = tuple[Header, bytes]
T = TypeVar("T")


class Action(StrEnum):
    """What a node does with a request for a given purpose."""

    AUTO = "auto"
    """Answer at once with the dossier (or 'unknown person')."""
    HOLD = "hold"
    """Answer 'awaiting release' and wait for a social worker's decision."""
    REFUSE = "refuse"
    """Answer 'purpose not allowed'."""


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


@dataclass(frozen=True)
class HeldView:
    """A held request as a social worker sees it (the person number decrypted on demand)."""

    request: HeldRequest
    person_number: str


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
        # Before decryption every reason is about the header, which the
        # broker sees anyway; after it, a reason may quote personal data and
        # only its code leaves the node.
        self.expose_reason = expose_reason
        # Only a message whose signature verified may claim its message id:
        # otherwise a forged copy could make the genuine one look like a
        # duplicate.
        self.authenticated = authenticated


class Node:
    """A CPAS's gateway: its keys, the verified directory, its vendor adapter, its store.

    :param policy: per purpose, what to do with a request (default: answer).
    :param provisioned: the broker was provisioned from the directory
        (``cpas-gateway broker provision``): declare nothing, only check the
        topology exists, and require every message's AMQP ``user_id`` to be
        the broker user of its signed sender.
    :param consume: ``False`` for a node that only sends (a command line
        acting beside a running node).
    """

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
        policy: Mapping[Purpose, Action] | None = None,
        provisioned: bool = False,
        request_ttl: dt.timedelta = DEFAULT_REQUEST_TTL,
        consume: bool = True,
    ) -> None:
        self.cpas_id = cpas_id
        self.directory = directory
        self.keys = keys
        self.adapter = adapter
        self.store = store
        self.names = names
        self.stats = NodeStats()
        self.policy = {purpose: Action.AUTO for purpose in Purpose} | dict(policy or {})
        self._provisioned = provisioned
        self._request_ttl = request_ttl
        self._retry_seconds = import_retry_seconds
        # RabbitMQ checks the user_id property against the login: a node can
        # only publish under its own broker identity.
        self.amqp_urls = list(amqp_urls)
        self.amqp_user = urllib.parse.unquote(
            urllib.parse.urlparse(amqp_urls[0]).username or "guest"
        )
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._outcomes = threading.Condition()
        self._consume = consume
        self.broker = BrokerClient(
            amqp_urls,
            cpas_topology([cpas_id], names=names, delivery_limit=delivery_limit),
            consume=names.inbox(cpas_id) if consume else None,
            on_delivery=self._queue.put,
            prefetch=prefetch,
            name=f"node-{cpas_id}",
            passive=provisioned,
        )

    # ------------------------------------------------------------ lifecycle

    def start(self, *, wait: float = 15.0) -> Node:
        """Connect, declare, start consuming, and publish what the outbox still holds."""
        if self._consume:
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
        self, person_number: str, to: str, purpose: Purpose, *, case_reference: str | None = None
    ) -> Sent:
        """Push a person's dossier to another CPAS (the person moved there).

        Raises :class:`~gateway.errors.DestinationRefused` before anything is
        published when the directory says ``to`` may not receive a dossier.
        """
        self.directory.check_destination(to)
        dossier = self._retry(lambda: self.adapter.export_dossier(person_number))
        if dossier is None:
            raise GatewayError(
                "The vendor system holds no dossier for this person.", code="send.unknown_person"
            )
        return self._transfer(dossier, to, purpose, case_reference)

    def send_all(
        self,
        to: str,
        purpose: Purpose,
        *,
        max_in_flight: int = 2000,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Sent]:
        """Transfer every person the vendor system holds to ``to`` (a merger, a caseload move).

        Resumable: a dossier whose case was already sent to ``to`` is skipped,
        so running it again after a crash sends only what is missing. At most
        ``max_in_flight`` messages wait for the broker's confirm at once.
        ``progress(done, total)`` is called as it goes.
        """
        self.directory.check_destination(to)
        if not isinstance(self.adapter, Inspectable):
            raise ConfigError(f"The adapter {self.adapter.info.name!r} cannot list its people.")
        already = self.store.sent_to(to, MessageType.TRANSFER.value)
        numbers = self.adapter.list_person_numbers()
        sent: list[Sent] = []
        in_flight: deque[Future[None]] = deque()
        for done, number in enumerate(numbers, 1):
            dossier = self._retry(lambda n=number: self.adapter.export_dossier(n))  # type: ignore[misc]
            if dossier is not None and dossier.source.case_reference not in already:
                item = self._transfer(dossier, to, purpose, None)
                sent.append(item)
                in_flight.append(item.confirmed)
                while len(in_flight) > max_in_flight:
                    with contextlib.suppress(Exception):  # the outbox republishes failures
                        in_flight.popleft().result(timeout=60)
            if progress is not None:
                progress(done, len(numbers))
        return sent

    def _transfer(
        self, dossier: Dossier, to: str, purpose: Purpose, case_reference: str | None
    ) -> Sent:
        header = self._header(
            MessageType.TRANSFER, to, purpose, case_reference or dossier.source.case_reference
        )
        return self._send(header, Body(MessageType.TRANSFER, dossier=dossier))

    def send_request(
        self,
        person_number: str,
        to: str,
        purpose: Purpose,
        case_reference: str,
        *,
        ttl: dt.timedelta | None = None,
    ) -> Sent:
        """Ask the CPAS ``to`` for a person's dossier; the answer arrives as a response.

        The request expires after ``ttl``; a request still unanswered then is
        recorded as ``expired`` -- the requester is never left in silence.
        """
        self.directory.check_destination(to)
        header = self._header(
            MessageType.REQUEST, to, purpose, case_reference, ttl=ttl or self._request_ttl
        )
        return self._send(header, Body(MessageType.REQUEST, person_number=person_number))

    def _header(
        self,
        type: MessageType,
        to: str,
        purpose: Purpose,
        case_reference: str,
        *,
        correlation: Header | None = None,
        ttl: dt.timedelta | None = None,
    ) -> Header:
        extra = {} if ttl is None else {"ttl": ttl}
        return Header.new(
            type,
            sender=self.cpas_id,
            recipient=to,
            purpose=purpose,
            case_reference=case_reference,
            correlation_id=None if correlation is None else correlation.message_id,
            **extra,  # type: ignore[arg-type]
        )

    def _send(self, header: Header, body: Body) -> Sent:
        data = seal(header, body.to_xml(), keys=self.keys, directory=self.directory).to_xml()
        message_id = str(header.message_id)
        self.store.add_outgoing(
            message_id=message_id,
            type=header.type.value,
            recipient=header.recipient,
            purpose=header.purpose.value,
            case_reference=header.case_reference,
            correlation_id=None if header.correlation_id is None else str(header.correlation_id),
            envelope=data,
            expires_at=format_timestamp(header.expires_at),
        )
        self.stats.add(f"sent.{header.type.value}")
        future = self._publish(header, data)
        future.add_done_callback(lambda f: self._on_confirmed(message_id, f))
        return Sent(message_id, header.recipient, future)

    def _publish(self, header: Header, data: bytes) -> Future[None]:
        return self.broker.publish(
            self.names.route,
            header.recipient,
            data,
            message_id=str(header.message_id),
            message_type=header.type.value,
            user_id=self.amqp_user,
        )

    def _on_confirmed(self, message_id: str, future: Future[None]) -> None:
        if future.exception() is None:
            self.store.mark_confirmed([message_id])
        else:
            log.warning("message %s not confirmed: %s", message_id, future.exception())

    def _republish_unconfirmed(self) -> None:
        pending = self.store.unconfirmed()
        for entry in pending:
            header = Envelope.from_xml(entry.envelope).header
            future = self._publish(header, entry.envelope)
            future.add_done_callback(lambda f, mid=entry.message_id: self._on_confirmed(mid, f))
        if pending:
            log.info("republished %d unconfirmed messages from the outbox", len(pending))

    def wait_for_outcomes(
        self, message_ids: Iterable[str], timeout: float
    ) -> dict[str, OutboxEntry]:
        """Wait until every message has its final outcome (or the timeout); return what is known."""
        wanted = set(message_ids)
        deadline = time.monotonic() + timeout
        while True:
            entries = {mid: self.store.outgoing(mid) for mid in wanted}
            done = [e for e in entries.values() if e is not None and e.final]
            remaining = deadline - time.monotonic()
            if len(done) == len(wanted) or remaining <= 0:
                return {mid: e for mid, e in entries.items() if e is not None}
            with self._outcomes:
                self._outcomes.wait(min(remaining, 0.5))

    # -------------------------------------------------- social worker's desk

    def held_requests(self) -> list[HeldView]:
        """Requests waiting for a social worker's decision, with the person they concern."""
        return [HeldView(held, self._held_person(held)) for held in self.store.held()]

    def release(self, message_id: str) -> Sent:
        """A social worker releases a held request: the dossier (or 'unknown person') goes out."""
        _, header, number = self._take_held(message_id, "released")
        dossier = self._retry(lambda: self.adapter.export_dossier(number))
        if dossier is None:
            body = Body(MessageType.RESPONSE, refusal=RefusalReason.UNKNOWN_PERSON)
        else:
            body = Body(MessageType.RESPONSE, dossier=dossier)
        return self._send(self._response_header(header), body)

    def refuse_held(self, message_id: str) -> Sent:
        """A social worker refuses a held request: the requester is told so."""
        _, header, _ = self._take_held(message_id, "refused")
        body = Body(MessageType.RESPONSE, refusal=RefusalReason.REFUSED_BY_SOCIAL_WORKER)
        return self._send(self._response_header(header), body)

    def _take_held(self, message_id: str, decision: str) -> tuple[HeldRequest, Header, str]:
        held = self.store.held_request(message_id)
        if held is None or held.state != "held":
            raise GatewayError(
                f"No request {message_id} is waiting for a decision.", code="pending.unknown"
            )
        number = self._held_person(held)
        if not self.store.decide(message_id, decision):
            raise GatewayError(
                f"The request {message_id} was decided meanwhile.", code="pending.unknown"
            )
        self.stats.add(f"requests.{decision}")
        return held, Envelope.from_xml(held.envelope).header, number

    def _held_person(self, held: HeldRequest) -> str:
        # The request stays sealed at rest; it is opened only to show or answer it.
        envelope = Envelope.from_xml(held.envelope)
        body = Body.from_xml(decrypt(envelope, keys=self.keys), MessageType.REQUEST)
        return body.person_number or ""

    def _response_header(self, request: Header) -> Header:
        return self._header(
            MessageType.RESPONSE,
            request.sender,
            request.purpose,
            request.case_reference,
            correlation=request,
        )

    # -------------------------------------------------------------- receive

    def _work(self) -> None:
        next_sweep = time.monotonic() + SWEEP_SECONDS
        while True:
            try:
                delivery = self._queue.get(timeout=1.0)
            except queue.Empty:
                delivery = ...  # type: ignore[assignment]
            if delivery is None:
                return
            if delivery is not ...:
                try:
                    self._process(delivery)
                except Exception:  # a bug must not stop the node: give the message back
                    log.exception("unexpected error while processing a message; returning it")
                    self.stats.add("errors")
                    self.broker.reject(delivery, requeue=True)
            if time.monotonic() >= next_sweep:
                self.expire_requests()
                next_sweep = time.monotonic() + SWEEP_SECONDS

    def expire_requests(self, now: dt.datetime | None = None) -> list[str]:
        """Record as ``expired`` the requests that got no final answer by their expiry."""
        stamp = format_timestamp(now or dt.datetime.now(dt.UTC))
        expired = self.store.unanswered_requests(stamp)
        for entry in expired:
            self.store.record_outcome(entry.message_id, "expired", "request.expired")
            log.warning("request %s to %s expired unanswered", entry.message_id, entry.recipient)
            self.stats.add("requests.expired")
        if expired:
            with self._outcomes:
                self._outcomes.notify_all()
        return [entry.message_id for entry in expired]

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
        # The signed sender's broker user published it -- or this node itself,
        # requeuing one of its own dead letters.
        publishers = {self.names.broker_user(header.sender), self.amqp_user}
        if self._provisioned and delivery.properties.user_id not in publishers:
            error = EnvelopeRefused(
                f"The message claims to come from {header.sender} but was published by the "
                f"broker user {delivery.properties.user_id!r}.",
                code="envelope.broker_user",
            )
            self._refuse(delivery, _Refusal(error, header=header, expose_reason=True))
            return
        previous = self.store.received(str(header.message_id))
        if previous is not None:
            # Seen before: a redelivery, the sender publishing its outbox
            # again, or a replay. Import nothing; send the stored reply again
            # in case the first one was lost.
            self.stats.add("duplicates")
            if not delivery.redelivered:
                log.info(
                    "message %s from %s seen before: not processed again",
                    header.message_id,
                    header.sender,
                )
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
        handlers: dict[MessageType, Callable[[Delivery, Header, Body], None]] = {
            MessageType.TRANSFER: self._on_transfer,
            MessageType.REQUEST: self._on_request,
            MessageType.RESPONSE: self._on_response,
            MessageType.RECEIPT: self._on_receipt,
        }
        handlers[header.type](delivery, header, body)

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

    # ----------------------------------------------------------- by type

    def _on_transfer(self, delivery: Delivery, header: Header, body: Body) -> None:
        if self.policy[header.purpose] is Action.REFUSE:
            self._decline(delivery, header, "purpose.not_allowed")
            return
        assert body.dossier is not None
        self._import(delivery, header, body.dossier)

    def _on_request(self, delivery: Delivery, header: Header, body: Body) -> None:
        action = self.policy[header.purpose]
        outcome, code = "answered", None
        if action is Action.REFUSE:
            answer = Body(MessageType.RESPONSE, refusal=RefusalReason.PURPOSE_NOT_ALLOWED)
            outcome, code = "refused", "purpose.not_allowed"
        elif action is Action.HOLD:
            self.store.hold(
                message_id=str(header.message_id),
                sender=header.sender,
                purpose=header.purpose.value,
                case_reference=header.case_reference,
                envelope=delivery.body,
                expires_at=format_timestamp(header.expires_at),
            )
            answer = Body(MessageType.RESPONSE, refusal=RefusalReason.AWAITING_RELEASE)
            outcome = "held"
        else:
            number = body.person_number or ""
            try:
                dossier = self._retry(lambda: self.adapter.export_dossier(number))
            except AdapterError as exc:
                self._adapter_failed(delivery, header, exc)
                return
            if dossier is None:
                answer = Body(MessageType.RESPONSE, refusal=RefusalReason.UNKNOWN_PERSON)
                outcome, code = "refused", "request.unknown_person"
            else:
                answer = Body(MessageType.RESPONSE, dossier=dossier)
        self.stats.add(f"requests.{outcome}")
        response = self._response_header(header)
        reply = (
            response,
            seal(response, answer.to_xml(), keys=self.keys, directory=self.directory).to_xml(),
        )
        self._record(header, outcome, code, reply=reply)
        self._reply_then_ack(delivery, reply)

    def _on_response(self, delivery: Delivery, header: Header, body: Body) -> None:
        request_id = str(header.correlation_id or "")
        request = self.store.outgoing(request_id)
        if (
            request is None
            or request.type != MessageType.REQUEST.value
            or request.recipient != header.sender
        ):
            error = EnvelopeRefused(
                f"The response from {header.sender} answers no request this node sent to it.",
                code="envelope.unsolicited",
            )
            self._refuse(
                delivery, _Refusal(error, header=header, expose_reason=True, authenticated=True)
            )
            return
        if body.dossier is None:
            reason = body.refusal or RefusalReason.UNKNOWN_PERSON
            outcome = "awaiting-release" if reason is RefusalReason.AWAITING_RELEASE else "refused"
            self.store.record_outcome(request_id, outcome, reason.value)
            self._record(header, "recorded", None)
            self.stats.add(f"responses.{reason.value}")
            self._notify()
            self.broker.ack(delivery)
            return
        if self._import(delivery, header, body.dossier):
            self.store.record_outcome(request_id, "answered", None)
            self.stats.add("responses.dossier")
            self._notify()

    def _on_receipt(self, delivery: Delivery, header: Header, body: Body) -> None:
        correlation = str(header.correlation_id or "")
        if not self.store.record_outcome(correlation, body.outcome or "rejected", body.code):
            log.warning("receipt %s for a message this node did not send", header.message_id)
        self._record(header, "recorded", None)
        self.stats.add(f"receipts.{body.outcome}")
        self._notify()
        self.broker.ack(delivery)

    # ------------------------------------------------------------ helpers

    def _import(self, delivery: Delivery, header: Header, dossier: Dossier) -> bool:
        """Import a received dossier, record it, answer with a receipt; ``True`` when imported."""
        message_id = str(header.message_id)
        try:
            result = self._retry(
                lambda: self.adapter.import_dossier(dossier, message_id=message_id)
            )
        except AdapterError as exc:
            self._adapter_failed(delivery, header, exc)
            return False
        self.stats.add("imported" if result.created else "duplicates")
        reply = self._receipt(header, "imported", None)
        self._record(header, "imported", None, reply=reply, local_reference=result.local_reference)
        self._reply_then_ack(delivery, reply)
        return True

    def _adapter_failed(self, delivery: Delivery, header: Header, exc: AdapterError) -> None:
        if exc.transient:
            # The vendor system stayed unavailable: give the message back; the
            # broker's delivery limit bounds how often this happens.
            log.warning("vendor system unavailable, returning %s: %s", header.message_id, exc)
            self.stats.add("vendor_unavailable")
            self.broker.reject(delivery, requeue=True)
            return
        self._refuse(
            delivery, _Refusal(exc, header=header, expose_reason=False, authenticated=True)
        )

    def _retry(self, action: Callable[[], T]) -> T:
        """Run an adapter call, retrying transient failures with a capped back-off."""
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, AdapterError) and e.transient),
            wait=wait_exponential(multiplier=0.2, max=10),
            stop=stop_after_delay(self._retry_seconds),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                try:
                    return action()
                except GatewayError:
                    raise
                except Exception as exc:  # an adapter bug: a project error, not a crash
                    raise AdapterError(
                        f"The adapter failed: {type(exc).__name__}.", code="adapter.crashed"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _record(
        self,
        header: Header,
        outcome: str,
        code: str | None,
        *,
        reply: Reply | None = None,
        local_reference: str | None = None,
    ) -> None:
        self.store.record_received(
            message_id=str(header.message_id),
            type=header.type.value,
            sender=header.sender,
            outcome=outcome,
            outcome_code=code,
            local_reference=local_reference,
            reply=None if reply is None else reply[1],
        )

    def _notify(self) -> None:
        with self._outcomes:
            self._outcomes.notify_all()

    def _receipt(self, original: Header, outcome: str, code: str | None) -> Reply | None:
        """A signed receipt for ``original``, or ``None`` when its sender cannot get one."""
        if (
            original.type is MessageType.RECEIPT
            or not self.directory.may_receive(original.sender).allowed
        ):
            return None
        header = self._header(
            MessageType.RECEIPT,
            original.sender,
            original.purpose,
            original.case_reference,
            correlation=original,
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

        self._publish(header, data).add_done_callback(settle)

    def _decline(self, delivery: Delivery, header: Header, code: str) -> None:
        """Refuse a valid message by policy: a rejected receipt, no dead letter."""
        log.warning(
            "declined %s %s from %s: %s", header.type.value, header.message_id, header.sender, code
        )
        self.stats.add(f"refused.{code}")
        reply = self._receipt(header, "rejected", code)
        self._record(header, "rejected", code, reply=reply)
        self._reply_then_ack(delivery, reply)

    def _refuse(self, delivery: Delivery, refusal: _Refusal) -> None:
        """Dead-letter a refused message with its code; tell its sender when it is a CPAS."""
        error, header = refusal.error, refusal.header
        log.warning("refused a message: %s", error if refusal.expose_reason else error.code)
        self.stats.add("refused")
        self.stats.add(f"refused.{error.code}")
        reply = None if header is None else self._receipt(header, "rejected", error.code)
        if header is not None and refusal.authenticated:
            self._record(header, "rejected", error.code, reply=reply)
        headers = {REFUSAL_CODE_HEADER: error.code}
        if refusal.expose_reason:
            headers[REFUSAL_REASON_HEADER] = error.message
        dead = self.broker.publish(
            self.names.dead_exchange(self.cpas_id),
            self.cpas_id,
            delivery.body,
            message_id=delivery.properties.message_id,
            headers=headers,
            message_type=delivery.properties.type,
            user_id=self.amqp_user,
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


def build_node(
    config: NodeConfig, *, adapters: AdapterRegistry | None = None, consume: bool = True
) -> Node:
    """Assemble a node: trust anchor, verified directory, keys, adapter and store."""
    anchor = load_trust_anchor(config.trust_anchor)
    try:
        directory_bytes = config.directory.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"The directory {config.directory} cannot be read: {exc.strerror}."
        ) from None
    store = Store(config.store)
    # Never go back to an older edition of the directory than one seen before:
    # a replayed old edition could list a key or an institution since removed.
    seen = store.get_meta(DIRECTORY_SERIAL)
    directory = load_directory(directory_bytes, anchor, min_serial=int(seen or 0))
    store.set_meta(DIRECTORY_SERIAL, str(directory.serial))
    passphrase = None if config.key_passphrase is None else config.key_passphrase.encode()
    keys = load_node_keys(config.keys, passphrase)
    registry = adapters or load_adapters()
    adapter = registry.create(config.adapter.name, config.cpas_id, config.adapter.options)
    return Node(
        config.cpas_id,
        directory=directory,
        keys=keys,
        adapter=adapter,
        store=store,
        amqp_urls=config.amqp_urls,
        names=Names(config.namespace),
        delivery_limit=config.delivery_limit,
        prefetch=config.prefetch,
        import_retry_seconds=config.import_retry_seconds,
        policy={Purpose(p): Action(a) for p, a in config.policy.items()},
        provisioned=config.broker_mode == "provisioned",
        request_ttl=dt.timedelta(seconds=config.request_ttl_seconds),
        consume=consume,
    )
