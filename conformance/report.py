"""The three reports of a run: ``report.json``, ``report.html`` and ``junit.xml``.

``report.json`` is the record: the one file a federation signs and publishes,
holding every requirement and every case with its evidence. ``report.html``
is one self-contained page (no script, no external asset) a federation can
publish beside it; its verdict is at the top. ``junit.xml`` has one
``testcase`` per case, its ``classname`` the requirement id, for CI systems.
"""

from __future__ import annotations

import html
import json
import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from lxml import etree

from .outcomes import Outcome
from .runner import SuiteResult

JSON_FILE: Final = "report.json"
HTML_FILE: Final = "report.html"
JUNIT_FILE: Final = "junit.xml"

# Characters XML 1.0 cannot hold: an adapter's exception message may carry any.
_NOT_XML: Final = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class ReportFiles:
    """Where the reports of a run were written."""

    json: Path
    html: Path
    junit: Path


def report_json(data: dict[str, Any]) -> bytes:
    """The bytes of ``report.json``: what a federation signs, so written one way only."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_reports(
    result: SuiteResult, directory: Path, *, signer_key_id: str | None = None
) -> ReportFiles:
    """Write the three reports into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = result.as_dict()
    files = ReportFiles(directory / JSON_FILE, directory / HTML_FILE, directory / JUNIT_FILE)
    files.json.write_bytes(report_json(data))
    files.html.write_text(render_html(data, signer_key_id=signer_key_id), encoding="utf-8")
    files.junit.write_bytes(render_junit(data))
    return files


# ------------------------------------------------------------------- HTML


