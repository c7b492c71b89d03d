"""What the API's clients send and get back (JSON bodies, validated by pydantic).

Bodies refuse fields they do not know: a vendor's typo is an error
(``api.invalid``), never a setting silently ignored. A person's number travels
only in bodies, never in a URL, where proxies and logs would keep it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.model.codes import HeldState, Outcome, RefusalGround
from gateway.model.envelope import Purpose

Language = Literal["fr", "nl", "de"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Acting(_Body):
    staff_reference: str | None = Field(
        default=None,
        max_length=64,
        description="The acting social worker's opaque staff reference (never a name or a "
        "national number). Required.",
        examples=["AS-0042"],
    )


class TransferIn(Acting):
    person_number: str = Field(max_length=20, examples=["85073003328"])
    recipient: str = Field(max_length=20, description="Enterprise number of the new CPAS.")
    purpose: Purpose
    case_reference: str | None = Field(
        default=None, max_length=64, description="Default: the case reference of the dossier."
    )


class TransferPreviewIn(Acting):
    person_number: str = Field(max_length=20)
    recipient: str = Field(max_length=20)
    purpose: Purpose
    language: Language | None = Field(default=None, description="Default: the person's own.")
    format: Literal["html", "text"] = "html"


class RequestIn(Acting):
    person_number: str = Field(max_length=20, examples=["85073003328"])
    holder: str = Field(max_length=20, description="Enterprise number of the CPAS asked.")
    purpose: Purpose
    case_reference: str = Field(max_length=64, examples=["LG-2026-17"])


class PreviewIn(Acting):
    language: Language | None = Field(default=None, description="Default: the person's own.")
    format: Literal["html", "text"] = "html"


class ReleaseIn(Acting):
    pass


class RefuseIn(Acting):
    ground: RefusalGround = Field(description="Why, from the closed list (journaled here only).")


class ReportIn(_Body):
    person_number: str = Field(max_length=20)
    language: Language | None = None
    format: Literal["text", "html", "json"] = "html"


class Accepted(BaseModel):
    message_id: str
    recipient: str
    state: str = Field(description="published (the broker has yet to confirm) or confirmed")


class MessageState(BaseModel):
    message_id: str
    direction: Literal["out", "in"]
    type: str
    peer: str
    purpose: str | None = None
    case_reference: str | None = None
    state: str = Field(
        description="out: published, confirmed, held (awaiting release), imported, rejected, "
        "answered, refused, expired; in: imported, rejected, answered, held, refused, recorded"
    )
    code: str | None = None
    words: str | None = Field(default=None, description="The code in the requested language.")


class Institution(BaseModel):
    id: str
    name: str


class HeldRequestOut(BaseModel):
    request_id: str
    requester: Institution
    purpose: str
    case_reference: str
    person_number: str
    received_at: str
    expires_at: str
    releases_needed: int
    released_by: list[str]


class Decision(BaseModel):
    request_id: str
    state: Literal[HeldState.RELEASED, Outcome.AWAITING_SECOND_RELEASE, HeldState.REFUSED]
    response_id: str | None = None
    released_by: list[str] = []


class Exchange(BaseModel):
    """One step of a case, as this node's journal recorded it (never the dossier itself)."""

    at: str
    event: str
    event_words: str = Field(description="The event in the requested language.")
    direction: str = Field(description="out, in, or local (a decision taken here)")
    message_id: str | None = None
    type: str | None = None
    peer: Institution | None = None
    purpose: str | None = None
    outcome: str | None = None
    code: str | None = None
    words: str | None = Field(default=None, description="The outcome or code, in words.")
    actor: str | None = Field(
        default=None,
        description="This CPAS's staff reference, or the pseudonym another CPAS's envelope gave.",
    )


class Problem(BaseModel):
    """Every refusal: a stable code and a sentence (never a traceback)."""

    code: str
    message: str
