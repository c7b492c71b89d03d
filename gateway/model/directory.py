"""The signed directory of institutions, and the one answer to "may this id receive?".

The federation publishes an XML directory (``schemas/xsd/directory.xsd``)
listing every CPAS with its status and public keys, and institutions of other
kinds so that a refusal can say what they are. Nodes accept it only through
:func:`load_directory`: hardened parser, XSD, the federation's Ed25519
signature checked against the node's trust anchor, then the model's own
checks (check digits, unique ids, successors that exist, key ids that match
their keys, validity periods that do not end before they start).

What is signed: the C14N 2.0 canonical form, with *TrimTextNodes* on and
comments left out (lxml ``tostring(method="c14n2", strip_text=True)``), of the
document without its ``signature`` element. C14N 2.0 is exclusive by nature
(only namespace declarations in use are written), and trimming text nodes makes
the signature independent of indentation, so a directory can be pretty-printed
for review; every character of every name, id, status, date and key is covered.

:meth:`Directory.may_receive` is the only function that decides whether an
institution may receive a dossier: an active CPAS with an encryption key valid
at that moment. Everything else is refused with a stable code and a reason
that names what the institution is instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Self, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from lxml import etree
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.model import hardened_xml, keys, municipalities
from gateway.model.codes import N_, Fault, Refusal, Worded
from gateway.model.dossier import ContactPoint, Language, format_timestamp
from gateway.model.dossier import build as build_model
from gateway.model.errors import DestinationRefused, DirectoryError, GatewayError
from gateway.model.hardened_xml import NS_DIRECTORY
from gateway.model.identifiers import make_enterprise_number, validate_enterprise_number

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

SCHEMA_VERSION: Final = "1"
_NS: Final = f"{{{NS_DIRECTORY}}}"

LABEL = r"^\S(.*\S)?$"
Label = Annotated[str, Field(pattern=LABEL, max_length=120)]

DEFAULT_KEY_VALIDITY: Final = dt.timedelta(days=730)
"""How long a key listed from a node's ``public.json`` stays valid, unless the input says."""


class InstitutionKind(Worded):
    """Kind of institution; only ``cpas`` can ever receive a dossier.

    Beside each kind, the phrase a refusal and the person's report use (an
    English message id, translated in the report's catalogues).
    """

    CPAS = "cpas", N_("a CPAS")
    JUDICIAL = "judicial", N_("a judicial authority")
    POLICE = "police", N_("a police service")
    SOCIAL_SECURITY = "social-security", N_("a social-security institution")
    EMPLOYMENT = "employment", N_("an employment service")
    TAX = "tax", N_("a tax administration")
    OTHER = "other", N_("an institution of another kind")

    @property
    def description(self) -> str:
        """What the kind is, as a phrase for a refusal ("a police service")."""
        return self.words


class InstitutionStatus(StrEnum):
    """Whether an institution still exists on its own."""

    ACTIVE = "active"
    MERGED = "merged"
    CLOSED = "closed"


ENCRYPTION_ALGORITHMS: Final = frozenset(keys.KEMS)
SIGNING_ALGORITHMS: Final = frozenset({keys.SIGNING_ALGORITHM})


