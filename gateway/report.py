"""The person's own report: every exchange about them, in French, Dutch or German.

:func:`build_report` reads a person's entries from the node's journal
(:meth:`gateway.journal.Journal.entries_for`) and turns them into plain
words: which CPAS sent or received what (named in the person's language, from
the signed directory), when (Belgian time, written the way people write dates
in that language), for which legal mission, whether it was imported, the
content of each dossier as it was sent or received, and the attempts that
were refused. :func:`render_text`, :func:`render_html` and :func:`render_json`
lay the same report out as plain text, one self-contained printable HTML page,
or JSON.

The words live in gettext catalogues (``gateway/locale/<lang>/LC_MESSAGES/
gateway.po``) with English message ids; they are compiled in memory with
Babel when first used, so an installed package needs no build step. Babel's
CLDR data also writes dates and euro amounts the way each language does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gettext
import io
import json
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any, Final
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from lxml import etree
from lxml.html import builder as E

from gateway.journal import ContentState, Entry, Event, Journal, VerifyResult
from gateway.model.codes import N_, Fault, Outcome, Refusal, RefusalGround, RefusalReason
from gateway.model.directory import Directory, InstitutionKind
from gateway.model.dossier import (
    AidKind,
    DecisionStatus,
    Dossier,
    HouseholdCategory,
    LegalBasis,
    Person,
)
from gateway.model.envelope import Purpose
from gateway.model.errors import GatewayError
from gateway.model.identifiers import person_number_kind, validate_person_number

LANGUAGES: Final = ("fr", "nl", "de")
FORMATS: Final = ("text", "html", "json")
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


class _Words:
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


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class DecisionView:
    """One aid decision in words."""

    decision_id: str
    kind: str
    legal_basis: str
    decided: str
    period: str
    status: str
    monthly_amount: str | None


@dataclass(frozen=True)
class DossierView:
    """A dossier's content in words, and its exact XML."""

    heading: str
    state: str
    note: str | None = None
    name: str | None = None
    number_label: str | None = None
    number: str | None = None
    birth_date: str | None = None
    language: str | None = None
    household: str | None = None
    dependent_children: int | None = None
    decisions: tuple[DecisionView, ...] = ()
    last_social_inquiry: str | None = None
    source: str | None = None
    contact: str | None = None
    xml: str | None = None


@dataclass(frozen=True)
class Step:
    """One thing that happened in an exchange."""

    seq: int
    event: str
    event_label: str
    at: str
    when: str
    text: str
    outcome: str | None
    code: str | None
    reason: str | None


@dataclass(frozen=True)
class Exchange:
    """A message about the person and everything that followed from it."""

    title: str
    at: str
    when: str
    peer_id: str | None
    peer: str
    purpose_code: str | None
    purpose: str
    case_reference: str | None
    refused: bool
    outcome: str
    steps: tuple[Step, ...]
    dossiers: tuple[DossierView, ...]


@dataclass(frozen=True)
class Report:
    """The person's report in one language, ready to lay out."""

    lang: str
    generated_at: str
    generated: str
    cpas_id: str
    cpas: str
    person_number: str
    person_number_label: str
    person_name: str | None
    journal_intact: bool | None
    journal_entries: int | None
    exchanges: tuple[Exchange, ...]


