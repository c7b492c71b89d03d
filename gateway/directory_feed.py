"""The directory distributed live: the federation publishes, every node follows.

The federation publishes each signed edition (:func:`publish_edition`,
``cpas-gateway directory publish``) on the broker's fanout exchange
``<ns>.directory``; ``broker provision`` binds one durable queue of editions
per CPAS to it, lets every node read its own and only the federation's
broker user write to the exchange.

A running node follows its queue (:class:`DirectoryFeed`). Each edition is
verified as at start -- hardened parser, XSD, the federation's signature
against the node's trust anchor -- and refused (journaled
``directory-refused`` with its code; the edition in use stays) when it is
unsigned, forged, not a directory, or older than the edition in use
(``directory.rollback``). A newer one is kept in the node's store (a restart
uses it, even when the configured file is older), put in use by swapping the
one reference the send and receive paths read (``Node.directory``: each
message reads it once per check, so the next message is judged by the new
edition), and journaled ``directory-applied``. The same edition received
again changes nothing.

A node may also poll an ``https://`` address where the federation serves the
current edition (:class:`DirectoryPoll`): what it fetches goes through the
same verification; content fetched before is not looked at again, so a
forged file left on a server is journaled once, not at every poll.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pika
import pika.exceptions
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.broker import BrokerClient, BrokerTLS, Delivery, Names, connect, directory_topology
from gateway.journal import Event, Journal, JournalError
from gateway.model import hardened_xml, keys
from gateway.model.codes import Fault, Outcome
from gateway.model.directory import Directory, check_not_older, load_directory, load_directory_file
from gateway.model.errors import (
    BrokerError,
    ConfigError,
    DirectoryError,
    GatewayError,
    StoreUnavailable,
)
from gateway.store import DIRECTORY_SERIAL, Store


class Node(Protocol):
    """What following the directory needs of a node (:class:`gateway.node.Node` has it all)."""

    cpas_id: str
    names: Names
    amqp_urls: list[str]
    broker_tls: BrokerTLS | None
    store: Store
    journal: Journal | None
    directory: Directory


log = logging.getLogger(__name__)

DEFAULT_NAMES = Names()
RETRY_SECONDS = 2.0
"""How long the feed waits before taking an edition again when the store or journal is away."""


# ------------------------------------------------------------ at start


def current_edition(
    store: Store,
    directory_file: Path,
    trust_anchor: Path,
    *,
    remember: bool = True,
    load_file: Callable[[Path, Path], Directory] = load_directory_file,
) -> Directory:
    """The edition a node starts with: the newer of its configured file and the one it kept.

    Both are verified against the trust anchor. The result is never older than
    the newest edition the node accepted before (``directory.rollback``).
    A kept edition that no longer verifies (the federation's key was
    replaced) is ignored, with a warning. ``remember`` records the edition
    as the newest accepted. ``load_file`` reads and verifies the configured
    file (a process serving several CPAS shares one verified copy).
    """
    anchor = keys.load_trust_anchor(trust_anchor)
    configured = load_file(Path(directory_file), trust_anchor)
    candidates = [configured]
    kept_bytes = store.directory_edition()
    if kept_bytes is not None:
        try:
            candidates.append(load_directory(kept_bytes, anchor))
        except GatewayError as exc:
            log.warning("the directory edition kept in the store is not used: %s", exc)
    edition = max(candidates, key=lambda d: d.serial)
    check_not_older(edition, int(store.get_meta(DIRECTORY_SERIAL) or 0))
    if edition is not configured:
        log.info(
            "directory edition %s received from the federation is in use; the configured "
            "file %s holds edition %s",
            edition.serial,
            directory_file,
            configured.serial,
        )
    if remember:
        store.set_meta(DIRECTORY_SERIAL, str(edition.serial))
    return edition


def adopt_kept_edition(node: Node, trust_anchor: Ed25519PublicKey) -> bool:
    """Put in use the edition another process of this node kept in the store, if newer.

    Of a node's worker processes (``run --workers N``) only the first follows
    the feed: the others look in the shared store between batches. The edition
    is verified again here, against the trust anchor and never older than the
    one in use; the first process journaled it. Returns whether it changed.
    """
    kept = int(node.store.get_meta(DIRECTORY_SERIAL) or 0)
    if kept <= node.directory.serial:
        return False
    signed = node.store.directory_edition()
    if signed is None:
        return False
    try:
        edition = load_directory(signed, trust_anchor, min_serial=node.directory.serial)
    except GatewayError as exc:
        log.warning("the directory edition kept in the store is not used: %s", exc)
        return False
    if edition.serial <= node.directory.serial:
        return False
    was, node.directory = node.directory.serial, edition
    log.info("directory edition %s in use from the next message on (was %s)", edition.serial, was)
    return True


# ------------------------------------------------------------ the node's side


@dataclass(frozen=True)
class FeedOutcome:
    """What the node did with one edition from the feed."""

    applied: bool
    serial: int | None
    code: str | None = None
    """The refusal's code, when refused."""


