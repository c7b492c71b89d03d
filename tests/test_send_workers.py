"""A caseload sent in shares: ``Node.send_all(share=...)`` and ``send --all --workers N``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GENT, LIEGE, NodeFactory

from gateway.cli import main
from gateway.config import NodeConfig
from gateway.federation.localnet import LocalFederation
from gateway.model.envelope import Purpose
from gateway.model.errors import ConfigError
from gateway.node import Node, build_node
from gateway.node.send import share_of
from gateway.store import Store

PURPOSE = Purpose.CONTINUITY_AFTER_MOVE


def test_the_shares_of_a_caseload_partition_it_exactly(make_memory_node: NodeFactory) -> None:
    sender, receiver = make_memory_node(GENT, "ocmwdata"), make_memory_node(LIEGE, "fichesociale")
    numbers = sender.adapter.seed(40, seed=61)  # type: ignore[attr-defined]
    totals: list[int] = []
    sent: list[str] = []
    for k in range(3):
        seen: list[int] = []
        sent += sender.send_all(
            receiver.cpas_id,
            PURPOSE,
            share=(k, 3),
            progress=lambda done, total, seen=seen: seen.append(total),
        )
        totals.append(seen[-1])
    # Each share counts its own people; together they are the caseload, once.
    assert sum(totals) == len(numbers) == len(sent) == 40
    assert all(totals)
    assert sorted(e.case_reference for e in sender.store.outgoing_all()) == sorted(
        sender.adapter.export_dossier(n).source.case_reference  # type: ignore[union-attr]
        for n in numbers
    )


def test_the_share_of_a_person_is_the_same_in_every_process() -> None:
    numbers = ["85073003328", "93051822361", "40000195704"]
    here = [share_of(n, 4) for n in numbers]
    code = f"from gateway.node.send import share_of; print([share_of(n, 4) for n in {numbers!r}])"
    for seed in ("1", "2"):
        there = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert there.strip() == str(here)


@pytest.mark.parametrize("share", [(2, 2), (-1, 2), (0, 0)])
def test_a_share_that_is_not_one_of_its_shares_is_refused(
    make_memory_node: NodeFactory, share: tuple[int, int]
) -> None:
    sender, receiver = make_memory_node(GENT, "ocmwdata"), make_memory_node(LIEGE, "fichesociale")
    with pytest.raises(ConfigError):
        sender.send_all(receiver.cpas_id, PURPOSE, share=share)


def test_workers_without_all_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["send", "--config", str(tmp_path / "node.toml"), "--niss", "85073003328",
              "--to", "0212345678", "--purpose", PURPOSE.value, "--workers", "2"])  # fmt: skip
    assert exit.value.code == 2
    assert "--workers goes with --all" in capsys.readouterr().err


# ------------------------------------------------------------ end to end


def _seed(config: Path, count: int, *, seed: int) -> list[str]:
    adapter = build_node(NodeConfig.load(config), consume=False).adapter
    try:
        return [str(n) for n in adapter.seed(count, seed=seed)]  # type: ignore[attr-defined]
    finally:
        adapter.close()


def _sent_case_references(config: Path) -> list[str]:
    store = Store(NodeConfig.load(config).store)
    try:
        return [e.case_reference for e in store.outgoing_all() if e.type == "transfer"]
    finally:
        store.close()


def _bulk_send(configs: dict[str, Path], world: LocalFederation, workers: int = 2) -> list[str]:
    return ["send", "--config", str(configs[GENT]), "--all", "--to", world.member(LIEGE).cpas_id,
            "--purpose", PURPOSE.value, "--workers", str(workers)]  # fmt: skip


def _set_birth_date(vendor: Path, number: str, born: str) -> str:
    """Set a person's birth date in an OCMWdata database; return the one it held."""
    db = sqlite3.connect(vendor)
    try:
        with db:
            (before,) = db.execute(
                "SELECT geboortedatum FROM clienten WHERE rijksregisternummer = ?", (number,)
            ).fetchone()
            db.execute(
                "UPDATE clienten SET geboortedatum = ? WHERE rijksregisternummer = ?",
                (born, number),
            )
    finally:
        db.close()
    return str(before)


def _running(config: Path) -> Node:
    return build_node(NodeConfig.load(config)).start()


def test_two_workers_move_every_dossier_once_and_a_run_again_in_other_shares_sends_nothing(
    configs: dict[str, Path], world: LocalFederation, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(configs[GENT], 40, seed=62)
    receiver = _running(configs[LIEGE])
    try:
        assert main([*_bulk_send(configs, world), "--wait", "30"]) == 0
        first = " ".join(capsys.readouterr().out.split())
        assert main([*_bulk_send(configs, world, workers=3), "--wait", "0"]) == 0
        second = " ".join(capsys.readouterr().out.split())
    finally:
        receiver.stop()
    assert "sent 40 dossiers; 40 held by the broker" in first
    assert "receipts: 40 imported of 40" in first
    assert "sent 0 dossiers" in second
    sent = _sent_case_references(configs[GENT])
    assert len(sent) == len(set(sent)) == 40


def test_a_failing_worker_makes_the_bulk_send_exit_1_naming_its_share_and_run_again_finishes(
    configs: dict[str, Path],
    world: LocalFederation,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    numbers = _seed(configs[GENT], 40, seed=63)
    broken = numbers[0]
    # A record of the vendor system that makes no valid dossier.
    born = _set_birth_date(tmp_path / "gent.sqlite3", broken, "unknown")
    receiver = _running(configs[LIEGE])
    try:
        assert main([*_bulk_send(configs, world), "--wait", "0"]) == 1
        said = " ".join(capsys.readouterr().out.split())
        _set_birth_date(tmp_path / "gent.sqlite3", broken, born)  # corrected
        assert main([*_bulk_send(configs, world), "--wait", "0"]) == 0
    finally:
        receiver.stop()
    share = f"share {share_of(broken, 2) + 1} of 2"
    assert f"{share}: cpas-gateway: error: [adapter.invalid_data]" in said
    assert f"{share} failed (exit status 1)" in said
    assert "run the same command again" in said
    sent = _sent_case_references(configs[GENT])
    assert len(sent) == len(set(sent)) == 40
