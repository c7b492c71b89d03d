"""One edition of the directory: who may receive, which keys to use, and its XML form."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Final, Self

from lxml import etree
from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.model import hardened_xml
from gateway.model.base import FrozenModel, build, format_timestamp, utc_seconds
from gateway.model.codes import Fault, Refusal
from gateway.model.directory.institutions import (
    Institution,
    InstitutionKind,
    InstitutionStatus,
    KeyEntry,
    Label,
    Verdict,
    institution_place,
    moment,
)
from gateway.model.dossier import Language
from gateway.model.errors import DestinationRefused, DirectoryError
from gateway.model.hardened_xml import NS_DIRECTORY

SCHEMA_VERSION: Final = "1"
NS: Final = f"{{{NS_DIRECTORY}}}"


class Directory(FrozenModel):
    """One edition of the directory, as the federation signed it."""

    issuer: Label
    issued_at: dt.datetime
    serial: Annotated[int, Field(ge=1)]
    institutions: Annotated[list[Institution], Field(min_length=1)]

    _by_id: dict[str, Institution] = PrivateAttr(default_factory=dict)

    @field_validator("issued_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return utc_seconds(value)

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
        self._by_id = _index(self.institutions)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied, that finds exactly the institutions it lists.

        Pydantic gives a copy the private attributes of the original: the
        index is built again, or a copy without an institution would still
        find it (and a copy with a changed one, the old one).
        """
        copied = super().model_copy(update=update, deep=deep)
        copied._by_id = _index(copied.institutions)
        return copied

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
        at = moment(at)
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
        at = moment(at)
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
        at = moment(at)
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
        root = etree.Element(NS + "directory", nsmap={None: NS_DIRECTORY})
        root.set("schemaVersion", SCHEMA_VERSION)
        sub(root, "issuer", self.issuer)
        sub(root, "issuedAt", format_timestamp(self.issued_at))
        sub(root, "serial", str(self.serial))
        listing = etree.SubElement(root, NS + "institutions")
        for institution in self.institutions:
            el = etree.SubElement(listing, NS + "institution")
            sub(el, "id", institution.id)
            sub(el, "kind", institution.kind.value)
            for lang in Language:
                if lang in institution.names:
                    sub(el, "name", institution.names[lang]).set("lang", lang.value)
            if institution.municipality is not None:
                sub(el, "municipality", institution.municipality)
            sub(el, "status", institution.status.value)
            if institution.merged_into is not None:
                sub(el, "mergedInto", institution.merged_into)
            if institution.contact is not None:
                contact = etree.SubElement(el, NS + "contact")
                sub(contact, "mailbox", institution.contact.mailbox)
                if institution.contact.phone is not None:
                    sub(contact, "phone", institution.contact.phone)
            for tag, entries in (
                ("signingKey", institution.signing_keys),
                ("encryptionKey", institution.encryption_keys),
            ):
                for entry in entries:
                    key_el = sub(el, tag, base64.b64encode(entry.public_key).decode("ascii"))
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
        for el in root.iterfind(f"{NS}institutions/{NS}institution"):
            institutions.append(
                {
                    "id": _text(el, "id"),
                    "kind": _text(el, "kind"),
                    "names": {n.get("lang"): n.text or "" for n in el.iterfind(NS + "name")},
                    "municipality": _text(el, "municipality"),
                    "status": _text(el, "status"),
                    "merged_into": _text(el, "mergedInto"),
                    "contact": _contact(el.find(NS + "contact")),
                    "signing_keys": [_key(k) for k in el.iterfind(NS + "signingKey")],
                    "encryption_keys": [_key(k) for k in el.iterfind(NS + "encryptionKey")],
                }
            )
        data = {
            "issuer": _text(root, "issuer"),
            "issued_at": _text(root, "issuedAt"),
            "serial": _text(root, "serial"),
            "institutions": institutions,
        }
        return build(cls, data, error=DirectoryError, where=institution_place(data))


def _index(institutions: list[Institution]) -> dict[str, Institution]:
    """The institutions by enterprise number: what :meth:`Directory.get` reads."""
    return {institution.id: institution for institution in institutions}


def _contact(el: etree._Element | None) -> dict[str, str | None] | None:
    if el is None:
        return None
    return {"mailbox": _text(el, "mailbox"), "phone": _text(el, "phone")}


def sub(parent: etree._Element, name: str, text: str) -> etree._Element:
    el = etree.SubElement(parent, NS + name)
    el.text = text
    return el


def _text(parent: etree._Element, name: str) -> str | None:
    el = parent.find(NS + name)
    return None if el is None else (el.text or "")


def _key(el: etree._Element) -> dict[str, Any]:
    return {
        "key_id": el.get("id"),
        "algorithm": el.get("algorithm"),
        "public_key": base64.b64decode((el.text or "").strip()),
        "valid_from": el.get("validFrom"),
        "valid_until": el.get("validUntil"),
    }
