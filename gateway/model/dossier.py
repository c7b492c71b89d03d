"""The canonical minimal dossier (schema version 1) as pydantic models.

The XSD in ``schemas/xsd/dossier.xsd`` is the contract; these models mirror it
field for field and add the checks an XSD cannot express: NISS/BIS and
enterprise-number check digits, a NISS that matches the birth date, a period
that does not end before it starts, no decision dated in the future, and the
legal basis that goes with each kind of aid.

``Dossier.from_xml`` parses with the hardened parser and validates against the
XSD before building the model; ``Dossier.to_xml`` writes XML that validates
against it. The round trip model -> XML -> model is exact.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from lxml import etree
from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.model import hardened_xml
from gateway.model.base import (
    FrozenModel,
    build,
    checked_identifier,
    format_timestamp,
    utc_seconds,
)
from gateway.model.base import refusal_from as refusal_from  # vendors import it from here
from gateway.model.codes import Refusal
from gateway.model.errors import SchemaInvalid
from gateway.model.hardened_xml import NS_DOSSIER, simple_type_accepts
from gateway.model.identifiers import (
    encoded_birth,
    validate_bis,
    validate_enterprise_number,
    validate_niss,
)

SCHEMA_VERSION: Literal["1"] = "1"
_NS = f"{{{NS_DOSSIER}}}"
_IN_DOSSIER: Final = _NS + "*"

# Patterns shared with the XSD (kept identical on purpose; a test compares them).
OPAQUE_REFERENCE = r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,63}$"
PERSON_NAME = r"^['’]?\p{L}[\p{L}\p{M} '’.\-]*$"
MAILBOX = r"^[a-z0-9][a-z0-9._\-]*@[a-z0-9][a-z0-9.\-]*\.[a-z]{2,}$"
PHONE = r"^\+[0-9]{8,15}$"

OpaqueReference = Annotated[str, Field(pattern=OPAQUE_REFERENCE)]


def _name_the_xsd_accepts(value: str) -> str:
    # The pattern says "letters"; libxml2 knows fewer of them than Python
    # does (no Han, no Hangul, nothing added after Unicode 4.0). A name the
    # XSD would refuse must be refused here, not when the XML is written.
    if not simple_type_accepts(NS_DOSSIER, "dossier.xsd", "PersonName", value):
        raise PydanticCustomError(
            Refusal.PERSON_NAME,
            "The name {value!r} uses characters the schema does not accept.",
            {"value": value},
        )
    return value


PersonName = Annotated[
    str, Field(pattern=PERSON_NAME, max_length=80), AfterValidator(_name_the_xsd_accepts)
]


class Language(StrEnum):
    """Language of the person (and of their report)."""

    FR = "fr"
    NL = "nl"
    DE = "de"


class HouseholdCategory(StrEnum):
    """Integration-income category."""

    COHABITANT = "cohabitant"
    ISOLATED = "isolated"
    FAMILY_DEPENDANTS = "family-dependants"


class AidKind(StrEnum):
    """Kinds of aid, a closed list."""

    INTEGRATION_INCOME = "integration-income"
    EQUIVALENT_INCOME = "equivalent-income"
    URGENT_MEDICAL_AID = "urgent-medical-aid"
    INSTALLATION_PREMIUM = "installation-premium"
    HEATING_ALLOWANCE = "heating-allowance"
    DEBT_MEDIATION = "debt-mediation"
    RENT_GUARANTEE = "rent-guarantee"
    OTHER_FINANCIAL_AID = "other-financial-aid"


class LegalBasis(StrEnum):
    """Legal bases of aid decisions."""

    SOCIAL_INTEGRATION_2002 = "law-2002-05-26-social-integration"
    ORGANIC_CPAS_1976 = "law-1976-07-08-organic-cpas"


class DecisionStatus(StrEnum):
    """Status of a decision."""

    GRANTED = "granted"
    REVISED = "revised"
    ENDED = "ended"


def legal_basis_for(kind: AidKind) -> LegalBasis:
    """Integration income rests on the 2002 law; every other kind of aid on the 1976 law."""
    if kind is AidKind.INTEGRATION_INCOME:
        return LegalBasis.SOCIAL_INTEGRATION_2002
    return LegalBasis.ORGANIC_CPAS_1976


def _latest_plausible_today() -> dt.date:
    # "Today" somewhere in the world: a decision taken this morning in
    # Brussels must not look like the future on a server running in UTC.
    return _latest_plausible_day(int(time.time()))


@functools.lru_cache(maxsize=1)
def _latest_plausible_day(second: int) -> dt.date:
    # Worked out once a second: every date of every dossier is compared with it.
    return (dt.datetime.fromtimestamp(second, dt.UTC) + dt.timedelta(hours=14)).date()


def _not_in_future(value: dt.date, code: str, what: str) -> dt.date:
    if value > _latest_plausible_today():
        raise PydanticCustomError(
            code, "{what} {value} is in the future.", {"what": what, "value": str(value)}
        )
    return value


class ContactPoint(FrozenModel):
    """The source CPAS's functional contact point (a service, not a named person)."""

    mailbox: Annotated[str, Field(pattern=MAILBOX, max_length=120)]
    phone: Annotated[str, Field(pattern=PHONE)] | None = None