def _template(name: str) -> str:
    return (resources.files("cpas_conformance") / "templates" / name).read_text(encoding="utf-8")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _prose(text: object) -> str:
    """Escaped text, with Markdown's `code` spans (as requirement titles write them) as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _badge(outcome: str, label: str | None = None) -> str:
    return f'<span class="badge {_e(outcome)}">{_e(label or outcome)}</span>'


def render_html(data: dict[str, Any], *, signer_key_id: str | None = None) -> str:
    """The one-page report, from the data of ``report.json``."""
    adapter = data["adapter"]
    rows = []
    for item in data["requirements"]:
        label = item["outcome"]
        if item.get("skip") == "not-applicable":
            label = "not applicable"
        elif item.get("skip") == "not-judged":
            label = "not judged"
        classes = " ".join(
            name
            for name, wanted in (("failed", label == "failed"), ("optional", not item["mandatory"]))
            if wanted
        )
        css = f' class="{classes}"' if classes else ""
        rows.append(
            f'    <tr{css}><td class="id">{_e(item["id"])}</td>'
            f'<td class="title">{_prose(item["title"])}</td>'
            f'<td class="outcome">{_badge(item["outcome"], label)}</td>'
            f'<td class="summary">{_e(item["summary"])}</td></tr>'
        )
    timings = []
    for operation, summary in data["timings"].items():
        if not summary.get("count"):
            timings.append(
                f'        <tr><td>{_e(operation)}</td><td class="num">0</td>'
                "<td></td><td></td><td></td></tr>"
            )
            continue
        timings.append(
            f'        <tr><td>{_e(operation)}</td><td class="num">{summary["count"]}</td>'
            f'<td class="num">{summary["meanMs"]:.2f}</td>'
            f'<td class="num">{summary["p95Ms"]:.2f}</td>'
            f'<td class="num">{summary["maxMs"]:.2f}</td></tr>'
        )
    env = data["environment"]
    environment = [
        f"        <tr><td>Python</td><td>{_e(env['implementation'])} {_e(env['python'])}</td></tr>",
        f"        <tr><td>Platform</td><td>{_e(env['platform'])}</td></tr>",
        *(
            f"        <tr><td>{_e(name)}</td><td>{_e(version or 'not installed')}</td></tr>"
            for name, version in env["packages"].items()
        ),
    ]
    warnings = "".join(f'<p class="warning">{_e(text)}</p>\n' for text in data["warnings"])
    if adapter.get("startError"):
        warnings += (
            f'<p class="warning">The adapter could not start: {_e(adapter["startError"])}</p>\n'
        )
    distribution = adapter.get("distribution")
    signature = (
        "<code>report.json</code> is signed by the federation key "
        f"<code>{_e(signer_key_id)}</code> (<code>report.json.sig</code>); check it with "
        "<code>cpas-conformance verify report.json --trust FEDERATION.pub</code>.<br>"
        if signer_key_id
        else "This report is not signed.<br>"
    )
    conformant = bool(data["conformant"])
    values = {
        "css": _template("report.css"),
        "adapter_title": _e(
            " ".join(part for part in (adapter.get("product"), adapter.get("version")) if part)
            or adapter.get("name")
        ),
        "adapter_name": _e(adapter.get("registeredAs") or adapter.get("name")),
        "vendor": _e(adapter.get("vendor")),
        "product": _e(adapter.get("product")),
        "version": _e(adapter.get("version")),
        "capabilities": _e(", ".join(adapter.get("capabilities", [])) or "none"),
        "distribution": _e(
            f"{distribution['name']} {distribution['version']}" if distribution else "unknown"
        ),
        "suite_version": _e(data["suite"]["version"]),
        "schema_version": _e(data["schemaVersion"]),
        "date": _e(data["date"]),
        "seconds": _e(data["seconds"]),
        "verdict_class": "conformant" if conformant else "not-conformant",
        "verdict_text": "Conformant" if conformant else "Not conformant",
        "verdict_detail": _e(data["verdictDetail"]),
        "warnings": warnings,
        "rows": "\n".join(rows),
        "timings": "\n".join(timings),
        "environment": "\n".join(environment),
        "signature": signature,
    }
    return string.Template(_template("report.html")).substitute(values)


# ------------------------------------------------------------------ JUnit


def _xml_text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


def render_junit(data: dict[str, Any]) -> bytes:
    """JUnit XML: one ``testcase`` per case, ``classname`` = requirement id."""
    adapter = data["adapter"]
    cases = [(item, case) for item in data["requirements"] for case in item["cases"]]
    totals = {
        "tests": str(len(cases)),
        "failures": str(sum(1 for _, case in cases if case["outcome"] == Outcome.FAILED)),
        "errors": "0",
        "skipped": str(sum(1 for _, case in cases if case["outcome"] == Outcome.SKIPPED)),
        "time": f"{sum(case['seconds'] for _, case in cases):.3f}",
    }
    root = etree.Element("testsuites", name="cpas-conformance", **totals)
    suite = etree.SubElement(
        root,
        "testsuite",
        name=f"cpas-conformance {adapter.get('registeredAs') or adapter.get('name')}",
        timestamp=data["started"],
        **totals,
    )
    properties = etree.SubElement(suite, "properties")
    for name, value in (
        ("suite.version", data["suite"]["version"]),
        ("schema.version", data["schemaVersion"]),
        ("adapter.name", adapter.get("name")),
        ("adapter.vendor", adapter.get("vendor")),
        ("adapter.version", adapter.get("version")),
        ("verdict", data["verdict"]),
    ):
        etree.SubElement(properties, "property", name=name, value=_xml_text(value))
    for item, case in cases:
        element = etree.SubElement(
            suite,
            "testcase",
            classname=item["id"],
            name=_xml_text(case["case"]),
            time=f"{case['seconds']:.6f}",
        )
        if case["outcome"] == Outcome.FAILED:
            failure = etree.SubElement(
                element, "failure", message=_xml_text(case.get("message")), type=item["id"]
            )
            failure.text = _xml_text(
                json.dumps(case.get("evidence", {}), ensure_ascii=False, indent=2)
            )
        elif case["outcome"] == Outcome.SKIPPED:
            etree.SubElement(element, "skipped", message=_xml_text(case.get("message")))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
