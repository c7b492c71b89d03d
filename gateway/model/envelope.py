"""Envelopes: a readable header, a sealed body and the sender's signature.

Sealing (:func:`seal`): the body XML is encrypted to the recipient's current
encryption key from the directory with HPKE (RFC 9180). The canonical bytes
of the header are the HPKE ``info``, so a body moved under another header
(another recipient, purpose, case or message id) does not open. The sender
signs the header together with the ciphertext with Ed25519.

Opening (:func:`open_envelope`): the recipient checks, in this order and
before any decryption, that the envelope is addressed to it, that the sender
is a CPAS in the directory, that the signature verifies against one of the
sender's signing keys valid when the message was made, and that the message
is neither expired nor from the future beyond the allowed clock skew. Only
then is the body decrypted, validated against the XSD and returned.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final, Literal, overload

from cryptography.exceptions import InvalidSignature
from lxml import etree
from pydantic import Field, field_validator

from gateway.model import hardened_xml
from gateway.model.base import (
    FrozenModel,
    build,
    checked_identifier,
    format_timestamp,
    utc_seconds,
)
from gateway.model.codes import Outcome, Refusal, RefusalReason
from gateway.model.directory import Directory, InstitutionKind, InstitutionStatus
from gateway.model.dossier import OPAQUE_REFERENCE, Dossier
from gateway.model.errors import EnvelopeRefused, GatewayError, SchemaInvalid
from gateway.model.hardened_xml import NS_DOSSIER, NS_ENVELOPE
from gateway.model.identifiers import validate_enterprise_number, validate_person_number
from gateway.model.keys import NodeKeys, hpke_suite, public_encryption_key, public_signing_key
from gateway.model.staff import PSEUDONYM_PATTERN

_E: Final = f"{{{NS_ENVELOPE}}}"
SEAL_CONTEXT: Final = b"cpas-dse/seal/v1\n"
SIGNATURE_CONTEXT: Final = b"cpas-dse/signature/v1\n"

DEFAULT_TTL: Final = dt.timedelta(days=7)
CLOCK_SKEW: Final = dt.timedelta(minutes=5)
"""How far in the future a message's creation time may be before it is refused."""


class MessageType(StrEnum):
    """The four kinds of message."""

    TRANSFER = "transfer"
    REQUEST = "request"
    RESPONSE = "response"
    RECEIPT = "receipt"


class Purpose(StrEnum):
    """The legal missions a message may serve (closed list, schema version 1)."""

    NEW_APPLICATION_INQUIRY = "new-application-inquiry"
    CONTINUITY_AFTER_MOVE = "continuity-after-move"
    COMPETENT_CPAS_DETERMINATION = "competent-cpas-determination"


class Header(FrozenModel):
    """What the broker may read: who, to whom, why, when. Nothing about the person."""

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: MessageType
    sender: str
    recipient: str
    purpose: Purpose
    case_reference: str = Field(pattern=OPAQUE_REFERENCE)
    created_at: dt.datetime
    expires_at: dt.datetime
    correlation_id: uuid.UUID | None = None
    actor: str | None = Field(default=None, pattern=f"^{PSEUDONYM_PATTERN}$")
    """The acting social worker, as a pseudonym only the sending CPAS can resolve."""

    @field_validator("sender", "recipient")
    @classmethod
    def _enterprise(cls, value: str) -> str:
        return checked_identifier(validate_enterprise_number, value)

    @field_validator("created_at", "expires_at")
    @classmethod
    def _utc_seconds(cls, value: dt.datetime) -> dt.datetime:
        return utc_seconds(value)

    @classmethod
    def new(
        cls,
        type: MessageType,
        *,
        sender: str,
        recipient: str,
        purpose: Purpose,
        case_reference: str,
        correlation_id: uuid.UUID | None = None,
        ttl: dt.timedelta = DEFAULT_TTL,
        now: dt.datetime | None = None,
        actor: str | None = None,
    ) -> Header:
        """A header for a new message, made now and expiring after ``ttl``."""
        now = now or dt.datetime.now(dt.UTC)
        return build(
            cls,
            {
                "type": type,
                "sender": sender,
                "recipient": recipient,
                "purpose": purpose,
                "case_reference": case_reference,
                "created_at": now,
                "expires_at": now + ttl,
                "correlation_id": correlation_id,
                "actor": actor,
            },
        )

    def fields(self) -> tuple[tuple[str, str | None], ...]:
        """The header's elements in the XSD's order, as text (``None``: the element is absent)."""
        fields: tuple[tuple[str, str | None], ...] = (
            ("messageId", str(self.message_id)),
            ("type", self.type.value),
            ("sender", self.sender),
            ("recipient", self.recipient),
            ("purpose", self.purpose.value),
            ("caseReference", self.case_reference),
            ("createdAt", format_timestamp(self.created_at)),
            ("expiresAt", format_timestamp(self.expires_at)),
            ("correlationId", None if self.correlation_id is None else str(self.correlation_id)),
        )
        if self.actor is None:
            return fields
        # Only when present: envelopes signed before the element existed still verify.
        return (*fields, ("actor", self.actor))

    def canonical(self) -> bytes:
        """The header as bytes that sealing and signing bind to (fixed order, one field a line)."""
        return _canonical(self)