def build_report(
    journal: Journal,
    directory: Directory,
    *,
    cpas_id: str,
    person_number: str,
    lang: str | None = None,
    verified: VerifyResult | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """The report for the person with ``person_number``, in ``lang``.

    :param cpas_id: the CPAS whose journal this is (the node's own id).
    :param lang: ``fr``, ``nl`` or ``de``; by default the person's own
        language as their latest readable dossier gives it, else French.
    :param verified: the result of :meth:`Journal.verify`, stated in the report.
    """
    _, number = validate_person_number(person_number)
    # Only the journal's own API writes entries, and it knows every event; an
    # entry with another one was slipped in, and ``verified`` says so.
    entries = [e for e in journal.entries_for(number) if e.event in _KNOWN_EVENTS]
    if lang is None:
        lang = _person_language(entries) or LANGUAGES[0]
    words = _Words(lang)
    now = now or dt.datetime.now(dt.UTC)
    names = _Names(directory, words, cpas_id)
    this = names.of(cpas_id, plain=True)
    exchanges = tuple(_exchange(group, words, names, this) for group in _threads(entries))
    return Report(
        lang=lang,
        generated_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        generated=words.moment(now),
        cpas_id=cpas_id,
        cpas=this,
        person_number=_format_number(number),
        person_number_label=_number_label(number, words),
        person_name=_person_name(entries),
        journal_intact=None if verified is None else verified.ok,
        journal_entries=None if verified is None else verified.entries,
        exchanges=exchanges,
    )


class _Names:
    """Institutions named in the report's language, from the signed directory."""

    def __init__(self, directory: Directory, words: _Words, home: str) -> None:
        self.directory = directory
        self.words = words
        self.home = home
        """This CPAS: the source of every dossier it sent."""

    def contact_of(self, institution_id: str) -> str:
        """The contact point the signed directory lists for an institution ('' when none)."""
        institution = self.directory.get(institution_id)
        contact = None if institution is None else institution.contact
        if contact is None:
            return ""
        return " · ".join(part for part in (contact.mailbox, contact.phone) if part)

    def of(self, institution_id: str | None, *, plain: bool = False) -> str:
        if institution_id is None:
            return self.words(N_("an unknown institution"))
        institution = self.directory.get(institution_id)
        if institution is None:
            return self.words(
                N_("{id} (not in the directory of CPAS)"), id=_format_enterprise(institution_id)
            )
        name = institution.name(self.words.lang)
        if plain or institution.kind is InstitutionKind.CPAS:
            return name
        return f"{name}, {self.words.label(INSTITUTION_KINDS, institution.kind.value)}"


def _threads(entries: Sequence[Entry]) -> list[list[Entry]]:
    """Group entries by the message that started them (replies follow their correlation)."""
    root_of: dict[str, str] = {}
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        key = None
        if entry.correlation_id is not None:
            key = root_of.get(entry.correlation_id, entry.correlation_id)
        if key is None:
            key = entry.message_id or f"#{entry.seq}"
        if entry.message_id is not None:
            root_of.setdefault(entry.message_id, key)
        groups.setdefault(key, []).append(entry)
    return list(groups.values())


_KNOWN_EVENTS: Final = frozenset(event.value for event in Event)

_TITLES: Final = {
    (Event.SENT, "transfer"): N_("Your dossier sent to {peer}"),
    (Event.SENT, "request"): N_("Request for your dossier sent to {peer}"),
    (Event.RECEIVED, "transfer"): N_("Your dossier received from {peer}"),
    (Event.RECEIVED, "request"): N_("Request for your dossier from {peer}"),
    # Refusals may name any institution (a police service...): the
    # translations keep its name apart, where no article or case depends on it.
    (Event.REFUSED_OUTGOING, "transfer"): N_("Sending of your dossier refused (recipient: {peer})"),
    (Event.REFUSED_OUTGOING, "request"): N_("Request for your dossier refused (recipient: {peer})"),
    (Event.REFUSED_INCOMING, None): N_("Message refused (sender: {peer})"),
    (Event.DOSSIER_SHOWN, None): N_("Dossier shown to you before sending (recipient: {peer})"),
}


def _exchange(group: list[Entry], words: _Words, names: _Names, this: str) -> Exchange:
    first = group[0]
    peer_id = next((e.peer for e in group if e.peer), None)
    peer = names.of(peer_id)
    purpose_code = next((e.purpose for e in group if e.purpose), None)
    case_reference = next((e.case_reference for e in group if e.case_reference), None)
    event = Event(first.event)
    title = (
        _TITLES.get((event, first.message_type))
        or _TITLES.get((event, None))
        or N_("Exchange (institution: {peer})")
    )
    steps = tuple(_step(entry, words, this, peer) for entry in group)
    dossiers = tuple(_dossier_view(entry, words, names) for entry in group if _carries(entry))
    refused = any(
        e.event in (Event.REFUSED_OUTGOING, Event.REFUSED_INCOMING, Event.REQUEST_REFUSED)
        for e in group
    )
    return Exchange(
        title=words(title, peer=peer),
        at=first.at.isoformat(timespec="seconds"),
        when=words.moment(first.at),
        peer_id=peer_id,
        peer=peer,
        purpose_code=purpose_code,
        purpose=words.label(PURPOSES, purpose_code) if purpose_code else "",
        case_reference=case_reference,
        refused=refused,
        outcome=_outcome(group, words),
        steps=steps,
        dossiers=dossiers,
    )


def _carries(entry: Entry) -> bool:
    return entry.content_state is not ContentState.NONE


def _outcome(group: list[Entry], words: _Words) -> str:
    """One phrase for the overview: what came of the exchange in the end."""
    last = group[-1]
    event = Event(last.event)
    if event is Event.REFUSED_OUTGOING:
        return words(N_("refused: nothing was sent"))
    if event in (Event.REFUSED_INCOMING, Event.REQUEST_REFUSED, Event.REQUEST_EXPIRED):
        return words.label(EVENTS, event.value)
    if last.outcome in (Outcome.IMPORTED, Outcome.REJECTED):
        return words(Outcome(last.outcome).words)
    answers = (Event.RESPONSE_SENT, Event.RESPONSE_RECEIVED)
    if event in answers and last.content_state is ContentState.NONE:
        return words(N_("answered without the dossier"))
    return words.label(EVENTS, event.value)


def _step(entry: Entry, words: _Words, this: str, peer: str) -> Step:
    event = Event(entry.event)
    reason_code = entry.code or (
        entry.outcome if entry.outcome not in (None, Outcome.IMPORTED, Outcome.REJECTED) else None
    )
    reason = words.label(REASONS, reason_code) if reason_code else None
    values = {"this": this, "peer": peer, "reason": reason or "", "actor": entry.actor or ""}
    kind = entry.message_type
    has_dossier = _carries(entry)
    message: str
    acted = _acted(entry, has_dossier, reason)
    if acted is not None:
        message = acted
    elif event is Event.SENT:
        message = (
            N_("{this} asked {peer} for your dossier.")
            if kind == "request"
            else N_("{this} sent your dossier to {peer}.")
        )
    elif event is Event.RECEIVED:
        message = (
            N_("{peer} asked {this} for your dossier.")
            if kind == "request"
            else N_("{this} received your dossier from {peer}.")
        )
    elif event is Event.RECEIPT_RECEIVED:
        message = (
            N_("{peer} confirmed that it imported your dossier.")
            if entry.outcome == Outcome.IMPORTED
            else N_("{peer} did not import your dossier: {reason}.")
        )
    elif event is Event.RECEIPT_SENT:
        message = (
            N_("{this} imported your dossier and confirmed it to {peer}.")
            if entry.outcome == Outcome.IMPORTED
            else N_("{this} did not import the dossier ({reason}) and told {peer}.")
        )
    elif event is Event.REFUSED_OUTGOING:
        message = (
            N_(
                "{this} refused to send the request (recipient: {peer}): {reason}. "
                "Nothing was sent."
            )
            if kind == "request"
            else N_(
                "{this} refused to send your dossier (recipient: {peer}): {reason}. "
                "Nothing was sent."
            )
        )
    elif event is Event.REFUSED_INCOMING:
        message = N_("{this} refused a message (sender: {peer}): {reason}.")
    elif event is Event.REQUEST_HELD:
        message = N_("The request waits for the decision of a social worker of {this}.")
    elif event is Event.REQUEST_RELEASED:
        message = N_("A social worker of {this} agreed to answer the request.")
    elif event is Event.REQUEST_REFUSED:
        message = N_("A social worker of {this} decided not to hand over your dossier.")
    elif event is Event.REQUEST_EXPIRED:
        message = N_("No answer came from {peer} before the request expired.")
    elif event is Event.DOSSIER_SHOWN:
        message = N_("You were shown the dossier that would be sent to {peer}.")
    elif event is Event.RESPONSE_SENT:
        message = (
            N_("{this} sent your dossier to {peer} in answer to its request.")
            if has_dossier
            else N_("{this} answered {peer} without sending your dossier: {reason}.")
        )
    else:  # Event.RESPONSE_RECEIVED
        message = (
            N_("{this} received your dossier from {peer} in answer to its request.")
            if has_dossier
            else N_("{peer} answered without sending your dossier: {reason}.")
        )
    return Step(
        seq=entry.seq,
        event=event.value,
        event_label=words.label(EVENTS, event.value),
        at=entry.at.isoformat(timespec="seconds"),
        when=words.moment(entry.at),
        text=words(message, **values),
        outcome=entry.outcome,
        code=entry.code,
        reason=reason,
    )


def _acted(entry: Entry, has_dossier: bool, reason: str | None) -> str | None:
    """The step's sentence naming the social worker who acted, or ``None`` when no one is named.

    ``{actor}`` is this CPAS's own staff reference, or the pseudonym another
    CPAS's envelope gave (which that CPAS can resolve).
    """
    if entry.actor is None:
        return None
    event, kind = Event(entry.event), entry.message_type
    if event is Event.SENT:
        return (
            N_("A social worker of {this} (reference {actor}) asked {peer} for your dossier.")
            if kind == "request"
            else N_("A social worker of {this} (reference {actor}) sent your dossier to {peer}.")
        )
    if event is Event.RECEIVED:
        return (
            N_("A social worker of {peer} (reference {actor}) asked {this} for your dossier.")
            if kind == "request"
            else N_(
                "{this} received your dossier from {peer}, sent by a social worker of {peer} "
                "(reference {actor})."
            )
        )
    if event is Event.REQUEST_RELEASED:
        return (
            N_(
                "A social worker of {this} (reference {actor}) agreed to answer the request; "
                "a second social worker must agree too."
            )
            if entry.outcome == Outcome.AWAITING_SECOND_RELEASE
            else N_("A social worker of {this} (reference {actor}) agreed to answer the request.")
        )
    if event is Event.REQUEST_REFUSED and reason:
        return N_(
            "A social worker of {this} (reference {actor}) decided not to hand over your "
            "dossier: {reason}."
        )
    if event is Event.RESPONSE_SENT and has_dossier:
        return N_(
            "A social worker of {this} (reference {actor}) released your dossier to {peer} in "
            "answer to its request."
        )
    if event is Event.RESPONSE_RECEIVED and has_dossier:
        return N_(
            "{this} received your dossier from {peer} in answer to its request; a social "
            "worker of {peer} (reference {actor}) released it."
        )
    if event is Event.DOSSIER_SHOWN:
        return N_(
            "A social worker of {this} (reference {actor}) showed you the dossier that would "
            "be sent to {peer}."
        )
    return None


def _dossier_view(entry: Entry, words: _Words, names: _Names) -> DossierView:
    heading = words(
        N_("The dossier as it was sent")
        if entry.direction == "out"
        else N_("The dossier as it was received")
    )
    if entry.content_state is ContentState.DESTROYED:
        until = (
            words.date(entry.retain_until.astimezone(BELGIAN_TIME)) if entry.retain_until else ""
        )
        return DossierView(
            heading=heading,
            state=entry.content_state.value,
            note=words(
                N_(
                    "Its content is no longer kept: it was erased at the end of the "
                    "retention period ({date})."
                ),
                date=until,
            ),
        )
    dossier = None
    if entry.content is not None:
        try:
            dossier = Dossier.from_xml(entry.content)
        except GatewayError:
            dossier = None
    if dossier is None or entry.content is None:
        return DossierView(
            heading=heading,
            state=ContentState.UNREADABLE.value,
            note=words(N_("Its content cannot be read; ask the CPAS.")),
        )
    person = dossier.person
    # Who sent it is who signed it (the receiver refuses a dossier whose
    # source is anyone else), and how to reach them is what the signed
    # directory says -- never what the dossier itself claims.
    source = names.home if entry.direction == "out" else entry.peer
    return DossierView(
        heading=heading,
        state=entry.content_state.value,
        name=" ".join([*person.given_names, person.family_name]),
        number_label=_number_label(person.number, words),
        number=_format_number(person.number),
        birth_date=words.date(person.birth_date),
        language=words.label(LANGUAGE_NAMES, person.language.value),
        household=words.label(HOUSEHOLD_CATEGORIES, dossier.household.category.value),
        dependent_children=dossier.household.dependent_children,
        decisions=tuple(
            DecisionView(
                decision_id=d.decision_id,
                kind=_initial(words.label(AID_KINDS, d.kind.value)),
                legal_basis=words.label(LEGAL_BASES, d.legal_basis.value),
                decided=words.date(d.decision_date),
                period=(
                    words(
                        N_("from {start} to {end}"),
                        start=words.date(d.period_start),
                        end=words.date(d.period_end),
                    )
                    if d.period_end is not None
                    else words(N_("from {start}"), start=words.date(d.period_start))
                ),
                status=_initial(words.label(STATUSES, d.status.value)),
                monthly_amount=(
                    None if d.monthly_amount is None else words.amount(d.monthly_amount)
                ),
            )
            for d in dossier.aid_history
        ),
        last_social_inquiry=(
            None if dossier.last_social_inquiry is None else words.date(dossier.last_social_inquiry)
        ),
        source=names.of(source, plain=True),
        contact="" if source is None else names.contact_of(source),
        xml=entry.content.decode("utf-8"),
    )


def _initial(text: str) -> str:
    """Upper-case the first letter only (``str.capitalize`` would lower "CPAS")."""
    return text[:1].upper() + text[1:]


def _latest_person(entries: Iterable[Entry]) -> Person | None:
    """The person as the most recent readable dossier describes them."""
    for entry in reversed(list(entries)):
        if entry.content is None:
            continue
        try:
            return Dossier.from_xml(entry.content).person
        except GatewayError:
            continue
    return None


def _person_name(entries: Iterable[Entry]) -> str | None:
    person = _latest_person(entries)
    return None if person is None else " ".join([*person.given_names, person.family_name])


def _person_language(entries: Iterable[Entry]) -> str | None:
    person = _latest_person(entries)
    return None if person is None else person.language.value


def _number_label(number: str, words: _Words) -> str:
    if person_number_kind(number) == "bis":
        return words(N_("BIS number"))
    return words(N_("National register number"))


def _format_number(number: str) -> str:
    """``85.07.30-033.28``: the way the number is printed on Belgian identity cards."""
    d = "".join(ch for ch in number if ch.isdigit())
    return f"{d[0:2]}.{d[2:4]}.{d[4:6]}-{d[6:9]}.{d[9:11]}" if len(d) == 11 else number


def _format_enterprise(number: str) -> str:
    d = "".join(ch for ch in number if ch.isdigit())
    return f"{d[0:4]}.{d[4:7]}.{d[7:10]}" if len(d) == 10 else number


# ----------------------------------------------------------------- layout


def _intro(report: Report, words: _Words) -> list[str]:
    return [
        words(
            N_(
                "This report lists every exchange about you recorded by the gateway of "
                "{this}: the dossiers it sent to or received from another CPAS, the requests "
                "for your dossier, and the attempts that were refused."
            ),
            this=report.cpas,
        ),
        words(
            N_(
                "A dossier only holds administrative facts: your identity, your household "
                "category, the number of children in your care and the decisions on your "
                "aid. It never holds your social worker's notes, anything about your "
                "health, your address, or the identity of the people you live with. Only "
                "a CPAS can receive it."
            )
        ),
    ]


def _integrity(report: Report, words: _Words) -> str:
    if report.journal_intact is None:
        return ""
    if report.journal_intact:
        count = report.journal_entries or 0
        entries = words.ngettext("{count} entry", "{count} entries", count).format(count=count)
        return words(
            N_(
                "The journal was checked on {date}: nothing in it was changed or "
                "removed ({entries})."
            ),
            date=report.generated,
            entries=entries,
        )
    return words(
        N_("The journal was checked on {date} and is NOT intact: ask {this} for an explanation."),
        date=report.generated,
        this=report.cpas,
    )


def _subtitle(report: Report, words: _Words) -> list[str]:
    if report.person_name:
        drawn = words(
            N_("Drawn up by {this} on {date} for {name}."),
            this=report.cpas,
            date=report.generated,
            name=report.person_name,
        )
    else:
        drawn = words(N_("Drawn up by {this} on {date}."), this=report.cpas, date=report.generated)
    return [drawn, words.field(report.person_number_label, report.person_number)]


def _dossier_fields(view: DossierView, words: _Words) -> list[tuple[str, str]]:
    fields = [
        (words(N_("Name")), view.name or ""),
        (view.number_label or "", view.number or ""),
        (words(N_("Date of birth")), view.birth_date or ""),
        (words(N_("Language")), view.language or ""),
        (words(N_("Household category")), view.household or ""),
        (words(N_("Dependent children")), str(view.dependent_children or 0)),
    ]
    if view.last_social_inquiry:
        fields.append((words(N_("Last social inquiry")), view.last_social_inquiry))
    fields.append((words(N_("Sent by")), view.source or ""))
    fields.append((words(N_("Contact")), view.contact or ""))
    return fields


def render_text(report: Report) -> str:
    """The report as plain text (UTF-8, lines of at most 78 characters)."""
    words = _Words(report.lang)
    out: list[str] = []

    def para(text: str, indent: str = "") -> None:
        out.extend(textwrap.wrap(text, 78, initial_indent=indent, subsequent_indent=indent))

    title = words(N_("Your electronic social dossier: what was sent, to whom, and why"))
    out += [title, "=" * len(title), ""]
    for line in _subtitle(report, words):
        para(line)
    out.append("")
    for text in _intro(report, words):
        para(text)
        out.append("")
    if not report.exchanges:
        para(words(N_("No exchange about you has been recorded.")))
        out.append("")
    for number, exchange in enumerate(report.exchanges, 1):
        heading = f"{number}. {exchange.title}"
        out += [heading, "-" * min(len(heading), 78)]
        para(words.field(words(N_("Date")), exchange.when))
        if exchange.purpose:
            para(words.field(words(N_("Purpose")), exchange.purpose))
        if exchange.case_reference:
            para(words.field(words(N_("Case reference")), exchange.case_reference))
        para(words.field(words(N_("Outcome")), exchange.outcome))
        out.append("")
        for step in exchange.steps:
            para(f"{step.when} — {step.text}", "  ")
        for view in exchange.dossiers:
            out.append("")
            out += _dossier_text(view, words)
        out.append("")
    integrity = _integrity(report, words)
    if integrity:
        para(integrity)
    para(words(N_("Dates and times are in Belgian time.")))
    return "\n".join(out).rstrip() + "\n"


def _dossier_text(view: DossierView, words: _Words) -> list[str]:
    out: list[str] = []

    def para(text: str, indent: str) -> None:
        out.extend(textwrap.wrap(text, 78, initial_indent=indent, subsequent_indent=indent))

    para(view.heading.upper(), "  ")
    if view.note:
        para(view.note, "    ")
        return out
    for label, value in _dossier_fields(view, words):
        para(words.field(label, value), "    ")
    para(
        words.field(words(N_("Aid decisions")), "" if view.decisions else words(N_("none"))),
        "    ",
    )
    for d in view.decisions:
        out.extend(
            textwrap.wrap(
                f"- {d.kind} ({d.legal_basis})",
                78,
                initial_indent="      ",
                subsequent_indent="        ",
            )
        )
        for name, detail in (
            (words(N_("Date of decision")), d.decided),
            (words(N_("Period")), d.period),
            (words(N_("Status")), d.status),
            (words(N_("Monthly amount")), d.monthly_amount),
        ):
            if detail:
                para(words.field(name, detail), "        ")
    return out


def render_json(report: Report) -> str:
    """The report as JSON: codes beside their words, and each dossier's exact XML."""
    return json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2) + "\n"


