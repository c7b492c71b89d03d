"""A node restored from its backup carries on: keys, store, journal, secret, directory edition.

The backup is taken while the node runs (``cpas-gateway backup``); then the
node's disk is lost (keys, state and configuration deleted), the backup is
put back (``cpas-gateway restore``) and the node starts again from it: its
journal still verifies, the directory edition it had received live is still
in use, and it exchanges dossiers both ways.
"""

from __future__ import annotations

import shutil
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import GENT, LIEGE, NAMUR, NodeFactory
from psycopg import sql

from gateway.backup import backup_node, restore_node
from gateway.broker import Names
from gateway.cli import main
from gateway.config import NodeConfig
from gateway.federation.localnet import LocalFederation
from gateway.model.directory import InstitutionStatus
from gateway.model.envelope import Purpose
from gateway.model.errors import ConfigError, DestinationRefused
from gateway.node import build_node

PURPOSE = Purpose.CONTINUITY_AFTER_MOVE
WAIT = 30.0


def _gent_config(federation: LocalFederation, amqp_url: str, namespace: str, vendor: Path) -> Path:
    member = federation.member(GENT)
    federation.node_config(
        member.cpas_id,
        "ocmwdata",
        {"url": f"sqlite:///{vendor}"},
        amqp_url=amqp_url,
        namespace=namespace,
    )
    return member.folder / "node.toml"


def test_a_node_restored_from_its_backup_carries_on_exchanging_dossiers(
    amqp_url: str,
    federation: LocalFederation,
    sandbox: Names,
    make_node: NodeFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace = sandbox.namespace
    liege = make_node(LIEGE, "fichesociale")
    config_path = _gent_config(federation, amqp_url, namespace, tmp_path / "vendor.sqlite3")
    gent = build_node(NodeConfig.load(config_path), follow_directory=True).start()
    numbers = gent.adapter.seed(5, seed=61)  # type: ignore[attr-defined]
    try:
        sent = [gent.send_transfer(n, liege.cpas_id, PURPOSE) for n in numbers[:3]]
        assert {
            e.outcome for e in gent.wait_for_outcomes([s.message_id for s in sent], WAIT).values()
        } == {"imported"}
        # A newer edition received live (Namur merged): it is part of what is backed up.
        namur = federation.directory.get(federation.member(NAMUR).cpas_id)
        assert namur is not None
        federation.reissue(
            namur.model_copy(
                update={
                    "status": InstitutionStatus.MERGED,
                    "merged_into": liege.cpas_id,
                    "encryption_keys": [],
                    "contact": None,
                }
            )
        )
        assert gent.directory_feed is not None
        assert gent.directory_feed.receive(federation.directory_path.read_bytes()).applied
        backup = tmp_path / "backup"

        assert main(["backup", "--config", str(config_path), "--to", str(backup)]) == 0
    finally:
        gent.stop()
        gent.adapter.close()
    # The node's disk is lost; the vendor's system and the directory file are not.
    folder = config_path.parent
    shutil.rmtree(folder / "keys")
    shutil.rmtree(folder / "state")
    config_path.unlink()

    assert main(["restore", "--from", str(backup)]) == 0
    capsys.readouterr()
    assert main(["journal", "verify", "--config", str(config_path)]) == 0
    restored = build_node(NodeConfig.load(config_path), follow_directory=True).start()
    try:
        assert restored.directory.serial == federation.directory.serial
        assert {e.message_id for e in restored.store.outgoing_all()} == {s.message_id for s in sent}
        with pytest.raises(DestinationRefused):
            restored.send_transfer(numbers[3], federation.member(NAMUR).cpas_id, PURPOSE)
        more = [restored.send_transfer(n, liege.cpas_id, PURPOSE) for n in numbers[3:]]
        outcomes = restored.wait_for_outcomes([s.message_id for s in [*sent, *more]], WAIT)
        assert {e.outcome for e in outcomes.values()} == {"imported"}
        assert len(outcomes) == 5
        (back,) = liege.adapter.seed(1, seed=62)  # type: ignore[attr-defined]
        answer = liege.send_transfer(back, restored.cpas_id, PURPOSE)
        assert liege.wait_for_outcomes([answer.message_id], WAIT)[answer.message_id].outcome == (
            "imported"
        )
    finally:
        restored.stop()
        restored.adapter.close()
    assert main(["journal", "verify", "--config", str(config_path)]) == 0


def test_a_restore_never_overwrites_a_node_s_files(
    amqp_url: str, federation: LocalFederation, sandbox: Names, tmp_path: Path
) -> None:
    config_path = _gent_config(
        federation,
        amqp_url,
        sandbox.namespace,
        tmp_path / "vendor.sqlite3",
    )
    assert main(["backup", "--config", str(config_path), "--to", str(tmp_path / "b")]) == 0
    with pytest.raises(ConfigError) as refused:
        restore_node(tmp_path / "b")
    assert refused.value.code == "backup.restore_over"


def test_a_backup_goes_into_a_new_folder(
    amqp_url: str, federation: LocalFederation, sandbox: Names, tmp_path: Path
) -> None:
    config_path = _gent_config(
        federation,
        amqp_url,
        sandbox.namespace,
        tmp_path / "vendor.sqlite3",
    )
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "something").write_text("kept")
    with pytest.raises(ConfigError) as refused:
        backup_node(config_path, tmp_path / "b")
    assert refused.value.code == "backup.exists"


