"""The FicheSociale dialect: its vocabulary and the translation to and from the canonical dossier.

FicheSociale keeps one JSON document (a *fiche*) per beneficiary, in French,
with its own labels, ``JJ/MM/AAAA`` dates and French-formatted amounts
(``"1 263,17"``). This module is pure: it turns a fiche (a ``dict`` read from
JSON) into a canonical :class:`~gateway.model.dossier.Dossier` and a dossier back
into a fiche, and never touches the file system.

Export reads a fixed list of fields and nothing else, so whatever else a fiche
holds (social workers' notes, activation measures, sanctions, refused
applications and their reasons, household members) is dropped by
construction, not by filtering.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

from gateway.model.dossier import (
    AidKind,
    ContactPoint,
    Decision,
    DecisionStatus,
    Dossier,
    HouseholdCategory,
    Language,
    LegalBasis,
    legal_basis_for,
)
from gateway.model.identifiers import person_number_kind
from gateway.testing.synthetic import FamilyMember, SensitiveData

FICHE_VERSION: Final = 3
"""Version of the fiche layout this module writes (and the only one it reads)."""

SENSITIVE_FIELDS: Final = (
    "notes_assistant_social",
    "mesures_activation",
    "sanctions",
    "demandes_refusees",
    "membres_du_menage",
)
"""Fields a fiche may hold that never leave the CPAS."""

LANGUES: Final = {
    Language.FR: "français",
    Language.NL: "néerlandais",
    Language.DE: "allemand",
}
CATEGORIES: Final = {
    HouseholdCategory.COHABITANT: "cohabitant",
    HouseholdCategory.ISOLATED: "isolé",
    HouseholdCategory.FAMILY_DEPENDANTS: "famille à charge",
}
TYPES_AIDE: Final = {
    AidKind.INTEGRATION_INCOME: "RIS",
    AidKind.EQUIVALENT_INCOME: "équivalent RIS",
    AidKind.URGENT_MEDICAL_AID: "AMU",
    AidKind.INSTALLATION_PREMIUM: "prime d'installation",
    AidKind.HEATING_ALLOWANCE: "allocation de chauffage",
    AidKind.DEBT_MEDIATION: "médiation de dettes",
    AidKind.RENT_GUARANTEE: "garantie locative",
    AidKind.OTHER_FINANCIAL_AID: "autre aide financière",
}
BASES_LEGALES: Final = {
    LegalBasis.SOCIAL_INTEGRATION_2002: "loi du 26 mai 2002 (droit à l'intégration sociale)",
    LegalBasis.ORGANIC_CPAS_1976: "loi organique des CPAS du 8 juillet 1976, art. 57",
}
STATUTS: Final = {
    DecisionStatus.GRANTED: "octroi",
    DecisionStatus.REVISED: "révision",
    DecisionStatus.ENDED: "fin",
}
LIENS: Final = {
    "partner": "partenaire",
    "child": "enfant",
    "parent": "parent",
    "sibling": "frère ou sœur",
}

# Older FicheSociale versions and hand-edited fiches use shorter wordings;
# they are read, never written.
_BASES_LEGALES_ALIASES: Final = {
    LegalBasis.SOCIAL_INTEGRATION_2002: ("loi DIS", "loi du 26/05/2002", "loi du 26 mai 2002"),
    LegalBasis.ORGANIC_CPAS_1976: (
        "loi organique",
        "loi organique des CPAS",
        "loi du 08/07/1976",
        "loi du 8 juillet 1976",
        "art. 57",
    ),
}

_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
# Groups of three separated by a space (plain, no-break or narrow no-break) or
# a dot, as French and Belgian users type them; a comma before the cents.
_AMOUNT = re.compile(r"^(\d{1,3}(?:( |\.)\d{3})?(?:\2\d{3})*|\d+)(?:,(\d{1,2}))?$")
_SPACES = re.compile(r"\s+")


class FicheInvalid(ValueError):
    """A fiche that cannot make a valid canonical dossier.

    :param where: the field at fault, e.g. ``aides[3].montant_mensuel``.
    :param message: what is wrong with it, as a sentence.
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


# ------------------------------------------------------------------ words


@functools.lru_cache(maxsize=4096)
def _key(label: str) -> str:
    """Compare labels the way a person would: case, accents, apostrophes and spacing aside.

    Remembered: a fiche repeats the same few labels in every aid it lists.
    """
    decomposed = unicodedata.normalize("NFKD", label.replace("’", "'"))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", bare).strip().casefold()