def render_html(report: Report) -> str:
    """The report as one self-contained, printable HTML page (inline CSS, nothing external)."""
    words = _Words(report.lang)
    title = words(N_("Your electronic social dossier: what was sent, to whom, and why"))
    body: list[Any] = [
        E.HEADER(
            E.P(report.cpas, E.CLASS("issuer")),
            E.H1(title),
            *(E.P(line, E.CLASS("subtitle")) for line in _subtitle(report, words)),
        )
    ]
    body += [E.P(text, E.CLASS("intro")) for text in _intro(report, words)]
    if not report.exchanges:
        body.append(E.P(words(N_("No exchange about you has been recorded.")), E.CLASS("empty")))
    else:
        body.append(E.H2(words(N_("In short"))))
        body.append(_overview(report, words))
        body.append(E.H2(words(N_("In detail"))))
        for number, exchange in enumerate(report.exchanges, 1):
            body.append(_exchange_html(number, exchange, words))
    footer = [E.P(words(N_("Dates and times are in Belgian time.")))]
    integrity = _integrity(report, words)
    if integrity:
        footer.insert(0, E.P(integrity, E.CLASS("ok" if report.journal_intact else "alarm")))
    body.append(E.FOOTER(*footer))
    page = E.HTML(
        E.HEAD(
            E.META(charset="utf-8"),
            E.META(name="viewport", content="width=device-width, initial-scale=1"),
            E.TITLE(f"{title} — {report.person_name or report.person_number}"),
            E.STYLE(_css()),
        ),
        E.BODY(E.MAIN(*body)),
        lang=report.lang,
    )
    return "<!DOCTYPE html>\n" + etree.tostring(page, encoding="unicode", method="html") + "\n"


