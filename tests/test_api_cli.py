"""``cpas-gateway api token …`` and ``cpas-gateway run`` serving the API from its configuration."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import GENT, LIEGE

from gateway.api import ApiTokens
from gateway.broker import Names, delete_namespace
from gateway.cli import main
from gateway.config import ApiConfig, NodeConfig
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.model.errors import ConfigError


@pytest.fixture
def config(tmp_path: Path, amqp_url: str) -> Iterator[Path]:
    world: LocalFederation = make_local_federation(tmp_path / "federation", [GENT, LIEGE])
    names = Names(f"api-{uuid.uuid4().hex[:10]}")
    gent = world.member(GENT)
    world.node_config(
        gent.cpas_id,
        "ocmwdata",
        {"url": f"sqlite:///{tmp_path}/gent.sqlite3"},
        amqp_url=amqp_url,
        namespace=names.namespace,
        api={"listen": "127.0.0.1:0"},
    )
    yield gent.folder / "node.toml"
    delete_namespace(amqp_url, world.members, names=names)


def _token(out: str) -> str:
    match = re.search(r"^cpasgw_\S+$", out, re.MULTILINE)
    assert match is not None, out
    return match.group(0)


def test_a_token_is_shown_once_and_kept_only_as_its_hash(config: Path, capsys: object) -> None:
    assert main(["api", "token", "create", "--config", str(config), "--name", "Acme"]) == 0
    token = _token(capsys.readouterr().out)  # type: ignore[attr-defined]
    node = NodeConfig.load(config)
    store = Path(node.store.removeprefix("sqlite:///")).read_bytes()
    assert token.rsplit("_", 1)[1].encode() not in store
    assert ApiTokens(node.store, node.cpas_id).authenticate(token).name == "Acme"


def test_a_token_revoked_by_the_command_is_refused(config: Path, capsys: object) -> None:
    main(["api", "token", "create", "--config", str(config), "--name", "Acme"])
    token = _token(capsys.readouterr().out)  # type: ignore[attr-defined]
    token_id = token.split("_")[2]
    assert main(["api", "token", "revoke", "--config", str(config), token_id]) == 0
    assert main(["api", "token", "list", "--config", str(config)]) == 0
    assert "revoked" in capsys.readouterr().out  # type: ignore[attr-defined]
    node = NodeConfig.load(config)
    with pytest.raises(Exception, match="revoked"):
        ApiTokens(node.store, node.cpas_id).authenticate(token)


def test_run_serves_the_api_its_configuration_asks_for(config: Path, capsys: object) -> None:
    main(
        ["api", "token", "create", "--config", str(config), "--name", "probe", "--scope", "monitor"]
    )
    token = _token(capsys.readouterr().out)  # type: ignore[attr-defined]
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ | {"COLUMNS": "200"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        address = None
        for line in process.stdout:
            found = re.search(r"API on (http://\S+)", line)
            if found:
                address = found.group(1)
                break
        assert address is not None, "the node never said where its API listens"
        health = httpx.get(f"{address}/v1/health", headers={"Authorization": f"Bearer {token}"})
        assert health.json()["adapter"]["name"] == "ocmwdata"
        assert httpx.get(f"{address}/v1/health").status_code == 401
    finally:
        process.terminate()
        process.wait(30)


def test_an_api_reachable_from_the_network_without_tls_is_refused() -> None:
    with pytest.raises(ConfigError, match="reachable from the network"):
        ApiConfig(listen="0.0.0.0:8470").check()


def test_a_command_line_transfer_naming_a_person_as_staff_is_refused(
    config: Path, capsys: object
) -> None:
    status = main(
        ["send", "--config", str(config), "--niss", "85073003328", "--to", "0212344876",
         "--purpose", "continuity-after-move", "--staff", "Marie Dupont", "--wait", "0"]
    )  # fmt: skip
    assert status == 1
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "staff.invalid" in err and "Marie Dupont" not in err
