"""Request expiry: a request still unanswered at its expiry is recorded ``expired``.

The requester is never left in silence: the node's worker sweeps its
unanswered requests every few seconds (:data:`gateway.node.worker.SWEEP_SECONDS`),
journals each expiry and tells the vendor system.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from gateway.adapters import VendorEvent, VendorEventKind
from gateway.journal import Event
from gateway.model.base import format_timestamp
from gateway.model.codes import Outcome, Refusal

if TYPE_CHECKING:
    from gateway.node.node import Node

log = logging.getLogger(__name__)


def expire_requests(node: Node, now: dt.datetime | None = None) -> list[str]:
    """Record as ``expired`` the requests that got no final answer by their expiry."""
    stamp = format_timestamp(now or dt.datetime.now(dt.UTC))
    expired = node.store.unanswered_requests(stamp)
    for entry in expired:
        node.store.record_outcome(entry.message_id, Outcome.EXPIRED, Refusal.REQUEST_EXPIRED)
        node.journaling.event(
            Event.REQUEST_EXPIRED,
            peer=entry.recipient,
            correlation_id=entry.message_id,
            purpose=entry.purpose,
            case_reference=entry.case_reference,
            code=Refusal.REQUEST_EXPIRED,
        )
        log.warning("request %s to %s expired unanswered", entry.message_id, entry.recipient)
        node.vendor.event(
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
        node.stats.add("requests.expired")
    if expired:
        node.outbox.notify()
    return [entry.message_id for entry in expired]
