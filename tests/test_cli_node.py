"""The node's command line, end to end against the real broker."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import GENT, LIEGE

import gateway.node
from gateway.broker import Names
from gateway.cli import main
from gateway.config import NodeConfig
from gateway.federation.localnet import LocalFederation
from gateway.federation.provision import ManagementApi, remove_users
from gateway.model.errors import DirectoryError, StoreUnavailable
from gateway.node import Node, build_node
from gateway.store import Store


def _seed_one(config: Path, *, seed: int) -> str:
    """One synthetic person in the vendor system of the node configured by ``config``."""
    adapter = build_node(NodeConfig.load(config), consume=False).adapter
    try:
        (number,) = adapter.seed(1, seed=seed)  # type: ignore[attr-defined]
    finally:
        adapter.close()
    return str(number)


def _running(config: Path) -> Node:
    return build_node(NodeConfig.load(config)).start()


def test_send_reports_the_receipt(
    configs: dict[str, Path], world: LocalFederation, capsys: pytest.CaptureFixture[str]
) -> None:
    number = _seed_one(configs[GENT], seed=41)
    receiver = _running(configs[LIEGE])
    try:
        code = main(
            [
                "send",
                "--config",
                str(configs[GENT]),
                "--niss",
                number,
                "--to",
                world.member(LIEGE).cpas_id,
                "--purpose",
                "continuity-after-move",
            ]
        )
    finally:
        receiver.stop()
    assert code == 0
    assert "imported" in capsys.readouterr().out


def test_send_to_a_non_cpas_is_one_clear_line_and_exit_1(
    configs: dict[str, Path], world: LocalFederation, capsys: pytest.CaptureFixture[str]
) -> None:
    police = next(i for i in world.directory.institutions if i.kind.value == "police")
    code = main(
        [
            "send",
            "--config",
            str(configs[GENT]),
            "--niss",
            "85073003328",
            "--to",
            police.id,
            "--purpose",
            "continuity-after-move",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "[directory.not_cpas]" in err and "Traceback" not in err


def test_a_held_request_is_listed_then_released_from_the_command_line(
    configs: dict[str, Path], world: LocalFederation, capsys: pytest.CaptureFixture[str]
) -> None:
    number = _seed_one(configs[LIEGE], seed=42)
    holder = _running(configs[LIEGE])
    try:
        code = main(
            [
                "request",
                "--config",
                str(configs[GENT]),
                "--niss",
                number,
                "--from",
                world.member(LIEGE).cpas_id,
                "--purpose",
                "new-application-inquiry",
                "--case",
                "G-77",
                "--wait",
                "5",
            ]
        )
        assert code == 3  # held: no final answer yet
        assert "held by" in capsys.readouterr().out
        assert main(["pending", "list", "--config", str(configs[LIEGE])]) == 0
        listing = capsys.readouterr().out
        assert number in listing
        request_id = holder.store.held()[0].message_id
        assert main(["pending", "release", "--config", str(configs[LIEGE]), request_id]) == 0
    finally:
        holder.stop()
    gent = _running(configs[GENT])  # picks up the response from its inbox
    try:
        entry = gent.wait_for_outcomes([request_id_of(gent)], 15)
        assert {e.outcome for e in entry.values()} == {"answered"}
    finally:
        gent.stop()


def request_id_of(node: Node) -> str:
    (request,) = [e for e in node.store.outgoing_all() if e.type == "request"]
    return request.message_id


def test_a_node_refuses_an_older_edition_of_the_directory(
    configs: dict[str, Path], world: LocalFederation
) -> None:
    old = world.directory_path.read_bytes()
    build_node(NodeConfig.load(configs[GENT]), consume=False)  # sees edition 1
    liege = world.directory.get(world.member(LIEGE).cpas_id)
    assert liege is not None
    world.reissue(liege)  # edition 2
    build_node(NodeConfig.load(configs[GENT]), consume=False)  # sees edition 2
    world.directory_path.write_bytes(old)
    with pytest.raises(DirectoryError) as refused:
        build_node(NodeConfig.load(configs[GENT]), consume=False)
    assert refused.value.code == "directory.rollback"


def test_broker_provision_writes_credentials_for_each_cpas(
    world: LocalFederation,
    amqp_url: str,
    management_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tag = uuid.uuid4().hex[:8]
    vhost, namespace = f"dse-test-{tag}", f"t{tag}"
    args = [
        "broker",
        "provision",
        "--directory",
        str(world.directory_path),
        "--trust",
        str(world.trust_anchor),
        "--vhost",
        vhost,
        "--namespace",
        namespace,
        "--admin-url",
        amqp_url,
        "--management-url",
        management_url,
        "--credentials",
        str(tmp_path / "creds"),
    ]
    api = ManagementApi(management_url)
    try:
        assert main(args) == 0
        files = sorted(p.name for p in (tmp_path / "creds").iterdir())
        assert files == sorted(
            [
                *(f"{cpas_id}.amqp-url" for cpas_id in world.directory.cpas_ids()),
                "federation.amqp-url",
            ]
        )
        assert all(oct(p.stat().st_mode)[-3:] == "600" for p in (tmp_path / "creds").iterdir())
        assert main(args) == 0
        assert "created 0" in capsys.readouterr().out.splitlines()[-1]
    finally:
        api.delete_vhost(vhost)
        remove_users(api, Names(namespace))


def test_a_bulk_send_whose_store_cannot_be_written_stops_clearly_and_resumes_when_run_again(
    configs: dict[str, Path],
    world: LocalFederation,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adapter = build_node(NodeConfig.load(configs[GENT]), consume=False).adapter
    try:
        adapter.seed(450, seed=47)  # type: ignore[attr-defined]
    finally:
        adapter.close()
    receiver = _running(configs[LIEGE])
    command = ["send", "--config", str(configs[GENT]), "--all", "--to",
               world.member(LIEGE).cpas_id, "--purpose", "continuity-after-move",
               "--wait", "0", "--store-wait", "0"]  # fmt: skip
    real = Store.add_outgoing
    calls = []

    def disk_full_at_the_second_batch(store: Store, entries: Any) -> None:
        calls.append(len(entries))
        if len(calls) == 2:
            raise StoreUnavailable("The node's store is unavailable: database or disk is full.")
        real(store, entries)

    try:
        with monkeypatch.context() as patch:
            patch.setattr(Store, "add_outgoing", disk_full_at_the_second_batch)
            assert main(command) == 1
        out = capsys.readouterr()
        said = " ".join(out.out.split())  # rich wraps long lines
        assert "the bulk send stopped" in said and "database or disk is full" in said
        assert "run the same command" in said
        assert "Traceback" not in out.out + out.err
        assert main(command) == 0
    finally:
        receiver.stop()
    store = Store(NodeConfig.load(configs[GENT]).store)
    try:
        sent = [e for e in store.outgoing_all() if e.type == "transfer"]
    finally:
        store.close()
    assert len(sent) == len({e.case_reference for e in sent}) == 450


def test_run_exits_1_when_a_thread_of_the_node_dies(
    configs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(self: Node, now: Any = None) -> list[str]:
        raise RuntimeError("a bug in the sweep")

    monkeypatch.setattr(gateway.node.worker, "SWEEP_SECONDS", 0.1)
    monkeypatch.setattr(Node, "expire_requests", broken)
    assert main(["run", "--config", str(configs[LIEGE])]) == 1
    assert "a bug in the sweep" in capsys.readouterr().out