class Source(FrozenModel):
    """The CPAS that holds the file and sends it."""

    cpas_id: str
    case_reference: OpaqueReference
    contact: ContactPoint

    @field_validator("cpas_id")
    @classmethod
    def _enterprise_number(cls, value: str) -> str:
        return checked_identifier(validate_enterprise_number, value)


class Person(FrozenModel):
    """The person: exactly one of ``niss`` or ``bis``."""

    niss: str | None = None
    bis: str | None = None
    family_name: PersonName
    given_names: Annotated[list[PersonName], Field(min_length=1, max_length=4)]
    birth_date: dt.date
    language: Language

    @field_validator("niss")
    @classmethod
    def _niss(cls, value: str | None) -> str | None:
        return None if value is None else checked_identifier(validate_niss, value)

    @field_validator("bis")
    @classmethod
    def _bis(cls, value: str | None) -> str | None:
        return None if value is None else checked_identifier(validate_bis, value)

    @field_validator("birth_date")
    @classmethod
    def _birth(cls, value: dt.date) -> dt.date:
        if value.year < 1900:
            raise PydanticCustomError(
                Refusal.PERSON_BIRTH_DATE, "A birth date before 1900 is not plausible."
            )
        return _not_in_future(value, Refusal.PERSON_BIRTH_DATE, "The birth date")

    @model_validator(mode="after")
    def _one_number_matching_birth(self) -> Self:
        if (self.niss is None) == (self.bis is None):
            raise PydanticCustomError(
                Refusal.PERSON_NUMBER, "A person has exactly one NISS or one BIS number."
            )
        known = encoded_birth(self.number, "niss" if self.niss is not None else "bis")
        actual = (self.birth_date.year, self.birth_date.month, self.birth_date)
        if any(k is not None and k != a for k, a in zip(known, actual, strict=True)):
            raise PydanticCustomError(
                Refusal.PERSON_BIRTH_DATE_MISMATCH,
                "The birth date {birth} does not match the one encoded in the number.",
                {"birth": str(self.birth_date)},
            )
        return self

    @property
    def number(self) -> str:
        """The NISS or, failing that, the BIS number."""
        return self.niss or self.bis or ""


class Household(FrozenModel):
    """The household in two facts: category and number of dependent children."""

    category: HouseholdCategory
    dependent_children: Annotated[int, Field(ge=0, le=20)]


