"""The node's worker thread: deliveries taken in batches, and the node's chores between them.

The broker client's I/O thread hands each delivery over (:meth:`Worker.put`,
which never blocks); the worker takes up to :data:`RECEIVE_BATCH` of them at
a time for :class:`~gateway.node.receive.Receiver`, and every
:data:`SWEEP_SECONDS` does the node's chores between batches (:meth:`Worker.sweep`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

from gateway.broker import Delivery
from gateway.directory_feed import adopt_kept_edition
from gateway.model.errors import StoreUnavailable
from gateway.node.availability import Unavailable

if TYPE_CHECKING:
    from gateway.node.node import Node

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
"""How often the worker does the node's chores (:meth:`Worker.sweep`)."""
RECEIVE_BATCH = 128


class Worker:
    """Runs the receive loop on a thread of the node (see :meth:`Node.guarded_thread`)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._deliveries: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def put(self, delivery: Delivery) -> None:
        """Hand a delivery over (called on the broker client's I/O thread)."""
        self._deliveries.put(delivery)

    def start(self) -> None:
        self._thread = self._node.guarded_thread(self._work, f"worker-{self._node.cpas_id}")
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Finish the batch in hand, then end; deliveries still queued were never acked."""
        self._deliveries.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def sweep(self) -> None:
        """The chores between batches: requests past their expiry -- or, in a further worker
        process of the node (``run --workers N``), the directory edition the first one kept."""
        node = self._node
        if node.primary:
            node.expire_requests()
        elif node.trust_anchor is not None:
            adopt_kept_edition(node, node.trust_anchor)

    def _work(self) -> None:
        node = self._node
        next_sweep = time.monotonic() + SWEEP_SECONDS
        while True:
            batch, stopping = self._next_batch()
            try:
                if batch:
                    node.receiver.process_batch(batch)
                if time.monotonic() >= next_sweep and not stopping:
                    node.availability.until_available(self.sweep)
                    next_sweep = time.monotonic() + SWEEP_SECONDS
            except (StoreUnavailable, Unavailable):
                # Stopping while the store or the vendor is away: what is in
                # hand was never acked and goes back when the connection closes.
                log.warning("stopping with %d deliveries in hand unprocessed", len(batch))
                return
            if stopping:
                return

    def _next_batch(self) -> tuple[list[Delivery], bool]:
        """What the broker has handed over, up to a batch; and whether to stop after it."""
        try:
            first = self._deliveries.get(timeout=1.0)
        except queue.Empty:
            return [], False
        if first is None:
            return [], True
        batch = [first]
        with contextlib.suppress(queue.Empty):
            while len(batch) < RECEIVE_BATCH:
                item = self._deliveries.get_nowait()
                if item is None:
                    return batch, True
                batch.append(item)
        return batch, False
