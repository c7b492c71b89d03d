"""The report as plain text (UTF-8, lines of at most 78 characters)."""

from __future__ import annotations

import textwrap

from gateway.model.codes import N_
from gateway.report.phrases import dossier_fields, integrity_note, intro, subtitle
from gateway.report.views import DossierView, Report
from gateway.report.words import (
    Words,
)


def render_text(report: Report) -> str:
    """The report as plain text (UTF-8, lines of at most 78 characters)."""
    words = Words(report.lang)
    out: list[str] = []

    def para(text: str, indent: str = "") -> None:
        out.extend(textwrap.wrap(text, 78, initial_indent=indent, subsequent_indent=indent))

    title = words(N_("Your electronic social dossier: what was sent, to whom, and why"))
    out += [title, "=" * len(title), ""]
    for line in subtitle(report, words):
        para(line)
    out.append("")
    for text in intro(report, words):
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
            out += dossier_text(view, words)
        out.append("")
    integrity = integrity_note(report, words)
    if integrity:
        para(integrity)
    para(words(N_("Dates and times are in Belgian time.")))
    return "\n".join(out).rstrip() + "\n"


def dossier_text(view: DossierView, words: Words) -> list[str]:
    out: list[str] = []

    def para(text: str, indent: str) -> None:
        out.extend(textwrap.wrap(text, 78, initial_indent=indent, subsequent_indent=indent))

    para(view.heading.upper(), "  ")
    if view.note:
        para(view.note, "    ")
        return out
    for label, value in dossier_fields(view, words):
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
