"""Waiting for what a message is not to blame for: the store, the journal, the vendor system.

While one of them is away, the node keeps the deliveries in hand
unacknowledged, pauses consumption and tries again with a growing back-off;
:meth:`Availability.waiting_for` says what it waits for (the node's health).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from gateway.model.errors import GatewayError, StoreUnavailable
from gateway.node.stats import Health

if TYPE_CHECKING:
    from gateway.node.node import Node

log = logging.getLogger(__name__)

PAUSE_MAX_SECONDS = 5.0
"""Longest wait between two tries while the store or the vendor system is away."""

T = TypeVar("T")


class Unavailable(Exception):
    """The store, the journal or the vendor system is away: hold the deliveries, try later."""

    def __init__(self, status: str, error: GatewayError) -> None:
        super().__init__(str(error))
        self.status = status
        self.error = error


def _unavailable(exc: BaseException) -> Unavailable:
    if isinstance(exc, Unavailable):
        return exc
    assert isinstance(exc, StoreUnavailable)
    return Unavailable("store unavailable", exc)


class Availability:
    """Runs a node's actions until what they need is back; remembers who waits for what."""

    def __init__(self, node: Node) -> None:
        self._node = node
        # What each of the node's threads waits for (thread name -> Health).
        self._waiting: dict[str, Health] = {}
        self._lock = threading.Lock()

    def waiting_for(self) -> Health | None:
        """What one of the node's threads waits for now, if any."""
        with self._lock:
            return next(iter(self._waiting.values()), None)

    def until_available(
        self, action: Callable[[], T], *, pause: bool = True, give_up: float | None = None
    ) -> T:
        """Run ``action`` until the store, the journal and the vendor system let it finish.

        While one of them is away, the node waits with a growing back-off
        (consumption paused when ``pause``: deliveries in hand stay
        unacknowledged). Raises the last error once the node is stopping, or
        after ``give_up`` seconds.
        """
        node = self._node
        name = threading.current_thread().name

        def waiting(state: RetryCallState) -> None:
            assert state.outcome is not None
            away = _unavailable(state.outcome.exception() or RuntimeError())
            with self._lock:
                first = name not in self._waiting
                self._waiting[name] = Health(away.status, str(away.error))
            if first:
                log.warning(
                    "%s (%s): %s, retrying until it is back",
                    away.status,
                    away.error,
                    "consumption paused, deliveries in hand kept" if pause else "waiting",
                )
                node.stats.add(away.status.replace(" ", "_"))
                if pause:
                    node.broker.pause_consumer()

        def sleep(seconds: float) -> None:
            node.stopping.wait(seconds)

        retrying = Retrying(
            retry=retry_if_exception_type((StoreUnavailable, Unavailable)),
            wait=wait_exponential(multiplier=0.25, max=PAUSE_MAX_SECONDS),
            stop=lambda state: (
                node.stopping.is_set()
                or (give_up is not None and (state.seconds_since_start or 0) >= give_up)
            ),
            sleep=sleep,
            before_sleep=waiting,
            reraise=True,
        )
        result = retrying(action)
        with self._lock:
            recovered = self._waiting.pop(name, None)
        if recovered is not None:
            log.warning("%s no more: resuming", recovered.status)
            if pause and not node.stopping.is_set():
                node.broker.resume_consumer()
        return result
