"""``cpas-gateway adapter new``: a vendor's package, installed as a vendor installs it, certified.

The package is generated into a temporary folder and installed with pip into
a throwaway environment that borrows only the gateway and its dependencies
from the test environment; the suite then finds the adapter through its
entry point, exactly as ``cpas-conformance`` does for a vendor.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from cpas_conformance.requirements import iter_requirements
from gateway.cli import main as gateway_main
from gateway.model.errors import ConfigError
from gateway.scaffold import new_adapter_package

pytestmark = pytest.mark.slow

# What a vendor writes in the marked places for a tiny SQLite store (German
# columns, as the product of an ÖSHZ would have them).
FILL_INS = {
    "connect": """
        path = self.options.get("db")
        if not path:
            raise AdapterError("Acme needs the option db (a SQLite file).", code="adapter.config")
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS personen (aktenzeichen INTEGER PRIMARY KEY,"
            " nummer TEXT UNIQUE NOT NULL, inhalt TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS nachrichten (nachricht_id TEXT PRIMARY KEY,"
            " aktenzeichen TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS vermerke (nummer TEXT NOT NULL, text TEXT NOT NULL);"
        )
""",
    "disconnect": """
        self.db.close()
""",
    "transaction": """
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
""",
    "is_transient": """
        return isinstance(exc, sqlite3.OperationalError) or super().is_transient(exc)
""",
    "read_dossier": """
        row = self.db.execute(
            "SELECT aktenzeichen, inhalt FROM personen WHERE nummer = ?", (person_number,)
        ).fetchone()
        if row is None:
            return None
        return self.new_dossier(case_reference=f"SA-{row[0]}", **json.loads(row[1]))
""",
    "write_dossier": """
        number = dossier.person.number
        content = dossier.model_dump(
            mode="json", include={"person", "household", "aid_history", "last_social_inquiry"}
        )
        row = self.db.execute(
            "SELECT aktenzeichen, inhalt FROM personen WHERE nummer = ?", (number,)
        ).fetchone()
        if row is None:
            cursor = self.db.execute(
                "INSERT INTO personen (nummer, inhalt) VALUES (?, ?)", (number, json.dumps(content))
            )
            return f"SA-{cursor.lastrowid}"
        merged = {d["decision_id"]: d for d in json.loads(row[1])["aid_history"]}
        merged.update({d["decision_id"]: d for d in content["aid_history"]})
        content["aid_history"] = list(merged.values())
        self.db.execute(
            "UPDATE personen SET inhalt = ? WHERE aktenzeichen = ?", (json.dumps(content), row[0])
        )
        return f"SA-{row[0]}"
""",
    "find_message": """
        row = self.db.execute(
            "SELECT aktenzeichen FROM nachrichten WHERE nachricht_id = ?", (message_id,)
        ).fetchone()
        return None if row is None else str(row[0])
""",
    "record_message": """
        self.db.execute(
            "INSERT INTO nachrichten (nachricht_id, aktenzeichen) VALUES (?, ?)",
            (message_id, local_reference),
        )
""",
    "write_sensitive": """
        if self.read_dossier(person_number) is None:
            return False
        self.db.executemany(
            "INSERT INTO vermerke (nummer, text) VALUES (?, ?)",
            [(person_number, text) for text in sensitive.all_strings()],
        )
        return True
""",
    "person_numbers": """
        return [row[0] for row in self.db.execute("SELECT nummer FROM personen ORDER BY 1")]
""",
    "make_store_unavailable": """
        # A database without its tables: every statement fails, as when the file is gone.
        self.db.close()
        self.db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
""",
    "make_store_available": """
        self.db.close()
        self.connect()
""",
}
IMPORTS = (
    "import json\nimport logging\nimport sqlite3\n"
    "from collections.abc import Iterator, Mapping\n"
    "from contextlib import AbstractContextManager, contextmanager, nullcontext\n"
)
_BLOCK = re.compile(r"( *)# >>> VENDOR CODE: (\w+)\n.*?# <<< VENDOR CODE\n", re.DOTALL)


def fill_in(adapter_py: Path, *, leave: frozenset[str] = frozenset()) -> None:
    """Replace every marked block but those of ``leave`` with the vendor's code above."""
    text = adapter_py.read_text(encoding="utf-8")
    text = text.replace(
        "import logging\nfrom collections.abc import Mapping\n"
        "from contextlib import AbstractContextManager, nullcontext\n",
        IMPORTS,
    ).replace(
        "from gateway.model.dossier import Dossier\n",
        "from gateway.model.dossier import Dossier\n"
        "from gateway.model.errors import AdapterError\n",
    )
    filled = _BLOCK.sub(
        lambda m: m.group(0) if m.group(2) in leave else FILL_INS[m.group(2)].lstrip("\n"), text
    )
    assert {m.group(2) for m in _BLOCK.finditer(filled)} == leave
    adapter_py.write_text(filled, encoding="utf-8")


