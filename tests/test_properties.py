"""Properties over every valid dossier: model -> XML -> XSD -> model is exact.

The strategies build any dossier the model's rules allow: check-digit-valid
NISS and BIS numbers (both month offsets) matching the birth date on either
side of 2000, periods that end on or after their start, decisions never in
the future, the legal basis of each kind of aid, amounts of at most two
decimals up to 99 999.99, and names that match the PersonName pattern with
letters and combining marks of many scripts.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.model import hardened_xml
from gateway.model.dossier import (
    AidKind,
    ContactPoint,
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
from gateway.model.errors import IdentifierInvalid
from gateway.model.identifiers import (
    make_niss,
    validate_enterprise_number,
    validate_person_number,
)

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Today as the model sees it at the earliest, so generated dates are never "future".
TODAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
SCHEMA_MIN_DATE = dt.date(1900, 1, 1)


def _characters(*blocks: tuple[int, int], categories: str) -> str:
    return "".join(
        chr(code)
        for start, end in blocks
        for code in range(start, end + 1)
        if unicodedata.category(chr(code))[0] in categories
    )


# Letters of scripts a Belgian register meets, from blocks the XSD engine's
# Unicode tables know in full. Letters it does not know (newer ones, and Han or
# Hangul) are a known disagreement between model and XSD, in test_dossier_model.
LETTERS = _characters(
    (0x0041, 0x007A),  # Basic Latin
    (0x00C0, 0x0236),  # Latin-1 Supplement, Latin Extended-A and most of -B
    (0x0386, 0x03CE),  # Greek
    (0x0400, 0x04CE),  # Cyrillic
    (0x05D0, 0x05EA),  # Hebrew
    (0x0621, 0x063A),  # Arabic
    (0x0641, 0x064A),
    (0x1E00, 0x1E9B),  # Latin Extended Additional (Vietnamese)
    (0x1EA0, 0x1EF9),
    categories="L",
)
MARKS = _characters((0x0300, 0x0333), categories="M")  # combining diacritical marks
NAME_TAIL = LETTERS + MARKS + " '’.-"

names = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(LETTERS),
    st.text(alphabet=NAME_TAIL, max_size=79),
)


@st.composite
def people(draw: st.DrawFn) -> Person:
    birth = draw(st.dates(min_value=SCHEMA_MIN_DATE, max_value=TODAY))
    offset = draw(st.sampled_from([0, 20, 40]))
    number = make_niss(birth, draw(st.integers(1, 998)), bis_offset=offset)
    return Person(
        niss=None if offset else number,
        bis=number if offset else None,
        family_name=draw(names),
        given_names=draw(st.lists(names, min_size=1, max_size=4)),
        birth_date=birth,
        language=draw(st.sampled_from(Language)),
    )


@st.composite
def enterprise_numbers(draw: st.DrawFn) -> str:
    # Ten digits starting with 0 or 1, the last two making the body a multiple of 97.
    body = draw(st.integers(min_value=1, max_value=19_999_999))
    return f"{body:08d}{97 - body % 97:02d}"


opaque_references = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/\-]{0,63}", fullmatch=True)
mailboxes = st.builds(
    "{}@{}.{}".format,
    st.from_regex(r"[a-z0-9][a-z0-9._\-]{0,30}", fullmatch=True),
    st.from_regex(r"[a-z0-9][a-z0-9.\-]{0,30}", fullmatch=True),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
phones = st.none() | st.from_regex(r"\+[0-9]{8,15}", fullmatch=True)
amounts = st.none() | st.integers(min_value=0, max_value=9_999_999).map(
    lambda cents: Decimal(cents).scaleb(-2)
)


@st.composite
def decisions(draw: st.DrawFn) -> Decision:
    kind = draw(st.sampled_from(AidKind))
    start = draw(st.dates(min_value=SCHEMA_MIN_DATE, max_value=dt.date(2100, 12, 31)))
    end = draw(st.none() | st.integers(0, 20 * 366).map(lambda days: start + dt.timedelta(days)))
    return Decision(
        decision_id=draw(opaque_references),
        kind=kind,
        legal_basis=legal_basis_for(kind),
        decision_date=draw(st.dates(min_value=SCHEMA_MIN_DATE, max_value=TODAY)),
        period_start=start,
        period_end=end,
        status=draw(st.sampled_from(DecisionStatus)),
        monthly_amount=draw(amounts),
    )


utc_offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)


@st.composite
def dossiers(draw: st.DrawFn) -> Dossier:
    category = draw(st.sampled_from(HouseholdCategory))
    return Dossier(
        dossier_id=draw(st.uuids()),
        created_at=draw(
            st.datetimes(
                min_value=dt.datetime(2000, 1, 1),
                max_value=dt.datetime(2099, 12, 31),
                timezones=utc_offsets,
            )
        ),
        source=Source(
            cpas_id=draw(enterprise_numbers()),
            case_reference=draw(opaque_references),
            contact=ContactPoint(mailbox=draw(mailboxes), phone=draw(phones)),
        ),
        person=draw(people()),
        household=Household(category=category, dependent_children=draw(st.integers(0, 20))),
        aid_history=draw(st.lists(decisions(), max_size=12)),
        last_social_inquiry=draw(st.none() | st.dates(min_value=SCHEMA_MIN_DATE, max_value=TODAY)),
    )


@PROPERTY_SETTINGS
@given(dossiers())
def test_any_valid_dossier_round_trips_through_xsd_valid_xml(dossier: Dossier) -> None:
    xml = dossier.to_xml()
    assert hardened_xml.validate(hardened_xml.parse(xml)) == "dossier"
    assert Dossier.from_xml(xml) == dossier


@PROPERTY_SETTINGS
@given(dossiers())
def test_serialising_twice_gives_the_same_bytes(dossier: Dossier) -> None:
    xml = dossier.to_xml()
    assert Dossier.from_xml(xml).to_xml() == xml


@settings(max_examples=150, deadline=None)
@given(
    birth=st.dates(min_value=SCHEMA_MIN_DATE, max_value=TODAY),
    serial=st.integers(1, 998),
    offset=st.sampled_from([0, 20, 40]),
)
def test_made_person_numbers_validate_as_their_kind(
    birth: dt.date, serial: int, offset: int
) -> None:
    number = make_niss(birth, serial, bis_offset=offset)
    assert validate_person_number(number) == ("bis" if offset else "niss", number)


@settings(max_examples=150, deadline=None)
@given(number=enterprise_numbers(), position=st.integers(0, 9), delta=st.integers(1, 9))
def test_any_single_digit_error_in_an_enterprise_number_is_caught(
    number: str, position: int, delta: int
) -> None:
    assert validate_enterprise_number(number) == number
    digit = (int(number[position]) + delta) % 10
    wrong = number[:position] + str(digit) + number[position + 1 :]
    with pytest.raises(IdentifierInvalid) as refused:
        validate_enterprise_number(wrong)
    assert refused.value.code in {"enterprise.checksum", "enterprise.format"}
