"""The conformance suite, checked both ways.

The reference adapters conform; each deliberately broken adapter of
``conformance_adapters.py`` fails on exactly the requirement it breaks;
what an adapter does not declare is a visible skip; signed reports verify and
tampered ones are refused; the pytest plugin stays inert unless asked, and
when asked judges as the command does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conformance_adapters import (
    BROKEN,
    EXPECTED_FAILURE,
    PLUGIN,
    ComposesNames,
    CrashOnUnknown,
    ExportOnly,
    LeakyNote,
    LongHistoryAmounts,
    LostDiacritics,
    NeedsAnOption,
    NoTestHooks,
    SlowBatches,
    SupportFolder,
    options_for,
)
from lxml import etree

from cpas_conformance import cli, corpus, docs, integrity, watch
from cpas_conformance.checks import CHECKS, all_cases
from cpas_conformance.context import AdapterTarget, Context, installed_adapter
from cpas_conformance.outcomes import Outcome
from cpas_conformance.requirements import REQUIREMENTS
from cpas_conformance.runner import redact, run_case
from gateway.model import keys
from gateway.model.directory import Directory
from gateway.model.directory import signature as directory_signature
from ocmwdata import OcmwdataAdapter

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
REFERENCE_ADAPTERS = ("ocmwdata", "fichesociale")
REQUIREMENT_IDS = {requirement.id for requirement in REQUIREMENTS}
EXPECTED_BY_NAME = {wrapper.name: requirement for wrapper, requirement in EXPECTED_FAILURE.items()}
MANDATORY_IDS = {requirement.id for requirement in REQUIREMENTS if requirement.mandatory}


@dataclass(frozen=True)
class Run:
    """One run of ``cpas-conformance`` and what it left behind."""

    status: int
    stdout: str
    stderr: str
    report_dir: Path

    @property
    def report(self) -> dict[str, Any]:
        return dict(json.loads((self.report_dir / "report.json").read_text("utf-8")))

    def requirement(self, requirement_id: str) -> dict[str, Any]:
        return next(item for item in self.report["requirements"] if item["id"] == requirement_id)


RunCli = Callable[..., Run]


@pytest.fixture(scope="module")
def run_cli(tmp_path_factory: pytest.TempPathFactory) -> RunCli:
    """Run the command in-process (test adapters included), once per set of arguments."""
    runs: dict[tuple[str, ...], Run] = {}

    def run(adapter: str, *extra: str) -> Run:
        key = (adapter, *extra)
        if key not in runs:
            report_dir = tmp_path_factory.mktemp(f"report-{adapter}")
            capture = pytest.MonkeyPatch()
            out, err = _Capture(), _Capture()
            capture.setattr(sys, "stdout", out)
            capture.setattr(sys, "stderr", err)
            try:
                status = cli.main(
                    ["--adapter", adapter, "--report", str(report_dir), *extra], plugins=[PLUGIN]
                )
            finally:
                capture.undo()
            runs[key] = Run(status, out.getvalue(), err.getvalue(), report_dir)
        return runs[key]

    return run


class _Capture:
    """A text stream that keeps what is written (module-scoped, so not capsys)."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        return "".join(self._parts)


def adapter_options(name: str) -> list[str]:
    """``--option`` arguments giving a test adapter a fresh store per case."""
    return [item for pair in options_for(name) for item in ("--option", pair)]


def junit_cases(run: Run) -> list[etree._Element]:
    tree = etree.parse(str(run.report_dir / "junit.xml"))
    return list(tree.iter("testcase"))


# ------------------------------------------------------- reference adapters


@pytest.mark.parametrize("adapter", REFERENCE_ADAPTERS)
def test_reference_adapter_conforms(run_cli: RunCli, adapter: str) -> None:
    run = run_cli(adapter)
    report = run.report
    assert run.status == 0, run.stderr
    assert report["conformant"] is True
    assert {item["id"]: item["outcome"] for item in report["requirements"]} == dict.fromkeys(
        [requirement.id for requirement in REQUIREMENTS], "passed"
    )
    assert run.stdout.startswith("CONFORMANT: ")