@functools.lru_cache(maxsize=1024)
def _canonical(header: Header) -> bytes:
    # Remembered for the last headers seen: a message's header is bound into
    # the seal, the signature and their checks, several times each. Equal
    # headers (equal fields) have equal bytes, so the cache cannot mix them up.
    return "".join(f"{name}={value or ''}\n" for name, value in header.fields()).encode()


class Envelope(FrozenModel):
    """A header, a sealed body and a signature, as they travel on the wire."""

    header: Header
    kem: str
    key_id: str
    ciphertext: bytes
    signature_key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.header, self.kem, self.key_id, self.ciphertext)

    def to_xml(self) -> bytes:
        """Serialise to XML that validates against ``envelope.xsd``."""
        root = etree.Element(_E + "envelope", nsmap={None: NS_ENVELOPE})
        root.set("version", "1")
        header = etree.SubElement(root, _E + "header")
        for name, value in self.header.fields():
            if value is not None:
                etree.SubElement(header, _E + name).text = value
        sealed = etree.SubElement(root, _E + "sealed", kem=self.kem, keyId=self.key_id)
        sealed.text = base64.b64encode(self.ciphertext).decode("ascii")
        sig = etree.SubElement(
            root, _E + "signature", keyId=self.signature_key_id, algorithm="ed25519"
        )
        sig.text = base64.b64encode(self.signature).decode("ascii")
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    @classmethod
    def from_xml(cls, data: bytes) -> Envelope:
        """Parse untrusted bytes with the hardened parser and the envelope XSD."""
        root = hardened_xml.parse(data)
        if root.tag != _E + "envelope":
            raise SchemaInvalid(
                "The message is not an envelope of schema version 1.", code=Refusal.SCHEMA_NAMESPACE
            )
        hardened_xml.validate(root, "envelope.xsd")
        # The XSD says: exactly these three, in this order (the parser drops
        # comments and processing instructions).
        header, sealed, sig = root
        assert (header.tag, sealed.tag, sig.tag) == _ENVELOPE_PARTS
        fields = {_field_name(child.tag): child.text or "" for child in header}
        return build(
            cls,
            {
                "header": fields,
                "kem": sealed.get("kem"),
                "key_id": sealed.get("keyId"),
                "ciphertext": _base64(sealed.text or "", "sealed"),
                "signature_key_id": sig.get("keyId"),
                "signature": _base64(sig.text or "", "signature"),
            },
        )


def _base64(text: str, element: str) -> bytes:
    """Decode the base64 of ``element``, accepting only what :meth:`Envelope.to_xml` writes."""
    decoded = hardened_xml.canonical_base64(text)
    if decoded is None:
        raise EnvelopeRefused(
            f"The content of <{element}> is not canonical base64.", code=Refusal.ENVELOPE_ENCODING
        )
    return decoded


_ENVELOPE_PARTS: Final = (_E + "header", _E + "sealed", _E + "signature")


@functools.lru_cache(maxsize=64)
def _field_name(tag: str) -> str:
    """The model's name of a header element: ``{ns}caseReference`` is ``case_reference``."""
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in tag[len(_E) :])


def signed_bytes(header: Header, kem: str, key_id: str, ciphertext: bytes) -> bytes:
    """What the sender signs: the header, the key the body is sealed to, and the ciphertext."""
    digest = hashlib.sha256(ciphertext).hexdigest()
    return (
        SIGNATURE_CONTEXT
        + header.canonical()
        + f"kem={kem}\nkeyId={key_id}\nsha256={digest}\n".encode()
    )


def seal(header: Header, body: bytes, *, keys: NodeKeys, directory: Directory) -> Envelope:
    """Encrypt ``body`` to the recipient named in ``header`` and sign the whole envelope.

    The recipient's encryption key is the newest one the directory holds as
    valid now; during a key rotation new messages use the new key.
    """
    entry = directory.encryption_key_for(header.recipient, header.created_at)
    suite = hpke_suite(entry.algorithm)
    ciphertext = suite.encrypt(
        body,
        public_encryption_key(entry.algorithm, entry.public_key),
        info=SEAL_CONTEXT + header.canonical(),
    )
    signature = keys.signing.sign(signed_bytes(header, entry.algorithm, entry.key_id, ciphertext))
    return Envelope(
        header=header,
        kem=entry.algorithm,
        key_id=entry.key_id,
        ciphertext=ciphertext,
        signature_key_id=keys.signing_key_id,
        signature=signature,
    )


