"""Synthetic beneficiaries for seeding vendor systems, the sample corpus and benchmarks.

Every person is invented; their NISS/BIS numbers are check-digit-valid but
made up. Each beneficiary also carries the *sensitive* data a real vendor
system holds and the canonical dossier must never carry (notes, activation
measures, sanctions, refused applications with reasons, family members'
identities and incomes), so that adapters can prove they drop it.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.model.dossier import (
    AidKind,
    Decision,
    DecisionStatus,
    Dossier,
    Household,
    HouseholdCategory,
    Language,
    Person,
    Source,
    legal_basis_for,
)
from gateway.model.identifiers import make_niss
from gateway.model.sensitive import FamilyMember as FamilyMember  # re-exported for adapters
from gateway.model.sensitive import SensitiveData as SensitiveData
from gateway.testing.sample_directory import sample_contact

FAMILY_NAMES = (
    "Peeters",
    "Janssens",
    "Maes",
    "Jacobs",
    "Mertens",
    "Willems",
    "Claes",
    "Goossens",
    "Dubois",
    "Lambert",
    "Dupont",
    "Martin",
    "Simon",
    "Laurent",
    "Lejeune",
    "Renard",
    "D'Hondt",
    "Van den Broeck",
    "De Smet",
    "Vandenberghe",
    "Müller-Lüdenscheidt",
    "Schröder",
    "Lefèvre",
    "Désiré",
    "Çelik",
    "Nguyễn",
    "El Idrissi",
    "O'Connor",
    "Van Der Veken",
    "Wéry",
    "Ó Briain",
    "Kowalczyk",
    "Łukasiewicz",
    "Schmitz",
)
GIVEN_NAMES = (
    "Marie",
    "Jan",
    "Emma",
    "Lucas",
    "Noah",
    "Louise",
    "Jean-Luc",
    "Anne-Sophie",
    "Zoë",
    "Chloé",
    "Thérèse",
    "Jürgen",
    "Björn",
    "Inès",
    "Élodie",
    "Fatima",
    "Mehmet",
    "Dirk",
    "Anaïs",
    "Raphaël",
    "Niels",
    "Günther",
    "Aïcha",
    "François",
    "Maëlle",
)
NOTES = (
    "Client verbally aggressive at the desk, see incident report",
    "Suspected undeclared work; check with neighbours",
    "Depression follow-up by psychiatrist, medication changed",
    "Refused to attend the budget course twice",
)
ACTIVATION = (
    "Article 60 work placement at the municipal park service",
    "Individualised social integration project (PIIS) signed, training as cook",
    "Job-search obligations under review",
)
SANCTIONS = (
    "Integration income suspended one month for non-compliance with the PIIS",
    "Recovery of unduly paid amounts after undeclared income",
)
REFUSALS = (
    ("installation premium", "Applicant did not cooperate with the social inquiry"),
    ("rent guarantee", "Resources above the threshold after the partner's income"),
    ("heating allowance", "Heating costs included in the rent"),
)
RELATIONS = ("partner", "child", "parent", "sibling")

PERIODIC = frozenset(
    {AidKind.INTEGRATION_INCOME, AidKind.EQUIVALENT_INCOME, AidKind.OTHER_FINANCIAL_AID}
)
MONTHLY_RATES = {  # integration-income rates are the order of magnitude; exact figures vary
    HouseholdCategory.COHABITANT: Decimal("876.13"),
    HouseholdCategory.ISOLATED: Decimal("1314.20"),
    HouseholdCategory.FAMILY_DEPENDANTS: Decimal("1776.07"),
}


@dataclass(frozen=True)
class Beneficiary:
    """A synthetic person as a vendor system would hold them."""

    dossier: Dossier
    sensitive: SensitiveData = field(default_factory=SensitiveData)


def make_person_number(rng: random.Random, birth: dt.date, *, bis: bool = False) -> str:
    """A check-digit-valid NISS (or BIS number) for the birth date."""
    offset = rng.choice((20, 40)) if bis else 0
    return make_niss(birth, rng.randint(1, 998), bis_offset=offset)


def make_decisions(
    rng: random.Random,
    count: int,
    category: HouseholdCategory,
    *,
    kinds: list[AidKind] | None = None,
    today: dt.date | None = None,
) -> list[Decision]:
    """``count`` coherent decisions, oldest first, ending no later than ``today``."""
    today = today or dt.date.today()
    start = today - dt.timedelta(days=30 * (count + 6))
    decisions = []
    for index in range(count):
        kind = kinds[index % len(kinds)] if kinds else rng.choice(list(AidKind))
        decided = min(start + dt.timedelta(days=30 * index + rng.randint(0, 20)), today)
        period_start = decided.replace(day=1)
        ended = index < count - 1 or rng.random() < 0.3
        period_end = None
        if ended:  # an ended decision has ended: its period closes no later than today
            period_end = min(period_start + dt.timedelta(days=rng.randint(28, 27 * 30)), today)
        amount = None
        if kind in PERIODIC:
            amount = (MONTHLY_RATES[category] * Decimal(rng.uniform(0.4, 1.0))).quantize(
                Decimal("0.01")
            )
        elif kind in {AidKind.INSTALLATION_PREMIUM, AidKind.RENT_GUARANTEE} and rng.random() < 0.5:
            amount = Decimal(rng.randint(300, 1500)).quantize(Decimal("0.01"))
        decisions.append(
            Decision(
                decision_id=f"DEC-{index + 1:04d}-{rng.randint(1000, 9999)}",
                kind=kind,
                legal_basis=legal_basis_for(kind),
                decision_date=decided,
                period_start=period_start,
                period_end=period_end,
                status=DecisionStatus.ENDED
                if ended
                else rng.choice((DecisionStatus.GRANTED, DecisionStatus.REVISED)),
                monthly_amount=amount,
            )
        )
    return decisions


def make_beneficiary(
    rng: random.Random,
    cpas_id: str,
    *,
    decisions: int | None = None,
    language: Language | None = None,
    bis: bool | None = None,
    born_after_2000: bool | None = None,
    family_name: str | None = None,
    given_names: list[str] | None = None,
    category: HouseholdCategory | None = None,
    kinds: list[AidKind] | None = None,
    with_sensitive: bool = True,
    created_at: dt.datetime | None = None,
) -> Beneficiary:
    """One synthetic beneficiary of ``cpas_id``; every argument left out is drawn at random."""
    if born_after_2000 is None:
        born_after_2000 = rng.random() < 0.3
    year = rng.randint(2000, 2007) if born_after_2000 else rng.randint(1940, 1999)
    birth = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
    if bis is None:
        bis = rng.random() < 0.1
    number = make_person_number(rng, birth, bis=bis)
    category = category or rng.choice(list(HouseholdCategory))
    children = rng.randint(1, 4) if category is HouseholdCategory.FAMILY_DEPENDANTS else 0
    if decisions is None:
        decisions = min(int(rng.expovariate(1 / 6)), 60)
    history = make_decisions(rng, decisions, category, kinds=kinds)
    dossier = Dossier(
        dossier_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        created_at=created_at or dt.datetime.now(dt.UTC),
        source=Source(
            cpas_id=cpas_id,
            case_reference=f"{rng.randint(2015, 2026)}/{rng.randint(1, 99999):05d}",
            contact=sample_contact(cpas_id),
        ),
        person=Person(
            niss=None if bis else number,
            bis=number if bis else None,
            family_name=family_name or rng.choice(FAMILY_NAMES),
            given_names=given_names or [rng.choice(GIVEN_NAMES)],
            birth_date=birth,
            language=language or rng.choice(list(Language)),
        ),
        household=Household(category=category, dependent_children=children),
        aid_history=history,
        last_social_inquiry=(history[-1].decision_date if history else None),
    )
    sensitive = make_sensitive(rng, category, children) if with_sensitive else SensitiveData()
    return Beneficiary(dossier=dossier, sensitive=sensitive)


def make_sensitive(rng: random.Random, category: HouseholdCategory, children: int) -> SensitiveData:
    """The data a vendor keeps about a case that must never leave the CPAS."""
    members = []
    if category is not HouseholdCategory.ISOLATED:
        members.append(
            FamilyMember(
                name=f"{rng.choice(GIVEN_NAMES)} {rng.choice(FAMILY_NAMES)}",
                relation="partner",
                birth_date=dt.date(rng.randint(1950, 2000), rng.randint(1, 12), rng.randint(1, 28)),
                monthly_income=Decimal(rng.randint(0, 250000)) / 100,
            )
        )
    for _ in range(children):
        members.append(
            FamilyMember(
                name=f"{rng.choice(GIVEN_NAMES)} {rng.choice(FAMILY_NAMES)}",
                relation="child",
                birth_date=dt.date(rng.randint(2008, 2024), rng.randint(1, 12), rng.randint(1, 28)),
                monthly_income=Decimal("0.00"),
            )
        )
    return SensitiveData(
        notes=tuple(rng.sample(NOTES, rng.randint(1, 2))),
        activation_measures=tuple(rng.sample(ACTIVATION, rng.randint(0, 2))),
        sanctions=tuple(rng.sample(SANCTIONS, rng.randint(0, 1))),
        refused_applications=tuple(rng.sample(REFUSALS, rng.randint(0, 2))),
        family_members=tuple(members),
    )
