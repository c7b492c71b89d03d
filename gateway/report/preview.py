"""The dossier that would go, shown to the person before it leaves."""

from __future__ import annotations

import dataclasses

from lxml import etree
from lxml.html import builder as E

from gateway.journal import ContentState, Entry, Event
from gateway.model.codes import N_, Fault
from gateway.model.directory import Directory
from gateway.model.dossier import (
    Dossier,
)
from gateway.model.errors import GatewayError
from gateway.report.dossiers import dossier_view
from gateway.report.html import css, dossier_html
from gateway.report.names import Names
from gateway.report.text import dossier_text
from gateway.report.words import (
    Words,
)


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
    words = Words(lang or dossier.person.language.value)
    names = Names(directory, words, cpas_id)
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
        dossier_view(entry, words, names),
        heading=words(N_("The dossier that would be sent to {peer}"), peer=names.of(recipient)),
    )
    note = words(N_("This is exactly what would be sent, shown to you before it leaves."))
    if fmt == "text":
        return "\n".join([note, "", *dossier_text(view, words)]) + "\n"
    page = E.HTML(
        E.HEAD(
            E.META(charset="utf-8"),
            E.TITLE(view.heading),
            E.STYLE(css()),
        ),
        E.BODY(E.MAIN(E.P(note, E.CLASS("intro")), dossier_html(view, words))),
        lang=words.lang,
    )
    return "<!DOCTYPE html>\n" + etree.tostring(page, encoding="unicode", method="html") + "\n"