@pytest.mark.parametrize("adapter", REFERENCE_ADAPTERS)
def test_report_json_records_adapter_environment_and_timings(run_cli: RunCli, adapter: str) -> None:
    report = run_cli(adapter).report
    assert report["schemaVersion"] == "1"
    assert report["suite"]["version"]
    assert report["adapter"]["name"] == adapter
    assert report["adapter"]["vendor"] and report["adapter"]["version"]
    assert report["adapter"]["distribution"]["name"] == "cpas-dossier-gateway"
    assert report["environment"]["python"] and report["environment"]["platform"]
    assert report["environment"]["packages"]["lxml"]
    assert report["date"].endswith("Z")
    for operation in ("export", "import"):
        timing = report["timings"][operation]
        assert timing["count"] > 0
        assert 0 < timing["meanMs"] <= timing["maxMs"]
        assert timing["p95Ms"] <= timing["maxMs"]


def test_html_report_is_one_self_contained_page_with_the_verdict_on_top(run_cli: RunCli) -> None:
    page = (run_cli("ocmwdata").report_dir / "report.html").read_text("utf-8")
    etree.fromstring(page.encode("utf-8"), etree.HTMLParser(recover=False))
    lowered = page.lower()
    assert "<script" not in lowered and "<link" not in lowered
    assert "http://" not in lowered and "https://" not in lowered and "url(" not in lowered
    assert page.index('class="verdict conformant"') < page.index("DSE-INF-001")
    assert all(requirement_id in page for requirement_id in REQUIREMENT_IDS)


def test_junit_has_one_testcase_per_case_named_by_requirement(run_cli: RunCli) -> None:
    cases = junit_cases(run_cli("fichesociale"))
    assert len(cases) == sum(1 for _ in all_cases())
    assert {case.get("classname") for case in cases} == REQUIREMENT_IDS
    assert not any(case.find("failure") is not None for case in cases)


# ---------------------------------------------------------- broken adapters


@pytest.mark.parametrize("adapter", [wrapper.name for wrapper in BROKEN])
def test_broken_adapter_fails_exactly_the_requirement_it_breaks(
    run_cli: RunCli, adapter: str
) -> None:
    run = run_cli(adapter, *adapter_options(adapter))
    report = run.report
    expected = EXPECTED_BY_NAME[adapter]
    assert run.status == 1
    assert report["conformant"] is False
    assert set(report["failedRequirements"]) == {expected}
    failing = {
        case.get("classname") for case in junit_cases(run) if case.find("failure") is not None
    }
    assert failing == {expected}
    assert run.stdout.startswith("NOT CONFORMANT: ")


def test_a_leak_names_the_marker_and_where_it_was_found(run_cli: RunCli) -> None:
    run = run_cli(LeakyNote.name, *adapter_options(LeakyNote.name))
    failure = run.requirement("DSE-MIN-001")["evidence"]["firstFailure"]
    leak = failure["evidence"]["leaks"][0]
    assert failure["case"] == "notes"
    assert leak["where"] == "/dossier/source/caseReference"
    assert leak["token"] in leak["marker"]
    assert leak["kind"] == "notes"


def test_a_crash_on_an_unknown_person_is_reported_with_the_exception(run_cli: RunCli) -> None:
    run = run_cli(CrashOnUnknown.name, *adapter_options(CrashOnUnknown.name))
    failure = run.requirement("DSE-EXP-003")["evidence"]["firstFailure"]
    assert failure["evidence"]["exception"] == "builtins.KeyError"


def test_a_defect_judged_elsewhere_is_not_judged_here_and_not_passed(run_cli: RunCli) -> None:
    adapter = "broken-check-digits"
    run = run_cli(adapter, *adapter_options(adapter))
    round_trip = run.requirement("DSE-RTR-001")
    assert round_trip["outcome"] == "skipped"
    assert round_trip["skip"] == "not-judged"
    assert "DSE-EXP-002" in round_trip["summary"]