def _overview(report: Report, words: _Words) -> Any:
    head = E.TR(
        *(
            E.TH(text)
            for text in (
                words(N_("Date")),
                words(N_("Exchange")),
                words(N_("Purpose")),
                words(N_("Outcome")),
            )
        )
    )
    rows = [
        E.TR(
            E.TD(exchange.when, E.CLASS("when")),
            E.TD(E.A(exchange.title, href=f"#exchange-{number}")),
            E.TD(exchange.purpose),
            E.TD(exchange.outcome, E.CLASS("refused" if exchange.refused else "done")),
        )
        for number, exchange in enumerate(report.exchanges, 1)
    ]
    return E.TABLE(E.THEAD(head), E.TBODY(*rows), E.CLASS("overview"))


def _exchange_html(number: int, exchange: Exchange, words: _Words) -> Any:
    facts = E.DL(
        E.DT(words(N_("Date"))),
        E.DD(exchange.when),
        *((E.DT(words(N_("Purpose"))), E.DD(exchange.purpose)) if exchange.purpose else ()),
        *(
            (E.DT(words(N_("Case reference"))), E.DD(exchange.case_reference))
            if exchange.case_reference
            else ()
        ),
        E.DT(words(N_("Outcome"))),
        E.DD(exchange.outcome),
        E.CLASS("facts"),
    )
    steps = E.OL(
        *(
            E.LI(E.SPAN(step.when, E.CLASS("when")), " ", E.SPAN(step.text))
            for step in exchange.steps
        ),
        E.CLASS("steps"),
    )
    parts: list[Any] = [
        E.H3(E.SPAN(f"{number}.", E.CLASS("number")), " ", exchange.title),
        facts,
        steps,
    ]
    parts += [_dossier_html(view, words) for view in exchange.dossiers]
    classes = "exchange refused" if exchange.refused else "exchange"
    return E.SECTION(*parts, E.CLASS(classes), id=f"exchange-{number}")


