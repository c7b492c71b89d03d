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

The package, one concern a module: :mod:`~gateway.report.words` (the
vocabularies, catalogues and local formatting), :mod:`~gateway.report.views`
(the report as data), :mod:`~gateway.report.exchanges` (entries gathered into
exchanges, told step by step), :mod:`~gateway.report.dossiers` and
:mod:`~gateway.report.names` (a dossier, an institution, a number in words),
:mod:`~gateway.report.phrases`, :mod:`~gateway.report.text`,
:mod:`~gateway.report.html` and :mod:`~gateway.report.formats` (the layouts),
:mod:`~gateway.report.preview` (a dossier shown before it leaves).
"""

from gateway.report.exchanges import build_report
from gateway.report.formats import FORMATS, render, render_json
from gateway.report.html import render_html
from gateway.report.preview import render_preview
from gateway.report.text import render_text
from gateway.report.views import DecisionView, DossierView, Exchange, Report, Step
from gateway.report.words import (
    AID_KINDS,
    BELGIAN_TIME,
    DOMAIN,
    EVENTS,
    HOUSEHOLD_CATEGORIES,
    INSTITUTION_KINDS,
    LANGUAGE_NAMES,
    LANGUAGES,
    LEGAL_BASES,
    PURPOSES,
    REASONS,
    STATUSES,
    event_words,
    purpose_words,
    reason_words,
    translations,
)

__all__ = [
    "AID_KINDS",
    "BELGIAN_TIME",
    "DOMAIN",
    "EVENTS",
    "FORMATS",
    "HOUSEHOLD_CATEGORIES",
    "INSTITUTION_KINDS",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "LEGAL_BASES",
    "PURPOSES",
    "REASONS",
    "STATUSES",
    "DecisionView",
    "DossierView",
    "Exchange",
    "Report",
    "Step",
    "build_report",
    "event_words",
    "purpose_words",
    "reason_words",
    "render",
    "render_html",
    "render_json",
    "render_preview",
    "render_text",
    "translations",
]