def _reverse(
    table: Mapping[Any, str], aliases: Mapping[Any, Iterable[str]] | None = None
) -> dict[str, Any]:
    reverse = {_key(label): value for value, label in table.items()}
    for value, labels in (aliases or {}).items():
        reverse.update({_key(label): value for label in labels})
    return reverse


_LANGUE_DE: Final = _reverse(LANGUES)
_CATEGORIE_DE: Final = _reverse(CATEGORIES)
_TYPE_DE: Final = _reverse(TYPES_AIDE)
_BASE_DE: Final = _reverse(BASES_LEGALES, _BASES_LEGALES_ALIASES)
_STATUT_DE: Final = _reverse(STATUTS)


def _shown(value: Any) -> str:
    """A value quoted in an error message, cut short: a fiche can hold anything."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _lookup(
    reverse: Mapping[str, Any], value: Any, where: str, what: str, known: Iterable[str]
) -> Any:
    if isinstance(value, str):
        key = _key(value)
        if key in reverse:
            return reverse[key]
    choices = ", ".join(repr(label) for label in known)
    raise FicheInvalid(where, f"{_shown(value)} is not a FicheSociale {what} (one of {choices}).")


# ------------------------------------------------------------ dates, amounts


def format_date(value: dt.date) -> str:
    """``JJ/MM/AAAA``."""
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def parse_date(value: Any, where: str) -> dt.date:
    """Read a ``JJ/MM/AAAA`` date."""
    match = _DATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise FicheInvalid(where, f"{_shown(value)} is not a date written JJ/MM/AAAA.")
    day, month, year = (int(part) for part in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise FicheInvalid(where, f"{_shown(value)} is not a date that exists.") from None


def _optional_date(value: Any, where: str) -> dt.date | None:
    return None if value in (None, "") else parse_date(value, where)


def format_amount(value: Decimal) -> str:
    """French notation: a space between thousands, a comma before the cents (``1 263,17``)."""
    return f"{value:,.2f}".replace(",", " ").replace(".", ",")


def parse_amount(value: Any, where: str) -> Decimal:
    """Read an amount in French notation, with or without a trailing ``€``."""
    if isinstance(value, str):
        text = value.replace("\u00a0", " ").replace("\u202f", " ").strip()
        text = text.removesuffix("€").removesuffix("EUR").strip()
        match = _AMOUNT.match(text)
        if match is not None:
            units = match.group(1).replace(" ", "").replace(".", "")
            cents = (match.group(3) or "").ljust(2, "0")
            return Decimal(f"{units}.{cents}")
    raise FicheInvalid(where, f"{_shown(value)} is not an amount written like '1 263,17'.")


def _optional_amount(value: Any, where: str) -> Decimal | None:
    return None if value in (None, "") else parse_amount(value, where)


# ---------------------------------------------------------- fiche -> dossier


def _text(fiche: Mapping[str, Any], field: str) -> str:
    value = fiche.get(field)
    if not isinstance(value, str) or not value.strip():
        raise FicheInvalid(field, "is missing or empty.")
    return value.strip()


def _given_names(value: Any) -> list[str]:
    # A given name may hold a space ("Anne Marie") but never a comma, so a
    # comma is the one separator that cannot be mistaken for part of a name.
    if not isinstance(value, str):
        raise FicheInvalid("prenoms", "is missing or empty.")
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise FicheInvalid("prenoms", "is missing or empty.")
    return names


def _decision(aide: Any, index: int) -> dict[str, Any]:
    where = f"aides[{index}]"
    if not isinstance(aide, Mapping):
        raise FicheInvalid(where, "is not an object.")
    kind = _lookup(_TYPE_DE, aide.get("type"), f"{where}.type", "aid type", TYPES_AIDE.values())
    base = aide.get("base_legale")
    # FicheSociale leaves the legal basis blank when it is the usual one.
    legal_basis = (
        legal_basis_for(kind)
        if base in (None, "")
        else _lookup(_BASE_DE, base, f"{where}.base_legale", "legal basis", BASES_LEGALES.values())
    )
    reference = aide.get("reference")
    if not isinstance(reference, str) or not reference:
        raise FicheInvalid(f"{where}.reference", "is missing or empty.")
    return {
        "decision_id": reference,
        "kind": kind,
        "legal_basis": legal_basis,
        "decision_date": parse_date(aide.get("date_decision"), f"{where}.date_decision"),
        "period_start": parse_date(aide.get("du"), f"{where}.du"),
        "period_end": _optional_date(aide.get("au"), f"{where}.au"),
        "status": _lookup(
            _STATUT_DE, aide.get("statut"), f"{where}.statut", "status", STATUTS.values()
        ),
        "monthly_amount": _optional_amount(aide.get("montant_mensuel"), f"{where}.montant_mensuel"),
    }


def dossier_from_fiche(
    fiche: Mapping[str, Any],
    *,
    cpas_id: str,
    contact: ContactPoint,
    dossier_id: uuid.UUID,
    created_at: dt.datetime,
) -> Dossier:
    """The canonical dossier a fiche describes, as sent by ``cpas_id``.

    Only the canonical fields are read; the sensitive ones are never looked
    at. The fiche's ``numero_dossier`` becomes the case reference. Decisions
    come out oldest first.

    :raises FicheInvalid: the fiche is not in the dialect or breaks a rule of
        the canonical model.
    """
    if not isinstance(fiche, Mapping):
        raise FicheInvalid("", "the fiche is not a JSON object.")
    version = fiche.get("version_fiche")
    if version != FICHE_VERSION:
        raise FicheInvalid(
            "version_fiche",
            f"{_shown(version)} is not a fiche version this adapter reads ({FICHE_VERSION}).",
        )
    number = _text(fiche, "numero_national")
    kind = person_number_kind(number) if number.isdigit() else "niss"
    children = fiche.get("enfants_a_charge", 0)
    if not isinstance(children, int) or isinstance(children, bool):
        raise FicheInvalid("enfants_a_charge", f"{_shown(children)} is not a whole number.")
    aides = fiche.get("aides") or []
    if not isinstance(aides, list):
        raise FicheInvalid("aides", "is not a list.")
    decisions = [_decision(aide, index) for index, aide in enumerate(aides)]
    # A stable sort: decisions taken the same day keep the fiche's order,
    # which is the order they were received in.
    decisions.sort(key=lambda d: d["decision_date"])
    data = {
        "dossier_id": dossier_id,
        "created_at": created_at,
        "source": {
            "cpas_id": cpas_id,
            "case_reference": _text(fiche, "numero_dossier"),
            "contact": contact,
        },
        "person": {
            kind: number,
            "family_name": _text(fiche, "nom"),
            "given_names": _given_names(fiche.get("prenoms")),
            "birth_date": parse_date(fiche.get("date_naissance"), "date_naissance"),
            "language": _lookup(
                _LANGUE_DE, fiche.get("langue"), "langue", "language", LANGUES.values()
            ),
        },
        "household": {
            "category": _lookup(
                _CATEGORIE_DE,
                fiche.get("categorie"),
                "categorie",
                "household category",
                CATEGORIES.values(),
            ),
            "dependent_children": children,
        },
        "aid_history": decisions,
        "last_social_inquiry": _optional_date(
            fiche.get("derniere_enquete_sociale"), "derniere_enquete_sociale"
        ),
    }
    try:
        return Dossier.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = _vendor_location(first["loc"], decisions)
        raise FicheInvalid(where, first["msg"].rstrip(".") + ".") from None


# Where the canonical model's checks point, in the fiche's own field names.
_FIELDS: Final = {
    ("source", "case_reference"): "numero_dossier",
    ("person",): "numero_national",
    ("person", "niss"): "numero_national",
    ("person", "bis"): "numero_national",
    ("person", "family_name"): "nom",
    ("person", "given_names"): "prenoms",
    ("person", "birth_date"): "date_naissance",
    ("household", "dependent_children"): "enfants_a_charge",
    ("aid_history",): "aides",
    ("last_social_inquiry",): "derniere_enquete_sociale",
}
_AIDE_FIELDS: Final = {
    "decision_id": "reference",
    "decision_date": "date_decision",
    "period_start": "du",
    "period_end": "au",
    "monthly_amount": "montant_mensuel",
    "legal_basis": "base_legale",
}


def _vendor_location(loc: tuple[int | str, ...], decisions: list[dict[str, Any]]) -> str:
    if len(loc) >= 2 and loc[0] == "aid_history" and isinstance(loc[1], int):
        # Decisions were sorted, so name the aide by its reference, not its position.
        aide = f"aides[reference={decisions[loc[1]]['decision_id']}]"
        return aide if len(loc) == 2 else f"{aide}.{_AIDE_FIELDS.get(str(loc[2]), loc[2])}"
    for size in (2, 1):
        key = tuple(str(part) for part in loc[:size])
        if key in _FIELDS:
            return _FIELDS[key]
    return ".".join(str(part) for part in loc)


# ---------------------------------------------------------- dossier -> fiche


def aide_from_decision(decision: Decision) -> dict[str, Any]:
    """One canonical decision in FicheSociale's words."""
    return {
        "reference": decision.decision_id,
        "type": TYPES_AIDE[decision.kind],
        "base_legale": BASES_LEGALES[decision.legal_basis],
        "date_decision": format_date(decision.decision_date),
        "du": format_date(decision.period_start),
        "au": None if decision.period_end is None else format_date(decision.period_end),
        "statut": STATUTS[decision.status],
        "montant_mensuel": (
            None if decision.monthly_amount is None else format_amount(decision.monthly_amount)
        ),
    }