def _dossier_html(view: DossierView, words: _Words) -> Any:
    if view.note:
        return E.DIV(E.H4(view.heading), E.P(view.note, E.CLASS("note")), E.CLASS("dossier"))
    fields = E.DL(
        *(
            item
            for label, value in _dossier_fields(view, words)
            for item in (E.DT(label), E.DD(value))
        ),
        E.CLASS("person"),
    )
    if view.decisions:
        header = E.TR(
            *(
                E.TH(text)
                for text in (
                    words(N_("Kind of aid")),
                    words(N_("Date of decision")),
                    words(N_("Period")),
                    words(N_("Status")),
                    words(N_("Monthly amount")),
                )
            )
        )
        rows = [
            E.TR(
                E.TD(E.STRONG(d.kind), E.BR(), E.SPAN(d.legal_basis, E.CLASS("basis"))),
                E.TD(d.decided),
                E.TD(d.period),
                E.TD(d.status),
                E.TD(d.monthly_amount or "—", E.CLASS("amount")),
            )
            for d in view.decisions
        ]
        decisions: Any = E.TABLE(E.THEAD(header), E.TBODY(*rows), E.CLASS("decisions"))
    else:
        decisions = E.P(words(N_("none")))
    return E.DIV(
        E.H4(view.heading),
        fields,
        E.H5(words(N_("Aid decisions"))),
        decisions,
        E.CLASS("dossier"),
    )