def verify(
    envelope: Envelope, *, me: str, directory: Directory, now: dt.datetime | None = None
) -> None:
    """Every check that needs no private key, cheapest and safest first."""
    authenticate(envelope, me=me, directory=directory)
    check_fresh(envelope.header, now=now)


def authenticate(envelope: Envelope, *, me: str, directory: Directory) -> None:
    """Addressed to ``me``, from an open CPAS, signed with one of its keys valid at the time.

    What a copy of a message seen before must still pass: a signature proves
    who made it, whatever its age.
    """
    h = envelope.header
    if h.recipient != me:
        raise EnvelopeRefused(
            f"The message is addressed to {h.recipient}, not to this CPAS ({me}).",
            code=Refusal.ENVELOPE_WRONG_RECIPIENT,
        )
    sender = directory.get(h.sender)
    if sender is None:
        raise EnvelopeRefused(
            f"The sender {h.sender} is not in the directory.", code=Refusal.ENVELOPE_UNKNOWN_SENDER
        )
    if sender.kind is not InstitutionKind.CPAS or sender.status is InstitutionStatus.CLOSED:
        raise EnvelopeRefused(
            f"The sender {h.sender} is not an open CPAS in the directory.",
            code=Refusal.ENVELOPE_SENDER_NOT_CPAS,
        )
    keys = [
        k
        for k in directory.signing_keys_for(h.sender, h.created_at)
        if k.key_id == envelope.signature_key_id
    ]
    if not keys:
        raise EnvelopeRefused(
            f"The signing key {envelope.signature_key_id} is not a key of {h.sender} valid at "
            f"{format_timestamp(h.created_at)}.",
            code=Refusal.ENVELOPE_SIGNATURE,
        )
    try:
        public_signing_key(keys[0].public_key).verify(envelope.signature, envelope.signed_bytes())
    except InvalidSignature:
        raise EnvelopeRefused(
            f"The signature does not match the message: it was altered or not made by {h.sender}.",
            code=Refusal.ENVELOPE_SIGNATURE,
        ) from None


def check_fresh(h: Header, *, now: dt.datetime | None = None) -> None:
    """Neither expired nor made beyond the allowed clock skew in the future."""
    now = now or dt.datetime.now(dt.UTC)
    if now > h.expires_at:
        raise EnvelopeRefused(
            f"The message expired at {format_timestamp(h.expires_at)}.",
            code=Refusal.ENVELOPE_EXPIRED,
        )
    if h.created_at > now + CLOCK_SKEW:
        raise EnvelopeRefused(
            f"The message claims to be made at {format_timestamp(h.created_at)}, "
            f"beyond the allowed clock skew of {CLOCK_SKEW}.",
            code=Refusal.ENVELOPE_FUTURE,
        )


def decrypt(envelope: Envelope, *, keys: NodeKeys) -> bytes:
    """Decrypt the body with this node's key; call only after :func:`verify`."""
    pair = keys.decryption_key(envelope.key_id)
    try:
        return hpke_suite(envelope.kem).decrypt(
            envelope.ciphertext, pair.private, info=SEAL_CONTEXT + envelope.header.canonical()
        )
    except Exception:
        # HPKE says only "it did not open"; every cause (tampering, a moved
        # header, a wrong key) is the same refusal.
        raise EnvelopeRefused(
            "The sealed body does not open with this CPAS's key.", code=Refusal.ENVELOPE_SEAL
        ) from None


def open_envelope(
    envelope: Envelope,
    *,
    me: str,
    keys: NodeKeys,
    directory: Directory,
    now: dt.datetime | None = None,
) -> bytes:
    """Verify (see :func:`verify`), then decrypt and return the body XML bytes."""
    verify(envelope, me=me, directory=directory, now=now)
    return decrypt(envelope, keys=keys)


# ------------------------------------------------------------------- bodies


ReceiptOutcome = Literal[Outcome.IMPORTED, Outcome.REJECTED]
"""What a receipt may say of a message: the XSD allows these two only."""

_RECEIPT_OUTCOMES: Final[dict[str | None, ReceiptOutcome]] = {
    Outcome.IMPORTED.value: Outcome.IMPORTED,
    Outcome.REJECTED.value: Outcome.REJECTED,
}


