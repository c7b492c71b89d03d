"""The three reports of a run: ``report.json``, ``report.html`` and ``junit.xml``.

``report.json`` is the record: the one file a federation signs and publishes,
holding every requirement and every case with its evidence. ``report.html``
is one self-contained page (no script, no external asset) a federation can
publish beside it; its verdict is at the top. ``junit.xml`` has one
``testcase`` per case, its ``classname`` the requirement id, for CI systems.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import lxml.html
from lxml import etree
from lxml.html import builder as E

from .outcomes import Outcome
from .runner import SuiteResult

JSON_FILE: Final = "report.json"
HTML_FILE: Final = "report.html"
JUNIT_FILE: Final = "junit.xml"
RUN_LOG: Final = "run.log"

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
#
# Built with lxml.html.builder, which escapes every text and attribute: an
# adapter's exception message or a planted marker is shown, never interpreted.


def _css() -> str:
    return (resources.files("cpas_conformance") / "templates" / "report.css").read_text(
        encoding="utf-8"
    )


def _prose(text: object) -> list[Any]:
    """Text with Markdown's `code` spans (as requirement titles write them) as code elements."""
    parts: list[Any] = []
    for index, piece in enumerate(re.split(r"`([^`]+)`", "" if text is None else str(text))):
        if index % 2:
            parts.append(E.CODE(piece))
        elif piece:
            parts.append(piece)
    return parts


def _badge(outcome: str, label: str) -> Any:
    return E.SPAN(label, E.CLASS(f"badge {outcome}"))


def _label(item: dict[str, Any]) -> str:
    if item.get("skip") == "not-applicable":
        return "not applicable"
    if item.get("skip") == "not-judged":
        return "not judged"
    return str(item["outcome"])


def _value(value: object) -> str:
    """A value of the evidence as one readable string."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _differences(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The expected and actual values the evidence holds, however the check named them."""
    rows = []
    first = evidence.get("first")
    if isinstance(first, list):
        for item in first:
            if not isinstance(item, dict):
                continue
            expected = item.get("expected", item.get("before"))
            actual = item.get("actual", item.get("after"))
            rest = {
                k: v
                for k, v in item.items()
                if k not in {"field", "expected", "actual", "before", "after"}
            }
            rows.append(
                {
                    "field": item.get("field", ""),
                    "expected": _value(expected)
                    if expected is not None or "expected" in item
                    else "",
                    "actual": _value(actual)
                    if actual is not None or "actual" in item
                    else _value(rest),
                }
            )
    elif "expected" in evidence or "actual" in evidence:
        rows.append(
            {
                "field": evidence.get("field", ""),
                "expected": _value(evidence.get("expected")),
                "actual": _value(evidence.get("actual")),
            }
        )
    return rows


def _failure_details(item: dict[str, Any]) -> Any | None:
    """The first failing case of a requirement: its message, expected and actual values."""
    failure = item["evidence"].get("firstFailure") or next(
        (case for case in item["cases"] if case["outcome"] == Outcome.WARNING), None
    )
    if not failure:
        return None
    evidence = failure.get("evidence") or {}
    parts: list[Any] = [
        E.P(E.STRONG(item["id"]), f" — case {failure['case']}: ", failure["message"])
    ]
    rows = _differences(evidence)
    if rows:
        parts.append(
            E.TABLE(
                E.CLASS("values"),
                E.THEAD(E.TR(E.TH("Field"), E.TH("Expected"), E.TH("Actual"))),
                E.TBODY(
                    *(
                        E.TR(E.TD(E.CODE(row["field"])), E.TD(row["expected"]), E.TD(row["actual"]))
                        for row in rows
                    )
                ),
            )
        )
    if "exception" in evidence:
        parts.append(
            E.P(
                E.CLASS("adapter-error"),
                "This is the adapter's own error (",
                E.CODE(evidence["exception"]),
                "). Its cause, with the traceback, is in ",
                E.CODE(RUN_LOG),
                ", beside this report.",
            )
        )
    slowest = evidence.get("slowest")
    if isinstance(slowest, list) and slowest:
        parts.append(_speed_table(slowest))
    elif not rows:
        parts.append(E.PRE(json.dumps(evidence, ensure_ascii=False, indent=2)))
    return E.DIV(E.CLASS("failure"), *parts)


