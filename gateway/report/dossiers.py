"""A dossier's content in words: the person, the household, the aid decisions."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.journal import ContentState, Entry
from gateway.model.codes import N_
from gateway.model.dossier import (
    Dossier,
    Person,
)
from gateway.model.errors import GatewayError
from gateway.report.names import Names, format_number, number_label
from gateway.report.views import DecisionView, DossierView
from gateway.report.words import (
    AID_KINDS,
    BELGIAN_TIME,
    HOUSEHOLD_CATEGORIES,
    LANGUAGE_NAMES,
    LEGAL_BASES,
    STATUSES,
    Words,
)


def dossier_view(entry: Entry, words: Words, names: Names) -> DossierView:
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
        number_label=number_label(person.number, words),
        number=format_number(person.number),
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


def person_name(entries: Iterable[Entry]) -> str | None:
    person = _latest_person(entries)
    return None if person is None else " ".join([*person.given_names, person.family_name])


def person_language(entries: Iterable[Entry]) -> str | None:
    person = _latest_person(entries)
    return None if person is None else person.language.value