@dataclass(frozen=True)
class TransferBody:
    """The content of a transfer: the dossier pushed to the new CPAS."""

    dossier: Dossier
    kind: ClassVar[MessageType] = MessageType.TRANSFER

    def to_xml(self) -> bytes:
        root, part = _body_root(self.kind)
        part.append(self.dossier.to_element())
        return _body_bytes(root)


@dataclass(frozen=True)
class RequestBody:
    """The content of a request: the number of the person whose dossier is asked for."""

    person_number: str
    kind: ClassVar[MessageType] = MessageType.REQUEST

    def to_xml(self) -> bytes:
        root, part = _body_root(self.kind)
        kind, _ = validate_person_number(self.person_number)
        etree.SubElement(part, _E + kind).text = self.person_number
        return _body_bytes(root)


@dataclass(frozen=True)
class ResponseBody:
    """The content of a response: the dossier, or the reason none is given (one of them)."""

    answer: Dossier | RefusalReason
    kind: ClassVar[MessageType] = MessageType.RESPONSE

    def to_xml(self) -> bytes:
        root, part = _body_root(self.kind)
        if isinstance(self.answer, Dossier):
            part.append(self.answer.to_element())
        else:
            etree.SubElement(part, _E + "refusal").text = self.answer.value
        return _body_bytes(root)


@dataclass(frozen=True)
class ReceiptBody:
    """The content of a receipt: what came of a message, and why when it was rejected."""

    outcome: ReceiptOutcome
    code: str | None = None
    kind: ClassVar[MessageType] = MessageType.RECEIPT

    def to_xml(self) -> bytes:
        root, part = _body_root(self.kind)
        etree.SubElement(part, _E + "outcome").text = self.outcome.value
        if self.code:
            etree.SubElement(part, _E + "code").text = self.code
        return _body_bytes(root)


Body = TransferBody | RequestBody | ResponseBody | ReceiptBody
"""The decrypted content of an envelope: one class per kind of message."""


def _body_root(kind: MessageType) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(_E + "body", nsmap={None: NS_ENVELOPE, "d": NS_DOSSIER})
    return root, etree.SubElement(root, _E + kind.value)


def _body_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, encoding="UTF-8")


@overload
def body_from_xml(data: bytes, expected: Literal[MessageType.TRANSFER]) -> TransferBody: ...
@overload
def body_from_xml(data: bytes, expected: Literal[MessageType.REQUEST]) -> RequestBody: ...
@overload
def body_from_xml(data: bytes, expected: Literal[MessageType.RESPONSE]) -> ResponseBody: ...
@overload
def body_from_xml(data: bytes, expected: Literal[MessageType.RECEIPT]) -> ReceiptBody: ...
@overload
def body_from_xml(data: bytes, expected: MessageType) -> Body: ...
def body_from_xml(data: bytes, expected: MessageType) -> Body:
    """Parse a decrypted body; it must be of the kind the header announced."""
    root = hardened_xml.parse(data)
    # The XSD has several global elements: a bare <dossier> or <envelope>
    # validates too, and is not a body.
    if root.tag != _E + "body":
        raise EnvelopeRefused(
            "The sealed content is not a message body.", code=Refusal.ENVELOPE_BODY
        )
    hardened_xml.validate(root, "envelope.xsd")
    part = root[0]
    kind = MessageType(part.tag[len(_E) :])
    if kind is not expected:
        raise EnvelopeRefused(
            f"The header announces a {expected.value} but the body is a {kind.value}.",
            code=Refusal.ENVELOPE_TYPE_MISMATCH,
        )
    # The XSD fixes what each kind holds: its first child is there.
    child = part[0]
    match kind:
        case MessageType.TRANSFER:
            return TransferBody(Dossier.from_element(child))
        case MessageType.REQUEST:
            number = child.text or ""
            try:
                validate_person_number(number)
            except GatewayError as exc:
                raise EnvelopeRefused(exc.message, code=exc.code) from None
            return RequestBody(number)
        case MessageType.RESPONSE:
            if child.tag == _DOSSIER:
                return ResponseBody(Dossier.from_element(child))
            return ResponseBody(RefusalReason(child.text))
        case MessageType.RECEIPT:
            code = part.find(_E + "code")
            return ReceiptBody(_RECEIPT_OUTCOMES[child.text], None if code is None else code.text)


_DOSSIER: Final = f"{{{NS_DOSSIER}}}dossier"


def person_number_in(body: Body) -> str | None:
    """The number of the person a body is about (none in a receipt or a refusal)."""
    match body:
        case TransferBody(dossier) | ResponseBody(Dossier() as dossier):
            return dossier.person.number
        case RequestBody(number):
            return number
    return None
