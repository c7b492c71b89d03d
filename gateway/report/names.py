"""Institutions and people's numbers written the way the person reads them."""

from __future__ import annotations

from gateway.model.codes import N_
from gateway.model.directory import Directory, InstitutionKind
from gateway.model.identifiers import person_number_kind
from gateway.report.words import (
    INSTITUTION_KINDS,
    Words,
)


class Names:
    """Institutions named in the report's language, from the signed directory."""

    def __init__(self, directory: Directory, words: Words, home: str) -> None:
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


def number_label(number: str, words: Words) -> str:
    if person_number_kind(number) == "bis":
        return words(N_("BIS number"))
    return words(N_("National register number"))


def format_number(number: str) -> str:
    """``85.07.30-033.28``: the way the number is printed on Belgian identity cards."""
    d = "".join(ch for ch in number if ch.isdigit())
    return f"{d[0:2]}.{d[2:4]}.{d[4:6]}-{d[6:9]}.{d[9:11]}" if len(d) == 11 else number


def _format_enterprise(number: str) -> str:
    d = "".join(ch for ch in number if ch.isdigit())
    return f"{d[0:4]}.{d[4:7]}.{d[7:10]}" if len(d) == 10 else number
