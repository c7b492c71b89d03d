"""The node's journal entries and their log lines: what the header and body say, no more."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.journal import Event
from gateway.model.dossier import Dossier
from gateway.model.envelope import (
    Body,
    Header,
    ReceiptBody,
    RefusalReason,
    ResponseBody,
    TransferBody,
    person_number_in,
)

if TYPE_CHECKING:
    from gateway.node.node import Node

events_log = logging.getLogger("gateway.node.events")
"""One line per message event (sent, received, receipt, refusal...): see gateway.logs."""


class NodeJournal:
    """Records a node's events in its journal (when it has one) and logs one line each."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def event(self, event: Event, header: Header | None = None, **fields: Any) -> None:
        """Record an event in the journal, with what the header says when there is one."""
        node = self._node
        _log_event(node.cpas_id, event, header, fields)
        if node.journal is None:
            return
        if header is not None:
            outgoing = header.sender == node.cpas_id
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
        node.journal.record(event, **fields)

    def message(self, event: Event, header: Header, body: Body, **fields: Any) -> None:
        """Journal a message with what its body says about a person.

        The person's number (kept by the journal only as a keyed hash), the
        dossier exactly as sent or received, or the outcome it carries.
        """
        about: dict[str, Any] = {}
        if number := person_number_in(body):
            about["person_number"] = number
        match body:
            case TransferBody(dossier) | ResponseBody(Dossier() as dossier):
                about["content"] = dossier.to_xml()
            case ResponseBody(RefusalReason() as reason):
                about["outcome"] = reason.value
            case ReceiptBody(outcome, code):
                about |= {"outcome": outcome, "code": code}
        self.event(event, header, **(about | fields))

    def has(self, event: Event, header: Header) -> bool:
        journal = self._node.journal
        return journal is not None and journal.has_entry(event, header.message_id)

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """One transaction of the journal (nothing when the node keeps none)."""
        journal = self._node.journal
        return journal.batch() if journal is not None else contextlib.nullcontext()


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
