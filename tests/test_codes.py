"""The vocabulary: every code the gateway raises or records is a member of gateway.model.codes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gateway.model.codes import Fault, HeldState, Outcome, Refusal, RefusalReason
from gateway.model.errors import GatewayError

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    path
    for folder in ("gateway", "plugins", "conformance")
    for path in (ROOT / folder).rglob("*.py")
    if "adapter_template" not in path.parts
)


def _literal_codes(path: Path) -> list[str]:
    """``code="..."`` keyword arguments and ``code = "..."`` assignments written as literals."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "code":
            value = node.value
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id if isinstance(t, ast.Name) else getattr(t, "attr", "") for t in targets]
            if "code" not in names or node.value is None:
                continue
            value = node.value
        else:
            continue
        if isinstance(value, ast.JoinedStr) or (
            isinstance(value, ast.Constant) and isinstance(value.value, str)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_is_written_as_a_string_literal(path: Path) -> None:
    assert _literal_codes(path) == []


def test_a_code_means_one_thing_only() -> None:
    refusals = {member.value for member in Refusal}
    faults = {member.value for member in Fault}
    assert not refusals & faults


def test_every_error_class_default_code_is_a_member() -> None:
    classes = [GatewayError, *GatewayError.__subclasses__()]
    classes += [sub for cls in list(classes) for sub in cls.__subclasses__()]
    for cls in classes:
        assert isinstance(cls.code, Refusal | Fault), cls.__name__


def test_codes_are_the_same_strings_on_the_wire() -> None:
    assert Refusal.NISS_CHECKSUM == "niss.checksum"
    assert f"{Refusal.NISS_CHECKSUM}" == "niss.checksum"
    assert RefusalReason("awaiting-release") is RefusalReason.AWAITING_RELEASE
    assert Outcome("awaiting-release") is Outcome.AWAITING_RELEASE
    assert HeldState("released") is HeldState.RELEASED
