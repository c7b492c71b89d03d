"""The pydantic dossier model: its own rules, its agreement with the XSD, and its XML."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pydantic import ValidationError

from gateway.model import dossier as model
from gateway.model import hardened_xml
from gateway.model.dossier import (
    AidKind,
    Decision,
    DecisionStatus,
    Dossier,
    HouseholdCategory,
    Language,
    LegalBasis,
    Person,
    build,
    legal_basis_for,
)
from gateway.model.errors import DossierInvalid
from gateway.model.identifiers import make_enterprise_number, make_niss

XS = "{http://www.w3.org/2001/XMLSchema}"
XSD = Path(__file__).resolve().parent.parent / "schemas" / "xsd" / "dossier.xsd"
BIRTH = dt.date(1985, 7, 30)


def person(**changes: Any) -> dict[str, Any]:
    return {
        "niss": make_niss(BIRTH, 33),
        "family_name": "D'Hondt",
        "given_names": ["Marie"],
        "birth_date": BIRTH,
        "language": "nl",
        **changes,
    }


def decision(**changes: Any) -> dict[str, Any]:
    kind = changes.get("kind", AidKind.INTEGRATION_INCOME)
    return {
        "decision_id": "DEC-0001",
        "kind": kind,
        "legal_basis": legal_basis_for(AidKind(kind)),
        "decision_date": dt.date(2025, 3, 10),
        "period_start": dt.date(2025, 3, 1),
        "period_end": None,
        "status": "granted",
        "monthly_amount": Decimal("1314.20"),
        **changes,
    }


def dossier(**changes: Any) -> dict[str, Any]:
    return {
        "dossier_id": uuid.UUID("6f1c1a52-95a4-4c0e-9a53-2b8e8a4f5d10"),
        "created_at": dt.datetime(2026, 10, 1, 8, 30, tzinfo=dt.UTC),
        "source": {
            "cpas_id": make_enterprise_number(21004),
            "case_reference": "2026/00042",
            "contact": {"mailbox": "service.social@cpas.example.be", "phone": "+3225550100"},
        },
        "person": person(),
        "household": {"category": "isolated", "dependent_children": 0},
        "aid_history": [decision()],
        "last_social_inquiry": dt.date(2025, 3, 1),
        **changes,
    }


def refusal_code(cls: type[Any], data: dict[str, Any]) -> str:
    with pytest.raises(DossierInvalid) as refused:
        build(cls, data)
    return refused.value.code


def xsd_simple_type(name: str) -> etree._Element:
    schema = etree.parse(str(XSD)).getroot()
    found = schema.find(f"{XS}simpleType[@name='{name}']")
    assert found is not None, name
    return found


# ------------------------------------------------------------------ XML


def test_dossier_round_trips_through_xml() -> None:
    original = build(Dossier, dossier())
    xml = original.to_xml()
    assert hardened_xml.validate(hardened_xml.parse(xml)) == "dossier"
    assert Dossier.from_xml(xml) == original


def test_amounts_are_written_with_two_decimals() -> None:
    written = build(Dossier, dossier(aid_history=[decision(monthly_amount=Decimal("5"))])).to_xml()
    assert b"<monthlyAmount>5.00</monthlyAmount>" in written


def test_optional_elements_are_left_out_when_absent() -> None:
    data = dossier(aid_history=[decision(monthly_amount=None)], last_social_inquiry=None)
    data["source"]["contact"]["phone"] = None
    written = build(Dossier, data).to_xml()
    for element in (b"<phone>", b"<periodEnd>", b"<monthlyAmount>", b"<lastSocialInquiry>"):
        assert element not in written


def test_created_at_is_written_in_utc_to_the_second() -> None:
    brussels = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2026, 10, 1, 10, 30, 15, 999_999, tzinfo=brussels)
    written = build(Dossier, dossier(created_at=moment))
    assert written.created_at == dt.datetime(2026, 10, 1, 8, 30, 15, tzinfo=dt.UTC)
    assert b"<createdAt>2026-10-01T08:30:15Z</createdAt>" in written.to_xml()


def test_bis_number_is_written_in_the_bis_element() -> None:
    bis = make_niss(BIRTH, 33, bis_offset=40)
    written = build(Dossier, dossier(person=person(niss=None, bis=bis))).to_xml()
    assert f"<bis>{bis}</bis>".encode() in written
    assert b"<niss>" not in written


# ------------------------------------------------------------------ person


@pytest.mark.parametrize("offset", [20, 40])
def test_bis_number_matches_the_birth_date_despite_the_month_offset(offset: int) -> None:
    bis = make_niss(BIRTH, 33, bis_offset=offset)
    assert build(Person, person(niss=None, bis=bis)).number == bis


def test_person_needs_a_number() -> None:
    assert refusal_code(Person, person(niss=None)) == "person.number"


def test_person_has_only_one_number() -> None:
    bis = make_niss(BIRTH, 34, bis_offset=20)
    assert refusal_code(Person, person(bis=bis)) == "person.number"


def test_niss_of_another_birth_year_is_refused() -> None:
    assert refusal_code(Person, person(birth_date=dt.date(1986, 7, 30))) == (
        "person.birth_date_mismatch"
    )


@pytest.mark.parametrize(
    "birth",
    [
        pytest.param(dt.date(1985, 8, 30), id="other-month"),
        pytest.param(dt.date(1985, 7, 29), id="other-day"),
    ],
)
def test_niss_of_another_birth_day_is_refused(birth: dt.date) -> None:
    assert refusal_code(Person, person(birth_date=birth)) == "person.birth_date_mismatch"


def test_niss_of_the_other_century_is_refused() -> None:
    # Check digits of someone born in 1903 for a person born in 2003.
    number = make_niss(dt.date(1903, 4, 5), 12)
    data = person(niss=number, birth_date=dt.date(2003, 4, 5))
    assert refusal_code(Person, data) == "person.birth_date_mismatch"


def test_birth_date_in_the_future_is_refused() -> None:
    future = dt.date.today() + dt.timedelta(days=400)
    assert refusal_code(Person, person(birth_date=future)) == "person.birth_date"


def test_birth_date_before_1900_is_refused() -> None:
    assert refusal_code(Person, person(birth_date=dt.date(1899, 12, 31))) == "person.birth_date"


@pytest.mark.parametrize("count", [0, 5])
def test_one_to_four_given_names(count: int) -> None:
    with pytest.raises(DossierInvalid):
        build(Person, person(given_names=["Anne"] * count))


@pytest.mark.parametrize(
    "name",
    ["D'Hondt", "O’Connor", "Müller-Lüdenscheidt", "Lefèvre", "Nguyễn", "Ó Briain", "J.", "Zoë"],
)
def test_names_with_apostrophes_hyphens_and_diacritics_are_accepted(name: str) -> None:
    assert build(Person, person(family_name=name)).family_name == name


@pytest.mark.parametrize(
    "name",
    ["", "-Peeters", " Peeters", "Peeters2", "Peeters\n", "Pee<ters", "x" * 81],
)
def test_names_outside_the_pattern_are_refused(name: str) -> None:
    with pytest.raises(DossierInvalid):
        build(Person, person(family_name=name))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Peeters\u0237", id="letter-added-in-unicode-4.1"),
        pytest.param("王", id="han"),
        pytest.param("김", id="hangul"),
    ],
)
def test_a_name_the_xsd_refuses_is_refused_by_the_model(name: str) -> None:
    with pytest.raises(DossierInvalid):
        build(Person, person(family_name=name))


# ------------------------------------------------------------------ decisions


@pytest.mark.parametrize("kind", list(AidKind))
def test_each_kind_of_aid_rests_on_its_legal_basis(kind: AidKind) -> None:
    assert build(Decision, decision(kind=kind)).legal_basis is legal_basis_for(kind)
    other = next(basis for basis in LegalBasis if basis is not legal_basis_for(kind))
    assert refusal_code(Decision, decision(kind=kind, legal_basis=other)) == (
        "decision.legal_basis"
    )


def test_only_integration_income_rests_on_the_2002_law() -> None:
    on_2002 = {
        kind for kind in AidKind if legal_basis_for(kind) is LegalBasis.SOCIAL_INTEGRATION_2002
    }
    assert on_2002 == {AidKind.INTEGRATION_INCOME}


def test_decision_dated_in_the_future_is_refused() -> None:
    future = dt.date.today() + dt.timedelta(days=2)
    assert refusal_code(Decision, decision(decision_date=future)) == "decision.future"


def test_decision_dated_today_is_accepted() -> None:
    assert build(Decision, decision(decision_date=dt.date.today())).decision_date


def test_period_ending_before_it_starts_is_refused() -> None:
    data = decision(period_end=dt.date(2025, 2, 28))
    assert refusal_code(Decision, data) == "period.reversed"


def test_period_of_a_single_day_is_accepted() -> None:
    assert build(Decision, decision(period_end=dt.date(2025, 3, 1))).period_end


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (Decimal("-0.01"), "amount.negative"),
        (Decimal("1314.205"), "amount.precision"),
        (Decimal("100000.00"), "amount.too_large"),
    ],
)
def test_impossible_amounts_are_refused(amount: Decimal, code: str) -> None:
    assert refusal_code(Decision, decision(monthly_amount=amount)) == code


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity"])
def test_amounts_that_are_not_numbers_are_refused(amount: str) -> None:
    with pytest.raises(DossierInvalid):
        build(Decision, decision(monthly_amount=Decimal(amount)))


@pytest.mark.parametrize("amount", ["0", "0.00", "99999.99", "1314.2"])
def test_amounts_from_zero_to_the_maximum_are_kept_to_the_cent(amount: str) -> None:
    kept = build(Decision, decision(monthly_amount=Decimal(amount))).monthly_amount
    assert kept == Decimal(amount)
    assert kept is not None and kept.as_tuple().exponent == -2


# ------------------------------------------------------------------ dossier


def test_inquiry_in_the_future_is_refused() -> None:
    future = dt.date.today() + dt.timedelta(days=2)
    assert refusal_code(Dossier, dossier(last_social_inquiry=future)) == "inquiry.future"


def test_naive_creation_time_is_refused() -> None:
    assert refusal_code(Dossier, dossier(created_at=dt.datetime(2026, 10, 1))) == "time.naive"


def test_enterprise_number_with_wrong_check_digits_is_refused() -> None:
    data = dossier()
    number = data["source"]["cpas_id"]
    data["source"]["cpas_id"] = f"{number[:8]}{(int(number[8:]) + 1) % 100:02d}"
    assert refusal_code(Dossier, data) == "enterprise.checksum"


@pytest.mark.parametrize("field", ["notes", "activation", "sanctions", "address", "health"])
def test_the_model_has_no_place_for_anything_else(field: str) -> None:
    with pytest.raises(DossierInvalid):
        build(Dossier, dossier(**{field: "anything"}))


def test_the_model_is_frozen() -> None:
    built = build(Dossier, dossier())
    with pytest.raises(ValidationError):
        built.person.family_name = "Other"


def test_refusal_names_where_the_problem_is() -> None:
    with pytest.raises(DossierInvalid) as refused:
        build(Dossier, dossier(aid_history=[decision(), decision(period_end=dt.date(2000, 1, 1))]))
    assert refused.value.code == "period.reversed"
    assert refused.value.message.startswith("aid_history.1: ")


# ------------------------------------------------------------------ agreement with the XSD


@pytest.mark.parametrize(
    ("pattern", "simple_type"),
    [
        (model.OPAQUE_REFERENCE, "OpaqueReference"),
        (model.PERSON_NAME, "PersonName"),
        (model.MAILBOX, "ServiceMailbox"),
        (model.PHONE, "ServicePhone"),
    ],
)
def test_model_patterns_are_the_xsd_patterns(pattern: str, simple_type: str) -> None:
    xsd_pattern = xsd_simple_type(simple_type).find(f"{XS}restriction/{XS}pattern")
    assert xsd_pattern is not None
    # XSD patterns are implicitly anchored; the model's carry ^...$.
    assert pattern == f"^{xsd_pattern.get('value')}$"


@pytest.mark.parametrize(
    ("enum", "simple_type"),
    [
        (Language, "Language"),
        (HouseholdCategory, "HouseholdCategory"),
        (AidKind, "AidKind"),
        (LegalBasis, "LegalBasis"),
        (DecisionStatus, "DecisionStatus"),
    ],
)
def test_model_enumerations_are_the_xsd_enumerations(enum: type[StrEnum], simple_type: str) -> None:
    values = [el.get("value") for el in xsd_simple_type(simple_type).iter(f"{XS}enumeration")]
    assert values == [member.value for member in enum]
