"""The preflight (``cpas-gateway check``), and ``run`` refusing to start when it fails.

Against a broker of the tests' own (``tls_broker``: its plain listener and
its management API), provisioned from a small directory as a federation
would, so that the node's broker user has exactly the permissions a node
needs -- and then more, to see the preflight notice.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import GENT, LIEGE, NAMUR, TlsBroker

from gateway.broker import Names
from gateway.cli import main
from gateway.database import Database
from gateway.federation.localnet import (
    FEDERATION_KEY,
    LocalFederation,
    cpas_id_of,
    make_local_federation,
)
from gateway.federation.provision import ManagementApi, provision
from gateway.model.directory import sign_directory
from gateway.model.keys import load_signing_key, write_node_keys
from gateway.preflight import Preflight, Status, run_preflight
from gateway.store import SCHEMA as store_schema
from gateway.store import Store


@dataclass
class Provisioned:
    broker: TlsBroker
    federation: LocalFederation
    vhost: str
    names: Names
    node_url: str
    """The AMQP URL ``broker provision`` wrote for Gent's node."""

    @property
    def api(self) -> ManagementApi:
        return ManagementApi(self.broker.node.management_url)

    def config(self, folder: Path, **settings: object) -> Path:
        """Write Gent's node configuration (provisioned mode); return its path."""
        member = self.federation.member(GENT)
        values: dict[str, object] = {
            "amqp_url": self.node_url,
            "namespace": self.names.namespace,
            "broker_mode": "provisioned",
        } | settings
        self.federation.node_config(
            member.cpas_id,
            "ocmwdata",
            {"url": f"sqlite:///{folder}/vendor.sqlite3"},
            **values,  # type: ignore[arg-type]
        )
        return member.folder / "node.toml"


@pytest.fixture(scope="module")
def provisioned(
    tls_broker: TlsBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Provisioned]:
    root = tmp_path_factory.mktemp("preflight")
    federation = make_local_federation(root / "federation", [GENT, LIEGE], small=True)
    vhost = f"preflight-{uuid.uuid4().hex[:8]}"
    names = Names(f"pf{uuid.uuid4().hex[:6]}")
    api = ManagementApi(tls_broker.node.management_url)
    provision(
        federation.directory,
        api=api,
        amqp_admin_url=tls_broker.node.url,
        vhost=vhost,
        names=names,
        credentials_dir=root / "credentials",
    )
    gent = federation.member(GENT).cpas_id
    url = (root / "credentials" / f"{gent}.amqp-url").read_text().strip()
    yield Provisioned(tls_broker, federation, vhost, names, url)
    api.delete_vhost(vhost)


