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
refusal code at its first delivery -- nothing a publisher sends raises out of
the handler -- the sender gets a signed rejection only when its signature
verified, and the node keeps running. Receipts and responses count only from
the CPAS the message they answer went to.

What is not about a message never costs it a delivery attempt. When the
store, the journal or the vendor system is away (a database restarting, a
full disk), the worker keeps the deliveries in hand unacknowledged, pauses
consumption, tries again with a growing back-off and resumes on its own;
:meth:`Node.health` says what it waits for. A message whose processing fails
while everything else works counts one failed attempt in the store, and the
node refuses it (dead letter, with a code) after ``delivery_limit`` of them.
A thread of the node that dies of an unexpected error stops the node
(:attr:`Node.failed`): it never idles while holding deliveries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import queue
import threading
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from gateway.adapters import (
    Adapter,
    AdapterRegistry,
    BatchImporter,
    ImportResult,
    Inspectable,
    ReceivesEvents,
    VendorEvent,
    VendorEventKind,
    load_adapters,
)
from gateway.broker import (
    REFUSAL_CODE_HEADER,
    REFUSAL_REASON_HEADER,
    Broker,
    BrokerClient,
    BrokerFactory,
    Delivery,
    Names,
    Outgoing,
    cpas_topology,
)
from gateway.broker_connection import BrokerTLS
from gateway.codes import Fault, HeldState, Outcome, PolicyAction, Refusal, RefusalGround
from gateway.config import NodeConfig
from gateway.directory import Directory, load_directory_file
from gateway.directory_feed import DirectoryFeed, DirectoryPoll, current_edition
from gateway.dossier import Dossier, format_timestamp
from gateway.envelope import (
    Body,
    Envelope,
    Header,
    MessageType,
    Purpose,
    RefusalReason,
    authenticate,
    decrypt,
    seal,
    verify,
)
from gateway.errors import (
    AdapterError,
    BrokerError,
    ConfigError,
    DestinationRefused,
    DossierInvalid,
    EnvelopeRefused,
    GatewayError,
    StoreUnavailable,
)
from gateway.journal import Event, Journal, open_journal
from gateway.keys import NodeKeys, load_node_keys, load_trust_anchor
from gateway.staff import StaffReference
from gateway.store import HeldRequest, OutboxEntry, Store
from gateway.store import Outgoing as OutboxRecord

log = logging.getLogger(__name__)
events_log = logging.getLogger("gateway.node.events")
"""One line per message event (sent, received, receipt, refusal...): see gateway.logs."""

DEFAULT_NAMES = Names()
DEFAULT_REQUEST_TTL = dt.timedelta(hours=24)
SWEEP_SECONDS = 5.0
_DECLINED = frozenset({Refusal.PURPOSE_NOT_ALLOWED})
"""Refusal codes of valid messages declined by policy: answered, never dead-lettered."""
SEND_BATCH = 200
BROKER_WAIT_SECONDS = 600.0
STORE_WAIT_SECONDS = 300.0
"""How long a bulk send waits for its store to come back before it stops (resumable)."""
RECEIVE_BATCH = 128
PAUSE_MAX_SECONDS = 5.0
"""Longest wait between two tries while the store or the vendor system is away."""
VENDOR_UNAVAILABLE = Refusal.ADAPTER_UNAVAILABLE
"""The adapter's code for "the whole vendor system is away", as opposed to one record failing."""
ATTEMPTS_EXHAUSTED = Refusal.NODE_ATTEMPTS_EXHAUSTED

Reply = tuple[Header, bytes]
T = TypeVar("T")


Action = PolicyAction
"""What a node does with a request for a given purpose (:class:`gateway.codes.PolicyAction`)."""


