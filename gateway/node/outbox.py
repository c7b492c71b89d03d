"""The outbox as it settles: broker confirms recorded, the unconfirmed published again,
outcomes waited for.

Every message is recorded in the outbox before it is published. The broker's
confirm marks it (many per transaction, on the confirmer thread); whatever a
lost connection left unconfirmed is published again on the next one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from gateway.broker import Outgoing
from gateway.model.errors import StoreUnavailable
from gateway.store import OutboxEntry

if TYPE_CHECKING:
    from gateway.node.node import Node

log = logging.getLogger(__name__)


class Outbox:
    """Tracks a node's published messages until the broker holds them and their outcome is in."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.confirmed: queue.Queue[str | None] = queue.Queue()
        """Confirmed message ids for the confirmer thread (``None``: stop)."""
        # Outbox entries published on the current connection and not yet
        # settled: a republish after a reconnection skips them.
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()
        self._outcomes = threading.Condition()

    def claim(self, message_ids: Iterable[str]) -> None:
        """These are about to be published: a republish meanwhile must skip them."""
        with self._in_flight_lock:
            self._in_flight.update(message_ids)

    def release(self, message_ids: Iterable[str]) -> None:
        """These were not recorded after all (the store refused them)."""
        with self._in_flight_lock:
            self._in_flight.difference_update(message_ids)

    def outgoing(self, recipient: str, type: str, message_id: str, data: bytes) -> Outgoing:
        """A sealed message as the broker takes it, under this node's broker identity."""
        node = self._node
        return Outgoing(
            node.names.route,
            recipient,
            data,
            message_id=message_id,
            message_type=type,
            user_id=node.amqp_user,
        )

    def on_confirmed(self, message_id: str, future: Future[None]) -> None:
        # Runs on the broker's I/O thread: hand the write to the confirmer.
        with self._in_flight_lock:
            self._in_flight.discard(message_id)
        if future.exception() is None:
            self.confirmed.put(message_id)
        else:
            log.warning("message %s not confirmed: %s", message_id, future.exception())

    def confirm_loop(self) -> None:
        """Mark confirmed messages in the outbox, many per transaction."""
        node = self._node
        while True:
            batch = [self.confirmed.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 1000:
                    batch.append(self.confirmed.get_nowait())
            ids = [mid for mid in batch if mid is not None]
            if ids:
                # Stopping while the store is away: unmarked, they are
                # published again at the next start (the receiver deduplicates).
                with contextlib.suppress(StoreUnavailable):
                    node.availability.until_available(
                        functools.partial(node.store.mark_confirmed, ids), pause=False
                    )
            for _ in batch:
                self.confirmed.task_done()
            if None in batch:
                return

    def republish_unconfirmed(self) -> None:
        """Publish again what the outbox holds unconfirmed (after a reconnection)."""
        node = self._node
        try:
            unconfirmed = node.availability.until_available(node.store.unconfirmed, pause=False)
        except StoreUnavailable:
            return  # stopping
        with self._in_flight_lock:
            pending = [e for e in unconfirmed if e.message_id not in self._in_flight]
            self._in_flight.update(e.message_id for e in pending)
        futures = node.broker.publish_many(
            [self.outgoing(e.recipient, e.type, e.message_id, e.envelope) for e in pending]
        )
        for entry, future in zip(pending, futures, strict=True):
            future.add_done_callback(functools.partial(self.on_confirmed, entry.message_id))
        if pending:
            log.info("republished %d unconfirmed messages from the outbox", len(pending))

    def wait_confirmed(self, message_ids: Iterable[str], timeout: float) -> set[str]:
        """Wait until the broker holds every message; return the ids still unconfirmed."""
        wanted = set(message_ids)
        deadline = time.monotonic() + timeout
        while True:
            missing = wanted & {e.message_id for e in self._node.store.unconfirmed()}
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
            entries = {mid: self._node.store.outgoing(mid) for mid in wanted}
            done = [e for e in entries.values() if e is not None and e.final]
            remaining = deadline - time.monotonic()
            if len(done) == len(wanted) or remaining <= 0:
                return {mid: e for mid, e in entries.items() if e is not None}
            with self._outcomes:
                self._outcomes.wait(min(remaining, 0.5))

    def notify(self) -> None:
        """An outcome was recorded (or the node stopped): wake whoever waits for outcomes."""
        with self._outcomes:
            self._outcomes.notify_all()