def test_a_side_channel_names_what_was_written_and_where(run_cli: RunCli) -> None:
    run = run_cli(SupportFolder.name, *adapter_options(SupportFolder.name))
    failure = run.requirement("DSE-SID-001")["evidence"]["firstFailure"]
    channels = failure["evidence"]["sideChannels"]
    assert {channel["kind"] for channel in channels} == {"file"}
    assert any(
        "/support/" in channel["detail"] and "for writing" in channel["detail"]
        for channel in channels
    )


def test_a_name_that_differs_in_composition_is_shown_as_code_points(run_cli: RunCli) -> None:
    run = run_cli(LostDiacritics.name, *adapter_options(LostDiacritics.name))
    message = run.requirement("DSE-TXT-001")["evidence"]["firstFailure"]["message"]
    assert re.search(r"\(U\+[0-9A-F]{4}( U\+[0-9A-F]{4})*\) came back as '.+' \(U\+", message)
    assert message.endswith(": other characters")


def test_a_name_composed_otherwise_is_said_to_be_the_same_letters(run_cli: RunCli) -> None:
    run = run_cli(ComposesNames.name, *adapter_options(ComposesNames.name))
    message = run.requirement("DSE-TXT-001")["evidence"]["firstFailure"]["message"]
    assert "U+0300" in message
    assert message.endswith(": the same letters in another Unicode composition")


def test_a_long_history_with_wrong_content_is_not_said_to_come_back_whole(
    run_cli: RunCli,
) -> None:
    run = run_cli(LongHistoryAmounts.name, *adapter_options(LongHistoryAmounts.name))
    failure = run.requirement("DSE-VOL-001")["evidence"]["firstFailure"]
    assert failure["message"].startswith("all 200 decisions came back, but ")
    assert "monthly_amount" in failure["message"]
    assert "came back with 200" not in failure["message"]


def test_a_slow_adapter_conforms_with_a_speed_warning(run_cli: RunCli) -> None:
    run = run_cli(SlowBatches.name, *adapter_options(SlowBatches.name))
    speed = run.requirement("DSE-PRF-001")
    assert run.status == 0, run.stderr
    assert run.report["conformant"] is True
    assert speed["outcome"] == "warning"
    assert speed["mandatory"] is False
    slowest = speed["cases"][0]["evidence"]["slowest"][0]
    assert slowest["operation"] == "batch"
    assert slowest["p95Ms"] > slowest["thresholdP95Ms"]
    assert {"p50Ms", "p95Ms"} <= set(run.report["timingsPerCase"][0])
    page = (run.report_dir / "report.html").read_text("utf-8")
    assert 'class="badge warning"' in page
    root = etree.fromstring(page.encode("utf-8"), etree.HTMLParser(recover=False))
    cells = [" ".join(cell.itertext()) for cell in root.iter("td")]
    assert slowest["case"] in cells and f"{slowest['thresholdP95Ms']:.1f}" in cells


def test_an_adapter_that_cannot_start_is_one_line_and_exit_3(
    run_cli: RunCli,
) -> None:
    run = run_cli(NeedsAnOption.name)
    lines = run.stderr.strip().splitlines()
    assert run.status == 3
    assert len(lines) == 1, run.stderr
    assert "could not start" in lines[0] and "needs the option db" in lines[0]
    assert "run.log" in lines[0]
    assert "Acme needs the option db" in (run.report_dir / "run.log").read_text("utf-8")
    assert not (run.report_dir / "report.json").exists()


