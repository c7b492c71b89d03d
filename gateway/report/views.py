"""The report as data: what each exchange, step and dossier says, in words, ready to lay out."""

from __future__ import annotations

from dataclasses import dataclass


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