@dataclass(frozen=True)
class DirectoryPoll:
    """Where the federation serves the current edition over HTTPS, and how often to look."""

    url: str
    interval: float = 300.0
    ca_file: Path | None = None
    """The CA of the server's certificate; ``None``: the system's CAs."""

    def __post_init__(self) -> None:
        if not self.url.startswith("https://"):
            raise ConfigError(
                f"directory_url {self.url!r} is not an https:// address: a node fetches the "
                "directory only over HTTPS.",
                code=Fault.CONFIG_DIRECTORY_URL,
            )


class DirectoryFeed:
    """A node's subscription to the federation's editions (started and stopped by the node).

    :param node: the node whose ``directory`` it replaces.
    :param trust_anchor: the federation's key every edition must be signed with.
    :param provisioned: the broker was provisioned: only check the queue exists.
    :param poll: also poll an HTTPS address for the current edition.
    """

    def __init__(
        self,
        node: Node,
        trust_anchor: Ed25519PublicKey,
        *,
        provisioned: bool = False,
        poll: DirectoryPoll | None = None,
    ) -> None:
        self._node = node
        self._anchor = trust_anchor
        self._deliveries: queue.Queue[Delivery | None] = queue.Queue()
        self._changed = threading.Condition()
        # The broker's feed and the poller may both hand in an edition.
        self._receiving = threading.Lock()
        self._poll = poll
        self._poller = threading.Thread(
            target=self._poll_loop, name=f"directory-poll-{node.cpas_id}", daemon=True
        )
        self._last_fetched: str | None = None
        self.polls = 0
        """HTTPS polls made since start (answered or not)."""
        self.poll_errors: list[str] = []
        """Why polls failed (unreachable, untrusted certificate...), in order."""
        self.refused: list[str] = []
        """The codes of the editions refused since start, in order."""
        self.client = BrokerClient(
            node.amqp_urls,
            directory_topology([node.cpas_id], names=node.names),
            consume=node.names.directory_feed(node.cpas_id),
            on_delivery=self._deliveries.put,
            prefetch=1,
            name=f"directory-{node.cpas_id}",
            passive=provisioned,
            tls=node.broker_tls,
        )
        self._worker = threading.Thread(
            target=self._work, name=f"directory-{node.cpas_id}", daemon=True
        )
        self._stopping = threading.Event()

    def start(self) -> None:
        """Follow the feed; an unreachable broker or queue is retried in the background."""
        self._worker.start()
        if self._poll is not None:
            self._poller.start()
        # The node's messages do not wait for the feed: a broker provisioned
        # before the feed existed leaves the node working on its edition.
        self.client.start(wait=None)

    def stop(self) -> None:
        self._stopping.set()
        self.client.cancel_consumer()
        self._deliveries.put(None)
        if self._worker.is_alive():
            self._worker.join(10)
        if self._poller.is_alive():
            self._poller.join(10)
        self.client.stop()

    def wait_for(self, serial: int, timeout: float) -> bool:
        """Wait until the edition in use is ``serial`` or newer (tests, the demo)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._node.directory.serial >= serial, timeout)

    def wait_for_refusals(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` editions were refused since start."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.refused) >= count, timeout)

    def wait_for_polls(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` HTTPS polls were made since start."""
        with self._changed:
            return self._changed.wait_for(lambda: self.polls >= count, timeout)

    def _poll_loop(self) -> None:
        assert self._poll is not None
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except (StoreUnavailable, JournalError) as exc:
                log.warning("directory edition not taken now (%s): trying again", exc)
                self._last_fetched = None
            self._stopping.wait(self._poll.interval)

    def poll_once(self) -> FeedOutcome | None:
        """Fetch the edition served at the poll address; ``None`` when nothing new was there."""
        assert self._poll is not None
        try:
            data = _fetch(self._poll)
        except GatewayError as exc:
            log.warning("%s", exc.message, extra={"code": exc.code})
            with self._changed:
                self.poll_errors.append(exc.code)
                self.polls += 1
                self._changed.notify_all()
            return None
        digest = hashlib.sha256(data).hexdigest()
        outcome = None
        if digest != self._last_fetched:
            outcome = self.receive(data)
            self._last_fetched = digest
        with self._changed:
            self.polls += 1
            self._changed.notify_all()
        return outcome

    def _work(self) -> None:
        while (delivery := self._deliveries.get()) is not None:
            if not self.client.is_current(delivery):
                continue  # came on a connection since lost: the broker delivers it again
            try:
                self.receive(delivery.body)
            except (StoreUnavailable, JournalError) as exc:
                log.warning("directory edition not taken now (%s): trying again", exc)
                self._stopping.wait(RETRY_SECONDS)
                self.client.reject(delivery, requeue=True)
                continue
            self.client.ack(delivery)

    def receive(self, data: bytes) -> FeedOutcome:
        """Verify one edition and put it in use if it is newer; journal what became of it."""
        with self._receiving:
            return self._receive(data)

    def _receive(self, data: bytes) -> FeedOutcome:
        node = self._node
        in_use = node.directory
        try:
            edition = load_directory(data, self._anchor, min_serial=in_use.serial)
        except GatewayError as exc:
            return self._refuse(exc.code, exc.message)
        except Exception as exc:  # nothing on the feed may stop the node
            log.exception("directory edition refused on an unexpected error")
            return self._refuse(DirectoryError.code, f"{type(exc).__name__}: {exc}")
        if edition.serial == in_use.serial:
            log.debug("directory edition %s received again: already in use", edition.serial)
            return FeedOutcome(False, edition.serial)
        node.store.keep_directory_edition(edition.serial, data)
        with self._changed:
            node.directory = edition
            self._changed.notify_all()
        if node.journal is not None:
            node.journal.record(
                Event.DIRECTORY_APPLIED, outcome=f"edition {edition.serial} (was {in_use.serial})"
            )
        log.info(
            "directory edition %s of %s in use from the next message on (was edition %s)",
            edition.serial,
            edition.issuer,
            in_use.serial,
            extra={
                "cpas": node.cpas_id,
                "event": Event.DIRECTORY_APPLIED.value,
                "outcome": f"edition {edition.serial}",
            },
        )
        return FeedOutcome(True, edition.serial)

    def _refuse(self, code: str, reason: str) -> FeedOutcome:
        if self._node.journal is not None:
            self._node.journal.record(Event.DIRECTORY_REFUSED, outcome=Outcome.REFUSED, code=code)
        log.warning(
            "directory edition refused [%s]: %s; edition %s stays in use",
            code,
            reason,
            self._node.directory.serial,
            extra={
                "cpas": self._node.cpas_id,
                "event": Event.DIRECTORY_REFUSED.value,
                "outcome": "refused",
                "code": code,
            },
        )
        with self._changed:
            self.refused.append(code)
            self._changed.notify_all()
        return FeedOutcome(False, None, code)