def test_the_html_report_shows_expected_and_actual_values(run_cli: RunCli) -> None:
    run = run_cli(LostDiacritics.name, *adapter_options(LostDiacritics.name))
    page = (run.report_dir / "report.html").read_text("utf-8")
    evidence = run.requirement("DSE-TXT-001")["evidence"]["firstFailure"]["evidence"]
    root = etree.fromstring(page.encode("utf-8"), etree.HTMLParser(recover=False))
    cells = [" ".join(cell.itertext()) for cell in root.iter("td")]
    assert json.dumps(evidence["expected"], ensure_ascii=False) in cells
    assert json.dumps(evidence["actual"], ensure_ascii=False) in cells


def test_the_html_report_points_to_the_run_log_for_the_adapters_own_error(
    run_cli: RunCli,
) -> None:
    run = run_cli(CrashOnUnknown.name, *adapter_options(CrashOnUnknown.name))
    page = (run.report_dir / "report.html").read_text("utf-8")
    root = etree.fromstring(page.encode("utf-8"), etree.HTMLParser(recover=False))
    note = next(p for p in root.iter("p") if p.get("class") == "adapter-error")
    assert "builtins.KeyError" in "".join(note.itertext())
    assert "run.log" in "".join(note.itertext())


# ------------------------------------------------------- unrecognisable runs


def _spy_context(tmp_path: Path, seed: int, seen: list[tuple[str, Path]]) -> Context:
    def build(cpas_id: str, workdir: Path) -> OcmwdataAdapter:
        seen.append((cpas_id, workdir))
        return OcmwdataAdapter(cpas_id, {"url": str(workdir / "store.sqlite3")})

    return Context(AdapterTarget(build), tmp_path, seed=seed)


def test_people_numbers_and_folders_are_drawn_from_the_seed(tmp_path: Path) -> None:
    seen: list[tuple[str, Path]] = []
    first, again = _spy_context(tmp_path / "a", 7, seen), _spy_context(tmp_path / "b", 7, seen)
    other = _spy_context(tmp_path / "c", 8, seen)
    names = [item.name for item in corpus.valid_files()[:12]]
    for context in (first, again, other):
        with context.fresh_adapter():
            pass
    assert [first.dossier(name).person for name in names] == [
        again.dossier(name).person for name in names
    ]
    assert first.cpas_id == again.cpas_id != other.cpas_id
    assert seen[0][1].name == seen[1][1].name != seen[2][1].name
    for name in names:
        original, drawn = corpus.valid_dossier(name).person, other.dossier(name).person
        assert drawn.number != original.number
        assert drawn.birth_date == original.birth_date
        assert drawn.number != first.dossier(name).person.number


def test_nothing_in_a_case_folder_names_the_suite(tmp_path: Path) -> None:
    seen: list[tuple[str, Path]] = []
    context = _spy_context(tmp_path, 11, seen)
    with context.fresh_adapter():
        pass
    folder = seen[0][1].name.lower()
    assert "conformance" not in folder and "cpas" not in folder and "test" not in folder
    assert re.fullmatch(r"[a-z][a-z0-9_]*", folder)


def test_an_outage_of_a_postgresql_store_is_transient_and_passes(
    postgres_url: str, tmp_path: Path
) -> None:
    schema = f"conf_outage_{uuid.uuid4().hex[:10]}"
    target = installed_adapter("ocmwdata", {"url": postgres_url, "schema": schema})
    context = Context(target, tmp_path, seed=3)
    check = CHECKS["DSE-ERR-002"]
    try:
        result = run_case(context, check, check.cases()[0])
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    assert result.outcome is Outcome.PASSED, result.message


def test_a_connection_to_the_store_named_in_the_options_is_not_a_side_channel(
    tmp_path: Path,
) -> None:
    endpoints = watch.endpoints_of({"url": "postgresql://acme@127.0.0.1:5433/db", "x": "y"})
    with watch.watching([tmp_path], endpoints) as seen:
        seen.see("socket.connect", (None, ("127.0.0.1", 5433)))
        seen.see("open", (str(tmp_path / "store.db"), "w", 0))
    assert seen.found == []
    with watch.watching([tmp_path], endpoints) as seen:
        seen.see("socket.connect", (None, ("127.0.0.1", 5672)))
        seen.see("open", (str(tmp_path.parent / "elsewhere.txt"), None, os.O_WRONLY))
        seen.see("import", ("pika.adapters",))
    assert [item["kind"] for item in seen.found] == ["network", "file", "broker"]


