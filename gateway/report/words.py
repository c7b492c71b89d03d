"""The report's words: English message ids, their catalogues, and local formatting.

The words live in gettext catalogues (``gateway/locale/<lang>/LC_MESSAGES/
gateway.po``) with English message ids; they are compiled in memory with
Babel when first used, so an installed package needs no build step. Babel's
CLDR data also writes dates and euro amounts the way each language does.
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
import io
from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from typing import Any, Final
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency

from gateway.journal import Event
from gateway.model.codes import N_, Fault, Outcome, Refusal, RefusalGround, RefusalReason
from gateway.model.directory import InstitutionKind
from gateway.model.dossier import (
    AidKind,
    DecisionStatus,
    HouseholdCategory,
    LegalBasis,
)
from gateway.model.envelope import Purpose
from gateway.model.errors import GatewayError

LANGUAGES: Final = ("fr", "nl", "de")


BELGIAN_TIME: Final = ZoneInfo("Europe/Brussels")
DOMAIN: Final = "gateway"
_LOCALES: Final = {"fr": "fr_BE", "nl": "nl_BE", "de": "de_BE"}


# ---------------------------------------------------------- vocabularies
# English message ids; the catalogues hold the glossary's words for each.

AID_KINDS: Final = {
    AidKind.INTEGRATION_INCOME: N_("integration income"),
    AidKind.EQUIVALENT_INCOME: N_("social aid equivalent to the integration income"),
    AidKind.URGENT_MEDICAL_AID: N_("urgent medical aid"),
    AidKind.INSTALLATION_PREMIUM: N_("installation premium"),
    AidKind.HEATING_ALLOWANCE: N_("heating allowance"),
    AidKind.DEBT_MEDIATION: N_("debt mediation"),
    AidKind.RENT_GUARANTEE: N_("rent guarantee"),
    AidKind.OTHER_FINANCIAL_AID: N_("other financial aid"),
}
LEGAL_BASES: Final = {
    LegalBasis.SOCIAL_INTEGRATION_2002: N_("law of 26 May 2002 on the right to social integration"),
    LegalBasis.ORGANIC_CPAS_1976: N_("organic law of 8 July 1976 on the CPAS"),
}
STATUSES: Final = {
    DecisionStatus.GRANTED: N_("granted"),
    DecisionStatus.REVISED: N_("revised"),
    DecisionStatus.ENDED: N_("ended"),
}
HOUSEHOLD_CATEGORIES: Final = {
    HouseholdCategory.COHABITANT: N_("cohabiting"),
    HouseholdCategory.ISOLATED: N_("living alone"),
    HouseholdCategory.FAMILY_DEPENDANTS: N_("person with family dependants"),
}
PURPOSES: Final = {
    Purpose.NEW_APPLICATION_INQUIRY: N_("social inquiry for a new application"),
    Purpose.CONTINUITY_AFTER_MOVE: N_("continuity of aid after a move"),
    Purpose.COMPETENT_CPAS_DETERMINATION: N_("determination of the competent CPAS"),
}
LANGUAGE_NAMES: Final = {"fr": N_("French"), "nl": N_("Dutch"), "de": N_("German")}
INSTITUTION_KINDS: Final = {kind: kind.words for kind in InstitutionKind}
EVENTS: Final = {
    Event.SENT: N_("sent"),
    Event.RECEIVED: N_("received"),
    Event.RECEIPT_SENT: N_("acknowledgement sent"),
    Event.RECEIPT_RECEIVED: N_("acknowledgement received"),
    Event.REFUSED_OUTGOING: N_("refused before sending"),
    Event.REFUSED_INCOMING: N_("refused on arrival"),
    Event.REQUEST_HELD: N_("waiting for a social worker"),
    Event.REQUEST_RELEASED: N_("released by a social worker"),
    Event.REQUEST_REFUSED: N_("refused by a social worker"),
    Event.REQUEST_EXPIRED: N_("request expired"),
    Event.RESPONSE_SENT: N_("answer sent"),
    Event.RESPONSE_RECEIVED: N_("answer received"),
    Event.REQUEUED: N_("delivered again"),
    Event.DOSSIER_SHOWN: N_("shown to you before sending"),
}
# Refusal codes, reasons a response carries no dossier and outcomes: the words
# sit beside each code in gateway.model.codes.
REASONS: Final[dict[str, str]] = {
    member.value: member.words
    for vocabulary in (Refusal, RefusalReason, Outcome, RefusalGround)
    for member in vocabulary
}


# ------------------------------------------------------------ catalogues


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (``fr``, ``nl`` or ``de``)."""
    if lang not in LANGUAGES:
        raise GatewayError(
            f"There is no report in {lang!r}: choose one of {', '.join(LANGUAGES)}.",
            code=Fault.REPORT_LANGUAGE,
        )
    source = resources.files("gateway").joinpath(f"locale/{lang}/LC_MESSAGES/{DOMAIN}.po")
    with source.open("rb") as po:
        catalog = read_po(po, locale=_LOCALES[lang], domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class Words:
    """Translation and local formatting for one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.locale = _LOCALES[lang]
        catalogue = translations(lang)
        self.gettext: Callable[[str], str] = catalogue.gettext
        self.ngettext: Callable[[str, str, int], str] = catalogue.ngettext

    def __call__(self, message: str, **values: object) -> str:
        text = self.gettext(message)
        return text.format(**values) if values else text

    def date(self, value: dt.date) -> str:
        text = format_date(value, "long", locale=self.locale)
        if self.lang == "fr" and value.day == 1:
            # French writes the first of the month as an ordinal: "1er mars 2025".
            text = "1er" + text[1:]
        return text

    def field(self, label: str, value: str) -> str:
        """``label: value``, with the spacing the language wants around the colon."""
        return self(N_("{label}: {value}"), label=label, value=value)

    def moment(self, value: dt.datetime) -> str:
        local = value.astimezone(BELGIAN_TIME)
        return self(
            N_("{date} at {time}"),
            date=self.date(local.date()),
            time=format_time(local.time(), "HH:mm", locale=self.locale),
        )

    def amount(self, value: Decimal) -> str:
        return format_currency(value, "EUR", locale=self.locale)

    def label(self, table: dict[Any, str], code: str | None) -> str:
        """The translated label of a code; an unknown code stands for itself."""
        if code is None:
            return ""
        # Enumeration members are strings: a code finds its member's entry.
        message = table.get(code)
        return code if message is None else self.gettext(message)


def purpose_words(code: str, lang: str) -> str:
    """The words of a purpose in ``lang``."""
    return Words(lang).label(PURPOSES, code)


def event_words(event: str, lang: str) -> str:
    """The words of a journal event in ``lang``."""
    return Words(lang).label(EVENTS, event)


def reason_words(code: str | None, lang: str) -> str | None:
    """The words of a refusal or rejection code in ``lang`` (the code itself when unknown)."""
    return None if code is None else Words(lang).label(REASONS, code)