def _speed_table(rows: list[dict[str, Any]]) -> Any:
    """The cases over their published thresholds: p50 and p95 against the threshold."""
    headings = ("p50 ms", "p95 ms", "threshold (p95) ms")
    return E.TABLE(
        E.CLASS("values"),
        E.THEAD(
            E.TR(
                E.TH("Case"), E.TH("Operation"), *(E.TH(text, E.CLASS("num")) for text in headings)
            )
        ),
        E.TBODY(
            *(
                E.TR(
                    E.TD(E.CODE(str(row.get("case", "")))),
                    E.TD(str(row.get("operation", ""))),
                    *(
                        E.TD(f"{float(row.get(key, 0)):.1f}", E.CLASS("num"))
                        for key in ("p50Ms", "p95Ms", "thresholdP95Ms")
                    ),
                )
                for row in rows
            )
        ),
    )


def _numeric_headings() -> list[Any]:
    return [
        E.TH(text, E.CLASS("num")) for text in ("Calls", "Mean ms", "p50 ms", "p95 ms", "Max ms")
    ]


def _timing_row(name: str, summary: dict[str, Any]) -> Any:
    if not summary.get("count"):
        return E.TR(E.TD(name), E.TD("0", E.CLASS("num")), E.TD(), E.TD(), E.TD(), E.TD())
    return E.TR(
        E.TD(name),
        *(
            E.TD(text, E.CLASS("num"))
            for text in (
                str(summary["count"]),
                f"{summary['meanMs']:.2f}",
                f"{summary.get('p50Ms', 0):.2f}",
                f"{summary['p95Ms']:.2f}",
                f"{summary['maxMs']:.2f}",
            )
        ),
    )


def _signature_note(signer_key_id: str | None) -> Any:
    if not signer_key_id:
        return E.SPAN("This report is not signed.")
    return E.SPAN(
        *(
            E.CODE(name) if index % 2 == 0 else name
            for index, name in enumerate(("report.json", ", ", "report.html", " and ", "junit.xml"))
        ),
        " are signed by the federation key ",
        E.CODE(signer_key_id),
        " (",
        E.CODE("report.json.sig"),
        "); check them with ",
        E.CODE("cpas-conformance verify report.json --trust FEDERATION.pub"),
        ".",
    )


