"""The report as one self-contained, printable HTML page (inline CSS, nothing external)."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from lxml import etree
from lxml.html import builder as E

from gateway.model.codes import N_
from gateway.report.phrases import dossier_fields, integrity_note, intro, subtitle
from gateway.report.views import DossierView, Exchange, Report
from gateway.report.words import (
    Words,
)


def render_html(report: Report) -> str:
    """The report as one self-contained, printable HTML page (inline CSS, nothing external)."""
    words = Words(report.lang)
    title = words(N_("Your electronic social dossier: what was sent, to whom, and why"))
    body: list[Any] = [
        E.HEADER(
            E.P(report.cpas, E.CLASS("issuer")),
            E.H1(title),
            *(E.P(line, E.CLASS("subtitle")) for line in subtitle(report, words)),
        )
    ]
    body += [E.P(text, E.CLASS("intro")) for text in intro(report, words)]
    if not report.exchanges:
        body.append(E.P(words(N_("No exchange about you has been recorded.")), E.CLASS("empty")))
    else:
        body.append(E.H2(words(N_("In short"))))
        body.append(_overview(report, words))
        body.append(E.H2(words(N_("In detail"))))
        for number, exchange in enumerate(report.exchanges, 1):
            body.append(_exchange_html(number, exchange, words))
    footer = [E.P(words(N_("Dates and times are in Belgian time.")))]
    integrity = integrity_note(report, words)
    if integrity:
        footer.insert(0, E.P(integrity, E.CLASS("ok" if report.journal_intact else "alarm")))
    body.append(E.FOOTER(*footer))
    page = E.HTML(
        E.HEAD(
            E.META(charset="utf-8"),
            E.META(name="viewport", content="width=device-width, initial-scale=1"),
            E.TITLE(f"{title} — {report.person_name or report.person_number}"),
            E.STYLE(css()),
        ),
        E.BODY(E.MAIN(*body)),
        lang=report.lang,
    )
    return "<!DOCTYPE html>\n" + etree.tostring(page, encoding="unicode", method="html") + "\n"


def _overview(report: Report, words: Words) -> Any:
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


def _exchange_html(number: int, exchange: Exchange, words: Words) -> Any:
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
    parts += [dossier_html(view, words) for view in exchange.dossiers]
    classes = "exchange refused" if exchange.refused else "exchange"
    return E.SECTION(*parts, E.CLASS(classes), id=f"exchange-{number}")


def dossier_html(view: DossierView, words: Words) -> Any:
    if view.note:
        return E.DIV(E.H4(view.heading), E.P(view.note, E.CLASS("note")), E.CLASS("dossier"))
    fields = E.DL(
        *(
            item
            for label, value in dossier_fields(view, words)
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
def css() -> str:
    return resources.files("gateway").joinpath("report_templates/report.css").read_text("utf-8")
