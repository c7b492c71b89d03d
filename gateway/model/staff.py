"""The acting social worker: an opaque staff reference of the CPAS, never a person's identity.

Every transfer, request, release and refusal names who acted, as the CPAS's
own opaque staff reference (``AS-0042``, ``gent.sw.117``): the reference the
vendor system already gives its users, meaningless outside the CPAS. It is
recorded in the node's journal as it is; on the wire the envelope header
carries only a keyed-hash pseudonym of it (see
:meth:`gateway.journal.Journal.staff_pseudonym`), which only the sending CPAS
can resolve, by recomputing it over the references in its own journal.

A reference is refused when it looks like something it must never be: a
name (no digit at all, or a space), or a national number, enterprise number
or phone number (nine digits or more in a row once separators are removed).
"""

from __future__ import annotations

import re
from typing import Final, NewType

from gateway.model.codes import Fault
from gateway.model.errors import GatewayError

StaffReference = NewType("StaffReference", str)
"""A staff reference that passed :func:`staff_reference`."""

_FORM: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{1,39}")
_LONG_NUMBER: Final = re.compile(r"\d{9,}")
_SEPARATORS: Final = re.compile(r"[._:\-]")
PSEUDONYM_PATTERN: Final = r"[a-z2-7]{26}"
"""A pseudonym on the wire: 128 bits of a keyed hash, in lower-case base32."""


class StaffReferenceRefused(GatewayError):
    """An action without a valid staff reference of the acting social worker."""

    code = Fault.STAFF_INVALID


def staff_reference(value: str | None) -> StaffReference:
    """``value`` checked as an opaque staff reference, or :class:`StaffReferenceRefused`.

    Codes: ``staff.missing`` (none given), ``staff.invalid`` (not 2 to 40
    letters, digits and ``. _ : -``), ``staff.looks_personal`` (a name or a
    national number rather than an opaque reference). The refusal never
    repeats the value: it may be exactly what must not be written down.
    """
    if value is None or not value.strip():
        raise StaffReferenceRefused(
            "Every action names the acting social worker: give their staff reference.",
            code=Fault.STAFF_MISSING,
        )
    if not _FORM.fullmatch(value):
        raise StaffReferenceRefused(
            "A staff reference is 2 to 40 letters, digits and . _ : - (no space), "
            "starting with a letter or digit."
        )
    if not any(ch.isdigit() for ch in value) or _LONG_NUMBER.search(_SEPARATORS.sub("", value)):
        raise StaffReferenceRefused(
            "A staff reference is the CPAS's opaque reference of the social worker (such as "
            "AS-0042): never a name, a national number or another identity number.",
            code=Fault.STAFF_LOOKS_PERSONAL,
        )
    return StaffReference(value)
