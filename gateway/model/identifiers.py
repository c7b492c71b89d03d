"""Belgian identifiers, checked beyond the XSD pattern with python-stdnum.

- NISS (national register number, INSZ): 11 digits, YYMMDD + counter + check
  digits; for people born in 2000 or later the check uses ``2`` + nine digits.
- BIS number: same layout, the month raised by 20 (sex unknown) or 40.
- Enterprise number (BCE/KBO): 10 digits with mod-97 check digits.

The checks are pure functions of the text, and python-stdnum's are slow
beside the rest of a message's handling: the same few hundred CPAS numbers
come back in every header, and a person's number in every message about
them. A valid identifier is therefore remembered (up to
:data:`CACHE_SIZE` of each kind); an invalid one is never remembered and is
checked, and refused, again every time.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Final, Literal

from stdnum import exceptions as stdnum_errors
from stdnum.be import bis, nn, vat

from gateway.model.codes import Refusal
from gateway.model.errors import IdentifierInvalid

PersonNumberKind = Literal["niss", "bis"]

CACHE_SIZE: Final = 65536
"""Valid identifiers of each kind remembered: a few MB at most."""


def _digits(value: str) -> str:
    # ASCII digits only: str.isdigit() would also take other scripts' digits.
    return "".join(ch for ch in value if "0" <= ch <= "9")


@functools.lru_cache(maxsize=CACHE_SIZE)
def validate_niss(value: str) -> str:
    """Return the 11 digits of a valid NISS, or raise ``niss.checksum``/``niss.format``."""
    return _validate_person(
        value, nn, Refusal.NISS_FORMAT, Refusal.NISS_CHECKSUM, "national register number (NISS)"
    )


@functools.lru_cache(maxsize=CACHE_SIZE)
def validate_bis(value: str) -> str:
    """Return the 11 digits of a valid BIS number, or raise ``bis.checksum``/``bis.format``."""
    return _validate_person(value, bis, Refusal.BIS_FORMAT, Refusal.BIS_CHECKSUM, "BIS number")


def _validate_person(
    value: str, module: object, malformed: Refusal, checksum: Refusal, label: str
) -> str:
    # A person's number is never quoted back: the message reaches terminals,
    # logs and dead-letter headers.
    compact = _digits(value)
    if len(compact) != 11 or compact != value.replace(".", "").replace("-", "").replace(" ", ""):
        raise IdentifierInvalid(f"The {label} given is not 11 digits.", code=malformed)
    try:
        return str(module.validate(compact))  # type: ignore[attr-defined]
    except stdnum_errors.InvalidChecksum:
        raise IdentifierInvalid(
            f"The {label} given is not valid: its check digits do not match.",
            code=checksum,
        ) from None
    except stdnum_errors.ValidationError:
        raise IdentifierInvalid(
            f"The {label} given is not valid: it encodes no possible birth date.",
            code=malformed,
        ) from None


def person_number_kind(value: str) -> PersonNumberKind:
    """Tell a NISS from a BIS number (the month is raised by 20 or 40 in a BIS number)."""
    month = int(_digits(value)[2:4] or 0)
    return "bis" if month >= 20 else "niss"


def validate_person_number(value: str) -> tuple[PersonNumberKind, str]:
    """Validate a NISS or BIS number, whichever it is."""
    kind = person_number_kind(value)
    return kind, (validate_bis(value) if kind == "bis" else validate_niss(value))


@functools.lru_cache(maxsize=CACHE_SIZE)
def validate_enterprise_number(value: str) -> str:
    """Return the 10 digits of a valid enterprise number, or raise ``enterprise.checksum``."""
    compact = _digits(value)
    # Only the usual separators may surround the digits (BE prefix, dots, spaces).
    if len(compact) != 10 or value.upper().removeprefix("BE").strip(" .-0123456789"):
        raise IdentifierInvalid(
            f"{value!r} is not a 10-digit enterprise number.", code=Refusal.ENTERPRISE_FORMAT
        )
    try:
        return str(vat.validate(compact))
    except stdnum_errors.InvalidChecksum:
        raise IdentifierInvalid(
            f"{value!r} is not a valid enterprise number: its check digits do not match.",
            code=Refusal.ENTERPRISE_CHECKSUM,
        ) from None
    except stdnum_errors.ValidationError:
        raise IdentifierInvalid(
            f"{value!r} is not a valid enterprise number.", code=Refusal.ENTERPRISE_FORMAT
        ) from None


@functools.lru_cache(maxsize=CACHE_SIZE)
def encoded_birth(
    number: str, kind: PersonNumberKind
) -> tuple[int | None, int | None, dt.date | None]:
    """The birth year, month and date a valid NISS (or BIS number) encodes, ``None`` when unknown.

    python-stdnum reads the century from the check digits. Numbers given
    when the birth date was unknown carry zeros: what they do not hold is
    ``None``.
    """
    module = bis if kind == "bis" else nn
    date = module.get_birth_date(number)
    if date is not None:
        # Year, month and day all known: one reading of the number is enough.
        return date.year, date.month, date
    return module.get_birth_year(number), module.get_birth_month(number), None


def make_niss(birth: dt.date, serial: int, *, bis_offset: int = 0) -> str:
    """Build a check-digit-valid NISS (or BIS number with ``bis_offset`` 20 or 40).

    For synthetic test people only: ``serial`` is the 3-digit day counter.
    """
    if not 1 <= serial <= 998:
        raise ValueError("serial must be between 1 and 998")
    body = f"{birth.year % 100:02d}{birth.month + bis_offset:02d}{birth.day:02d}{serial:03d}"
    base = int(("2" if birth.year >= 2000 else "") + body)
    return f"{body}{97 - base % 97:02d}"


def make_enterprise_number(seed: int) -> str:
    """Build a synthetic, check-digit-valid enterprise number of the ``02xx`` public range.

    CPAS enterprise numbers are not in the reference data, so the sample
    directory uses these, and says so.
    """
    body = 2_000_000 + seed % 1_000_000
    return f"{body:08d}{97 - body % 97:02d}"