def _sort_key(aide: Mapping[str, Any]) -> str:
    # Sorting on AAAA/MM/JJ keeps the file in date order; a fiche whose date
    # is unreadable still sorts (last) rather than failing an import.
    match = _DATE.match(str(aide.get("date_decision", "")))
    return "/".join(reversed(match.groups())) if match else "9999"


def fiche_from_dossier(
    dossier: Dossier,
    *,
    numero_dossier: str,
    existing: Mapping[str, Any] | None = None,
    received_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """A fiche holding ``dossier``, merged into ``existing`` when there is one.

    The merge is an upsert: identity and household come from the dossier;
    decisions are matched on their reference (the dossier's version replaces
    the fiche's, other decisions of the fiche stay); the date of the last
    social inquiry never moves backwards; every other field of the existing
    fiche, the sensitive ones included, is kept untouched.
    """
    fiche: dict[str, Any] = dict(existing or {})
    person = dossier.person
    aides = {
        str(aide.get("reference")): aide
        for aide in fiche.get("aides") or []
        if isinstance(aide, Mapping)
    }
    aides.update({d.decision_id: aide_from_decision(d) for d in dossier.aid_history})
    inquiry = dossier.last_social_inquiry
    try:
        earlier = _optional_date(fiche.get("derniere_enquete_sociale"), "")
    except FicheInvalid:
        earlier = None  # an unreadable date in the fiche is replaced, not kept
    if earlier is not None:
        inquiry = earlier if inquiry is None else max(inquiry, earlier)
    fiche.update(
        {
            "version_fiche": FICHE_VERSION,
            "numero_dossier": numero_dossier,
            "numero_national": person.number,
            "nom": person.family_name,
            "prenoms": ", ".join(person.given_names),
            "date_naissance": format_date(person.birth_date),
            "langue": LANGUES[person.language],
            "categorie": CATEGORIES[dossier.household.category],
            "enfants_a_charge": dossier.household.dependent_children,
            "aides": sorted(aides.values(), key=_sort_key),
            "derniere_enquete_sociale": None if inquiry is None else format_date(inquiry),
        }
    )
    if received_at is not None:
        fiche["provenance"] = {
            "cpas": dossier.source.cpas_id,
            "reference": dossier.source.case_reference,
            "recu_le": format_date(received_at.date()),
        }
    for field in SENSITIVE_FIELDS:
        fiche.setdefault(field, [])
    return fiche


# ------------------------------------------------------------ sensitive data


def membre_from(member: FamilyMember) -> dict[str, Any]:
    """A household member in FicheSociale's words."""
    return {
        "nom": member.name,
        "lien": LIENS.get(member.relation, member.relation),
        "date_naissance": format_date(member.birth_date),
        "revenus_mensuels": format_amount(member.monthly_income),
    }


def demande_refusee_from(refusal: tuple[str, str]) -> dict[str, str | None]:
    """A refused application (what, reason) in FicheSociale's words."""
    what, reason = refusal
    return {"objet": what, "motif": reason}


def add_sensitive(fiche: dict[str, Any], sensitive: SensitiveData) -> dict[str, Any]:
    """Append sensitive data to a fiche's own fields (in place) and return it."""
    additions: dict[str, list[Any]] = {
        "notes_assistant_social": list(sensitive.notes),
        "mesures_activation": list(sensitive.activation_measures),
        "sanctions": list(sensitive.sanctions),
        "demandes_refusees": [demande_refusee_from(r) for r in sensitive.refused_applications],
        "membres_du_menage": [membre_from(m) for m in sensitive.family_members],
        "adresses": list(sensitive.addresses),
        "donnees_sante": list(sensitive.health_data),
    }
    for field, values in additions.items():
        if not values and field not in SENSITIVE_FIELDS:
            continue
        current = fiche.get(field)
        fiche[field] = [*(current if isinstance(current, list) else []), *values]
    return fiche


def sensitive_fields(sensitive: SensitiveData) -> dict[str, Any]:
    """The sensitive part of a fiche for a synthetic beneficiary."""
    return add_sensitive({}, sensitive)
