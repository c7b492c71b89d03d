"""docs/adapters.md is enough on its own: its examples agree with the code and name every type."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import tomllib
from pathlib import Path

import pytest

import gateway.adapters
from gateway.adapters import AdapterInfo, base
from gateway.scaffold import new_adapter_package

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "adapters.md"
EXAMPLES = {
    "docs/adapters.md": GUIDE.read_text(encoding="utf-8"),
    "docs/conformance.md": (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8"),
    "the quick-start docstring": inspect.getdoc(gateway.adapters) or "",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated") / "acme-cpas-adapter"
    new_adapter_package("acme", folder)
    return folder


def adapter_info_calls(text: str) -> list[ast.Call]:
    """Every ``AdapterInfo(...)`` written in ``text``, parsed."""
    calls = []
    for match in re.finditer(r"AdapterInfo\(", text):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        call = ast.parse(text[match.start() : end + 1]).body[0]
        assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
        calls.append(call.value)
    return calls


def test_every_example_registers_the_entry_point_the_generated_package_declares(
    generated: Path,
) -> None:
    declared = tomllib.loads((generated / "pyproject.toml").read_text(encoding="utf-8"))
    entry_point = declared["project"]["entry-points"]["cpas_gateway.adapters"]["acme"]
    assert (generated / (entry_point.replace(".", "/") + ".py")).is_file()
    for where, text in EXAMPLES.items():
        documented = re.findall(r'^\s*acme = "([\w.]+)"', text, flags=re.MULTILINE)
        assert documented == [entry_point], where


def test_every_adapter_info_example_names_every_field_of_adapter_info(generated: Path) -> None:
    fields = {field.name for field in dataclasses.fields(AdapterInfo)}
    sources = {
        **EXAMPLES,
        "the generated adapter": (generated / "acme_cpas/adapter.py").read_text(),
    }
    for where, text in sources.items():
        calls = adapter_info_calls(text)
        assert calls, where
        for call in calls:
            assert {keyword.arg for keyword in call.keywords} == fields, where


def vendor_imports(files: list[Path]) -> set[str]:
    """The names these files import from the gateway."""
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gateway"):
                names |= {alias.name for alias in node.names}
    return names


def test_every_name_a_vendor_imports_is_named_in_the_adapter_guide(generated: Path) -> None:
    files = [*ROOT.glob("plugins/*/*.py"), *generated.rglob("*.py")]
    offered = {
        name
        for name, value in vars(base).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == base.__name__
    }
    names = vendor_imports(files) | offered | {"SensitiveData", "make_beneficiary"}
    missing = sorted(name for name in names if f"`{name}`" not in EXAMPLES["docs/adapters.md"])
    assert not missing, f"docs/adapters.md does not name: {', '.join(missing)}"
