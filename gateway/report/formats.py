"""The report's formats: ``text``, ``html`` and ``json``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Final

from gateway.model.codes import Fault
from gateway.model.errors import GatewayError
from gateway.report.html import render_html
from gateway.report.text import render_text
from gateway.report.views import Report

FORMATS: Final = ("text", "html", "json")


def render_json(report: Report) -> str:
    """The report as JSON: codes beside their words, and each dossier's exact XML."""
    return json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2) + "\n"


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
