"""The node itself: its parts wired together, its threads, its lifecycle and its health.

:class:`Node` is a façade: it holds what the parts read (keys, the directory
in force, adapter, store, journal, broker client, policy) and delegates each
job to one part -- :mod:`~gateway.node.send`, :mod:`~gateway.node.outbox`,
:mod:`~gateway.node.receive`, :mod:`~gateway.node.handlers`,
:mod:`~gateway.node.replies`, :mod:`~gateway.node.desk`,
:mod:`~gateway.node.expiry`. The parts read the node's attributes when they
act, so a new directory edition (or another store) set on the node is what
they use next.

Threads: the broker client's I/O thread hands deliveries to the worker
(:mod:`~gateway.node.worker`: batches, and the expiry sweep); the confirmer
marks confirmed messages in the outbox; each reconnection starts a republish
of what the outbox holds unconfirmed. A thread that dies of an unexpected
error stops the node (:attr:`Node.failed`): it never idles while holding
deliveries.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.adapters import Adapter, AdapterRegistry, load_adapters
from gateway.broker import Broker, BrokerClient, BrokerFactory, BrokerTLS, Names, cpas_topology
from gateway.config import NodeConfig
from gateway.directory_feed import DirectoryFeed, DirectoryPoll, current_edition
from gateway.journal import Journal, open_journal
from gateway.model.codes import PolicyAction, RefusalGround
from gateway.model.directory import Directory, load_directory_file
from gateway.model.dossier import Dossier
from gateway.model.envelope import Purpose
from gateway.model.keys import NodeKeys, load_node_keys, load_trust_anchor
from gateway.model.staff import StaffReference
from gateway.node.availability import Availability
from gateway.node.desk import Desk, HeldView
from gateway.node.expiry import expire_requests
from gateway.node.handlers import Handlers
from gateway.node.journaling import NodeJournal
from gateway.node.outbox import Outbox
from gateway.node.receive import Receiver
from gateway.node.replies import Replies
from gateway.node.send import STORE_WAIT_SECONDS, Sender, Sent
from gateway.node.stats import Health, NodeStats
from gateway.node.vendor import VendorCalls
from gateway.node.worker import Worker
from gateway.store import OutboxEntry, Store

log = logging.getLogger(__name__)

DEFAULT_NAMES = Names()
DEFAULT_REQUEST_TTL = dt.timedelta(hours=24)

Action = PolicyAction
"""What a node does with a request for a purpose (:class:`gateway.model.codes.PolicyAction`)."""


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
    :param primary: ``False`` for a further worker process (``run --workers N``):
        it leaves the directory feed and the expiry sweep to the first.
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
        primary: bool = True,
    ) -> None:
        self.cpas_id = cpas_id
        self.primary = primary
        self.journal = journal
        self.directory = directory
        self.keys = keys
        self.adapter = adapter
        self.store = store
        self.names = names
        self.stats = NodeStats()
        self.policy = {purpose: Action.AUTO for purpose in Purpose} | dict(policy or {})
        self.provisioned = provisioned
        self.request_ttl = request_ttl
        self.attempt_limit = delivery_limit
        """Failed attempts at one message before the node refuses it."""
        self.stopping = threading.Event()
        """Set by stop(): ends the waits for an unavailable store or vendor system."""
        self.failed = threading.Event()
        """Set when a thread of the node died of an unexpected error; the node is stopped."""
        self.failure: BaseException | None = None
        # RabbitMQ checks the user_id property against the login: a node can
        # only publish under its own broker identity.
        self.amqp_urls = list(amqp_urls)
        self.broker_tls = broker_tls
        self.amqp_user = urllib.parse.unquote(
            urllib.parse.urlparse(amqp_urls[0]).username or "guest"
        )
        # The parts, each reading the node's attributes when it acts.
        self.availability = Availability(self)
        self.vendor = VendorCalls(self, import_retry_seconds)
        self.journaling = NodeJournal(self)
        self.outbox = Outbox(self)
        self.sender = Sender(self)
        self.replies = Replies(self)
        self.handlers = Handlers(self)
        self.receiver = Receiver(self)
        self.desk = Desk(self)

        self.worker = Worker(self)
        self._confirmer = self.guarded_thread(self.outbox.confirm_loop, f"confirm-{cpas_id}")
        self._consume = consume
        self.broker: Broker = broker(
            amqp_urls,
            cpas_topology([cpas_id], names=names),
            consume=names.inbox(cpas_id) if consume else None,
            on_delivery=self.worker.put,
            prefetch=prefetch,
            name=f"node-{cpas_id}",
            passive=provisioned,
            on_ready=self._on_broker_ready,
            tls=broker_tls,
        )
        self.directory_feed = (
            DirectoryFeed(self, trust_anchor, provisioned=provisioned, poll=directory_poll)
            if trust_anchor is not None and consume and primary
            else None
        )
        self.trust_anchor = trust_anchor

    @property
    def import_retry_seconds(self) -> float:
        """How long a transient failure of the vendor system is retried."""
        return self.vendor.retry_seconds

    @import_retry_seconds.setter
    def import_retry_seconds(self, seconds: float) -> None:
        self.vendor.retry_seconds = seconds

    # ------------------------------------------------------------ lifecycle

    def start(self, *, wait: float = 15.0) -> Node:
        """Connect, declare, start consuming, and publish what the outbox still holds."""
        if self._consume:
            self.worker.start()
        self._confirmer.start()
        if self.directory_feed is not None:
            self.directory_feed.start()
        # Once connected (and after every reconnection) the outbox's
        # unconfirmed messages are published again: see _on_broker_ready.
        self.broker.start(wait=wait)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop: take no new work, finish the message in hand, close."""
        self.stopping.set()
        if self.directory_feed is not None:
            self.directory_feed.stop()
        self.broker.cancel_consumer()
        self.worker.stop(timeout)
        # Deliveries still queued were never acked: closing returns them to
        # the broker for the next start.
        self.broker.stop()
        if self._confirmer.is_alive():
            self.outbox.confirmed.put(None)
            self._confirmer.join(timeout)

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def health(self) -> Health:
        """What the node is doing now: ``ok``, waiting for something, or stopped by an error."""
        if self.failed.is_set():
            return Health("failed", f"{type(self.failure).__name__}: {self.failure}")
        waiting = self.availability.waiting_for()
        if waiting is not None:
            return waiting
        if not self.broker.is_ready:
            return Health("broker unavailable", self.broker.addresses)
        return Health("ok")

    def guarded_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
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
        self.stopping.set()
        # Closing the connection hands every unacknowledged delivery back.
        self.broker.stop()
        self.outbox.notify()

    def _on_broker_ready(self) -> None:
        # On the I/O thread: what a lost connection left unconfirmed in the
        # outbox goes out again on the new one, without waiting for a restart.
        self.guarded_thread(self.outbox.republish_unconfirmed, f"republish-{self.cpas_id}").start()

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

        Raises :class:`~gateway.model.errors.DestinationRefused` before anything is
        published when the directory says ``to`` may not receive a dossier.
        ``staff``: the acting social worker (journaled; a pseudonym in the header).
        """
        return self.sender.send_transfer(
            person_number, to, purpose, case_reference=case_reference, staff=staff
        )

    def preview_transfer(
        self, person_number: str, to: str, purpose: Purpose, *, staff: StaffReference
    ) -> Dossier:
        """The dossier a transfer to ``to`` would carry now, journaled as shown to the person."""
        return self.sender.preview_transfer(person_number, to, purpose, staff=staff)

    def send_all(
        self,
        to: str,
        purpose: Purpose,
        *,
        max_in_flight: int = 2000,
        progress: Callable[[int, int], None] | None = None,
        store_wait: float = STORE_WAIT_SECONDS,
        share: tuple[int, int] = (0, 1),
    ) -> list[str]:
        """Transfer every person the vendor system holds to ``to`` (a merger, a caseload move);
        resumable (see :meth:`Sender.send_all <gateway.node.send.Sender.send_all>`)."""
        return self.sender.send_all(to, purpose, max_in_flight, progress, store_wait, share)

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
        return self.sender.send_request(
            person_number, to, purpose, case_reference, ttl=ttl, staff=staff
        )

    def wait_confirmed(self, message_ids: Iterable[str], timeout: float) -> set[str]:
        """Wait until the broker holds every message (first publish or a republish).

        Returns the ids still unconfirmed at the timeout (empty when all are held).
        """
        return self.outbox.wait_confirmed(message_ids, timeout)

    def wait_for_outcomes(
        self, message_ids: Iterable[str], timeout: float
    ) -> dict[str, OutboxEntry]:
        """Wait until every message has its final outcome (or the timeout); return what is known."""
        return self.outbox.wait_for_outcomes(message_ids, timeout)

    def expire_requests(self, now: dt.datetime | None = None) -> list[str]:
        """Record as ``expired`` the requests that got no final answer by their expiry."""
        return expire_requests(self, now)

    # -------------------------------------------------- social worker's desk

    def held_requests(self) -> list[HeldView]:
        """Requests waiting for a social worker's decision, with the person they concern."""
        return self.desk.held_requests()

    def release(self, message_id: str, *, staff: StaffReference | None = None) -> Sent | None:
        """A social worker releases a held request: the dossier (or 'unknown person') goes out.

        Under a two-person hold the first release is recorded and ``None``
        returned; the dossier goes at the release of a second, distinct staff
        reference. Codes: ``pending.unknown``, ``hold.own_request`` (this CPAS
        asked itself), ``staff.missing`` (a two-person hold needs names),
        ``hold.same_staff`` (the same social worker cannot release twice).
        """
        return self.desk.release(message_id, staff=staff)

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
        return self.desk.refuse_held(message_id, staff=staff, ground=ground)

    def preview_release(self, message_id: str, *, staff: StaffReference) -> Dossier | None:
        """The dossier releasing this held request would send now (``None``: unknown person),
        journaled as shown to the person."""
        return self.desk.preview_release(message_id, staff=staff)

    def releases(self, message_id: str) -> list[str]:
        """The staff references that released a held request so far."""
        return self.desk.releases(message_id)


def build_node(
    config: NodeConfig,
    *,
    adapters: AdapterRegistry | None = None,
    consume: bool = True,
    follow_directory: bool = False,
    load_directory: Callable[[Path, Path], Directory] = load_directory_file,
    broker: BrokerFactory = BrokerClient,
    primary: bool = True,
) -> Node:
    """Assemble a node: trust anchor, verified directory, keys, adapter and store.

    :param follow_directory: take the federation's editions live from the
        node's queue of editions: for ``run`` only -- a command acting beside
        a running node must not take an edition from that node's queue.
    :param load_directory: reads and verifies the directory file, as
        :func:`~gateway.model.directory.load_directory_file` (a process serving
        several CPAS shares one verified edition between them).
    :param broker: makes the node's broker client (default: RabbitMQ's).
    :param primary: see :class:`Node` (``False``: a second or later worker process).
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
        primary=primary,
    )
