"""Two nodes' configuration files (Gent on OCMWdata, Liège on FicheSociale) on the test broker.

Fixtures (registered in conftest.py): ``world`` (a small federation) and
``configs`` (the two ``node.toml`` files, by NIS code; their broker topology
is removed afterwards).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GENT, LIEGE

from gateway.broker import (
    Names,
    delete_namespace,
)
from gateway.federation.localnet import LocalFederation, make_local_federation


@pytest.fixture
def world(tmp_path: Path) -> LocalFederation:
    return make_local_federation(tmp_path / "federation", [GENT, LIEGE], small=True)


@pytest.fixture
def configs(world: LocalFederation, amqp_url: str, tmp_path: Path) -> Iterator[dict[str, Path]]:
    names = Names(f"test-{uuid.uuid4().hex[:10]}")
    gent, liege = world.member(GENT), world.member(LIEGE)
    world.node_config(
        gent.cpas_id,
        "ocmwdata",
        {"url": f"sqlite:///{tmp_path}/gent.sqlite3"},
        amqp_url=amqp_url,
        namespace=names.namespace,
    )
    world.node_config(
        liege.cpas_id,
        "fichesociale",
        {"folder": str(tmp_path / "liege")},
        amqp_url=amqp_url,
        namespace=names.namespace,
        policy={"new-application-inquiry": "hold"},
    )
    yield {GENT: gent.folder / "node.toml", LIEGE: liege.folder / "node.toml"}
    delete_namespace(amqp_url, world.members, names=names)