@functools.cache
def _css() -> str:
    return resources.files("gateway").joinpath("report_templates/report.css").read_text("utf-8")


def render(report: Report, fmt: str) -> str:
    """Lay the report out as ``text``, ``html`` or ``json``."""
    renderers: dict[str, Callable[[Report], str]] = {
        "text": render_text,
        "html": render_html,
        "json": render_json,
    }
    try:
        return renderers[fmt](report)
    except KeyError:
        raise GatewayError(
            f"There is no report format {fmt!r}: choose one of {', '.join(FORMATS)}.",
            code=Fault.REPORT_FORMAT,
        ) from None


# ------------------------------------------------------------- preview


def render_preview(
    dossier: Dossier,
    directory: Directory,
    *,
    cpas_id: str,
    recipient: str,
    fmt: str,
    lang: str | None = None,
) -> str:
    """The dossier that would go to ``recipient``, laid out as the person's report lays out a
    dossier sent (``html`` or ``text``), in ``lang`` (default: the person's own language)."""
    if fmt not in ("html", "text"):
        raise GatewayError(
            f"There is no preview format {fmt!r}: choose html or text.", code=Fault.REPORT_FORMAT
        )
    words = _Words(lang or dossier.person.language.value)
    names = _Names(directory, words, cpas_id)
    entry = Entry(
        seq=0,
        at=dossier.created_at,
        event=Event.DOSSIER_SHOWN.value,
        direction="out",
        message_id=None,
        message_type="transfer",
        peer=recipient,
        purpose=None,
        case_reference=dossier.source.case_reference,
        correlation_id=None,
        outcome=None,
        code=None,
        content_state=ContentState.KEPT,
        retain_until=None,
        content=dossier.to_xml(),
    )
    view = dataclasses.replace(
        _dossier_view(entry, words, names),
        heading=words(N_("The dossier that would be sent to {peer}"), peer=names.of(recipient)),
    )
    note = words(N_("This is exactly what would be sent, shown to you before it leaves."))
    if fmt == "text":
        return "\n".join([note, "", *_dossier_text(view, words)]) + "\n"
    page = E.HTML(
        E.HEAD(
            E.META(charset="utf-8"),
            E.TITLE(view.heading),
            E.STYLE(_css()),
        ),
        E.BODY(E.MAIN(E.P(note, E.CLASS("intro")), _dossier_html(view, words))),
        lang=words.lang,
    )
    return "<!DOCTYPE html>\n" + etree.tostring(page, encoding="unicode", method="html") + "\n"


def purpose_words(code: str, lang: str) -> str:
    """The words of a purpose in ``lang``."""
    return _Words(lang).label(PURPOSES, code)


def event_words(event: str, lang: str) -> str:
    """The words of a journal event in ``lang``."""
    return _Words(lang).label(EVENTS, event)


def reason_words(code: str | None, lang: str) -> str | None:
    """The words of a refusal or rejection code in ``lang`` (the code itself when unknown)."""
    return None if code is None else _Words(lang).label(REASONS, code)
