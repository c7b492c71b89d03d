"""OCMWdata's own vocabulary, and its translation to and from the canonical dossier.

OCMWdata speaks Dutch and keeps its data the way its product grew up: short
codes for kinds of aid, status and language, the integration-income category
as the law's number (1, 2, 3), amounts in integer cents, dates as text in two
formats (``DD-MM-YYYY`` for the case's own dates, ``YYYYMMDD`` for birth dates,
copied as the national register writes them) and a person's names in one
column, ``Familienaam, Voornaam1, Voornaam2``.

Every translation here is exact in both directions, so that a dossier imported
and exported again comes back unchanged. A value the vendor database holds but
this module cannot translate raises :class:`VocabularyError`; the adapter turns
it into an ``adapter.invalid_data`` error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

from gateway.model.dossier import AidKind, DecisionStatus, HouseholdCategory, Language, LegalBasis

E = TypeVar("E", bound=StrEnum)
V = TypeVar("V", str, int)


class VocabularyError(ValueError):
    """A vendor value that has no canonical meaning (or the reverse)."""


class CodeList(Generic[V, E]):
    """A closed, one-to-one list of vendor codes and the canonical values they stand for."""

    def __init__(self, label: str, codes: Mapping[V, E]) -> None:
        self.label = label
        self._to_canonical: dict[V, E] = dict(codes)
        self._to_vendor: dict[E, V] = {value: code for code, value in codes.items()}
        if len(self._to_vendor) != len(self._to_canonical):
            raise ValueError(f"The {label} code list is not one-to-one.")

    def canonical(self, code: V) -> E:
        """The canonical value of a vendor code."""
        try:
            return self._to_canonical[code]
        except (KeyError, TypeError):
            known = ", ".join(str(c) for c in self._to_canonical)
            raise VocabularyError(
                f"{code!r} is not a known {self.label} (known: {known})"
            ) from None

    def vendor(self, value: E) -> V:
        """The vendor code of a canonical value."""
        try:
            return self._to_vendor[value]
        except KeyError:
            raise VocabularyError(f"{value!r} has no OCMWdata {self.label}") from None

    @property
    def codes(self) -> list[V]:
        """Every vendor code, in the order the list was given."""
        return list(self._to_canonical)


AID_KINDS: CodeList[str, AidKind] = CodeList(
    "steuncode (kind of aid)",
    {
        "LL": AidKind.INTEGRATION_INCOME,  # leefloon
        "ELL": AidKind.EQUIVALENT_INCOME,  # equivalent leefloon
        "DMH": AidKind.URGENT_MEDICAL_AID,  # dringende medische hulp
        "IP": AidKind.INSTALLATION_PREMIUM,  # installatiepremie
        "VT": AidKind.HEATING_ALLOWANCE,  # verwarmingstoelage
        "SB": AidKind.DEBT_MEDIATION,  # schuldbemiddeling
        "HW": AidKind.RENT_GUARANTEE,  # huurwaarborg
        "AFH": AidKind.OTHER_FINANCIAL_AID,  # andere financiële hulp
    },
)

LEGAL_BASES: CodeList[str, LegalBasis] = CodeList(
    "wettelijke basis (legal basis)",
    {
        "RMI": LegalBasis.SOCIAL_INTEGRATION_2002,  # wet recht op maatschappelijke integratie
        "OW": LegalBasis.ORGANIC_CPAS_1976,  # organieke OCMW-wet
    },
)

STATUSES: CodeList[str, DecisionStatus] = CodeList(
    "statuscode",
    {
        "T": DecisionStatus.GRANTED,  # toekenning
        "H": DecisionStatus.REVISED,  # herziening
        "S": DecisionStatus.ENDED,  # stopzetting
    },
)

LANGUAGES: CodeList[str, Language] = CodeList(
    "taalcode",
    {"N": Language.NL, "F": Language.FR, "D": Language.DE},
)

# The categories of the 2002 law, by their number in the law.
CATEGORIES: CodeList[int, HouseholdCategory] = CodeList(
    "leefloon category",
    {
        1: HouseholdCategory.COHABITANT,  # samenwonende
        2: HouseholdCategory.ISOLATED,  # alleenstaande
        3: HouseholdCategory.FAMILY_DEPENDANTS,  # persoon met gezinslast
    },
)

NAME_SEPARATOR = ", "
"""Between the family name and each given name; names never contain a comma."""


class DateFormat(StrEnum):
    """The two ways OCMWdata writes a date."""

    CASE = "DD-MM-YYYY"
    """Every date of a case: decisions, periods, inquiries, notes."""
    BIRTH = "YYYYMMDD"
    """Birth dates, as the national register writes them."""


_DATE_PATTERNS = {
    DateFormat.CASE: re.compile(r"(?P<d>\d{2})-(?P<m>\d{2})-(?P<y>\d{4})"),
    DateFormat.BIRTH: re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"),
}


def date_from_vendor(text: str | None, fmt: DateFormat = DateFormat.CASE) -> dt.date | None:
    """Read a vendor date (``None`` or empty stays ``None``)."""
    if text is None or text == "":
        return None
    match = _DATE_PATTERNS[fmt].fullmatch(text) if isinstance(text, str) else None
    try:
        if match is None:
            raise ValueError
        return dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        raise VocabularyError(f"{text!r} is not a date in the form {fmt.value}") from None


def date_to_vendor(value: dt.date | None, fmt: DateFormat = DateFormat.CASE) -> str | None:
    """Write a date the vendor's way (``None`` stays ``None``)."""
    if value is None:
        return None
    if fmt is DateFormat.BIRTH:
        return f"{value.year:04d}{value.month:02d}{value.day:02d}"
    return f"{value.day:02d}-{value.month:02d}-{value.year:04d}"


def cents_from_amount(amount: Decimal | None) -> int | None:
    """Euro (at most two decimals, as the model guarantees) to integer cents."""
    if amount is None:
        return None
    cents = amount.scaleb(2)
    if cents != cents.to_integral_value():
        raise VocabularyError(f"{amount} € has more than two decimals")
    return int(cents)


def amount_from_cents(cents: int | None) -> Decimal | None:
    """Integer cents to euro with exactly two decimals."""
    if cents is None:
        return None
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise VocabularyError(f"{cents!r} is not a whole number of cents")
    return Decimal(cents).scaleb(-2).quantize(Decimal("0.01"))


def join_name(family_name: str, given_names: list[str]) -> str:
    """``Van den Broeck, Jan, Marie Claire``: one column for every name."""
    parts = [family_name, *given_names]
    if any("," in part for part in parts):
        raise VocabularyError("a name contains a comma, which OCMWdata uses as a separator")
    return NAME_SEPARATOR.join(parts)


def split_name(text: str) -> tuple[str, list[str]]:
    """The family name and the given names of a ``naam`` column."""
    family, *given = text.split(NAME_SEPARATOR)
    if not family or not given:
        raise VocabularyError("the name is not in the form 'Familienaam, Voornaam1, Voornaam2'")
    return family, given