@pytest.fixture
def environment(tmp_path: Path) -> Path:
    """A throwaway environment: the gateway and its dependencies borrowed, nothing else."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # addsitedir, not a path line: it also runs the .pth of the gateway's editable install.
    (site / "gateway.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    )
    return venv


def pip_install(venv: Path, package: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--prefix",
            str(venv),
            str(package),
        ],
        check=True,
        timeout=300,
    )


def conformance(venv: Path, report: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "cpas_conformance.cli",
            "--adapter",
            "acme",
            "--report",
            str(report),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def generate(tmp_path: Path) -> Path:
    folder = tmp_path / "acme-cpas-adapter"
    assert gateway_main(["adapter", "new", "acme", "--dir", str(folder)]) == 0
    return folder


def test_the_generated_package_passes_ruff(tmp_path: Path) -> None:
    folder = generate(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_place_left_to_the_vendor_is_marked_and_names_its_method(tmp_path: Path) -> None:
    adapter_py = generate(tmp_path) / "acme_cpas" / "adapter.py"
    blocks = _BLOCK.findall(adapter_py.read_text(encoding="utf-8"))
    assert {name for _, name in blocks} == set(FILL_INS)


def test_a_new_package_is_not_written_over_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an empty folder"):
        new_adapter_package("acme", tmp_path / "taken")


def test_a_name_that_cannot_be_a_python_package_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        new_adapter_package("Acme-Social", tmp_path / "x")
    assert refused.value.code == "adapter.name"


def test_the_unwritten_package_installs_and_fails_the_suite_only_where_code_is_missing(
    environment: Path, tmp_path: Path
) -> None:
    folder = generate(tmp_path)
    pip_install(environment, folder)
    done = conformance(environment, tmp_path / "report", tmp_path)
    assert done.returncode == 1, done.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    failed_cases = [
        case
        for requirement in report["requirements"]
        for case in requirement["cases"]
        if case["outcome"] == "failed"
    ]
    assert failed_cases
    for case in failed_cases:
        assert "adapter.not_written" in json.dumps(case), case
    passed = {r["id"] for r in report["requirements"] if r["outcome"] == "passed"}
    assert {"DSE-INF-001", "DSE-INT-001"} <= passed


def test_a_package_without_its_outage_hook_fails_only_the_outage_requirement_naming_it(
    environment: Path, tmp_path: Path
) -> None:
    folder = generate(tmp_path)
    fill_in(
        folder / "acme_cpas" / "adapter.py",
        leave=frozenset({"make_store_unavailable", "make_store_available"}),
    )
    pip_install(environment, folder)
    done = conformance(environment, tmp_path / "report", tmp_path)
    assert done.returncode == 1, done.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    failed = [r for r in report["requirements"] if r["outcome"] == "failed"]
    assert [r["id"] for r in failed] == ["DSE-ERR-002"]
    (case,) = failed[0]["cases"]
    assert "adapter.not_written" in case["message"]
    assert "make_store_unavailable" in case["message"]


def test_the_package_with_its_marked_places_written_is_conformant(
    environment: Path, tmp_path: Path
) -> None:
    folder = generate(tmp_path)
    fill_in(folder / "acme_cpas" / "adapter.py")
    pip_install(environment, folder)
    done = conformance(environment, tmp_path / "report", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["conformant"] is True
    outcomes = {r["id"]: r["outcome"] for r in report["requirements"]}
    # Every requirement applies to it, so conformant means each mandatory one passed.
    assert {
        requirement.id: "passed" for requirement in iter_requirements(mandatory=True)
    }.items() <= outcomes.items()
    assert outcomes["DSE-SED-001"] == outcomes["DSE-INS-001"] == "passed"


def test_the_packages_own_test_file_runs_the_suite_with_pytest(
    environment: Path, tmp_path: Path
) -> None:
    folder = generate(tmp_path)
    fill_in(folder / "acme_cpas" / "adapter.py")
    pip_install(environment, folder)
    done = subprocess.run(
        [str(environment / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert re.search(r"\b2\d\d passed", done.stdout), done.stdout[-500:]


def test_the_installed_adapters_are_listed_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert gateway_main(["adapter", "list"]) == 0
    assert {"ocmwdata", "fichesociale"} <= set(capsys.readouterr().out.split())