@pytest.fixture(autouse=True)
def _no_gateway_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CPAS_GATEWAY_*`` variables would override the configuration files written here."""
    import os

    for name in [n for n in os.environ if n.startswith("CPAS_GATEWAY_")]:
        monkeypatch.delenv(name)


def _status(result: Preflight, name: str) -> Status:
    return next(c.status for c in result.checks if c.name == name)


def _failure(result: Preflight) -> tuple[str, str, str]:
    """The first check that failed: name, what it found, and the fix it suggests."""
    assert not result.passed
    failed = result.failures[0]
    return failed.name, failed.detail, failed.fix or ""


# ------------------------------------------------------------------ all green


def test_a_correctly_provisioned_node_passes_every_check_with_the_management_api(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    config = provisioned.config(tmp_path)
    result = run_preflight(config, management_url=provisioned.broker.node.management_url)
    assert result.failures == []
    assert result.passed
    assert "exactly what a node needs" in next(
        c.detail for c in result.checks if c.name == "broker permissions"
    )


def test_a_correctly_provisioned_node_passes_every_check_with_amqp_probes(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    result = run_preflight(provisioned.config(tmp_path))
    assert result.failures == []
    assert _status(result, "broker permissions") is Status.OK


def test_check_prints_one_line_per_check_and_exits_0_when_all_pass(
    provisioned: Provisioned, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = provisioned.config(tmp_path)
    assert main(["check", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len([line for line in lines if line.startswith("ok")]) == 9
    assert lines[-1] == "all checks passed."


def test_a_development_broker_is_a_warning_not_a_failure(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    result = run_preflight(provisioned.config(tmp_path, broker_mode="development"))
    assert _status(result, "broker permissions") is Status.WARN
    assert result.passed


# ------------------------------------------------------------------ failures


def test_a_wrong_key_passphrase_fails_the_keys_check(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    write_node_keys(tmp_path / "locked-keys", passphrase=b"the right one")
    config = provisioned.config(
        tmp_path, keys=str(tmp_path / "locked-keys"), key_passphrase="a wrong one"
    )
    name, _detail, fix = _failure(run_preflight(config))
    assert name == "node keys"
    assert "CPAS_GATEWAY_KEY_PASSPHRASE" in fix


def test_an_unreadable_directory_fails_the_directory_check(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    garbage = tmp_path / "directory.xml"
    garbage.write_bytes(b"\x00 this is not a signed directory")
    result = run_preflight(provisioned.config(tmp_path, directory=str(garbage)))
    assert [c.name for c in result.failures] == ["directory"]
    assert _status(result, "this CPAS in the directory") is Status.SKIPPED


def test_a_cpas_missing_from_the_directory_fails(provisioned: Provisioned, tmp_path: Path) -> None:
    config = provisioned.config(tmp_path)
    gent = provisioned.federation.member(GENT).cpas_id
    absent = cpas_id_of(NAMUR)  # not in this small directory
    config.write_text(config.read_text().replace(gent, absent, 1))
    name, detail, _fix = _failure(run_preflight(config))
    assert (name, detail) == ("this CPAS in the directory", f"{absent} is not in the directory.")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("amqp://x:y@127.0.0.1:{free}/", "refuses connections"),
        ("amqp://{user}:wrong-password@127.0.0.1:{port}/{vhost}", "refused the login"),
    ],
    ids=["unreachable", "wrong-password"],
)
def test_a_broker_that_cannot_be_reached_or_refuses_the_login_fails(
    provisioned: Provisioned, tmp_path: Path, url: str, words: str
) -> None:
    from brokers import free_port

    node = provisioned.broker.node
    address = url.format(
        free=free_port(),
        user=provisioned.names.broker_user(provisioned.federation.member(GENT).cpas_id),
        port=node.spec.amqp_port,
        vhost=provisioned.vhost,
    )
    result = run_preflight(provisioned.config(tmp_path, amqp_url=address))
    name, detail, _fix = _failure(result)
    assert name == "broker"
    assert words in detail
    assert _status(result, "broker permissions") is Status.SKIPPED


def test_a_broker_user_with_more_permissions_than_it_needs_fails(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    gent = provisioned.federation.member(GENT).cpas_id
    user = provisioned.names.broker_user(gent)
    provisioned.api.put_permissions(provisioned.vhost, user, ".*", ".*", ".*")
    try:
        config = provisioned.config(tmp_path)
        by_api = run_preflight(config, management_url=provisioned.broker.node.management_url)
        by_amqp = run_preflight(config)
    finally:
        provision(
            provisioned.federation.directory,
            api=provisioned.api,
            amqp_admin_url=provisioned.broker.node.url,
            vhost=provisioned.vhost,
            names=provisioned.names,
        )
    assert _failure(by_api)[0] == "broker permissions"
    assert "configure is '.*'" in _failure(by_api)[1]
    assert _failure(by_amqp)[0] == "broker permissions"
    assert "more than a node needs" in _failure(by_amqp)[1]


def test_a_broker_user_without_its_read_permission_fails(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    gent = provisioned.federation.member(GENT).cpas_id
    user = provisioned.names.broker_user(gent)
    provisioned.api.put_permissions(provisioned.vhost, user, "^$", ".*", "^$")
    try:
        result = run_preflight(provisioned.config(tmp_path))
    finally:
        provision(
            provisioned.federation.directory,
            api=provisioned.api,
            amqp_admin_url=provisioned.broker.node.url,
            vhost=provisioned.vhost,
            names=provisioned.names,
        )
    name, detail, _fix = _failure(result)
    assert name == "broker permissions"
    assert "may not read" in detail


def test_an_adapter_that_is_not_installed_fails(provisioned: Provisioned, tmp_path: Path) -> None:
    config = provisioned.config(tmp_path)
    config.write_text(config.read_text().replace('"name" = "ocmwdata"', '"name" = "nosuchvendor"'))
    name, detail, _fix = _failure(run_preflight(config))
    assert name == "adapter"
    assert "nosuchvendor" in detail


def test_an_adapter_whose_vendor_system_does_not_answer_fails(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    config = provisioned.config(tmp_path)
    vendor = f"sqlite:///{tmp_path}/vendor.sqlite3"
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    config.write_text(config.read_text().replace(vendor, unreachable))
    name, detail, _fix = _failure(run_preflight(config))
    assert name == "adapter"
    assert "does not answer" in detail


def test_a_store_that_cannot_be_written_fails(provisioned: Provisioned, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    result = run_preflight(provisioned.config(tmp_path, store=str(blocker / "node.sqlite3")))
    assert [c.name for c in result.failures] == ["store migrated", "store and journal"]


def test_a_store_of_an_earlier_release_is_migrated_and_the_check_says_so(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path}/state/node.sqlite3"
    Database(store_url, schema=store_schema.upto(1), what="store").close()
    result = run_preflight(provisioned.config(tmp_path, store=store_url))
    migrated = next(c for c in result.checks if c.name == "store migrated")
    assert migrated.status is Status.OK
    assert f"store schema {store_schema.latest} (migrated from 1)" in migrated.detail
    assert result.passed


def test_a_store_written_by_a_newer_release_fails_the_migration_check(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path}/state/node.sqlite3"
    Database(store_url, schema=store_schema, what="store").close()
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "node.sqlite3")) as db, db:
        db.execute("UPDATE schema_version SET version = 9 WHERE component = 'store'")
    name, detail, fix = _failure(run_preflight(provisioned.config(tmp_path, store=store_url)))
    assert name == "store migrated"
    assert "schema version 9" in detail
    assert "newer" in fix or "release" in fix


def test_a_configuration_that_does_not_load_fails_first(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('cpas_id = "0201234517"\n')
    result = run_preflight(config)
    assert result.checks[0].status is Status.FAIL
    assert {c.status for c in result.checks[1:]} == {Status.SKIPPED}


def test_run_refuses_to_start_when_a_check_fails(
    provisioned: Provisioned, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = provisioned.config(tmp_path)
    config.write_text(config.read_text().replace('"name" = "ocmwdata"', '"name" = "nosuchvendor"'))
    assert main(["run", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert "FAIL adapter" in captured.out
    assert "preflight.failed" in captured.err
    assert "running" not in captured.out


def test_a_broker_tls_key_with_a_wrong_passphrase_fails_the_tls_check(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    pki = provisioned.broker.pki
    locked = pki.ca.issue(tmp_path, "locked", client=True, passphrase="right")
    config = provisioned.config(
        tmp_path,
        amqp_url=provisioned.broker.url,
        broker_tls={
            "ca_file": str(pki.ca_file),
            "cert_file": str(locked.cert),
            "key_file": str(locked.key),
            "key_passphrase": "wrong",
        },
    )
    name, detail, _fix = _failure(run_preflight(config))
    assert name == "broker TLS"
    assert "passphrase is wrong" in detail


def test_the_directory_check_reports_the_edition_the_node_received_live(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    federation = provisioned.federation
    newer = federation.directory.model_copy(update={"serial": federation.directory.serial + 1})
    signed = sign_directory(newer, load_signing_key(federation.root / FEDERATION_KEY))
    store_url = f"sqlite:///{tmp_path}/state/node.sqlite3"
    store = Store(store_url)
    store.keep_directory_edition(newer.serial, signed)
    store.close()

    result = run_preflight(provisioned.config(tmp_path, store=store_url))

    directory = next(c for c in result.checks if c.name == "directory")
    assert directory.status is Status.OK
    assert directory.detail.startswith(f"edition {newer.serial} ")
