"""``cpas-gateway validate FILE...``: one line per file, exit 0 only when all are valid."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.model import hardened_xml

ROOT = Path(__file__).resolve().parent.parent
VALID_DIR = ROOT / "conformance" / "corpus" / "valid"
INVALID_DIR = ROOT / "conformance" / "corpus" / "invalid"
VALID_FILES = sorted(VALID_DIR.glob("*.xml"))
INVALID_MANIFEST: dict[str, dict[str, str]] = json.loads(
    (INVALID_DIR / "manifest.json").read_text("utf-8")
)
INVALID_FILES = [INVALID_DIR / name for name in sorted(INVALID_MANIFEST)]

PROBLEM = re.compile(r"^(?P<path>.+): \[(?P<code>[a-z_]+(?:\.[a-z_]+)+)\] (?P<sentence>\S.*)$")
HOSTILE_SIZE = 40 * 1024 * 1024


def console_script() -> str:
    """The installed ``cpas-gateway`` of the interpreter running the tests."""
    script = Path(sys.executable).with_name("cpas-gateway")
    if not script.exists():
        pytest.fail(f"the console script is not installed next to {sys.executable}")
    return str(script)


def problems(stderr: str) -> list[re.Match[str]]:
    lines = stderr.splitlines()
    matches = [PROBLEM.match(line) for line in lines]
    assert all(matches), f"not a problem line: {lines}"
    return [match for match in matches if match]


def codes_by_file(stderr: str) -> dict[str, str]:
    return {Path(match["path"]).name: match["code"] for match in problems(stderr)}


@pytest.fixture
def hostile_40mb(tmp_path: Path) -> Path:
    """A 40 MB dossier-looking file: an entity bomb followed by padding."""
    path = tmp_path / "huge.xml"
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<!DOCTYPE dossier [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">]>\n'
        b'<dossier xmlns="urn:be:cpas:dse:dossier:1" schemaVersion="1">'
    )
    tail = b"</dossier>\n"
    with path.open("wb") as stream:
        stream.write(head)
        stream.write(b"&a;" * ((HOSTILE_SIZE - len(head) - len(tail)) // 3))
        stream.write(tail)
    return path


# ------------------------------------------------------------------ in process


def test_valid_dossier_prints_ok_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    path = VALID_DIR / "born-after-2000.xml"
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"OK  {path} (dossier)\n"
    assert err == ""


def test_whole_valid_corpus_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, VALID_FILES)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"OK  {path} (dossier)" for path in VALID_FILES]
    assert err == ""


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda path: path.stem)
def test_invalid_file_gives_one_line_with_its_code_and_exits_1(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    [problem] = problems(err)
    assert problem["path"] == str(path)
    assert problem["code"] == INVALID_MANIFEST[path.name]["code"]


def test_mixed_files_report_each_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    good = VALID_DIR / "history-empty.xml"
    bad = INVALID_DIR / "niss-bad-checksum.xml"
    assert main(["validate", str(good), str(bad), str(good)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"OK  {good} (dossier)"] * 2
    assert codes_by_file(err) == {bad.name: "niss.checksum"}


def test_missing_file_is_a_problem_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.xml"
    assert main(["validate", str(missing)]) == 1
    _, err = capsys.readouterr()
    [problem] = problems(err)
    assert problem["code"] == "file.unreadable"
    assert "Traceback" not in err


def test_folder_is_a_problem_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path)]) == 1
    _, err = capsys.readouterr()
    assert [problem["code"] for problem in problems(err)] == ["file.unreadable"]


def test_oversize_file_is_refused_from_its_size_without_being_opened(
    hostile_40mb: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []
    real_open = Path.open

    def recording_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", recording_open)
    assert main(["validate", str(hostile_40mb)]) == 1
    _, err = capsys.readouterr()
    assert [problem["code"] for problem in problems(err)] == ["xml.too_large"]
    assert hostile_40mb not in opened


def test_endless_stream_is_read_only_up_to_the_cap(capsys: pytest.CaptureFixture[str]) -> None:
    # /dev/zero has no size; reading stops one byte past the cap.
    assert main(["validate", "/dev/zero"]) == 1
    _, err = capsys.readouterr()
    assert [problem["code"] for problem in problems(err)] == ["xml.too_large"]


def test_multi_line_refusal_is_folded_into_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # libxml2 messages can span lines (the EBCDIC one does); the output never does.
    path = tmp_path / "ebcdic.xml"
    path.write_bytes('<?xml version="1.0" encoding="IBM037"?><a/>'.encode("cp037"))
    assert main(["validate", str(path)]) == 1
    _, err = capsys.readouterr()
    assert len(err.splitlines()) == 1
    assert [problem["code"] for problem in problems(err)] == ["xml.malformed"]


def test_document_of_another_kind_is_named_by_its_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "page.xml"
    path.write_bytes(b'<html xmlns="http://www.w3.org/1999/xhtml"/>')
    assert main(["validate", str(path)]) == 1
    _, err = capsys.readouterr()
    assert [problem["code"] for problem in problems(err)] == ["schema.namespace"]


def test_a_directory_document_is_checked_as_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "directory.xml"
    path.write_bytes(f'<directory xmlns="{hardened_xml.NS_DIRECTORY}"/>'.encode())
    assert main(["validate", str(path)]) == 1
    _, err = capsys.readouterr()
    [problem] = problems(err)
    # An empty directory is never valid; which check says so depends on what is installed.
    assert problem["code"] in {"schema.invalid", "schema.unavailable"}


SAMPLE_DIRECTORY = ROOT / "conformance" / "directory" / "sample-directory.xml"


def test_sample_directory_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SAMPLE_DIRECTORY)]) == 0
    assert capsys.readouterr().out == f"OK  {SAMPLE_DIRECTORY} (directory)\n"


def test_help_names_the_files_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate", "--help"])
    assert exited.value.code == 0
    assert "FILE" in capsys.readouterr().out


# ------------------------------------------------------------------ the installed command


def test_console_script_accepts_the_valid_corpus() -> None:
    result = subprocess.run(
        [console_script(), "validate", *map(str, VALID_FILES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(VALID_FILES)
    assert result.stderr == ""


def test_console_script_refuses_each_invalid_file_with_its_code() -> None:
    result = subprocess.run(
        [console_script(), "validate", *map(str, INVALID_FILES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    expected = {name: case["code"] for name, case in INVALID_MANIFEST.items()}
    assert codes_by_file(result.stderr) == expected


def test_console_script_refuses_a_40mb_hostile_file(hostile_40mb: Path) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [console_script(), "validate", str(hostile_40mb)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.perf_counter() - started
    print(f"40 MB hostile file refused in {elapsed:.3f} s")
    assert result.returncode == 1
    assert [problem["code"] for problem in problems(result.stderr)] == ["xml.too_large"]