class Decision(FrozenModel):
    """One aid decision: objective, administrative facts only."""

    decision_id: OpaqueReference
    kind: AidKind
    legal_basis: LegalBasis
    decision_date: dt.date
    period_start: dt.date
    period_end: dt.date | None = None
    status: DecisionStatus
    monthly_amount: Decimal | None = None

    @field_validator("decision_date")
    @classmethod
    def _decided(cls, value: dt.date) -> dt.date:
        return _not_in_future(value, Refusal.DECISION_FUTURE, "The decision date")

    @field_validator("monthly_amount")
    @classmethod
    def _amount(cls, value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        if not value.is_finite():
            raise PydanticCustomError(Refusal.AMOUNT_INVALID, "An amount must be a number.")
        if value < 0:
            raise PydanticCustomError(
                Refusal.AMOUNT_NEGATIVE,
                "An amount cannot be negative ({value} €).",
                {"value": str(value)},
            )
        if value.as_tuple().exponent < -2:  # type: ignore[operator]
            raise PydanticCustomError(
                Refusal.AMOUNT_PRECISION,
                "An amount has at most two decimals ({value}).",
                {"value": str(value)},
            )
        if value > Decimal("99999.99"):
            raise PydanticCustomError(
                Refusal.AMOUNT_TOO_LARGE, "A monthly amount above 99,999.99 € is not plausible."
            )
        return value.quantize(Decimal("0.01"))

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.period_end is not None and self.period_end < self.period_start:
            raise PydanticCustomError(
                Refusal.PERIOD_REVERSED,
                "Decision {id}: the period ends ({end}) before it starts ({start}).",
                {
                    "id": self.decision_id,
                    "end": str(self.period_end),
                    "start": str(self.period_start),
                },
            )
        if self.legal_basis is not legal_basis_for(self.kind):
            raise PydanticCustomError(
                Refusal.DECISION_LEGAL_BASIS,
                "Decision {id}: {kind} does not rest on {basis}.",
                {"id": self.decision_id, "kind": self.kind.value, "basis": self.legal_basis.value},
            )
        return self


class Dossier(FrozenModel):
    """The minimal dossier, schema version 1."""

    dossier_id: uuid.UUID
    schema_version: Literal["1"] = SCHEMA_VERSION
    created_at: dt.datetime
    source: Source
    person: Person
    household: Household
    aid_history: list[Decision] = Field(default_factory=list, max_length=1000)
    last_social_inquiry: dt.date | None = None

    @field_validator("created_at")
    @classmethod
    def _utc_seconds(cls, value: dt.datetime) -> dt.datetime:
        return utc_seconds(value)

    @field_validator("last_social_inquiry")
    @classmethod
    def _inquiry(cls, value: dt.date | None) -> dt.date | None:
        return (
            None
            if value is None
            else _not_in_future(value, Refusal.INQUIRY_FUTURE, "The last social inquiry")
        )

    # ---------------------------------------------------------------- XML

    def to_element(self) -> etree._Element:
        """Build the XML element (namespace ``urn:be:cpas:dse:dossier:1``)."""
        root = etree.Element(_NS + "dossier", nsmap={None: NS_DOSSIER})
        root.set("schemaVersion", self.schema_version)
        _sub(root, "dossierId", str(self.dossier_id))
        _sub(root, "createdAt", format_timestamp(self.created_at))
        source = etree.SubElement(root, _NS + "source")
        _sub(source, "cpasId", self.source.cpas_id)
        _sub(source, "caseReference", self.source.case_reference)
        contact = etree.SubElement(source, _NS + "contact")
        _sub(contact, "mailbox", self.source.contact.mailbox)
        if self.source.contact.phone is not None:
            _sub(contact, "phone", self.source.contact.phone)
        person = etree.SubElement(root, _NS + "person")
        if self.person.niss is not None:
            _sub(person, "niss", self.person.niss)
        else:
            _sub(person, "bis", self.person.bis or "")
        _sub(person, "familyName", self.person.family_name)
        for given in self.person.given_names:
            _sub(person, "givenName", given)
        _sub(person, "birthDate", self.person.birth_date.isoformat())
        _sub(person, "language", self.person.language.value)
        household = etree.SubElement(root, _NS + "household")
        _sub(household, "category", self.household.category.value)
        _sub(household, "dependentChildren", str(self.household.dependent_children))
        history = etree.SubElement(root, _NS + "aidHistory")
        for decision in self.aid_history:
            el = etree.SubElement(history, _NS + "decision")
            _sub(el, "decisionId", decision.decision_id)
            _sub(el, "kind", decision.kind.value)
            _sub(el, "legalBasis", decision.legal_basis.value)
            _sub(el, "decisionDate", decision.decision_date.isoformat())
            _sub(el, "periodStart", decision.period_start.isoformat())
            if decision.period_end is not None:
                _sub(el, "periodEnd", decision.period_end.isoformat())
            _sub(el, "status", decision.status.value)
            if decision.monthly_amount is not None:
                _sub(el, "monthlyAmount", f"{decision.monthly_amount:.2f}")
        if self.last_social_inquiry is not None:
            _sub(root, "lastSocialInquiry", self.last_social_inquiry.isoformat())
        return root

    def to_xml(self) -> bytes:
        """Serialise to UTF-8 XML bytes that validate against ``dossier.xsd``."""
        return hardened_xml.to_bytes(self.to_element())

    @classmethod
    def from_element(cls, root: etree._Element) -> Dossier:
        """Build a dossier from an element that has already passed the XSD."""
        # One walk over the whole tree: the XSD fixed where each element is,
        # and every element name but a decision's fields is used once.
        top, given_names, decisions = _walk(root)
        data: dict[str, Any] = {
            "dossier_id": top.get(_NS + "dossierId"),
            "schema_version": root.get("schemaVersion"),
            "created_at": top.get(_NS + "createdAt"),
            "source": {
                "cpas_id": top.get(_NS + "cpasId"),
                "case_reference": top.get(_NS + "caseReference"),
                "contact": {
                    "mailbox": top.get(_NS + "mailbox"),
                    "phone": top.get(_NS + "phone"),
                },
            },
            "person": {
                "niss": top.get(_NS + "niss"),
                "bis": top.get(_NS + "bis"),
                "family_name": top.get(_NS + "familyName"),
                "given_names": given_names,
                "birth_date": top.get(_NS + "birthDate"),
                "language": top.get(_NS + "language"),
            },
            "household": {
                "category": top.get(_NS + "category"),
                "dependent_children": top.get(_NS + "dependentChildren"),
            },
            "aid_history": [
                {field: decision.get(tag) for tag, field in _DECISION_FIELDS.items()}
                for decision in decisions
            ],
            "last_social_inquiry": top.get(_NS + "lastSocialInquiry"),
        }
        return build(cls, data)

    @classmethod
    def from_xml(cls, data: bytes) -> Dossier:
        """Parse untrusted bytes: hardened parser, then XSD, then the model's own checks."""
        root = hardened_xml.parse(data)
        if root.tag != _NS + "dossier":
            raise SchemaInvalid(
                f"The root element {root.tag} is not a dossier of schema version 1.",
                code=Refusal.SCHEMA_NAMESPACE,
            )
        hardened_xml.validate(root, "dossier.xsd")
        return cls.from_element(root)


def _sub(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, _NS + name).text = text


_DECISION: Final = _NS + "decision"
_GIVEN_NAME: Final = _NS + "givenName"
_DECISION_FIELDS: Final = {
    _NS + "decisionId": "decision_id",
    _NS + "kind": "kind",
    _NS + "legalBasis": "legal_basis",
    _NS + "decisionDate": "decision_date",
    _NS + "periodStart": "period_start",
    _NS + "periodEnd": "period_end",
    _NS + "status": "status",
    _NS + "monthlyAmount": "monthly_amount",
}
"""A decision's elements, and the model's name for each."""


def _walk(
    root: etree._Element,
) -> tuple[dict[str, str], list[str], list[dict[str, str]]]:
    """The texts of a dossier's elements: by tag (the first of each), given names, decisions.

    Every element name of the dossier is used in one place only, but for a
    decision's fields (one set per decision) and the given names (one to
    four): a single walk in document order reads them all.
    """
    top: dict[str, str] = {}
    given_names: list[str] = []
    decisions: list[dict[str, str]] = []
    decision: dict[str, str] = {}
    for el in root.iter(_IN_DOSSIER):
        tag = el.tag
        if tag in _DECISION_FIELDS:
            decision.setdefault(tag, el.text or "")
        elif tag == _DECISION:
            decision = {}
            decisions.append(decision)
        elif tag == _GIVEN_NAME:
            given_names.append(el.text or "")
        else:
            top.setdefault(tag, el.text or "")
    return top, given_names, decisions
