"""Each node's state is its own: a folder per CPAS by default, refused to other nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GENT, LIEGE

from gateway.config import NodeConfig
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.journal import Journal, JournalSettings
from gateway.model.errors import ConfigError
from gateway.node import Node, build_node
from gateway.store import Store


@pytest.fixture
def world(tmp_path: Path) -> LocalFederation:
    return make_local_federation(tmp_path / "federation", [GENT, LIEGE], small=True)


def write_config(
    world: LocalFederation, folder: Path, nis_code: str, file: str, **settings: str
) -> NodeConfig:
    """A node configuration in ``folder``, with only the settings a node cannot do without."""
    member = world.member(nis_code)
    lines = [
        f"cpas_id = {json.dumps(member.cpas_id)}",
        f"keys = {json.dumps(str(member.folder / 'keys'))}",
        f"directory = {json.dumps(str(world.directory_path))}",
        f"trust_anchor = {json.dumps(str(world.trust_anchor))}",
        *(f"{key} = {json.dumps(value)}" for key, value in settings.items()),
        "[adapter]",
        'name = "fichesociale"',
        f"options = {{ folder = {json.dumps(str(folder / ('fiches-' + nis_code)))} }}",
    ]
    path = folder / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return NodeConfig.load(path)


def start(config: NodeConfig) -> Node:
    return build_node(config, consume=False)


def close(node: Node) -> None:
    node.adapter.close()
    node.store.close()
    if node.journal is not None:
        node.journal.close()


def test_two_nodes_configured_in_one_folder_keep_their_state_apart_by_default(
    world: LocalFederation, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    gent = write_config(world, site, GENT, "gent.toml")
    liege = write_config(world, site, LIEGE, "liege.toml")
    for config in (gent, liege):
        assert config.store == f"sqlite:///{site}/state/{config.cpas_id}/node.sqlite3"
    journals = {JournalSettings.from_config(c).url for c in (gent, liege)}
    assert journals == {
        f"sqlite:///{site}/state/{c.cpas_id}/journal.sqlite3" for c in (gent, liege)
    }
    nodes = [start(gent), start(liege)]  # neither refuses the other's state
    for node in nodes:
        close(node)


def test_a_node_started_on_another_nodes_journal_refuses_and_says_how_to_fix_it(
    world: LocalFederation, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    gent = write_config(world, site, GENT, "gent.toml")
    close(start(gent))
    liege = write_config(
        world, site, LIEGE, "liege.toml", journal=f"state/{gent.cpas_id}/journal.sqlite3"
    )
    with pytest.raises(ConfigError) as refused:
        start(liege)
    assert refused.value.code == "journal.other_node"
    message = refused.value.message
    assert f"belongs to the node of CPAS {gent.cpas_id}" in message
    assert f"not to this node (CPAS {liege.cpas_id})" in message
    assert "leave 'journal' out of its configuration" in message


def test_a_node_started_on_another_nodes_store_refuses(
    world: LocalFederation, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    gent = write_config(world, site, GENT, "gent.toml")
    close(start(gent))
    liege = write_config(
        world,
        site,
        LIEGE,
        "liege.toml",
        store=f"state/{gent.cpas_id}/node.sqlite3",
        journal="liege-journal.sqlite3",
    )
    with pytest.raises(ConfigError) as refused:
        start(liege)
    assert refused.value.code == "store.other_node"


def test_two_stores_in_one_folder_no_longer_share_a_journal_silently(
    world: LocalFederation, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    gent = write_config(world, site, GENT, "gent.toml", store="state/gent.sqlite3")
    liege = write_config(world, site, LIEGE, "liege.toml", store="state/liege.sqlite3")
    close(start(gent))
    with pytest.raises(ConfigError) as refused:
        start(liege)
    assert refused.value.code == "journal.other_node"


def test_a_store_from_before_owners_were_recorded_is_claimed_by_the_first_node(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    Store(url).close()
    Store(url, owner="0201234517").close()
    with pytest.raises(ConfigError):
        Store(url, owner="0212345678")


def test_the_refusal_of_a_postgresql_store_shows_no_password() -> None:
    from gateway.ownership import printable

    assert printable("postgresql://gateway:s3cret@db/cpas") == "postgresql://gateway@db/cpas"


def test_a_postgresql_store_and_journal_of_one_node_share_a_database_but_refuse_another_node(
    postgres_schema: str,
) -> None:
    Store(postgres_schema, owner="0201234517").close()
    Journal(postgres_schema, bytes(32), owner="0201234517").close()
    with pytest.raises(ConfigError) as refused:
        Store(postgres_schema, owner="0212345678")
    assert refused.value.code == "store.other_node"
