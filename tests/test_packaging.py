"""The wheel: what a CPAS or a vendor installs works outside the source tree."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "conformance" / "corpus"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment holding only the built wheel (its dependencies borrowed)."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp / "dist"),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = (tmp / "dist").glob("cpas_dossier_gateway-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            # Without it pip would first uninstall the project from the
            # environment running the tests.
            "--ignore-installed",
            "--prefix",
            str(venv),
            str(wheel),
        ],
        check=True,
    )
    # The dependencies come from the test environment; the project itself
    # only from the wheel (a plain path line does not load the editable install).
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_project_is_imported_from_the_wheel_not_the_source_tree(
    installed: Path, tmp_path: Path
) -> None:
    done = _run(
        installed,
        "-c",
        "import gateway, ocmwdata; print(gateway.__file__, ocmwdata.__file__)",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert str(ROOT) not in done.stdout and str(installed) in done.stdout


def test_the_installed_command_validates_dossiers_from_another_folder(
    installed: Path, tmp_path: Path
) -> None:
    files = [str(p) for p in sorted((CORPUS / "valid").glob("*.xml"))[:5]]
    done = _run(
        installed, str(installed / "bin" / "cpas-gateway"), "validate", *files, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("OK") == len(files)


def test_the_installed_command_refuses_a_hostile_file_in_one_line(
    installed: Path, tmp_path: Path
) -> None:
    hostile = CORPUS / "invalid" / "entity-bomb-billion-laughs.xml"
    done = _run(
        installed, str(installed / "bin" / "cpas-gateway"), "validate", str(hostile), cwd=tmp_path
    )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "[xml.doctype]" in done.stderr


def test_the_installed_adapters_and_conformance_suite_are_found(
    installed: Path, tmp_path: Path
) -> None:
    code = "from gateway.adapters import load_adapters; print(load_adapters().names)"
    done = _run(installed, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ocmwdata" in done.stdout and "fichesociale" in done.stdout
    done = _run(installed, str(installed / "bin" / "cpas-conformance"), "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_the_installed_command_writes_a_new_adapter_package(
    installed: Path, tmp_path: Path
) -> None:
    done = _run(
        installed,
        str(installed / "bin" / "cpas-gateway"),
        "adapter",
        "new",
        "acme",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    package = tmp_path / "acme-cpas-adapter"
    assert (package / "acme_cpas" / "adapter.py").is_file()
    assert (package / "tests" / "test_conformance.py").is_file()


def test_the_conformance_extra_brings_pytest(installed: Path, tmp_path: Path) -> None:
    code = "from importlib import metadata; print(metadata.requires('cpas-dossier-gateway'))"
    done = _run(installed, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'pytest>=8.0; extra == "conformance"' in done.stdout.replace("'", '"')
