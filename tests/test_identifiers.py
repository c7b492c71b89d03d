"""NISS, BIS and enterprise numbers: check digits, the 2000 rule, and each refusal's code."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gateway.model.errors import DossierInvalid, IdentifierInvalid
from gateway.model.identifiers import (
    encoded_birth,
    make_enterprise_number,
    make_niss,
    person_number_kind,
    validate_bis,
    validate_enterprise_number,
    validate_niss,
    validate_person_number,
)


def code_of(check: object, value: str) -> str:
    with pytest.raises(IdentifierInvalid) as refused:
        check(value)  # type: ignore[operator]
    return refused.value.code


def with_check_digits(body: str, *, born_2000_or_later: bool) -> str:
    """The 11-digit number for a 9-digit body, by the rule of the given century."""
    base = int(("2" if born_2000_or_later else "") + body)
    return f"{body}{97 - base % 97:02d}"


# ------------------------------------------------------------------ NISS


def test_niss_born_before_2000_checks_the_nine_digits() -> None:
    # 97 - (850730033 mod 97) = 28
    assert validate_niss("85073003328") == "85073003328"


def test_niss_born_in_or_after_2000_checks_2_followed_by_the_nine_digits() -> None:
    # 97 - (2170730033 mod 97) = 84
    assert validate_niss("17073003384") == "17073003384"


def test_the_two_rules_give_different_check_digits_for_the_same_digits() -> None:
    before = with_check_digits("170730033", born_2000_or_later=False)
    after = with_check_digits("170730033", born_2000_or_later=True)
    assert before != after
    assert validate_niss(before) == before  # someone born in 1917
    assert validate_niss(after) == after  # someone born in 2017


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        (dt.date(1985, 7, 30), "85073003328"),
        (dt.date(2017, 7, 30), "17073003384"),
    ],
)
def test_make_niss_applies_the_rule_of_the_birth_century(birth: dt.date, expected: str) -> None:
    assert make_niss(birth, 33) == expected


@pytest.mark.parametrize(
    "birth",
    [dt.date(1900, 1, 1), dt.date(1999, 12, 31), dt.date(2000, 1, 1), dt.date(2024, 2, 29)],
)
def test_made_niss_is_valid_on_century_boundaries(birth: dt.date) -> None:
    number = make_niss(birth, 998)
    assert validate_niss(number) == number
    assert number[:6] == f"{birth:%y%m%d}"


def test_niss_with_separators_is_returned_compact() -> None:
    assert validate_niss("85.07.30-033.28") == "85073003328"


def test_niss_with_wrong_check_digits_is_niss_checksum() -> None:
    assert code_of(validate_niss, "85073003329") == "niss.checksum"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("8507300332", id="ten-digits"),
        pytest.param("850730033280", id="twelve-digits"),
        pytest.param("85O73003328", id="letter-o"),
        pytest.param("", id="empty"),
    ],
)
def test_niss_of_the_wrong_shape_is_niss_format(value: str) -> None:
    assert code_of(validate_niss, value) == "niss.format"


def test_niss_with_a_13th_month_is_niss_format() -> None:
    number = with_check_digits("851330033", born_2000_or_later=False)
    assert code_of(validate_niss, number) == "niss.format"


def test_bis_number_is_not_a_niss() -> None:
    assert code_of(validate_niss, make_niss(dt.date(1985, 7, 30), 33, bis_offset=20)) == (
        "niss.format"
    )


def test_niss_refusal_is_a_dossier_error_with_a_sentence() -> None:
    with pytest.raises(DossierInvalid) as refused:
        validate_niss("85073003329")
    assert "check digits" in refused.value.message
    assert str(refused.value).startswith("[niss.checksum] ")


# ------------------------------------------------------------------ BIS


@pytest.mark.parametrize("offset", [20, 40])
@pytest.mark.parametrize("birth", [dt.date(1985, 7, 30), dt.date(2003, 2, 28)])
def test_bis_number_raises_the_month_by_20_or_40(offset: int, birth: dt.date) -> None:
    number = make_niss(birth, 33, bis_offset=offset)
    assert int(number[2:4]) == birth.month + offset
    assert validate_bis(number) == number
    assert person_number_kind(number) == "bis"


def test_bis_number_born_after_2000_uses_the_2000_rule() -> None:
    number = make_niss(dt.date(2003, 2, 28), 33, bis_offset=40)
    assert number == with_check_digits("034228033", born_2000_or_later=True)


def test_bis_number_with_unknown_birth_month_and_day_is_valid() -> None:
    number = with_check_digits("912000017", born_2000_or_later=False)
    assert validate_bis(number) == number


def test_bis_number_with_wrong_check_digits_is_bis_checksum() -> None:
    number = make_niss(dt.date(1985, 7, 30), 33, bis_offset=40)
    wrong = f"{number[:9]}{(int(number[9:]) + 1) % 100:02d}"
    assert code_of(validate_bis, wrong) == "bis.checksum"


@pytest.mark.parametrize("month", ["07", "13", "33", "60", "67"])
def test_bis_number_without_a_bis_month_is_bis_format(month: str) -> None:
    number = with_check_digits(f"85{month}30033", born_2000_or_later=False)
    assert code_of(validate_bis, number) == "bis.format"


def test_bis_number_of_the_wrong_length_is_bis_format() -> None:
    assert code_of(validate_bis, "854730033") == "bis.format"


# ------------------------------------------------------------------ either kind


def test_person_number_kind_tells_niss_from_bis() -> None:
    assert person_number_kind("85073003328") == "niss"
    assert person_number_kind(make_niss(dt.date(1985, 7, 30), 33, bis_offset=20)) == "bis"


def test_validate_person_number_returns_the_kind_and_the_digits() -> None:
    bis = make_niss(dt.date(1985, 7, 30), 33, bis_offset=40)
    assert validate_person_number("85073003328") == ("niss", "85073003328")
    assert validate_person_number(bis) == ("bis", bis)


@pytest.mark.parametrize("serial", [0, 999])
def test_make_niss_refuses_a_serial_out_of_range(serial: int) -> None:
    with pytest.raises(ValueError):
        make_niss(dt.date(1985, 7, 30), serial)


# ------------------------------------------------------------------ enterprise numbers


def test_enterprise_number_with_valid_check_digits_is_accepted() -> None:
    # 97 - (4287594 mod 97) = 97: the check digits may be 97.
    assert validate_enterprise_number("0428759497") == "0428759497"


def test_enterprise_number_with_separators_is_returned_compact() -> None:
    assert validate_enterprise_number("BE 0428.759.497") == "0428759497"


@pytest.mark.parametrize("nis", [11002, 21004, 44021, 62063, 63023, 92094])
def test_made_enterprise_numbers_are_valid(nis: int) -> None:
    number = make_enterprise_number(nis)
    assert len(number) == 10
    assert validate_enterprise_number(number) == number


def test_made_enterprise_numbers_differ_by_seed() -> None:
    assert len({make_enterprise_number(nis) for nis in range(10_000, 10_500)}) == 500


def test_enterprise_number_with_wrong_check_digits_is_enterprise_checksum() -> None:
    assert code_of(validate_enterprise_number, "0428759496") == "enterprise.checksum"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("428759497", id="nine-digits"),
        pytest.param("04287594970", id="eleven-digits"),
        pytest.param("2428759497", id="first-digit-2"),
    ],
)
def test_enterprise_number_of_the_wrong_shape_is_enterprise_format(value: str) -> None:
    assert code_of(validate_enterprise_number, value) == "enterprise.format"


# ------------------------------------------------------------- remembering


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (validate_niss, "85071412300"),
        (validate_bis, "85271412300"),
        (validate_enterprise_number, "0123456788"),
    ],
)
def test_an_invalid_identifier_is_never_remembered_and_is_refused_every_time(
    check: Any, value: str
) -> None:
    check.cache_clear()
    codes = [code_of(check, value) for _ in range(3)]
    assert codes[0].endswith(".checksum") and len(set(codes)) == 1
    assert check.cache_info().currsize == 0


def test_a_valid_identifier_is_checked_once_then_remembered() -> None:
    number = make_niss(dt.date(1985, 7, 14), 123)
    validate_niss.cache_clear()
    assert validate_niss(number) == number
    assert validate_niss(number) == number
    info = validate_niss.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_a_remembered_check_still_refuses_a_number_written_otherwise() -> None:
    number = make_niss(dt.date(1985, 7, 14), 123)
    assert validate_niss(number) == number
    assert code_of(validate_niss, number + "0") == "niss.format"


def test_encoded_birth_reads_what_the_number_holds_and_none_for_what_it_does_not() -> None:
    niss = make_niss(dt.date(2003, 2, 1), 17)
    assert encoded_birth(niss, "niss") == (2003, 2, dt.date(2003, 2, 1))
    unknown = with_check_digits("004000123", born_2000_or_later=False)
    assert encoded_birth(unknown, "bis")[1:] == (None, None)