def render_html(data: dict[str, Any], *, signer_key_id: str | None = None) -> str:
    """The one-page report, from the data of ``report.json``."""
    adapter = data["adapter"]
    conformant = bool(data["conformant"])
    title = (
        " ".join(part for part in (adapter.get("product"), adapter.get("version")) if part)
        or adapter.get("name")
        or "adapter"
    )
    distribution = adapter.get("distribution")
    facts = [
        ("Adapter", E.CODE(str(adapter.get("registeredAs") or adapter.get("name")))),
        ("Vendor", str(adapter.get("vendor") or "")),
        ("Product", str(adapter.get("product") or "")),
        ("Version", str(adapter.get("version") or "")),
        ("Capabilities", ", ".join(adapter.get("capabilities", [])) or "none"),
        (
            "Package",
            f"{distribution['name']} {distribution['version']}" if distribution else "unknown",
        ),
        ("Date", str(data["date"])),
        ("Duration", f"{data['seconds']} s"),
        ("Seed", E.CODE(str(data.get("seed", "")))),
        ("Serves CPAS", E.CODE(str(adapter.get("servesCpas", "")))),
    ]
    notes = [E.P(text, E.CLASS("warning")) for text in data["warnings"]]
    if adapter.get("startError"):
        notes.append(
            E.P(
                f"The adapter could not start: {adapter['startError']} (see ",
                E.CODE(RUN_LOG),
                ")",
                E.CLASS("warning"),
            )
        )
    rows = []
    details = []
    for item in data["requirements"]:
        classes = [
            name
            for name, wanted in (
                ("failed", item["outcome"] == "failed"),
                ("optional", not item["mandatory"]),
            )
            if wanted
        ]
        row = E.TR(
            E.TD(item["id"], E.CLASS("id")),
            E.TD(*_prose(item["title"]), E.CLASS("title")),
            E.TD(_badge(item["outcome"], _label(item)), E.CLASS("outcome")),
            E.TD(item["summary"], E.CLASS("summary")),
        )
        if classes:
            row.set("class", " ".join(classes))
        rows.append(row)
        failure = _failure_details(item) if item["outcome"] in ("failed", "warning") else None
        if failure is not None:
            details.append(failure)
    signature = _signature_note(signer_key_id)
    env = data["environment"]
    environment = [
        ("Python", f"{env['implementation']} {env['python']}"),
        ("Platform", env["platform"]),
        *((name, version or "not installed") for name, version in env["packages"].items()),
    ]
    page = E.HTML(
        E.HEAD(
            E.META(charset="utf-8"),
            E.META(name="viewport", content="width=device-width, initial-scale=1"),
            E.TITLE(f"Conformance report: {title}"),
            E.STYLE(_css()),
        ),
        E.BODY(
            E.E.main(
                E.E.header(
                    E.DIV(
                        E.H1(title),
                        E.P(
                            "CPAS dossier gateway conformance report · suite "
                            f"{data['suite']['version']} · dossier schema version "
                            f"{data['schemaVersion']}",
                            E.CLASS("subtitle"),
                        ),
                    ),
                    E.DIV(
                        "Conformant" if conformant else "Not conformant",
                        E.SMALL(data["verdictDetail"]),
                        E.CLASS("verdict " + ("conformant" if conformant else "not-conformant")),
                    ),
                ),
                E.DL(
                    E.CLASS("facts"),
                    *(part for name, value in facts for part in (E.DT(name), E.DD(value))),
                ),
                *notes,
                E.H2("Requirements"),
                E.TABLE(
                    E.THEAD(
                        E.TR(E.TH("Id"), E.TH("Requirement"), E.TH("Outcome"), E.TH("Evidence"))
                    ),
                    E.TBODY(*rows),
                ),
                *([E.H2("What was expected, what came back"), *details] if details else []),
                E.DIV(
                    E.CLASS("columns"),
                    E.E.section(
                        E.H2("Timings"),
                        E.TABLE(
                            E.THEAD(E.TR(E.TH("Operation"), *_numeric_headings())),
                            E.TBODY(
                                *(
                                    _timing_row(name, summary)
                                    for name, summary in data["timings"].items()
                                )
                            ),
                        ),
                    ),
                    E.E.section(
                        E.H2("Environment"),
                        E.TABLE(
                            E.TBODY(
                                *(E.TR(E.TD(name), E.TD(str(value))) for name, value in environment)
                            )
                        ),
                    ),
                ),
                E.E.footer(
                    signature,
                    E.BR(),
                    "Every case, with its evidence, is in ",
                    E.CODE("report.json"),
                    "; what the adapter logged, its own errors with their causes, is in ",
                    E.CODE(RUN_LOG),
                    ". The requirements are described in the suite's documentation (",
                    E.CODE("docs/conformance.md"),
                    "). Replay this run with ",
                    E.CODE(f"--seed {data.get('seed', '')}"),
                    ".",
                ),
            )
        ),
        lang="en",
    )
    return "<!DOCTYPE html>\n" + lxml.html.tostring(page, encoding="unicode", pretty_print=True)


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
        elif case["outcome"] == Outcome.WARNING:
            output = etree.SubElement(element, "system-out")
            output.text = _xml_text(f"warning: {case.get('message')}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