def _utc_seconds(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise PydanticCustomError(Refusal.TIME_NAIVE, "A timestamp must carry its time zone.")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _moment(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        raise ValueError("a moment must carry its time zone")
    return at


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyEntry(_Model):
    """A public key listed for an institution, with its validity period.

    A key is valid from ``valid_from`` (included) to ``valid_until`` (excluded).
    """

    key_id: str
    algorithm: str
    public_key: bytes
    valid_from: dt.datetime
    valid_until: dt.datetime

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return _utc_seconds(value)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.algorithm not in ENCRYPTION_ALGORITHMS | SIGNING_ALGORITHMS:
            raise PydanticCustomError(
                Fault.DIRECTORY_KEY_ALGORITHM,
                "Key {id}: {algorithm} is not a supported algorithm.",
                {"id": self.key_id, "algorithm": self.algorithm},
            )
        try:
            if self.algorithm == keys.SIGNING_ALGORITHM:
                keys.public_signing_key(self.public_key)
            else:
                keys.public_encryption_key(self.algorithm, self.public_key)
        except GatewayError as exc:
            raise PydanticCustomError(
                exc.code, "Key {id}: {message}", {"id": self.key_id, "message": exc.message}
            ) from None
        if self.key_id != keys.key_id(self.public_key):
            raise PydanticCustomError(
                Fault.DIRECTORY_KEY_ID,
                "Key {id} does not match its public key, whose id is {actual}.",
                {"id": self.key_id, "actual": keys.key_id(self.public_key)},
            )
        if self.valid_from >= self.valid_until:
            raise PydanticCustomError(
                Fault.DIRECTORY_KEY_VALIDITY,
                "Key {id} is valid until {until}, which is not after its start {start}.",
                {
                    "id": self.key_id,
                    "until": format_timestamp(self.valid_until),
                    "start": format_timestamp(self.valid_from),
                },
            )
        return self

    @classmethod
    def for_key(
        cls,
        algorithm: str,
        public_key: bytes,
        valid_from: dt.datetime,
        valid_until: dt.datetime,
    ) -> KeyEntry:
        """A key entry whose id is computed from the key."""
        return build(
            cls,
            {
                "key_id": keys.key_id(public_key),
                "algorithm": algorithm,
                "public_key": public_key,
                "valid_from": valid_from,
                "valid_until": valid_until,
            },
        )

    def valid_at(self, at: dt.datetime) -> bool:
        """Whether the key may be used at ``at`` (an aware datetime)."""
        return self.valid_from <= at < self.valid_until


class Institution(_Model):
    """One institution of the directory."""

    id: str
    kind: InstitutionKind
    names: Annotated[dict[Language, Label], Field(min_length=1)]
    municipality: Annotated[str, Field(pattern=r"^[0-9]{5}$")] | None = None
    status: InstitutionStatus = InstitutionStatus.ACTIVE
    merged_into: str | None = None
    contact: ContactPoint | None = None
    """A CPAS's social service, as the person's report shows it (never a dossier's own)."""
    signing_keys: Annotated[list[KeyEntry], Field(max_length=8)] = []
    encryption_keys: Annotated[list[KeyEntry], Field(max_length=8)] = []

    @field_validator("id", "merged_into")
    @classmethod
    def _enterprise_number(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_enterprise_number(value)
        except GatewayError as exc:
            raise PydanticCustomError(exc.code, exc.message) from None

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        merged = self.status is InstitutionStatus.MERGED
        if merged and self.merged_into is None:
            raise PydanticCustomError(
                Fault.DIRECTORY_MERGED_INTO,
                "{id} is merged but does not say into which institution.",
                {"id": self.id},
            )
        if not merged and self.merged_into is not None:
            raise PydanticCustomError(
                Fault.DIRECTORY_MERGED_INTO,
                "{id} names a successor but its status is {status}, not merged.",
                {"id": self.id, "status": self.status.value},
            )
        if self.merged_into == self.id:
            raise PydanticCustomError(
                Fault.DIRECTORY_MERGED_INTO, "{id} cannot be merged into itself.", {"id": self.id}
            )
        for entry in self.signing_keys:
            if entry.algorithm not in SIGNING_ALGORITHMS:
                raise PydanticCustomError(
                    Fault.DIRECTORY_KEY_ALGORITHM,
                    "{id}: signing key {key} is a {algorithm} key.",
                    {"id": self.id, "key": entry.key_id, "algorithm": entry.algorithm},
                )
        for entry in self.encryption_keys:
            if entry.algorithm not in ENCRYPTION_ALGORITHMS:
                raise PydanticCustomError(
                    Fault.DIRECTORY_KEY_ALGORITHM,
                    "{id}: encryption key {key} is a {algorithm} key.",
                    {"id": self.id, "key": entry.key_id, "algorithm": entry.algorithm},
                )
        return self

    def name(self, lang: str | None = None) -> str:
        """The name in ``lang``; failing that in French, Dutch, then German, whichever exists."""
        for candidate in (lang, Language.FR, Language.NL, Language.DE):
            if candidate is not None and candidate in self.names:
                return self.names[Language(candidate)]
        return next(iter(self.names.values()))

    @property
    def label(self) -> str:
        """``id (name)``, as refusals and logs show an institution."""
        return f"{self.id} ({self.name()})"


@dataclass(frozen=True)
class Verdict:
    """The directory's answer to "may this id receive a dossier?"."""

    allowed: bool
    code: str
    reason: str


class Directory(_Model):
    """One edition of the directory, as the federation signed it."""

    issuer: Label
    issued_at: dt.datetime
    serial: Annotated[int, Field(ge=1)]
    institutions: Annotated[list[Institution], Field(min_length=1)]

    _by_id: dict[str, Institution] = PrivateAttr(default_factory=dict)

    @field_validator("issued_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return _utc_seconds(value)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        seen: dict[str, Institution] = {}
        key_owner: dict[str, str] = {}
        for institution in self.institutions:
            if institution.id in seen:
                raise PydanticCustomError(
                    Fault.DIRECTORY_DUPLICATE_ID,
                    "{id} is listed twice.",
                    {"id": institution.id},
                )
            seen[institution.id] = institution
            for entry in [*institution.signing_keys, *institution.encryption_keys]:
                # A key shared by two institutions would let one open or sign
                # what is meant for the other.
                if entry.key_id in key_owner:
                    raise PydanticCustomError(
                        Fault.DIRECTORY_DUPLICATE_KEY,
                        "Key {key} is listed for {first} and again for {second}.",
                        {
                            "key": entry.key_id,
                            "first": key_owner[entry.key_id],
                            "second": institution.id,
                        },
                    )
                key_owner[entry.key_id] = institution.id
        for institution in self.institutions:
            if institution.merged_into is not None and institution.merged_into not in seen:
                raise PydanticCustomError(
                    Fault.DIRECTORY_MERGED_INTO,
                    "{id} is merged into {successor}, which the directory does not list.",
                    {"id": institution.id, "successor": institution.merged_into},
                )
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._by_id.update((institution.id, institution) for institution in self.institutions)

    # ------------------------------------------------------------ queries

    def get(self, institution_id: str) -> Institution | None:
        """The institution with this enterprise number, or ``None``."""
        return self._by_id.get(institution_id)

    def may_receive(self, institution_id: str, at: dt.datetime | None = None) -> Verdict:
        """Whether a dossier may be sent to ``institution_id`` at ``at`` (default: now).

        Allowed only for an active CPAS with an encryption key valid at ``at``.
        Codes: ``directory.ok``, ``directory.unknown``, ``directory.not_cpas``,
        ``directory.closed``, ``directory.merged``, ``directory.no_key``.
        """
        at = _moment(at)
        institution = self.get(institution_id)
        if institution is None:
            return Verdict(
                False,
                Refusal.DIRECTORY_UNKNOWN,
                f"{institution_id} is not in the directory (edition {self.serial}); "
                "nothing is sent to an institution it does not list.",
            )
        if institution.kind is not InstitutionKind.CPAS:
            return Verdict(
                False,
                Refusal.DIRECTORY_NOT_CPAS,
                f"{institution.id} is {institution.kind.description} "
                f"({institution.name()}), not a CPAS.",
            )
        if institution.status is InstitutionStatus.CLOSED:
            return Verdict(
                False,
                Refusal.DIRECTORY_CLOSED,
                f"{institution.label} is closed and no longer receives dossiers.",
            )
        if institution.status is InstitutionStatus.MERGED:
            successor = self.get(institution.merged_into or "")
            into = successor.label if successor else str(institution.merged_into)
            return Verdict(
                False,
                Refusal.DIRECTORY_MERGED,
                f"{institution.label} no longer exists on its own: it merged into {into}.",
            )
        if not any(entry.valid_at(at) for entry in institution.encryption_keys):
            return Verdict(
                False,
                Refusal.DIRECTORY_NO_KEY,
                f"{institution.label} has no encryption key valid at "
                f"{format_timestamp(at)}, so nothing can be sealed for it.",
            )
        return Verdict(True, "directory.ok", f"{institution.label} is an active CPAS.")

    def check_destination(self, institution_id: str, at: dt.datetime | None = None) -> Institution:
        """The institution, when it may receive at ``at``; else :class:`DestinationRefused`.

        The refusal carries the code and reason of :meth:`may_receive`.
        """
        verdict = self.may_receive(institution_id, at)
        if not verdict.allowed:
            raise DestinationRefused(verdict.reason, code=verdict.code)
        institution = self.get(institution_id)
        assert institution is not None  # may_receive allowed it, so it is listed
        return institution

    def encryption_key_for(self, institution_id: str, at: dt.datetime | None = None) -> KeyEntry:
        """The key to seal for ``institution_id`` at ``at``: the newest one valid then.

        During a rotation both keys are valid and new messages use the new one.
        The destination is checked first (:meth:`check_destination`), so no key
        is ever handed out for an institution that may not receive.
        """
        at = _moment(at)
        institution = self.check_destination(institution_id, at)
        valid = [entry for entry in institution.encryption_keys if entry.valid_at(at)]
        return max(valid, key=lambda entry: (entry.valid_from, entry.valid_until, entry.key_id))

    def signing_keys_for(
        self, institution_id: str, at: dt.datetime | None = None
    ) -> list[KeyEntry]:
        """The signing keys of ``institution_id`` valid at ``at``, newest first.

        Several during a rotation. Empty when the institution is unknown or has
        no key valid then: a signature from it cannot be trusted.
        """
        at = _moment(at)
        institution = self.get(institution_id)
        if institution is None:
            return []
        valid = [entry for entry in institution.signing_keys if entry.valid_at(at)]
        return sorted(valid, key=lambda entry: entry.valid_from, reverse=True)

    def cpas_ids(self) -> list[str]:
        """The enterprise numbers of every active CPAS, sorted."""
        return sorted(
            institution.id
            for institution in self.institutions
            if institution.kind is InstitutionKind.CPAS
            and institution.status is InstitutionStatus.ACTIVE
        )

    # ---------------------------------------------------------------- XML

    def to_element(self) -> etree._Element:
        """The unsigned directory as an XML element (namespace ``urn:be:cpas:dse:directory:1``)."""
        root = etree.Element(_NS + "directory", nsmap={None: NS_DIRECTORY})
        root.set("schemaVersion", SCHEMA_VERSION)
        _sub(root, "issuer", self.issuer)
        _sub(root, "issuedAt", format_timestamp(self.issued_at))
        _sub(root, "serial", str(self.serial))
        listing = etree.SubElement(root, _NS + "institutions")
        for institution in self.institutions:
            el = etree.SubElement(listing, _NS + "institution")
            _sub(el, "id", institution.id)
            _sub(el, "kind", institution.kind.value)
            for lang in Language:
                if lang in institution.names:
                    _sub(el, "name", institution.names[lang]).set("lang", lang.value)
            if institution.municipality is not None:
                _sub(el, "municipality", institution.municipality)
            _sub(el, "status", institution.status.value)
            if institution.merged_into is not None:
                _sub(el, "mergedInto", institution.merged_into)
            if institution.contact is not None:
                contact = etree.SubElement(el, _NS + "contact")
                _sub(contact, "mailbox", institution.contact.mailbox)
                if institution.contact.phone is not None:
                    _sub(contact, "phone", institution.contact.phone)
            for tag, entries in (
                ("signingKey", institution.signing_keys),
                ("encryptionKey", institution.encryption_keys),
            ):
                for entry in entries:
                    key_el = _sub(el, tag, base64.b64encode(entry.public_key).decode("ascii"))
                    key_el.set("id", entry.key_id)
                    key_el.set("algorithm", entry.algorithm)
                    key_el.set("validFrom", format_timestamp(entry.valid_from))
                    key_el.set("validUntil", format_timestamp(entry.valid_until))
        return root

    def to_xml(self) -> bytes:
        """The unsigned directory as UTF-8 XML; :func:`sign_directory` makes the signed one."""
        return hardened_xml.to_bytes(self.to_element())

    @classmethod
    def from_element(cls, root: etree._Element) -> Directory:
        """Build the model from an element that passed the XSD; any signature is ignored."""
        institutions = []
        for el in root.iterfind(f"{_NS}institutions/{_NS}institution"):
            institutions.append(
                {
                    "id": _text(el, "id"),
                    "kind": _text(el, "kind"),
                    "names": {n.get("lang"): n.text or "" for n in el.iterfind(_NS + "name")},
                    "municipality": _text(el, "municipality"),
                    "status": _text(el, "status"),
                    "merged_into": _text(el, "mergedInto"),
                    "contact": _contact(el.find(_NS + "contact")),
                    "signing_keys": [_key(k) for k in el.iterfind(_NS + "signingKey")],
                    "encryption_keys": [_key(k) for k in el.iterfind(_NS + "encryptionKey")],
                }
            )
        data = {
            "issuer": _text(root, "issuer"),
            "issued_at": _text(root, "issuedAt"),
            "serial": _text(root, "serial"),
            "institutions": institutions,
        }
        return build(cls, data)


# ------------------------------------------------------------ signature


def signed_form(root: etree._Element) -> bytes:
    """The bytes the federation signs: C14N 2.0 (trimmed text, no comments) without the signature.

    ``root`` must not hold a ``signature`` element; :func:`load_directory`
    removes it before calling this.
    """
    return etree.tostring(root, method="c14n2", with_comments=False, strip_text=True)


def sign_directory(directory: Directory, federation_key: Ed25519PrivateKey) -> bytes:
    """Sign ``directory`` with the federation's key; return the signed XML document."""
    root = directory.to_element()
    signature = federation_key.sign(signed_form(root))
    el = _sub(root, "signature", base64.b64encode(signature).decode("ascii"))
    el.set("keyId", keys.key_id(keys.signing_public_raw(federation_key)))
    el.set("algorithm", keys.SIGNING_ALGORITHM)
    log.info(
        "signed directory edition %s (%d institutions) with key %s",
        directory.serial,
        len(directory.institutions),
        el.get("keyId"),
    )
    return hardened_xml.to_bytes(root)


def load_directory(
    data: bytes, trust_anchor: Ed25519PublicKey, *, min_serial: int | None = None
) -> Directory:
    """Parse, validate and verify a signed directory; the only way a node should read one.

    Raises :class:`~gateway.model.errors.XmlRefused` or :class:`~gateway.model.errors.SchemaInvalid`
    for bad XML, :class:`DirectoryError` ``directory.unsigned`` when there is no
    signature, ``directory.signature`` when it was not made by the trust
    anchor over exactly this content, ``directory.rollback`` when its serial
    is lower than ``min_serial`` (an older edition replayed), and the model's
    own codes for inconsistent content.
    """
    root = hardened_xml.parse(data)
    hardened_xml.validate(root, "directory.xsd")
    signature = root.find(_NS + "signature")
    if signature is None:
        raise DirectoryError(
            "The directory is not signed; a node accepts only a directory signed by "
            "its federation.",
            code=Fault.DIRECTORY_UNSIGNED,
        )
    anchor_id = keys.key_id(trust_anchor.public_bytes_raw())
    signer_id = signature.get("keyId")
    if signer_id != anchor_id:
        raise DirectoryError(
            f"The directory is signed with key {signer_id}, but this node trusts only "
            f"the federation key {anchor_id}.",
            code=Fault.DIRECTORY_SIGNATURE,
        )
    value = hardened_xml.canonical_base64((signature.text or "").strip())
    if value is None:
        raise DirectoryError(
            "The directory's signature is not canonical base64.", code=Fault.DIRECTORY_SIGNATURE
        )
    root.remove(signature)
    try:
        trust_anchor.verify(value, signed_form(root))
    except InvalidSignature:
        raise DirectoryError(
            "The directory's signature does not match its content: "
            "it was changed after the federation signed it.",
            code=Fault.DIRECTORY_SIGNATURE,
        ) from None
    directory = Directory.from_element(root)
    check_not_older(directory, min_serial)
    log.info(
        "loaded directory edition %s of %s (%d institutions)",
        directory.serial,
        directory.issuer,
        len(directory.institutions),
    )
    return directory


def check_not_older(directory: Directory, min_serial: int | None) -> None:
    """Refuse (``directory.rollback``) an edition older than ``min_serial``.

    An old edition is genuinely signed: replayed, it could list a key or a
    CPAS the federation has since removed.
    """
    if min_serial is not None and directory.serial < min_serial:
        raise DirectoryError(
            f"This is edition {directory.serial} of the directory, older than edition "
            f"{min_serial} already in use; an older edition is never taken back.",
            code=Fault.DIRECTORY_ROLLBACK,
        )


class SeenEdition:
    """The newest directory edition a tool accepted, kept in a small file.

    ``run`` keeps it in the node's store; ``directory verify`` in a file per
    trust anchor under the user's state folder (``$XDG_STATE_HOME``,
    default ``~/.local/state``), so that an older edition presented later is
    refused as ``run`` would refuse it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_anchor(cls, trust_anchor: Path) -> SeenEdition:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        anchor_id = keys.key_id(keys.load_trust_anchor(trust_anchor).public_bytes_raw())
        return cls(Path(state) / "cpas-gateway" / f"directory-{anchor_id}.serial")

    @property
    def serial(self) -> int:
        """The newest serial seen; 0 when none was."""
        try:
            return int(self.path.read_text(encoding="ascii").strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise DirectoryError(
                f"The record of the last directory edition seen ({self.path}) is unreadable: "
                f"{exc}.",
                code=Fault.DIRECTORY_SEEN,
            ) from None

    def remember(self, serial: int) -> None:
        """Record ``serial`` if it is newer than the one kept."""
        if serial <= self.serial:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(f"{serial}\n", encoding="ascii")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise DirectoryError(
                f"The last directory edition seen cannot be recorded in {self.path}: {exc}.",
                code=Fault.DIRECTORY_SEEN,
            ) from None


def load_directory_file(
    path: Path, trust_anchor: Path, *, min_serial: int | None = None
) -> Directory:
    """:func:`load_directory` for a file, verified against the trust anchor in a file."""
    anchor = keys.load_trust_anchor(trust_anchor)
    return load_directory(hardened_xml.read_file(Path(path)), anchor, min_serial=min_serial)


def read_unsigned(data: bytes) -> Directory:
    """Parse and validate a directory *without* checking any signature, to build or re-sign it.

    Never use this to decide where a dossier may go: use :func:`load_directory`.
    """
    root = hardened_xml.parse(data)
    hardened_xml.validate(root, "directory.xsd")
    return Directory.from_element(root)


# ------------------------------------------------------------- building


def build_directory(
    *,
    issuer: str,
    serial: int,
    institutions: Iterable[Institution | Mapping[str, Any]],
    issued_at: dt.datetime | None = None,
) -> Directory:
    """A directory from institutions (models or plain mappings), checked like a loaded one."""
    return build(
        Directory,
        {
            "issuer": issuer,
            "serial": serial,
            "issued_at": issued_at or dt.datetime.now(dt.UTC),
            "institutions": list(institutions),
        },
    )


def directory_from_spec(
    spec: Mapping[str, Any], base_dir: Path | None = None, *, now: dt.datetime | None = None
) -> Directory:
    """Build a directory from the JSON input of ``cpas-gateway directory build``.

    The format is described in ``docs/directory.md``. ``publicKeys`` paths are
    relative to ``base_dir``. Raises :class:`DirectoryError` ``directory.input``
    for input that is not in that format.
    """
    base_dir = base_dir or Path()
    try:
        issued_at = _parse_time(spec["issuedAt"]) if spec.get("issuedAt") else _moment(now)
        lifetime = dt.timedelta(days=int(spec.get("keyValidityDays", DEFAULT_KEY_VALIDITY.days)))
        institutions = [
            _institution_from_spec(item, base_dir, issued_at, lifetime)
            for item in spec["institutions"]
        ]
        issuer, serial = spec["issuer"], spec["serial"]
    except KeyError as exc:
        raise DirectoryError(
            f"The directory input lacks the field {exc.args[0]!r}.", code=Fault.DIRECTORY_INPUT
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise DirectoryError(
            f"The directory input is not in the expected format: {exc}.", code=Fault.DIRECTORY_INPUT
        ) from None
    return build_directory(
        issuer=issuer, serial=serial, institutions=institutions, issued_at=issued_at
    )


def _institution_from_spec(
    item: Mapping[str, Any], base_dir: Path, issued_at: dt.datetime, lifetime: dt.timedelta
) -> dict[str, Any]:
    validity = item.get("keyValidity", {})
    signing = [_key_from_spec(k, issued_at, lifetime) for k in item.get("signingKeys", [])]
    encryption = [_key_from_spec(k, issued_at, lifetime) for k in item.get("encryptionKeys", [])]
    if item.get("publicKeys"):
        public = keys.read_public_keys(base_dir / item["publicKeys"])
        signing.append(_key_from_spec(public["signingKey"] | validity, issued_at, lifetime))
        encryption.extend(
            _key_from_spec(entry | validity, issued_at, lifetime)
            for entry in public["encryptionKeys"]
        )
    return {
        "id": item["id"],
        # No default kind: a police service listed without one must never become a CPAS.
        "kind": item["kind"],
        "names": item["names"],
        "municipality": item.get("municipality"),
        "status": item.get("status", InstitutionStatus.ACTIVE.value),
        "merged_into": item.get("mergedInto"),
        "contact": item.get("contact"),
        "signing_keys": signing,
        "encryption_keys": encryption,
    }


def _key_from_spec(
    entry: Mapping[str, Any], issued_at: dt.datetime, lifetime: dt.timedelta
) -> dict[str, Any]:
    raw = entry["publicKey"]
    if isinstance(raw, str):
        raw = base64.b64decode(raw, validate=True)
    valid_from = entry.get("validFrom") or entry.get("createdAt") or issued_at
    valid_from = _parse_time(valid_from) if isinstance(valid_from, str) else valid_from
    valid_until = entry.get("validUntil") or valid_from + lifetime
    valid_until = _parse_time(valid_until) if isinstance(valid_until, str) else valid_until
    return {
        "key_id": entry.get("id") or keys.key_id(raw),
        "algorithm": entry["algorithm"],
        "public_key": raw,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def _parse_time(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"the time {value!r} has no time zone (add Z for UTC)")
    return moment


# --------------------------------------------------------------- sample

SAMPLE_ISSUER: Final = "CPAS federations (Brulocalis, Fédération des CPAS, VVSG) - sample directory"

PAJOTTEGEM_NIS: Final = "23106"
PAJOTTEGEM_MERGED: Final = ("23023", "23024", "23032")  # Galmaarden, Gooik, Herne (2025)
SAMPLE_CLOSED: Final = ("11007",)  # Borsbeek: a district of Antwerp since 2025

# Non-CPAS institutions, listed so that a refusal can say what they are. Their
# enterprise numbers are synthetic, like the CPAS ones (seeds above any NIS code).
SAMPLE_OTHERS: Final = (
    (
        900001,
        InstitutionKind.JUDICIAL,
        {
            "fr": "Parquet du procureur du Roi de Bruxelles",
            "nl": "Parket van de procureur des Konings te Brussel",
        },
    ),
    (
        900002,
        InstitutionKind.POLICE,
        {"fr": "Police fédérale", "nl": "Federale Politie", "de": "Föderale Polizei"},
    ),
    (
        900003,
        InstitutionKind.SOCIAL_SECURITY,
        {
            "fr": "Office national de sécurité sociale (ONSS)",
            "nl": "Rijksdienst voor Sociale Zekerheid (RSZ)",
            "de": "Landesamt für soziale Sicherheit (LSS)",
        },
    ),
    (
        900004,
        InstitutionKind.SOCIAL_SECURITY,
        {
            "fr": "Institut national d'assurance maladie-invalidité (INAMI)",
            "nl": "Rijksinstituut voor ziekte- en invaliditeitsverzekering (RIZIV)",
            "de": "Landesinstitut für Kranken- und Invalidenversicherung (LIKIV)",
        },
    ),
    (
        900005,
        InstitutionKind.EMPLOYMENT,
        {
            "fr": "Office national de l'emploi (ONEM)",
            "nl": "Rijksdienst voor Arbeidsvoorziening (RVA)",
            "de": "Landesamt für Arbeitsbeschaffung (LfA)",
        },
    ),
    (
        900006,
        InstitutionKind.TAX,
        {"fr": "SPF Finances", "nl": "FOD Financiën", "de": "FÖD Finanzen"},
    ),
    (
        900007,
        InstitutionKind.OTHER,
        {
            "fr": "SPP Intégration sociale",
            "nl": "POD Maatschappelijke Integratie",
            "de": "ÖPD Sozialeingliederung",
        },
    ),
)

KeysFor = Callable[[str], tuple[bytes, bytes]]
"""Given an institution id, its (Ed25519 public key, X25519 public key), both raw."""


def cpas_names(name_fr: str, name_nl: str, name_de: str | None = None) -> dict[str, str]:
    """The names of a municipality's CPAS: "CPAS de X", "OCMW X" and, with German, "ÖSHZ X"."""
    names = {"fr": f"CPAS {_french_of(name_fr)}", "nl": f"OCMW {name_nl}"}
    if name_de:
        names["de"] = f"ÖSHZ {name_de}"
    return names


def _french_of(name: str) -> str:
    # "CPAS du Roeulx", "CPAS des Bons Villers", "CPAS d'Anvers", "CPAS de La Louvière".
    if name.startswith("Le "):
        return "du " + name[3:]
    if name.startswith("Les "):
        return "des " + name[4:]
    if name[0] in "AEIOUYÉÈÊÂÎÔÛ":
        return "d’" + name
    return "de " + name


def sample_directory(
    now: dt.datetime,
    keys_for: KeysFor | None = None,
    *,
    serial: int = 1,
    issuer: str = SAMPLE_ISSUER,
) -> Directory:
    """A complete, realistic directory for demos, tests and the conformance suite.

    One CPAS per municipality of :mod:`gateway.model.municipalities` (581), with a
    synthetic, check-digit-valid enterprise number
    (:func:`~gateway.model.identifiers.make_enterprise_number` of its NIS code), plus
    the CPAS of Pajottegem into which Galmaarden, Gooik and Herne merged in
    2025, Borsbeek closed, and one institution of each other kind. Every active
    CPAS gets an Ed25519 and an X25519 key valid from a day before ``now`` for
    two years: from ``keys_for(id)`` or, without it, freshly generated keys
    whose private halves are thrown away.
    """
    now = _moment(now).astimezone(dt.UTC).replace(microsecond=0)
    valid_from, valid_until = now - dt.timedelta(days=1), now + DEFAULT_KEY_VALIDITY
    pajottegem_id = make_enterprise_number(int(PAJOTTEGEM_NIS))

    def keyed(institution_id: str) -> dict[str, list[KeyEntry]]:
        if keys_for is not None:
            signing_raw, encryption_raw = keys_for(institution_id)
        else:
            signing_raw = keys.signing_public_raw(keys.generate_signing_key())
            encryption_raw = keys.generate_encryption_key(keys.KEM_X25519).public_raw
        return {
            "signing_keys": [
                KeyEntry.for_key(keys.SIGNING_ALGORITHM, signing_raw, valid_from, valid_until)
            ],
            "encryption_keys": [
                KeyEntry.for_key(keys.KEM_X25519, encryption_raw, valid_from, valid_until)
            ],
        }

    institutions: list[dict[str, Any]] = []
    for town in municipalities.municipalities():
        institution_id = make_enterprise_number(int(town.nis_code))
        entry: dict[str, Any] = {
            "id": institution_id,
            "kind": InstitutionKind.CPAS,
            "names": cpas_names(town.name_fr, town.name_nl, town.name_de),
            "municipality": town.nis_code,
        }
        if town.nis_code in PAJOTTEGEM_MERGED:
            entry |= {"status": InstitutionStatus.MERGED, "merged_into": pajottegem_id}
        elif town.nis_code in SAMPLE_CLOSED:
            entry |= {"status": InstitutionStatus.CLOSED}
        else:
            entry |= keyed(institution_id) | {"contact": sample_contact(institution_id)}
        institutions.append(entry)
    institutions.append(
        {
            "id": pajottegem_id,
            "kind": InstitutionKind.CPAS,
            "names": cpas_names("Pajottegem", "Pajottegem"),
            "municipality": PAJOTTEGEM_NIS,
            "contact": sample_contact(pajottegem_id),
        }
        | keyed(pajottegem_id)
    )
    for seed, kind, names in SAMPLE_OTHERS:
        institutions.append({"id": make_enterprise_number(seed), "kind": kind, "names": names})
    institutions.sort(key=lambda item: item["id"])
    return build_directory(issuer=issuer, serial=serial, institutions=institutions, issued_at=now)


def sample_contact(cpas_id: str) -> ContactPoint:
    """The social service contact the sample directory lists for a CPAS."""
    return ContactPoint(mailbox=f"service.social@cpas-{cpas_id}.example.be", phone="+3225550100")


# ------------------------------------------------------------- helpers


def _contact(el: etree._Element | None) -> dict[str, str | None] | None:
    if el is None:
        return None
    return {"mailbox": _text(el, "mailbox"), "phone": _text(el, "phone")}


def _sub(parent: etree._Element, name: str, text: str) -> etree._Element:
    el = etree.SubElement(parent, _NS + name)
    el.text = text
    return el


def _text(parent: etree._Element, name: str) -> str | None:
    el = parent.find(_NS + name)
    return None if el is None else (el.text or "")


def _key(el: etree._Element) -> dict[str, Any]:
    return {
        "key_id": el.get("id"),
        "algorithm": el.get("algorithm"),
        "public_key": base64.b64decode((el.text or "").strip()),
        "valid_from": el.get("validFrom"),
        "valid_until": el.get("validUntil"),
    }


def build(model: type[M], data: Any) -> M:
    """Validate ``data`` into ``model``; pydantic's first error becomes a ``DirectoryError``."""
    return build_model(model, data, error=DirectoryError, where=lambda loc: _where(loc, data))


def _where(loc: tuple[int | str, ...], data: Any) -> str:
    # "institutions.412.encryption_keys.0" means little to a person; the
    # enterprise number of institution 412 does.
    parts = [str(part) for part in loc]
    if len(loc) >= 2 and loc[0] == "institutions" and isinstance(loc[1], int):
        try:
            item = data["institutions"][loc[1]]
            institution_id = item.id if isinstance(item, Institution) else item["id"]
            parts[:2] = [f"institution {institution_id}"]
        except (KeyError, IndexError, TypeError):
            pass
    return ".".join(parts)


def read_spec(path: Path) -> dict[str, Any]:
    """Read the JSON input of ``directory build`` from a file."""
    try:
        return dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DirectoryError(f"{path} does not exist.", code=Fault.DIRECTORY_INPUT) from None
    except (ValueError, TypeError) as exc:
        raise DirectoryError(f"{path} is not JSON: {exc}.", code=Fault.DIRECTORY_INPUT) from None
