"""The two command lines speak alike: one --config, one error line, the same exit statuses."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import cpas_conformance.cli
import gateway.cli
from gateway.cli.style import CONFIG, CONFIG_OR_TENANTS, EXIT_USAGE


def _subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += [sub, *_subcommands(sub)]
    return found


def test_every_config_option_is_the_shared_one() -> None:
    shared = [
        a
        for parent in (CONFIG, CONFIG_OR_TENANTS)
        for a in parent._actions
        if "--config" in a.option_strings
    ]
    parsers = _subcommands(gateway.cli.build_parser())
    configs = [a for p in parsers for a in p._actions if "--config" in a.option_strings]
    assert len(configs) >= 8
    assert all(any(action is one for one in shared) for action in configs)


def test_a_bad_option_is_one_coded_line_and_exit_2_in_cpas_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["seed", "--adapter", "ocmwdata", "--cpas", "0201234517", "--option", "novalue"]
    assert gateway.cli.main(argv) == EXIT_USAGE
    assert capsys.readouterr().err == (
        "cpas-gateway: error: [usage.invalid] --option 'novalue' is not KEY=VALUE.\n"
    )


def test_an_unknown_adapter_is_one_coded_line_and_exit_2_in_cpas_conformance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--adapter", "no-such-adapter", "--report", str(tmp_path / "out")]
    assert cpas_conformance.cli.main(argv) == EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("cpas-conformance: error: [adapter.unknown] ")


def test_a_refusal_is_one_coded_line_and_exit_1_in_cpas_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gateway.cli.main(["pending", "list", "--config", str(tmp_path / "none.toml")]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("cpas-gateway: error: [config.invalid] ")