def test_a_broker_client_imported_by_the_vendors_module_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pika

    module = types.ModuleType("acme_cpas_adapter")
    module.pika = pika  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    adapter = type("AcmeAdapter", (), {"__module__": module.__name__})()
    plain = type("PlainAdapter", (), {"__module__": "plain_cpas_adapter"})()
    assert watch.broker_clients_held(adapter) == ["pika"]
    assert watch.broker_clients_held(plain) == []


def test_a_changed_gateway_function_is_found_and_put_back() -> None:
    fingerprint = integrity.Fingerprint(("gateway.model.directory",))
    original = Directory.__dict__["may_receive"]
    code = original.__code__
    try:
        original.__code__ = Directory.get.__code__
        Directory.check_destination = lambda self, *args: None  # type: ignore[method-assign]
        changes = fingerprint.changes()
        assert "gateway.model.directory.Directory.check_destination was replaced" in changes
        assert (
            "the code or defaults of gateway.model.directory.Directory.may_receive were changed"
            in (changes)
        )
        fingerprint.restore()
        assert fingerprint.changes() == []
        assert Directory.__dict__["may_receive"].__code__ is code
    finally:
        original.__code__ = code


def test_a_function_replaced_inside_a_guarded_package_is_found_and_put_back() -> None:
    fingerprint = integrity.Fingerprint(("gateway.model.directory",))
    original = directory_signature.load_directory
    try:
        # What load_directory_file calls: the name inside the module, not the package's.
        directory_signature.load_directory = lambda *args, **kwargs: None  # type: ignore[assignment]
        assert (
            "gateway.model.directory.signature.load_directory was replaced" in fingerprint.changes()
        )
        fingerprint.restore()
        assert fingerprint.changes() == []
        assert directory_signature.load_directory is original
    finally:
        directory_signature.load_directory = original


# ----------------------------------------------------- declared capabilities


def test_an_undeclared_capability_gives_visible_skips_with_reasons(run_cli: RunCli) -> None:
    run = run_cli(ExportOnly.name, *adapter_options(ExportOnly.name))
    assert run.status == 0, run.stderr
    skipped = {
        item["id"]: item for item in run.report["requirements"] if item["outcome"] == "skipped"
    }
    assert set(skipped) == {
        "DSE-EXP-005",
        "DSE-RTR-001",
        "DSE-TXT-001",
        "DSE-TZN-001",
        "DSE-VOL-001",
        "DSE-IMP-001",
        "DSE-IMP-002",
        "DSE-IMP-003",
        "DSE-PER-001",
        "DSE-UPD-001",
    }
    for item in skipped.values():
        assert item["skip"] == "not-applicable"
        assert "declares no 'import' capability" in item["summary"]
    junit_skips = [case for case in junit_cases(run) if case.find("skipped") is not None]
    assert {case.get("classname") for case in junit_skips} >= set(skipped)
    assert all(case.find("skipped").get("message") for case in junit_skips)
    # Export-only: the seeded people are what its exports are checked on.
    seeded = next(
        case for case in run.requirement("DSE-EXP-001")["cases"] if case["case"] == "seeded-people"
    )
    assert seeded["outcome"] == "passed"