def _fetch(poll: DirectoryPoll) -> bytes:
    """The bytes served at the poll address, at most the size the hardened parser accepts."""
    context = ssl.create_default_context(cafile=str(poll.ca_file) if poll.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    request = urllib.request.Request(poll.url, headers={"Accept": "application/xml"})
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            data: bytes = response.read(hardened_xml.MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise DirectoryError(
            f"The directory address {poll.url} answered HTTP {exc.code}.",
            code=Fault.DIRECTORY_FETCH,
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise DirectoryError(
                f"The directory address {poll.url} presented a certificate this node does not "
                f"trust ({reason.verify_message}); set directory_url_ca to the CA that signed it.",
                code=Fault.DIRECTORY_FETCH_UNTRUSTED,
            ) from None
        raise DirectoryError(
            f"The directory address {poll.url} is unreachable ({reason}).",
            code=Fault.DIRECTORY_FETCH,
        ) from None
    return data


# ------------------------------------------------------------ the federation's side


def publish_edition(
    signed: bytes,
    trust_anchor: Ed25519PublicKey,
    *,
    amqp_urls: list[str],
    names: Names = DEFAULT_NAMES,
    tls: BrokerTLS | None = None,
) -> Directory:
    """Publish a signed edition on the directory exchange, confirmed by the broker.

    The edition is verified first, as a node would, so that nothing a node
    would refuse is ever published. Returns the edition published.

    :raises DirectoryError: the edition does not verify against ``trust_anchor``.
    :raises BrokerError: ``broker.access_refused`` when the login may not publish
        editions (only the federation's user may), ``broker.unroutable`` when no
        node's queue is bound to the exchange, or the broker is unreachable.
    """
    edition = load_directory(signed, trust_anchor)
    user = pika.URLParameters(amqp_urls[0]).credentials.username
    connection = connect(amqp_urls, tls)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            names.directory_exchange,
            "",
            signed,
            pika.BasicProperties(
                delivery_mode=pika.DeliveryMode.Persistent,
                content_type="application/xml",
                type="directory",
                message_id=f"directory-edition-{edition.serial}",
                user_id=user,
                timestamp=int(time.time()),
            ),
            mandatory=True,
        )
    except pika.exceptions.ChannelClosedByBroker as closed:
        if closed.reply_code == 403:
            raise BrokerError(
                f"The broker refused {user} publishing on {names.directory_exchange}: only the "
                "federation's broker user (made by `cpas-gateway broker provision`) may.",
                code=Fault.BROKER_ACCESS_REFUSED,
            ) from None
        raise BrokerError(
            f"The broker refused the edition ({closed.reply_code} {closed.reply_text}); "
            f"does {names.directory_exchange} exist? `cpas-gateway broker provision` makes it.",
            code=Fault.BROKER_REFUSED,
        ) from None
    except pika.exceptions.UnroutableError:
        raise BrokerError(
            f"No node's queue is bound to {names.directory_exchange}: nobody would receive "
            "the edition. Run `cpas-gateway broker provision` first.",
            code=Fault.BROKER_UNROUTABLE,
        ) from None
    finally:
        if connection.is_open:
            connection.close()
    log.info("published directory edition %s on %s", edition.serial, names.directory_exchange)
    return edition
