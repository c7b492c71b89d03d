"""The sentences the text and HTML reports share: introduction, subtitle, integrity, fields."""

from __future__ import annotations

from gateway.model.codes import N_
from gateway.report.views import DossierView, Report
from gateway.report.words import (
    Words,
)


def intro(report: Report, words: Words) -> list[str]:
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


def integrity_note(report: Report, words: Words) -> str:
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


def subtitle(report: Report, words: Words) -> list[str]:
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


def dossier_fields(view: DossierView, words: Words) -> list[tuple[str, str]]:
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