@pytest.fixture
def node_database(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of the node's own (one per node, as operations.md says)."""
    name = f"ops_backup_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as pg:
        pg.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parsed = urllib.parse.urlparse(postgres_url)
    yield urllib.parse.urlunparse(parsed._replace(path=f"/{name}"))
    with psycopg.connect(postgres_url, autocommit=True) as pg:
        pg.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_node_on_postgresql_is_backed_up_with_pg_dump_and_restored_with_its_rows(
    amqp_url: str,
    federation: LocalFederation,
    sandbox: Names,
    make_node: NodeFactory,
    node_database: str,
    tmp_path: Path,
) -> None:
    liege = make_node(LIEGE, "fichesociale")
    config_path = _gent_config(federation, amqp_url, sandbox.namespace, tmp_path / "vendor.sqlite3")
    config_path.write_text(
        config_path.read_text().replace('"state/node.sqlite3"', f'"{node_database}"')
    )
    gent = build_node(NodeConfig.load(config_path), follow_directory=True).start()
    try:
        numbers = gent.adapter.seed(3, seed=63)  # type: ignore[attr-defined]
        sent = [gent.send_transfer(n, liege.cpas_id, PURPOSE) for n in numbers[:2]]
        gent.wait_for_outcomes([s.message_id for s in sent], WAIT)
        assert main(["backup", "--config", str(config_path), "--to", str(tmp_path / "b")]) == 0
    finally:
        gent.stop()
        gent.adapter.close()
    assert (tmp_path / "b" / "store.pgdump").exists()
    # The database loses its tables; the node's folder its keys and configuration.
    with psycopg.connect(node_database, autocommit=True) as pg:
        pg.execute("DROP SCHEMA public CASCADE")
        pg.execute("CREATE SCHEMA public")
    shutil.rmtree(config_path.parent / "keys")
    config_path.unlink()

    assert main(["restore", "--from", str(tmp_path / "b")]) == 0
    assert main(["journal", "verify", "--config", str(config_path)]) == 0
    restored = build_node(NodeConfig.load(config_path), follow_directory=True).start()
    try:
        assert {e.message_id for e in restored.store.outgoing_all()} == {s.message_id for s in sent}
        more = restored.send_transfer(numbers[2], liege.cpas_id, PURPOSE)
        outcomes = restored.wait_for_outcomes([more.message_id], WAIT)
        assert outcomes[more.message_id].outcome == "imported"
    finally:
        restored.stop()
        restored.adapter.close()
