"""The layers as packages: the model lives in gateway.model, old names still import."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import gateway.model.dossier


def test_a_model_module_imported_by_its_former_name_is_the_same_module_with_a_warning() -> None:
    sys.modules.pop("gateway.dossier", None)
    with pytest.warns(DeprecationWarning, match=r"gateway\.dossier is now gateway\.model\.dossier"):
        old = importlib.import_module("gateway.dossier")
    assert old is gateway.model.dossier
    assert old.Dossier is gateway.model.dossier.Dossier


def test_a_name_that_never_was_a_module_of_the_gateway_is_still_not_found() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("gateway.dossiers")


def test_the_adapter_api_and_the_reference_adapters_load_no_broker_client() -> None:
    # Vendors import the adapter API and the model: the broker, its AMQP
    # library and the in-memory stand-in stay out of their process.
    script = (
        "import sys, gateway.adapters, fichesociale.adapter, ocmwdata.adapter;"
        "print(sorted(m for m in ('pika', 'gateway.broker', 'gateway.node',"
        " 'gateway.testing.memory_broker') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_the_synthetic_people_imported_by_their_former_name_are_the_testing_module() -> None:
    sys.modules.pop("gateway.synthetic", None)
    with pytest.warns(DeprecationWarning, match=r"gateway\.testing\.synthetic"):
        old = importlib.import_module("gateway.synthetic")
    assert old is importlib.import_module("gateway.testing.synthetic")


def _fresh_python(script: str) -> str:
    """Run ``script`` in a new interpreter (imports start from nothing); its output."""
    done = subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout + done.stderr


def test_a_submodule_of_a_moved_package_is_one_module_under_both_names() -> None:
    out = _fresh_python(
        "import sys, gateway.model.directory as package, gateway.directory.edition;"
        "old, new = sys.modules['gateway.directory.edition'],"
        " sys.modules['gateway.model.directory.edition'];"
        "print('same', old is new, old.Directory is package.Directory)"
    )
    assert "same True True" in out


def test_importing_a_former_name_leaves_the_module_its_own_spec_resources_and_reload() -> None:
    out = _fresh_python(
        "import importlib, importlib.util, importlib.resources, gateway.codes, gateway.directory;"
        "import gateway.model.codes as codes;"
        "spec = importlib.util.find_spec('gateway.model.directory');"
        "print('spec', spec.name, spec.submodule_search_locations is not None);"
        "print('files', importlib.resources.files('gateway.model.directory').is_dir());"
        "print('reload', importlib.reload(codes).__name__)"
    )
    assert "spec gateway.model.directory True" in out
    assert "files True" in out
    assert "reload gateway.model.codes" in out


def test_the_deprecation_warning_names_the_line_that_imports() -> None:
    out = _fresh_python(
        "import importlib\nimport gateway.keys\nimportlib.import_module('gateway.errors')"
    )
    assert "<string>:2: DeprecationWarning: gateway.keys is now gateway.model.keys" in out
    assert "<string>:3: DeprecationWarning: gateway.errors is now gateway.model.errors" in out


def test_running_a_former_module_name_says_the_new_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.local_broker", "--help"], capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "gateway.local_broker is now gateway.federation.local_broker" in done.stderr


MODULE_LINES = 520
CLASS_LINES = 320


def test_every_module_and_class_of_the_gateway_reads_in_one_sitting() -> None:
    # About 500 lines a module and 300 a class: past that, split along a seam.
    root = Path(gateway.model.__file__).resolve().parents[1]
    too_long = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text("utf-8")
        name = path.relative_to(root.parent)
        if text.count("\n") > MODULE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > CLASS_LINES:
                    too_long.append(f"{name}: class {node.name}, {length} lines")
    assert too_long == []
