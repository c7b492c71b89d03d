"""The social worker's desk: held requests listed, previewed, released or refused.

A request whose purpose the policy holds waits here, sealed as it arrived;
it is opened only to show or answer it. A two-person hold is released by two
distinct social workers: the first release is recorded, the dossier goes at
the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.journal import Event
from gateway.model.codes import Fault, HeldState, Outcome, RefusalGround
from gateway.model.dossier import Dossier
from gateway.model.envelope import (
    Envelope,
    Header,
    MessageType,
    Purpose,
    RefusalReason,
    ResponseBody,
    body_from_xml,
    decrypt,
)
from gateway.model.errors import GatewayError
from gateway.model.staff import StaffReference
from gateway.node.send import Sent
from gateway.store import HeldRequest

if TYPE_CHECKING:
    from gateway.node.node import Node


@dataclass(frozen=True)
class HeldView:
    """A held request as a social worker sees it (the person number decrypted on demand)."""

    request: HeldRequest
    person_number: str


class Desk:
    """Decisions on held requests (see the :class:`gateway.node.Node` methods of the same names)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def held_requests(self) -> list[HeldView]:
        """Requests waiting for a social worker's decision, with the person they concern."""
        return [HeldView(held, self._held_person(held)) for held in self._node.store.held()]

    def release(self, message_id: str, *, staff: StaffReference | None = None) -> Sent | None:
        """Release a held request; ``None`` while a two-person hold awaits its second release."""
        node = self._node
        held = self._held_waiting(message_id)
        if not self._enough_releases(held, staff):
            return None
        header, number = self._take_held(message_id, HeldState.RELEASED, staff)
        dossier = node.vendor.export(number)
        if dossier is None:
            body = ResponseBody(RefusalReason.UNKNOWN_PERSON)
        else:
            body = ResponseBody(dossier)
        return node.sender.send(node.sender.response_header(header, staff), body, staff=staff)

    def refuse_held(
        self,
        message_id: str,
        *,
        staff: StaffReference | None = None,
        ground: RefusalGround | None = None,
    ) -> Sent:
        """Refuse a held request: the requester is told only that a social worker refused."""
        node = self._node
        self._held_waiting(message_id)
        header, _ = self._take_held(message_id, HeldState.REFUSED, staff, ground)
        body = ResponseBody(RefusalReason.REFUSED_BY_SOCIAL_WORKER)
        return node.sender.send(node.sender.response_header(header, staff), body, staff=staff)

    def preview_release(self, message_id: str, *, staff: StaffReference) -> Dossier | None:
        """The dossier releasing this held request would send now (``None``: unknown person),
        journaled as shown to the person."""
        node = self._node
        held = self._held_waiting(message_id)
        dossier = node.vendor.export(self._held_person(held))
        if dossier is not None:
            purpose = Purpose(held.purpose)
            node.sender.journal_shown(dossier, held.sender, purpose, held.case_reference, staff)
        return dossier

    def releases(self, message_id: str) -> list[str]:
        """The staff references that released a held request so far."""
        return self._node.store.releases(message_id)

    def _held_waiting(self, message_id: str) -> HeldRequest:
        held = self._node.store.held_request(message_id)
        if held is None or held.state != HeldState.HELD:
            raise GatewayError(
                f"No request {message_id} is waiting for a decision.", code=Fault.PENDING_UNKNOWN
            )
        if held.sender == self._node.cpas_id:
            raise GatewayError(
                "A CPAS never releases or refuses its own request.", code=Fault.HOLD_OWN_REQUEST
            )
        return held

    def _enough_releases(self, held: HeldRequest, staff: StaffReference | None) -> bool:
        """Record one social worker's release; whether the policy's count is reached."""
        node = self._node
        needed = node.policy[Purpose(held.purpose)].releases_needed
        if staff is None:
            if needed > 1:
                raise GatewayError(
                    "A two-person hold is released by two named social workers: give the "
                    "staff reference.",
                    code=Fault.STAFF_MISSING,
                )
            return True
        if staff in node.store.releases(held.message_id):
            raise GatewayError(
                "This social worker released the request already: a second, different social "
                "worker must release it.",
                code=Fault.HOLD_SAME_STAFF,
            )
        released = node.store.add_release(held.message_id, staff)
        if len(released) >= needed:
            return True
        header = Envelope.from_xml(held.envelope).header
        node.journaling.event(
            Event.REQUEST_RELEASED,
            header,
            person_number=self._held_person(held),
            outcome=Outcome.AWAITING_SECOND_RELEASE,
            actor=staff,
        )
        node.stats.add("requests.first_release")
        return False

    def _take_held(
        self,
        message_id: str,
        decision: str,
        staff: StaffReference | None = None,
        ground: RefusalGround | None = None,
    ) -> tuple[Header, str]:
        """Record the decision; the request's header and person number, to answer it."""
        node = self._node
        held = self._held_waiting(message_id)
        number = self._held_person(held)
        if not node.store.decide(message_id, decision):
            raise GatewayError(
                f"The request {message_id} was decided meanwhile.", code=Fault.PENDING_UNKNOWN
            )
        node.stats.add(f"requests.{decision}")
        header = Envelope.from_xml(held.envelope).header
        event = Event.REQUEST_RELEASED if decision == HeldState.RELEASED else Event.REQUEST_REFUSED
        outcome = None if ground is None else ground.value
        node.journaling.event(event, header, person_number=number, actor=staff, outcome=outcome)
        return header, number

    def _held_person(self, held: HeldRequest) -> str:
        # The request stays sealed at rest; it is opened only to show or answer it.
        envelope = Envelope.from_xml(held.envelope)
        body = body_from_xml(decrypt(envelope, keys=self._node.keys), MessageType.REQUEST)
        return body.person_number
