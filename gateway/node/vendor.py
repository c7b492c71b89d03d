"""Calls to the vendor system through the adapter: retried when transient, never a crash."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from gateway.adapters import ReceivesEvents, VendorEvent, VendorEventKind
from gateway.model.base import format_timestamp
from gateway.model.codes import Refusal
from gateway.model.dossier import Dossier
from gateway.model.envelope import Header
from gateway.model.errors import AdapterError, GatewayError
from gateway.node.availability import Unavailable

if TYPE_CHECKING:
    from gateway.node.node import Node

log = logging.getLogger(__name__)

T = TypeVar("T")


class VendorCalls:
    """The node's adapter calls: retries, exports, and the events the vendor system is told."""

    def __init__(self, node: Node, retry_seconds: float) -> None:
        self._node = node
        self.retry_seconds = retry_seconds
        """How long a transient adapter failure is retried."""

    def retry(self, action: Callable[[], T]) -> T:
        """Run an adapter call, retrying transient failures with a capped back-off."""

        def retrying_said(state: RetryCallState) -> None:
            if state.attempt_number == 1 and state.outcome is not None:
                log.warning(
                    "the vendor system failed (%s): retrying for up to %.0f s",
                    state.outcome.exception(),
                    self.retry_seconds,
                )

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, AdapterError) and e.transient),
            wait=wait_exponential(multiplier=0.2, max=10),
            stop=stop_after_delay(self.retry_seconds),
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

    def export(self, person_number: str) -> Dossier | None:
        """The person's dossier as the vendor system holds it now (``None``: unknown)."""
        return self.retry(lambda: self._node.adapter.export_dossier(person_number))

    def tell(
        self, kind: VendorEventKind, header: Header, message_id: str, **details: str | None
    ) -> None:
        """Tell the vendor system about ``message_id`` (``header``: the message that says so)."""
        cpas_id = self._node.cpas_id
        self.event(
            VendorEvent(
                kind,
                message_id=message_id,
                peer=header.recipient if header.sender == cpas_id else header.sender,
                at=format_timestamp(dt.datetime.now(dt.UTC)),
                purpose=header.purpose.value,
                case_reference=header.case_reference,
                **details,
            )
        )

    def event(self, event: VendorEvent) -> None:
        """Hand an event to an adapter that takes them. Never fatal: the journal and the API
        hold the same facts, and an event repeated later changes nothing."""
        adapter = self._node.adapter
        if not isinstance(adapter, ReceivesEvents):
            return
        try:
            adapter.receive_event(event)
        except Exception as exc:
            log.warning(
                "the vendor system was not told %s of %s: %s",
                event.kind.value,
                event.message_id,
                getattr(exc, "code", type(exc).__name__),
            )
        else:
            self._node.stats.add(f"vendor_events.{event.kind.value}")


def raise_if_vendor_away(exc: AdapterError) -> None:
    """The vendor system as a whole is away: no message is to blame, hold the batch."""
    if exc.transient and exc.code == Refusal.ADAPTER_UNAVAILABLE:
        raise Unavailable("vendor system unavailable", exc)