@dataclass(frozen=True)
class Sent:
    """A message handed to the broker: ``confirmed`` resolves on the broker's confirm."""

    message_id: str
    recipient: str
    confirmed: Future[None]


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the import latency histogram."""


@dataclass
class NodeStats:
    """Counters an operator (and the tests) can read."""

    counts: Counter[str] = field(default_factory=Counter)
    import_seconds: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    """Imports per latency bucket (:data:`LATENCY_BUCKETS`, then the rest)."""
    import_seconds_sum: float = 0.0

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def observe_import(self, seconds: float, n: int = 1) -> None:
        """``n`` dossiers imported, each in ``seconds`` (a batch's time shared out)."""
        bucket = next((i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b), -1)
        self.import_seconds[bucket] += n
        self.import_seconds_sum += seconds * n

    def __getitem__(self, name: str) -> int:
        return self.counts[name]


@dataclass(frozen=True)
class Health:
    """How the node is doing: ``ok``, or what it waits for, or why it stopped."""

    status: str
    """``ok``, ``store unavailable``, ``vendor system unavailable``, ``broker unavailable``
    or ``failed``."""
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Unavailable(Exception):
    """The store, the journal or the vendor system is away: hold the deliveries, try later."""

    def __init__(self, status: str, error: GatewayError) -> None:
        super().__init__(str(error))
        self.status = status
        self.error = error


def _unavailable(exc: BaseException) -> _Unavailable:
    if isinstance(exc, _Unavailable):
        return exc
    assert isinstance(exc, StoreUnavailable)
    return _Unavailable("store unavailable", exc)


@dataclass(frozen=True)
class HeldView:
    """A held request as a social worker sees it (the person number decrypted on demand)."""

    request: HeldRequest
    person_number: str


@dataclass(frozen=True)
class _Import:
    """A received dossier waiting to be imported with the rest of its batch."""

    delivery: Delivery
    header: Header
    dossier: Dossier
    then: Callable[[], None] | None


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
        # Only a message whose signature verified may claim its message id
        # (otherwise a forged copy could make the genuine one look like a
        # duplicate), and only its sender gets a signed receipt: anything else
        # is dead-lettered without a word, so that forged copies can neither
        # flip the sender's record nor be amplified into signed receipts.
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
    :param journal: where every message in and out, every receipt, refusal
        and decision is recorded (:func:`build_node` always opens one).
    :param broker_tls: how to reach ``amqps://`` broker addresses (CA,
        client certificate for mutual TLS).
    :param trust_anchor: the federation's key: with it, a consuming node follows
        the federation's directory editions live (:mod:`gateway.directory_feed`).
    :param directory_poll: with ``trust_anchor``, also poll an HTTPS address
        for the current edition.
    :param broker: makes the node's broker client (default: :class:`BrokerClient`,
        RabbitMQ); tests give :class:`gateway.testing.MemoryBroker`'s instead.
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
        journal: Journal | None = None,
        broker_tls: BrokerTLS | None = None,
        trust_anchor: Ed25519PublicKey | None = None,
        directory_poll: DirectoryPoll | None = None,
        broker: BrokerFactory = BrokerClient,
    ) -> None:
        self.cpas_id = cpas_id
        self.journal = journal
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
        self._attempt_limit = delivery_limit
        # Set by stop(): waits for an unavailable store or vendor end.
        self._stopping = threading.Event()
        self.failed = threading.Event()
        """Set when a thread of the node died of an unexpected error; the node is stopped."""
        self.failure: BaseException | None = None
        # What each of the node's threads waits for (thread name -> Health).
        self._waiting: dict[str, Health] = {}
        self._waiting_lock = threading.Lock()
        # RabbitMQ checks the user_id property against the login: a node can
        # only publish under its own broker identity.
        self.amqp_urls = list(amqp_urls)
        self.broker_tls = broker_tls
        self.amqp_user = urllib.parse.unquote(
            urllib.parse.urlparse(amqp_urls[0]).username or "guest"
        )
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._confirmed: queue.Queue[str | None] = queue.Queue()
        self._confirmer = self._thread(self._confirm_loop, f"confirm-{cpas_id}")
        self._deferred: list[Callable[[], None]] = []
        self._imports: list[_Import] = []
        # Outbox entries published on the current connection and not yet
        # settled: a republish after a reconnection skips them.
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._outcomes = threading.Condition()
        self._consume = consume
        self.broker: Broker = broker(
            amqp_urls,
            cpas_topology([cpas_id], names=names),
            consume=names.inbox(cpas_id) if consume else None,
            on_delivery=self._queue.put,
            prefetch=prefetch,
            name=f"node-{cpas_id}",
            passive=provisioned,
            on_ready=self._on_broker_ready,
            tls=broker_tls,
        )
        self.directory_feed = (
            DirectoryFeed(self, trust_anchor, provisioned=provisioned, poll=directory_poll)
            if trust_anchor is not None and consume
            else None
        )

    # ------------------------------------------------------------ lifecycle

    def start(self, *, wait: float = 15.0) -> Node:
        """Connect, declare, start consuming, and publish what the outbox still holds."""
        if self._consume:
            self._worker = self._thread(self._work, f"worker-{self.cpas_id}")
            self._worker.start()
        self._confirmer.start()
        if self.directory_feed is not None:
            self.directory_feed.start()
        # Once connected (and after every reconnection) the outbox's
        # unconfirmed messages are published again: see _on_broker_ready.
        self.broker.start(wait=wait)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop: take no new work, finish the message in hand, close."""
        self._stopping.set()
        if self.directory_feed is not None:
            self.directory_feed.stop()
        self.broker.cancel_consumer()
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout)
        # Deliveries still queued were never acked: closing returns them to
        # the broker for the next start.
        self.broker.stop()
        if self._confirmer.is_alive():
            self._confirmed.put(None)
            self._confirmer.join(timeout)

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def health(self) -> Health:
        """What the node is doing now: ``ok``, waiting for something, or stopped by an error."""
        if self.failed.is_set():
            return Health("failed", f"{type(self.failure).__name__}: {self.failure}")
        with self._waiting_lock:
            waiting = next(iter(self._waiting.values()), None)
        if waiting is not None:
            return waiting
        if not self.broker.is_ready:
            return Health("broker unavailable", self.broker.addresses)
        return Health("ok")

    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """A thread of the node whose unexpected death stops the node, loudly."""

        def guarded() -> None:
            try:
                target()
            except BaseException as exc:
                self._fail(name, exc)

        return threading.Thread(target=guarded, name=name, daemon=True)

    def _fail(self, name: str, exc: BaseException) -> None:
        log.critical(
            "the node's thread %s died (%s: %s): stopping the node, its deliveries go back "
            "to the broker",
            name,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        self.failure = exc
        self.failed.set()
        self._stopping.set()
        # Closing the connection hands every unacknowledged delivery back.
        self.broker.stop()
        with self._outcomes:
            self._outcomes.notify_all()

    def _until_available(
        self, action: Callable[[], T], *, pause: bool = True, give_up: float | None = None
    ) -> T:
        """Run ``action`` until the store, the journal and the vendor system let it finish.

        While one of them is away, the node waits with a growing back-off
        (consumption paused when ``pause``: deliveries in hand stay
        unacknowledged). Raises the last error once the node is stopping, or
        after ``give_up`` seconds.
        """
        name = threading.current_thread().name

        def waiting(state: RetryCallState) -> None:
            assert state.outcome is not None
            away = _unavailable(state.outcome.exception() or RuntimeError())
            with self._waiting_lock:
                first = name not in self._waiting
                self._waiting[name] = Health(away.status, str(away.error))
            if first:
                log.warning(
                    "%s (%s): %s, retrying until it is back",
                    away.status,
                    away.error,
                    "consumption paused, deliveries in hand kept" if pause else "waiting",
                )
                self.stats.add(away.status.replace(" ", "_"))
                if pause:
                    self.broker.pause_consumer()

        def sleep(seconds: float) -> None:
            self._stopping.wait(seconds)

        retrying = Retrying(
            retry=retry_if_exception_type((StoreUnavailable, _Unavailable)),
            wait=wait_exponential(multiplier=0.25, max=PAUSE_MAX_SECONDS),
            stop=lambda state: (
                self._stopping.is_set()
                or (give_up is not None and (state.seconds_since_start or 0) >= give_up)
            ),
            sleep=sleep,
            before_sleep=waiting,
            reraise=True,
        )
        result = retrying(action)
        with self._waiting_lock:
            recovered = self._waiting.pop(name, None)
        if recovered is not None:
            log.warning("%s no more: resuming", recovered.status)
            if pause and not self._stopping.is_set():
                self.broker.resume_consumer()
        return result

    # ----------------------------------------------------------------- send

    def send_transfer(
        self,
        person_number: str,
        to: str,
        purpose: Purpose,
        *,
        case_reference: str | None = None,
        staff: StaffReference | None = None,
    ) -> Sent:
        """Push a person's dossier to another CPAS (the person moved there).

        Raises :class:`~gateway.errors.DestinationRefused` before anything is
        published when the directory says ``to`` may not receive a dossier.
        ``staff``: the acting social worker (journaled; a pseudonym in the header).
        """
        self._check_destination(to, person_number, staff)
        dossier = self._export(person_number)
        return self._transfer(dossier, to, purpose, case_reference, staff)

    def _export(self, person_number: str) -> Dossier:
        dossier = self._retry(lambda: self.adapter.export_dossier(person_number))
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
        self._check_destination(to, person_number, staff)
        dossier = self._export(person_number)
        self._journal_shown(dossier, to, purpose, dossier.source.case_reference, staff)
        return dossier

    def _journal_shown(
        self, dossier: Dossier, peer: str, purpose: Purpose, case_reference: str, staff: str
    ) -> None:
        self._journal(
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
        *,
        max_in_flight: int = 2000,
        progress: Callable[[int, int], None] | None = None,
        store_wait: float = STORE_WAIT_SECONDS,
    ) -> list[str]:
        """Transfer every person the vendor system holds to ``to`` (a merger, a caseload move).

        Resumable: a dossier whose case was already sent to ``to`` is skipped,
        so running it again after a crash sends only what is missing. At most
        ``max_in_flight`` messages wait for the broker's confirm at once, and
        it returns when the broker has confirmed them all (one it never
        confirms stays in the outbox, published again at the next start).
        ``progress(done, total)`` is called as it goes. A store that cannot
        be written (a database away, a full disk) is waited for up to
        ``store_wait`` seconds, then :class:`~gateway.errors.StoreUnavailable`
        is raised with nothing half-written: running it again resumes.

        :returns: the message ids sent (ids only: a caseload is large).
        """
        self._check_destination(to, None)
        if not isinstance(self.adapter, Inspectable):
            raise ConfigError(f"The adapter {self.adapter.info.name!r} cannot list its people.")

        def wait_for_store(action: Callable[[], T]) -> T:
            return self._until_available(action, pause=False, give_up=store_wait)

        already = wait_for_store(lambda: self.store.sent_to(to, MessageType.TRANSFER.value))
        numbers = self.adapter.list_person_numbers()
        sent: list[str] = []
        in_flight: deque[Future[None]] = deque()
        for start in range(0, len(numbers), SEND_BATCH):
            if self.failed.is_set():
                raise GatewayError(
                    f"The node stopped: {self.failure}; run the same command again.",
                    code=Fault.NODE_FAILED,
                )
            batch = []
            for number in numbers[start : start + SEND_BATCH]:
                dossier = self._retry(lambda n=number: self.adapter.export_dossier(n))  # type: ignore[misc]
                if dossier is None or dossier.source.case_reference in already:
                    continue
                header = self._header(
                    MessageType.TRANSFER, to, purpose, dossier.source.case_reference
                )
                batch.append((header, Body(MessageType.TRANSFER, dossier=dossier)))
            if not self.broker.is_ready:
                # The broker is away: wait for it rather than record a whole
                # batch that cannot be published now.
                self.broker.wait_ready(BROKER_WAIT_SECONDS)
            for item in wait_for_store(functools.partial(self._send_many, batch)):
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
        self._confirmed.join()  # the outbox now says which were confirmed
        return sent

    def _transfer(
        self,
        dossier: Dossier,
        to: str,
        purpose: Purpose,
        case_reference: str | None,
        staff: StaffReference | None = None,
    ) -> Sent:
        header = self._header(
            MessageType.TRANSFER,
            to,
            purpose,
            case_reference or dossier.source.case_reference,
            actor=self._pseudonym(staff),
        )
        return self._send(header, Body(MessageType.TRANSFER, dossier=dossier), staff=staff)

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
        """Ask the CPAS ``to`` for a person's dossier; the answer arrives as a response.

        The request expires after ``ttl``; a request still unanswered then is
        recorded as ``expired`` -- the requester is never left in silence.
        ``staff``: the acting social worker (journaled; a pseudonym in the header).
        """
        self._check_destination(to, person_number, staff)
        header = self._header(
            MessageType.REQUEST,
            to,
            purpose,
            case_reference,
            ttl=ttl or self._request_ttl,
            actor=self._pseudonym(staff),
        )
        body = Body(MessageType.REQUEST, person_number=person_number)
        return self._send(header, body, staff=staff)

    def _check_destination(
        self, to: str, person_number: str | None, staff: StaffReference | None = None
    ) -> None:
        """The directory's verdict on ``to``; a refusal is journaled, then raised."""
        try:
            self.directory.check_destination(to)
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
        self._journal(
            Event.REFUSED_OUTGOING,
            peer=to,
            code=refused.code,
            person_number=person_number,
            actor=staff,
        )

    def _seal(self, header: Header, body: Body) -> bytes:
        try:
            return seal(header, body.to_xml(), keys=self.keys, directory=self.directory).to_xml()
        except DestinationRefused as refused:
            # A newer directory edition came in since the destination was
            # checked: it decides, and the refusal is journaled like any other.
            person = body.dossier.person.number if body.dossier else body.person_number
            self._refused_outgoing(header.recipient, refused, person)
            raise

    def _pseudonym(self, staff: StaffReference | None) -> str | None:
        """The header's pseudonym of the acting social worker (none for the node's own acts)."""
        if staff is None:
            return None
        if self.journal is None:
            raise ConfigError("A node without a journal cannot name who acted.")
        return self.journal.staff_pseudonym(staff)

    def _header(
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
        extra: dict[str, Any] = {} if ttl is None else {"ttl": ttl}
        return Header.new(
            type,
            sender=self.cpas_id,
            recipient=to,
            purpose=purpose,
            case_reference=case_reference,
            correlation_id=None if correlation is None else correlation.message_id,
            actor=actor,
            **extra,
        )

    def _send(self, header: Header, body: Body, *, staff: StaffReference | None = None) -> Sent:
        return self._send_many([(header, body)], staff=staff)[0]

    def _send_many(
        self, messages: Sequence[tuple[Header, Body]], *, staff: StaffReference | None = None
    ) -> list[Sent]:
        """Seal, record in the outbox (one transaction), then publish: the outbox comes first."""
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
        with self._in_flight_lock:
            self._in_flight.update(r.message_id for r in records)
        try:
            # The outbox and the journal together: a full disk or a lost
            # database leaves neither holding these messages.
            with self.store.batch(), self._journal_batch():
                self.store.add_outgoing(records)
                for header, body in messages:
                    self._journal_message(
                        Event.RESPONSE_SENT if header.type is MessageType.RESPONSE else Event.SENT,
                        header,
                        body,
                        actor=staff,
                    )
        except BaseException:
            with self._in_flight_lock:
                self._in_flight.difference_update(r.message_id for r in records)
            raise
        futures = self.broker.publish_many(
            [self._outgoing(r.recipient, r.type, r.message_id, r.envelope) for r in records]
        )
        sent = []
        for record, future in zip(records, futures, strict=True):
            self.stats.add(f"sent.{record.type}")
            future.add_done_callback(functools.partial(self._on_confirmed, record.message_id))
            sent.append(Sent(record.message_id, record.recipient, future))
        return sent

    def _outgoing(self, recipient: str, type: str, message_id: str, data: bytes) -> Outgoing:
        return Outgoing(
            self.names.route,
            recipient,
            data,
            message_id=message_id,
            message_type=type,
            user_id=self.amqp_user,
        )

    def _publish(self, header: Header, data: bytes) -> Future[None]:
        outgoing = self._outgoing(header.recipient, header.type.value, str(header.message_id), data)
        return self.broker.publish_many([outgoing])[0]

    def _on_confirmed(self, message_id: str, future: Future[None]) -> None:
        # Runs on the broker's I/O thread: hand the write to the confirmer.
        with self._in_flight_lock:
            self._in_flight.discard(message_id)
        if future.exception() is None:
            self._confirmed.put(message_id)
        else:
            log.warning("message %s not confirmed: %s", message_id, future.exception())

    def _confirm_loop(self) -> None:
        """Mark confirmed messages in the outbox, many per transaction."""
        while True:
            batch = [self._confirmed.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 1000:
                    batch.append(self._confirmed.get_nowait())
            ids = [mid for mid in batch if mid is not None]
            if ids:
                # Stopping while the store is away: unmarked, they are
                # published again at the next start (the receiver deduplicates).
                with contextlib.suppress(StoreUnavailable):
                    self._until_available(
                        functools.partial(self.store.mark_confirmed, ids), pause=False
                    )
            for _ in batch:
                self._confirmed.task_done()
            if None in batch:
                return

    def _on_broker_ready(self) -> None:
        # On the I/O thread: what a lost connection left unconfirmed in the
        # outbox goes out again on the new one, without waiting for a restart.
        self._thread(self._republish_unconfirmed, f"republish-{self.cpas_id}").start()

    def _republish_unconfirmed(self) -> None:
        try:
            unconfirmed = self._until_available(self.store.unconfirmed, pause=False)
        except StoreUnavailable:
            return  # stopping
        with self._in_flight_lock:
            pending = [e for e in unconfirmed if e.message_id not in self._in_flight]
            self._in_flight.update(e.message_id for e in pending)
        futures = self.broker.publish_many(
            [self._outgoing(e.recipient, e.type, e.message_id, e.envelope) for e in pending]
        )
        for entry, future in zip(pending, futures, strict=True):
            future.add_done_callback(functools.partial(self._on_confirmed, entry.message_id))
        if pending:
            log.info("republished %d unconfirmed messages from the outbox", len(pending))

    def wait_confirmed(self, message_ids: Iterable[str], timeout: float) -> set[str]:
        """Wait until the broker holds every message (first publish or a republish).

        Returns the ids still unconfirmed at the timeout (empty when all are held).
        """
        wanted = set(message_ids)
        deadline = time.monotonic() + timeout
        while True:
            missing = wanted & {e.message_id for e in self.store.unconfirmed()}
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.5)

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

    def release(self, message_id: str, *, staff: StaffReference | None = None) -> Sent | None:
        """A social worker releases a held request: the dossier (or 'unknown person') goes out.

        Under a two-person hold the first release is recorded and ``None``
        returned; the dossier goes at the release of a second, distinct staff
        reference. Codes: ``pending.unknown``, ``hold.own_request`` (this CPAS
        asked itself), ``staff.missing`` (a two-person hold needs names),
        ``hold.same_staff`` (the same social worker cannot release twice).
        """
        held = self._held_waiting(message_id)
        if not self._enough_releases(held, staff):
            return None
        _, header, number = self._take_held(message_id, HeldState.RELEASED, staff)
        dossier = self._retry(lambda: self.adapter.export_dossier(number))
        if dossier is None:
            body = Body(MessageType.RESPONSE, refusal=RefusalReason.UNKNOWN_PERSON)
        else:
            body = Body(MessageType.RESPONSE, dossier=dossier)
        return self._send(self._response_header(header, staff), body, staff=staff)

    def refuse_held(
        self,
        message_id: str,
        *,
        staff: StaffReference | None = None,
        ground: RefusalGround | None = None,
    ) -> Sent:
        """A social worker refuses a held request: the requester is told so.

        ``ground`` (from the closed list) is journaled here; the requester only
        learns that a social worker refused.
        """
        self._held_waiting(message_id)
        _, header, _ = self._take_held(message_id, HeldState.REFUSED, staff, ground)
        body = Body(MessageType.RESPONSE, refusal=RefusalReason.REFUSED_BY_SOCIAL_WORKER)
        return self._send(self._response_header(header, staff), body, staff=staff)

    def preview_release(self, message_id: str, *, staff: StaffReference) -> Dossier | None:
        """The dossier releasing this held request would send now (``None``: unknown person),
        journaled as shown to the person."""
        held = self._held_waiting(message_id)
        dossier = self._retry(lambda: self.adapter.export_dossier(self._held_person(held)))
        if dossier is not None:
            purpose = Purpose(held.purpose)
            self._journal_shown(dossier, held.sender, purpose, held.case_reference, staff)
        return dossier

    def releases(self, message_id: str) -> list[str]:
        """The staff references that released a held request so far."""
        return self.store.releases(message_id)

    def _held_waiting(self, message_id: str) -> HeldRequest:
        held = self.store.held_request(message_id)
        if held is None or held.state != HeldState.HELD:
            raise GatewayError(
                f"No request {message_id} is waiting for a decision.", code=Fault.PENDING_UNKNOWN
            )
        if held.sender == self.cpas_id:
            raise GatewayError(
                "A CPAS never releases or refuses its own request.", code=Fault.HOLD_OWN_REQUEST
            )
        return held

    def _enough_releases(self, held: HeldRequest, staff: StaffReference | None) -> bool:
        """Record one social worker's release; whether the policy's count is reached."""
        needed = self.policy[Purpose(held.purpose)].releases_needed
        if staff is None:
            if needed > 1:
                raise GatewayError(
                    "A two-person hold is released by two named social workers: give the "
                    "staff reference.",
                    code=Fault.STAFF_MISSING,
                )
            return True
        if staff in self.store.releases(held.message_id):
            raise GatewayError(
                "This social worker released the request already: a second, different social "
                "worker must release it.",
                code=Fault.HOLD_SAME_STAFF,
            )
        released = self.store.add_release(held.message_id, staff)
        if len(released) >= needed:
            return True
        header = Envelope.from_xml(held.envelope).header
        self._journal(
            Event.REQUEST_RELEASED,
            header,
            person_number=self._held_person(held),
            outcome=Outcome.AWAITING_SECOND_RELEASE,
            actor=staff,
        )
        self.stats.add("requests.first_release")
        return False

    def _take_held(
        self,
        message_id: str,
        decision: str,
        staff: StaffReference | None = None,
        ground: RefusalGround | None = None,
    ) -> tuple[HeldRequest, Header, str]:
        held = self._held_waiting(message_id)
        number = self._held_person(held)
        if not self.store.decide(message_id, decision):
            raise GatewayError(
                f"The request {message_id} was decided meanwhile.", code=Fault.PENDING_UNKNOWN
            )
        self.stats.add(f"requests.{decision}")
        header = Envelope.from_xml(held.envelope).header
        event = Event.REQUEST_RELEASED if decision == HeldState.RELEASED else Event.REQUEST_REFUSED
        outcome = None if ground is None else ground.value
        self._journal(event, header, person_number=number, actor=staff, outcome=outcome)
        return held, header, number

    def _held_person(self, held: HeldRequest) -> str:
        # The request stays sealed at rest; it is opened only to show or answer it.
        envelope = Envelope.from_xml(held.envelope)
        body = Body.from_xml(decrypt(envelope, keys=self.keys), MessageType.REQUEST)
        return body.person_number or ""

    def _response_header(self, request: Header, staff: StaffReference | None = None) -> Header:
        return self._header(
            MessageType.RESPONSE,
            request.sender,
            request.purpose,
            request.case_reference,
            correlation=request,
            actor=self._pseudonym(staff),
        )

    # -------------------------------------------------------------- receive

    def _work(self) -> None:
        next_sweep = time.monotonic() + SWEEP_SECONDS
        while True:
            batch, stopping = self._next_batch()
            try:
                if batch:
                    self._process_batch(batch)
                if time.monotonic() >= next_sweep and not stopping:
                    self._until_available(self.expire_requests)
                    next_sweep = time.monotonic() + SWEEP_SECONDS
            except (StoreUnavailable, _Unavailable):
                # Stopping while the store or the vendor is away: what is in
                # hand was never acked and goes back when the connection closes.
                log.warning("stopping with %d deliveries in hand unprocessed", len(batch))
                return
            if stopping:
                return

    def _next_batch(self) -> tuple[list[Delivery], bool]:
        """What the broker has handed over, up to a batch; and whether to stop after it."""
        try:
            first = self._queue.get(timeout=1.0)
        except queue.Empty:
            return [], False
        if first is None:
            return [], True
        batch = [first]
        with contextlib.suppress(queue.Empty):
            while len(batch) < RECEIVE_BATCH:
                item = self._queue.get_nowait()
                if item is None:
                    return batch, True
                batch.append(item)
        return batch, False

    def _process_batch(self, batch: list[Delivery]) -> None:
        """Process deliveries; their records commit together, then replies and acks go out.

        Dossiers to import are handed to the vendor system between two short
        store transactions, never inside one: a vendor system that is slow or
        away (retried for minutes) must not keep the store locked for senders
        and for the command line. Each step is tried again, as a whole, until
        the store and the vendor system let it finish: nothing is acked before.
        """
        # A delivery of a connection since lost comes again on the new one.
        batch = [delivery for delivery in batch if self.broker.is_current(delivery)]
        if not batch:
            return
        self._until_available(lambda: self._check_batch(batch))
        imports, self._imports = self._imports, []
        if imports:
            checked = len(self._deferred)
            self._until_available(lambda: self._import_batch(imports, checked))
        deferred, self._deferred = self._deferred, []
        for action in deferred:
            action()

    def _check_batch(self, batch: list[Delivery]) -> None:
        """Open and check each delivery, record what needs no import; one transaction."""
        try:
            with self.store.batch(), self._journal_batch():
                for delivery in batch:
                    try:
                        self._process(delivery)
                    except (StoreUnavailable, _Unavailable):
                        raise
                    except Exception as exc:  # a bug must not stop the node
                        self._failed_attempt(delivery, exc)
        except BaseException:
            # Rolled back: nothing of the batch may be acked, all of it is tried again.
            self._deferred.clear()
            self._imports.clear()
            raise

    def _import_batch(self, imports: list[_Import], checked: int) -> None:
        """Import the batch's dossiers and record them; one transaction for the records."""
        try:
            started = time.monotonic()
            results = self._run_imports(imports)
            self.stats.observe_import((time.monotonic() - started) / len(imports), len(imports))
            with self.store.batch(), self._journal_batch():
                self._record_imports(imports, results)
        except (StoreUnavailable, _Unavailable):
            del self._deferred[checked:]
            raise
        except Exception as exc:
            del self._deferred[checked:]
            if len(imports) == 1:
                failed = functools.partial(self._record_failed_attempt, imports[0], exc)
                self._until_available(failed)
                return
            # Something in the batch breaks it: each on its own finds which.
            log.exception("importing a batch of %d failed; one by one", len(imports))
            for item in imports:
                self._until_available(lambda i=item: self._import_batch([i], len(self._deferred)))  # type: ignore[misc]

    def _record_failed_attempt(self, item: _Import, exc: Exception) -> None:
        with self.store.batch(), self._journal_batch():
            self._failed_attempt(item.delivery, exc, item.header)

    def _failed_attempt(
        self, delivery: Delivery, exc: Exception, header: Header | None = None
    ) -> None:
        """Processing this message failed while the node is healthy: count it, give it back.

        After ``delivery_limit`` failed attempts the node refuses it (a dead
        letter with its code): the broker's own count cannot tell a failing
        message from a node that died while holding it.
        """
        code = exc.code if isinstance(exc, GatewayError) else Refusal.NODE_UNEXPECTED_ERROR
        message_id = delivery.properties.message_id or (header and str(header.message_id))
        if not isinstance(exc, GatewayError):
            log.error(
                "unexpected error while processing %s; returning it",
                message_id,
                exc_info=exc,
            )
        self.stats.add("errors")
        failures = self.store.count_failure(message_id, code) if message_id else 0
        if failures < self._attempt_limit:
            log.warning(
                "processing %s failed (%s), attempt %d of %d: returned to the queue",
                message_id,
                code,
                failures,
                self._attempt_limit,
            )
            self._defer(lambda: self.broker.reject(delivery, requeue=True))
            return
        error = GatewayError(
            f"Processing the message failed {failures} times (last: {code}).",
            code=ATTEMPTS_EXHAUSTED,
        )
        self._refuse(
            delivery,
            _Refusal(error, header=header, expose_reason=True, authenticated=header is not None),
        )

    def _defer(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a reply, an ack) once the batch's records are committed."""
        self._deferred.append(action)

    def expire_requests(self, now: dt.datetime | None = None) -> list[str]:
        """Record as ``expired`` the requests that got no final answer by their expiry."""
        stamp = format_timestamp(now or dt.datetime.now(dt.UTC))
        expired = self.store.unanswered_requests(stamp)
        for entry in expired:
            self.store.record_outcome(entry.message_id, Outcome.EXPIRED, Refusal.REQUEST_EXPIRED)
            self._journal(
                Event.REQUEST_EXPIRED,
                peer=entry.recipient,
                correlation_id=entry.message_id,
                purpose=entry.purpose,
                case_reference=entry.case_reference,
                code=Refusal.REQUEST_EXPIRED,
            )
            log.warning("request %s to %s expired unanswered", entry.message_id, entry.recipient)
            self._vendor_event(
                VendorEvent(
                    VendorEventKind.REQUEST_EXPIRED,
                    message_id=entry.message_id,
                    peer=entry.recipient,
                    at=stamp,
                    purpose=entry.purpose,
                    case_reference=entry.case_reference,
                    code=Refusal.REQUEST_EXPIRED,
                )
            )
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
            envelope = _parse(delivery.body)
        except _Refusal as refusal:
            self._refuse(delivery, refusal)
            return
        header = envelope.header
        # The signed sender's broker user published it -- or this node itself,
        # requeuing one of its own dead letters.
        publishers = {self.names.broker_user(header.sender), self.amqp_user}
        if self._provisioned and delivery.properties.user_id not in publishers:
            error = EnvelopeRefused(
                f"The message claims to come from {header.sender} but was published by the "
                f"broker user {delivery.properties.user_id!r}.",
                code=Refusal.ENVELOPE_BROKER_USER,
            )
            self._refuse(delivery, _Refusal(error, header=header, expose_reason=True))
            return
        previous = self.store.received(str(header.message_id))
        if previous is not None:
            try:
                # A copy claiming a known message id must be the genuine
                # message: a forged one gets neither the stored reply nor a
                # refusal in the original's name.
                authenticate(envelope, me=self.cpas_id, directory=self.directory)
            except GatewayError as exc:
                self._refuse(delivery, _Refusal(exc, header=header, expose_reason=True))
                return
            # Seen before: a redelivery, the sender publishing its outbox
            # again, or a replay. Import nothing; send the stored reply again
            # in case the first one was lost.
            self.stats.add("duplicates")
            if not delivery.redelivered:
                self._journal(Event.REFUSED_INCOMING, header, code=Refusal.ENVELOPE_REPLAY)
                log.info(
                    "message %s from %s seen before: not processed again",
                    header.message_id,
                    header.sender,
                )
            if previous.outcome == Outcome.REJECTED and previous.outcome_code not in _DECLINED:
                # Refused before -- but its dead letter may never have reached
                # the broker (the connection dropped before the confirm): file
                # it again rather than ack it away.
                error = EnvelopeRefused(
                    f"The message was refused before ({previous.outcome_code}).",
                    code=previous.outcome_code or Refusal.ENVELOPE_REFUSED,
                )
                # Only a redelivery gets the stored receipt again: a fresh
                # copy is someone replaying it, and is not answered.
                stored = self._stored_reply(previous.reply) if delivery.redelivered else None
                self._refuse(
                    delivery, _Refusal(error, header=header, expose_reason=False), reply=stored
                )
                return
            self._reply_then_ack(delivery, self._stored_reply(previous.reply))
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
        try:
            handlers[header.type](delivery, header, body)
        except _Refusal as refusal:
            self._refuse(delivery, refusal)

    @staticmethod
    def _stored_reply(data: bytes | None) -> Reply | None:
        return None if data is None else (Envelope.from_xml(data).header, data)

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
        except Exception as exc:  # whatever else a sender's bytes make a library raise
            log.warning("unreadable body in %s: %s", header.message_id, type(exc).__name__)
            error = EnvelopeRefused("The sealed body cannot be read.", code=Refusal.ENVELOPE_BODY)
            raise _Refusal(error, header=header, expose_reason=False, authenticated=True) from None

    def _check_source(self, header: Header, dossier: Dossier) -> None:
        """The CPAS a dossier says it comes from must be the one that signed it."""
        if dossier.source.cpas_id != header.sender:
            error = DossierInvalid(
                f"The dossier names {dossier.source.cpas_id} as its source, but {header.sender} "
                "signed it.",
                code=Refusal.DOSSIER_SOURCE,
            )
            raise _Refusal(error, header=header, expose_reason=False, authenticated=True)

    def _check_can_answer(self, header: Header) -> None:
        """A reply can be sealed to the sender (an active CPAS with a valid encryption key)."""
        try:
            self.directory.encryption_key_for(header.sender)
        except GatewayError as exc:
            raise _Refusal(exc, header=header, expose_reason=True, authenticated=True) from None

    # ----------------------------------------------------------- by type

    def _on_transfer(self, delivery: Delivery, header: Header, body: Body) -> None:
        if self.policy[header.purpose] is Action.REFUSE:
            self._decline(delivery, header, body, Refusal.PURPOSE_NOT_ALLOWED)
            return
        assert body.dossier is not None
        self._check_source(header, body.dossier)
        self._import(delivery, header, body.dossier)

    def _on_request(self, delivery: Delivery, header: Header, body: Body) -> None:
        self._check_can_answer(header)
        action = self.policy[header.purpose]
        outcome, code = Outcome.ANSWERED, None
        if action is Action.REFUSE:
            answer = Body(MessageType.RESPONSE, refusal=RefusalReason.PURPOSE_NOT_ALLOWED)
            outcome, code = Outcome.REFUSED, Refusal.PURPOSE_NOT_ALLOWED
        elif action.holds:
            self.store.hold(
                message_id=str(header.message_id),
                sender=header.sender,
                purpose=header.purpose.value,
                case_reference=header.case_reference,
                envelope=delivery.body,
                expires_at=format_timestamp(header.expires_at),
            )
            answer = Body(MessageType.RESPONSE, refusal=RefusalReason.AWAITING_RELEASE)
            outcome = Outcome.HELD
        else:
            number = body.person_number or ""
            try:
                dossier = self._retry(lambda: self.adapter.export_dossier(number))
            except AdapterError as exc:
                self._adapter_failed(delivery, header, exc)
                return
            if dossier is None:
                answer = Body(MessageType.RESPONSE, refusal=RefusalReason.UNKNOWN_PERSON)
                outcome, code = Outcome.REFUSED, Refusal.REQUEST_UNKNOWN_PERSON
            else:
                answer = Body(MessageType.RESPONSE, dossier=dossier)
        self.stats.add(f"requests.{outcome}")
        response = self._response_header(header)
        reply = (
            response,
            seal(response, answer.to_xml(), keys=self.keys, directory=self.directory).to_xml(),
        )
        self._record(header, outcome, code, reply=reply)
        self._journal_message(Event.RECEIVED, header, body, outcome=outcome, code=code)
        if action.holds:
            self._journal_message(Event.REQUEST_HELD, header, body)
            self._tell_vendor(
                VendorEventKind.REQUEST_HELD,
                header,
                str(header.message_id),
                person_number=body.person_number,
            )
        self._journal_message(Event.RESPONSE_SENT, response, answer)
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
                code=Refusal.ENVELOPE_UNSOLICITED,
            )
            raise _Refusal(error, header=header, expose_reason=True, authenticated=True)
        if request.final and request.outcome != Outcome.EXPIRED:
            error = EnvelopeRefused(
                f"The request {request_id} was answered already ({request.outcome}).",
                code=Refusal.RESPONSE_ALREADY_ANSWERED,
            )
            raise _Refusal(error, header=header, expose_reason=True, authenticated=True)
        if body.dossier is None:
            reason = body.refusal or RefusalReason.UNKNOWN_PERSON
            outcome = (
                Outcome.AWAITING_RELEASE
                if reason is RefusalReason.AWAITING_RELEASE
                else Outcome.REFUSED
            )
            self.store.record_outcome(request_id, outcome, reason.value)
            if outcome == Outcome.REFUSED:
                self._tell_vendor(
                    VendorEventKind.REQUEST_REFUSED, header, request_id, code=reason.value
                )
            self._record(header, Outcome.RECORDED, None)
            self._journal_message(Event.RESPONSE_RECEIVED, header, body)
            self.stats.add(f"responses.{reason.value}")
            self._notify()
            self._defer(lambda: self.broker.ack(delivery))
            return
        self._check_source(header, body.dossier)

        def answered() -> None:
            self._journal_message(Event.RESPONSE_RECEIVED, header, body, outcome=Outcome.IMPORTED)
            self.store.record_outcome(request_id, Outcome.ANSWERED, None)
            self._tell_vendor(VendorEventKind.REQUEST_ANSWERED, header, request_id)
            self.stats.add("responses.dossier")
            self._notify()

        self._import(delivery, header, body.dossier, then=answered)

    def _on_receipt(self, delivery: Delivery, header: Header, body: Body) -> None:
        correlation = str(header.correlation_id or "")
        sent = self.store.outgoing(correlation)
        if sent is None:
            # A receipt for a reply (a response this node gave) has no outbox
            # entry; it is journaled and changes nothing.
            log.info(
                "receipt %s for %s, which is not in the outbox", header.message_id, correlation
            )
        elif sent.recipient != header.sender:
            error = EnvelopeRefused(
                f"The receipt from {header.sender} is for a message this node sent to "
                f"{sent.recipient}.",
                code=Refusal.ENVELOPE_UNSOLICITED,
            )
            raise _Refusal(error, header=header, expose_reason=True, authenticated=True)
        elif sent.final and (sent.outcome, sent.outcome_code) == (body.outcome, body.code):
            # The same outcome told again (the receiver answered a republished
            # copy): nothing changes, nothing to refuse.
            log.info("receipt %s repeats the outcome of %s", header.message_id, correlation)
            self._record(header, Outcome.RECORDED, None)
            self.stats.add("receipts.repeated")
            self._defer(lambda: self.broker.ack(delivery))
            return
        elif sent.final and not (
            sent.outcome == Outcome.REJECTED and body.outcome == Outcome.IMPORTED
        ):
            # Imported is the last word. Rejected may still become imported:
            # the recipient fixed the cause and requeued its dead letter.
            error = EnvelopeRefused(
                f"The outcome of {correlation} was recorded already ({sent.outcome}).",
                code=Refusal.RECEIPT_ALREADY_RECORDED,
            )
            raise _Refusal(error, header=header, expose_reason=True, authenticated=True)
        else:
            self.store.record_outcome(correlation, body.outcome or Outcome.REJECTED, body.code)
            if sent.type == MessageType.TRANSFER.value:
                kind = (
                    VendorEventKind.TRANSFER_IMPORTED
                    if body.outcome == Outcome.IMPORTED
                    else VendorEventKind.TRANSFER_REJECTED
                )
                self._tell_vendor(kind, header, correlation, code=body.code)
        self._record(header, Outcome.RECORDED, None)
        self._journal_message(Event.RECEIPT_RECEIVED, header, body)
        self.stats.add(f"receipts.{body.outcome}")
        self._notify()
        self._defer(lambda: self.broker.ack(delivery))

    # ------------------------------------------------------------ helpers

    def _import(
        self,
        delivery: Delivery,
        header: Header,
        dossier: Dossier,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Queue a received dossier for import with the rest of the batch (see _run_imports)."""
        self._imports.append(_Import(delivery, header, dossier, then))

    def _run_imports(self, imports: list[_Import]) -> list[ImportResult | AdapterError]:
        """Hand the batch's dossiers to the vendor system.

        An adapter that imports in batches gets them all at once (one
        transaction, one flush); if the batch fails, each dossier is tried on
        its own so that one bad dossier does not hold back the others. The
        vendor system away (``adapter.unavailable``) holds the whole batch.
        """
        if len(imports) > 1 and isinstance(self.adapter, BatchImporter):
            batch = [(item.dossier, str(item.header.message_id)) for item in imports]
            importer = self.adapter
            try:
                return list(self._retry(lambda: importer.import_batch(batch)))
            except AdapterError as exc:
                _raise_if_vendor_away(exc)
        results: list[ImportResult | AdapterError] = []
        for item in imports:
            result = self._import_one(item)
            if isinstance(result, AdapterError):
                _raise_if_vendor_away(result)
            results.append(result)
        return results

    def _record_imports(
        self, imports: list[_Import], results: list[ImportResult | AdapterError]
    ) -> None:
        """Record what the vendor system did with each dossier, and answer with a receipt."""
        for item, result in zip(imports, results, strict=True):
            if isinstance(result, AdapterError):
                self._adapter_failed(item.delivery, item.header, result)
                continue
            self.stats.add("imported" if result.created else "duplicates")
            reply = self._receipt(item.header, Outcome.IMPORTED, None)
            self._record(
                item.header,
                Outcome.IMPORTED,
                None,
                reply=reply,
                local_reference=result.local_reference,
            )
            if result.created:
                self._tell_vendor(
                    VendorEventKind.DOSSIER_IMPORTED,
                    item.header,
                    str(item.header.message_id),
                    person_number=item.dossier.person.number,
                    local_reference=result.local_reference,
                )
            if item.then is not None:
                item.then()
            elif result.created or not self._journaled(Event.RECEIVED, item.header):
                # A dossier the vendor already had was journaled when it came
                # first -- unless the node stopped in between.
                body = Body(item.header.type, dossier=item.dossier)
                self._journal_message(Event.RECEIVED, item.header, body, outcome=Outcome.IMPORTED)
            self._reply_then_ack(item.delivery, reply)

    def _import_one(self, item: _Import) -> ImportResult | AdapterError:
        message_id = str(item.header.message_id)
        try:
            return self._retry(
                lambda: self.adapter.import_dossier(item.dossier, message_id=message_id)
            )
        except AdapterError as exc:
            return exc

    def _adapter_failed(self, delivery: Delivery, header: Header, exc: AdapterError) -> None:
        _raise_if_vendor_away(exc)
        if exc.transient:
            # Only this message fails, and it may pass later: a failed attempt.
            self._failed_attempt(delivery, exc, header)
            return
        self._refuse(
            delivery, _Refusal(exc, header=header, expose_reason=False, authenticated=True)
        )

    def _retry(self, action: Callable[[], T]) -> T:
        """Run an adapter call, retrying transient failures with a capped back-off."""

        def retrying_said(state: RetryCallState) -> None:
            if state.attempt_number == 1 and state.outcome is not None:
                log.warning(
                    "the vendor system failed (%s): retrying for up to %.0f s",
                    state.outcome.exception(),
                    self._retry_seconds,
                )

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, AdapterError) and e.transient),
            wait=wait_exponential(multiplier=0.2, max=10),
            stop=stop_after_delay(self._retry_seconds),
            before_sleep=retrying_said,
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
                        f"The adapter failed: {type(exc).__name__}.", code=Refusal.ADAPTER_CRASHED
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

    def _tell_vendor(
        self, kind: VendorEventKind, header: Header, message_id: str, **details: str | None
    ) -> None:
        """Tell the vendor system about ``message_id`` (``header``: the message that says so)."""
        self._vendor_event(
            VendorEvent(
                kind,
                message_id=message_id,
                peer=header.recipient if header.sender == self.cpas_id else header.sender,
                at=format_timestamp(dt.datetime.now(dt.UTC)),
                purpose=header.purpose.value,
                case_reference=header.case_reference,
                **details,
            )
        )

    def _vendor_event(self, event: VendorEvent) -> None:
        """Hand an event to an adapter that takes them. Never fatal: the journal and the API
        hold the same facts, and an event repeated later changes nothing."""
        if not isinstance(self.adapter, ReceivesEvents):
            return
        try:
            self.adapter.receive_event(event)
        except Exception as exc:
            log.warning(
                "the vendor system was not told %s of %s: %s",
                event.kind.value,
                event.message_id,
                getattr(exc, "code", type(exc).__name__),
            )
        else:
            self.stats.add(f"vendor_events.{event.kind.value}")

    def _journal(self, event: Event, header: Header | None = None, **fields: Any) -> None:
        """Record an event in the journal, with what the header says when there is one."""
        _log_event(self.cpas_id, event, header, fields)
        if self.journal is None:
            return
        if header is not None:
            outgoing = header.sender == self.cpas_id
            fields = {
                "message_id": header.message_id,
                "message_type": header.type.value,
                "peer": header.recipient if outgoing else header.sender,
                "purpose": header.purpose.value,
                "case_reference": header.case_reference,
                "correlation_id": header.correlation_id,
                # Another CPAS's social worker, as its pseudonym; ours are given by name.
                "actor": None if outgoing else header.actor,
            } | fields
        self.journal.record(event, **fields)

    def _journal_message(self, event: Event, header: Header, body: Body, **fields: Any) -> None:
        """Journal a message with what its body says about a person.

        The person's number (kept by the journal only as a keyed hash), the
        dossier exactly as sent or received, or the outcome it carries.
        """
        about: dict[str, Any] = {}
        if body.dossier is not None:
            about = {"person_number": body.dossier.person.number, "content": body.dossier.to_xml()}
        elif body.person_number:
            about = {"person_number": body.person_number}
        if body.refusal is not None:
            about["outcome"] = body.refusal.value
        if body.outcome is not None:
            about |= {"outcome": body.outcome, "code": body.code}
        self._journal(event, header, **(about | fields))

    def _journaled(self, event: Event, header: Header) -> bool:
        return self.journal is not None and self.journal.has_entry(event, header.message_id)

    def _journal_batch(self) -> contextlib.AbstractContextManager[None]:
        return self.journal.batch() if self.journal is not None else contextlib.nullcontext()

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
        try:
            sealed = seal(header, body.to_xml(), keys=self.keys, directory=self.directory)
        except GatewayError as exc:
            # No valid key to seal to (expired, being rotated): no receipt.
            log.warning("no receipt for %s: %s", original.message_id, exc.code)
            return None
        self._journal_message(Event.RECEIPT_SENT, header, body)
        self.stats.add("receipts_sent")
        return header, sealed.to_xml()

    def _reply_then_ack(self, delivery: Delivery, reply: Reply | None) -> None:
        """Once the batch is committed: publish the reply, then ack when the broker holds it."""
        self._defer(lambda: self._send_reply_then_ack(delivery, reply))

    def _send_reply_then_ack(self, delivery: Delivery, reply: Reply | None) -> None:
        if reply is None:
            self.broker.ack(delivery)
            return
        header, data = reply

        def settle(f: Future[None]) -> None:
            error = f.exception()
            if isinstance(error, BrokerError) and error.code == Fault.BROKER_UNROUTABLE:
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

    def _decline(self, delivery: Delivery, header: Header, body: Body, code: str) -> None:
        """Refuse a valid message by policy: a rejected receipt, no dead letter."""
        self._journal_message(Event.REFUSED_INCOMING, header, body, code=code)
        log.warning(
            "declined %s %s from %s: %s", header.type.value, header.message_id, header.sender, code
        )
        self.stats.add(f"refused.{code}")
        reply = self._receipt(header, Outcome.REJECTED, code)
        self._record(header, Outcome.REJECTED, code, reply=reply)
        self._reply_then_ack(delivery, reply)

    def _refuse(self, delivery: Delivery, refusal: _Refusal, *, reply: Reply | None = None) -> None:
        """Dead-letter a refused message with its code; tell its sender when it signed it.

        ``reply``: the receipt already signed when the message was first
        refused (a redelivery files the dead letter again and resends it).
        """
        error, header = refusal.error, refusal.header
        log.warning("refused a message: %s", error if refusal.expose_reason else error.code)
        self._journal(
            Event.REFUSED_INCOMING,
            header,
            code=error.code,
            **({} if header else {"message_id": delivery.properties.message_id}),
        )
        self.stats.add("refused")
        self.stats.add(f"refused.{error.code}")
        if header is not None and refusal.authenticated:
            reply = self._receipt(header, Outcome.REJECTED, error.code)
            self._record(header, Outcome.REJECTED, error.code, reply=reply)
        headers = {REFUSAL_CODE_HEADER: error.code}
        if refusal.expose_reason:
            headers[REFUSAL_REASON_HEADER] = error.message
        dead_letter = Outgoing(
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
            self._send_reply_then_ack(delivery, reply)

        self._defer(
            lambda: self.broker.publish_many([dead_letter])[0].add_done_callback(after_dead_letter)
        )


def _parse(data: bytes) -> Envelope:
    """The envelope in a delivery, or a refusal: nothing a publisher sends may raise further."""
    try:
        return Envelope.from_xml(data)
    except GatewayError as exc:
        raise _Refusal(exc, header=None, expose_reason=True) from None
    except Exception as exc:  # a parser's surprise is still the publisher's bytes
        log.warning("unreadable envelope: %s", type(exc).__name__)
        error = EnvelopeRefused(
            "The message cannot be read as an envelope.", code=Refusal.ENVELOPE_UNREADABLE
        )
        raise _Refusal(error, header=None, expose_reason=True) from None


def _log_event(
    cpas_id: str, event: Event, header: Header | None, fields: Mapping[str, Any]
) -> None:
    """One log line per message event, for operators: ids, type, peer, outcome -- no person."""
    if not events_log.isEnabledFor(logging.INFO):
        return
    outgoing = header is not None and header.sender == cpas_id
    peer = fields.get("peer") or (
        None if header is None else header.recipient if outgoing else header.sender
    )
    extra = {
        "cpas": cpas_id,
        "event": event.value,
        "message_id": fields.get("message_id") or (header.message_id if header else None),
        "message_type": fields.get("message_type") or (header.type.value if header else None),
        "peer": peer,
        "outcome": fields.get("outcome"),
        "code": fields.get("code"),
    }
    events_log.info(
        "%s %s %s %s",
        event.value,
        extra["message_type"] or "message",
        extra["message_id"] or "-",
        peer or "-",
        extra=extra,
    )


def build_node(
    config: NodeConfig,
    *,
    adapters: AdapterRegistry | None = None,
    consume: bool = True,
    follow_directory: bool = False,
    load_directory: Callable[[Path, Path], Directory] = load_directory_file,
    broker: BrokerFactory = BrokerClient,
) -> Node:
    """Assemble a node: trust anchor, verified directory, keys, adapter and store.

    :param follow_directory: take the federation's editions live from the
        node's queue of editions: for ``run`` only -- a command acting beside
        a running node must not take an edition from that node's queue.
    :param load_directory: reads and verifies the directory file, as
        :func:`~gateway.directory.load_directory_file` (a process serving
        several CPAS shares one verified edition between them).
    :param broker: makes the node's broker client (default: RabbitMQ's).
    """
    store = Store(config.store, owner=config.cpas_id)
    # Before the adapter: a journal of another node is refused before the
    # vendor system is touched.
    try:
        journal = open_journal(config)
    except BaseException:
        store.close()
        raise
    # The newer of the configured file and the edition received live, never
    # older than one seen before: a replayed old edition could list a key or
    # an institution since removed.
    directory = current_edition(
        store, config.directory, config.trust_anchor, load_file=load_directory
    )
    passphrase = (
        None if config.key_passphrase is None else config.key_passphrase.get_secret_value().encode()
    )
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
        broker_tls=config.tls,
        names=Names(config.namespace),
        delivery_limit=config.delivery_limit,
        prefetch=config.prefetch,
        import_retry_seconds=config.import_retry_seconds,
        policy=config.policy,
        provisioned=config.broker_mode == "provisioned",
        request_ttl=dt.timedelta(seconds=config.request_ttl_seconds),
        consume=consume,
        journal=journal,
        trust_anchor=load_trust_anchor(config.trust_anchor) if follow_directory else None,
        directory_poll=DirectoryPoll(
            config.directory_url, config.directory_poll_seconds, config.directory_url_ca
        )
        if config.directory_url
        else None,
        broker=broker,
    )


def _raise_if_vendor_away(exc: AdapterError) -> None:
    """The vendor system as a whole is away: no message is to blame, hold the batch."""
    if exc.transient and exc.code == VENDOR_UNAVAILABLE:
        raise _Unavailable("vendor system unavailable", exc)