def test_without_the_test_hooks_minimality_and_outages_fail_and_optional_hooks_skip(
    run_cli: RunCli,
) -> None:
    run = run_cli(NoTestHooks.name, *adapter_options(NoTestHooks.name))
    assert run.status == 1
    assert set(run.report["failedRequirements"]) == {"DSE-MIN-001", "DSE-ERR-002"}
    assert "cannot be certified for minimality" in run.requirement("DSE-MIN-001")["summary"]
    assert "cannot be certified for outages" in run.requirement("DSE-ERR-002")["summary"]
    assert run.requirement("DSE-MIN-002")["skip"] == "not-judged"
    for optional in ("DSE-INS-001", "DSE-SED-001", "DSE-EVT-001"):
        item = run.requirement(optional)
        assert (item["outcome"], item["skip"]) == ("skipped", "not-applicable")
        assert "does not implement" in item["summary"]


# ------------------------------------------------------------------ signing


def test_a_signed_report_verifies_and_a_tampered_one_is_refused(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    federation = keys.generate_signing_key()
    keys.write_signing_key(tmp_path / "federation.key", federation)
    keys.write_public_key(tmp_path / "federation.pub", keys.signing_public_raw(federation))
    stranger = keys.generate_signing_key()
    keys.write_public_key(tmp_path / "stranger.pub", keys.signing_public_raw(stranger))

    run = run_cli("fichesociale", "--sign-with", str(tmp_path / "federation.key"))
    report = run.report_dir / "report.json"
    signature = json.loads((run.report_dir / "report.json.sig").read_text("utf-8"))
    assert run.status == 0
    assert signature["keyId"] == keys.key_id(keys.signing_public_raw(federation))
    assert signature["keyId"] in (run.report_dir / "report.html").read_text("utf-8")

    assert cli.main(["verify", str(report), "--trust", str(tmp_path / "federation.pub")]) == 0
    assert cli.main(["verify", str(report), "--trust", str(tmp_path / "stranger.pub")]) == 1

    tampered = tmp_path / "report.json"
    tampered.write_bytes(report.read_bytes().replace(b'"conformant": true', b'"conformant": false'))
    (tmp_path / "report.json.sig").write_bytes((run.report_dir / "report.json.sig").read_bytes())
    capsys.readouterr()
    assert cli.main(["verify", str(tampered), "--trust", str(tmp_path / "federation.pub")]) == 1
    refusal = capsys.readouterr().err.strip()
    assert "[report.signature]" in refusal and len(refusal.splitlines()) == 1


@pytest.mark.parametrize("edited", ["report.html", "junit.xml"])
def test_an_edited_page_or_junit_file_is_refused(
    run_cli: RunCli, tmp_path: Path, edited: str, capsys: pytest.CaptureFixture[str]
) -> None:
    federation = keys.generate_signing_key()
    keys.write_signing_key(tmp_path / "federation.key", federation)
    keys.write_public_key(tmp_path / "federation.pub", keys.signing_public_raw(federation))
    run = run_cli("ocmwdata", "--sign-with", str(tmp_path / "federation.key"))
    copy = tmp_path / "published"
    copy.mkdir()
    for name in ("report.json", "report.json.sig", "report.html", "junit.xml"):
        (copy / name).write_bytes((run.report_dir / name).read_bytes())
    trust = ["--trust", str(tmp_path / "federation.pub")]
    assert cli.main(["verify", str(copy), *trust]) == 0
    (copy / edited).write_bytes((copy / edited).read_bytes() + b"<!-- all passed -->\n")
    capsys.readouterr()
    assert cli.main(["verify", str(copy), *trust]) == 1
    refusal = capsys.readouterr().err.strip()
    assert edited in refusal and len(refusal.splitlines()) == 1


def test_an_unsigned_report_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    federation = keys.generate_signing_key()
    keys.write_public_key(tmp_path / "federation.pub", keys.signing_public_raw(federation))
    report = run_cli("ocmwdata").report_dir / "report.json"
    assert cli.main(["verify", str(report), "--trust", str(tmp_path / "federation.pub")]) == 1


# ----------------------------------------------------------------- usage


def test_an_unknown_adapter_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["--adapter", "no-such-adapter", "--report", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "no-such-adapter" in lines[0] and "ocmwdata" in lines[0]
    assert "Traceback" not in captured.err


def test_an_option_without_a_value_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(
        ["--adapter", "ocmwdata", "--report", str(tmp_path), "--option", "url-without-value"]
    )
    assert status == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_published_options_hide_passwords() -> None:
    shown = redact({"url": "postgresql://acme:s3cret@db/x", "api_token": "abc", "folder": "/x"})
    assert shown == {"url": "postgresql://acme:***@db/x", "api_token": "***", "folder": "/x"}


# ------------------------------------------------------ requirements as data


def test_every_requirement_is_documented_and_every_documented_one_exists() -> None:
    guide = (ROOT / "docs" / "conformance.md").read_text("utf-8")
    generated = docs.generated_part(guide)
    documented = set(re.findall(r"^### (DSE-[A-Z]{3}-\d{3})$", generated, flags=re.MULTILINE))
    assert documented == REQUIREMENT_IDS
    assert generated == docs.render_requirements(), "run: python -m cpas_conformance.docs"


def test_every_requirement_has_one_check_and_cases_with_unique_ids() -> None:
    assert set(CHECKS) == REQUIREMENT_IDS
    assert {"DSE-EXP-001", "DSE-RTR-001", "DSE-MIN-001", "DSE-IMP-002"} <= MANDATORY_IDS
    for check in CHECKS.values():
        ids = [case.id for case in check.cases()]
        assert ids and len(ids) == len(set(ids)), check.requirement.id


def test_cases_are_generated_from_the_corpus_files() -> None:
    valid = {item.case_id for item in corpus.valid_files()}
    invalid = {item.case_id for item in corpus.invalid_files()}
    assert {case.id for case in CHECKS["DSE-RTR-001"].cases()} == valid
    assert {case.id for case in CHECKS["DSE-INT-001"].cases()} == invalid
    assert {case.id for case in CHECKS["DSE-EXP-001"].cases()} >= valid
    assert len(corpus.generated_history().aid_history) == corpus.MAX_DECISIONS


# ------------------------------------------------------------ pytest plugin


def _python(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


def test_the_pytest_plugin_is_inert_unless_asked(tmp_path: Path) -> None:
    imported = _python(
        "-c",
        "import sys, cpas_conformance.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith(('gateway', 'cpas_conformance.'))))",
    )
    assert imported.stdout.strip() == "['cpas_conformance.pytest_plugin']"

    (tmp_path / "test_sample.py").write_text("def test_one():\n    assert True\n")
    with_plugin = _python("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path)
    without = _python(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:cpas_conformance", cwd=tmp_path
    )
    assert with_plugin.returncode == without.returncode == 0
    assert "1 passed" in with_plugin.stdout and "1 passed" in without.stdout

    helped = _python("-m", "pytest", "--help", cwd=tmp_path)
    assert "--cpas-adapter" in helped.stdout


def test_the_pytest_plugin_runs_the_same_checks(tmp_path: Path) -> None:
    (tmp_path / "test_vendor.py").write_text(
        textwrap.dedent(
            f"""
            import sys
            import pytest
            sys.path.insert(0, {str(TESTS)!r})
            from conformance_adapters import PLUGIN, options_for
            from cpas_conformance.context import installed_adapter
            from cpas_conformance.context import parse_options
            from cpas_conformance.suite import *  # noqa: F403

            NAME = {CrashOnUnknown.name!r}

            @pytest.fixture(scope="session")
            def cpas_adapter_factory():
                return installed_adapter(NAME, parse_options(options_for(NAME)), plugins=[PLUGIN])
            """
        )
    )
    junit = tmp_path / "junit.xml"
    result = _python(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout[-2000:]
    failed = {
        case.get("name").split("[", 1)[1].split("/", 1)[0]
        for case in etree.parse(str(junit)).iter("testcase")
        if case.find("failure") is not None
    }
    assert failed == {EXPECTED_FAILURE[CrashOnUnknown]}
