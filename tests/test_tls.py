"""TLS and mutual TLS to the broker, against a RabbitMQ node of the tests' own.

The node (the ``tls_broker`` fixture) listens for TLS with ``verify_peer`` and
``fail_if_no_peer_cert``:
it accepts only clients that present a certificate signed by its CA. Every
certificate is made here, with ``cryptography`` (:mod:`gateway.federation.local_pki`).
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import GENT, LIEGE, NodeFactory, TlsBroker

from gateway.broker import BrokerTLS, Names, connect
from gateway.config import NodeConfig
from gateway.federation.local_pki import CertificateAuthority
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.federation.provision import ManagementApi, provision
from gateway.model.envelope import Purpose
from gateway.model.errors import BrokerError, ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy"


def _other_ca() -> CertificateAuthority:
    return CertificateAuthority("Not the federation's CA")


# ------------------------------------------------------------------ accepted


def test_a_node_with_the_right_certificate_exchanges_dossiers(
    tls_broker: TlsBroker, make_node: NodeFactory
) -> None:
    settings = {"amqp_urls": [tls_broker.url], "broker_tls": tls_broker.good}
    sender = make_node(GENT, "ocmwdata", **settings)
    receiver = make_node(LIEGE, "fichesociale", **settings)
    numbers = sender.adapter.seed(3, seed=41)  # type: ignore[attr-defined]
    sent = [
        sender.send_transfer(n, receiver.cpas_id, Purpose.CONTINUITY_AFTER_MOVE) for n in numbers
    ]
    outcomes = sender.wait_for_outcomes([s.message_id for s in sent], timeout=30)
    assert [outcomes[s.message_id].outcome for s in sent] == ["imported"] * 3
    assert all(receiver.adapter.export_dossier(n) is not None for n in numbers)


def test_a_passphrase_protected_client_key_opens_with_its_passphrase(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    files = tls_broker.pki.ca.issue(tmp_path, "locked", client=True, passphrase="s3same")
    tls = replace(
        tls_broker.good, cert_file=files.cert, key_file=files.key, key_passphrase="s3same"
    )
    connect([tls_broker.url], tls).close()


@pytest.mark.parametrize(
    ("passphrase", "reason"), [("wrong", "passphrase is wrong"), (None, "none")]
)
def test_a_protected_client_key_without_its_passphrase_is_a_configuration_error(
    tls_broker: TlsBroker, tmp_path: Path, passphrase: str | None, reason: str
) -> None:
    files = tls_broker.pki.ca.issue(tmp_path, "locked", client=True, passphrase="s3same")
    tls = replace(
        tls_broker.good, cert_file=files.cert, key_file=files.key, key_passphrase=passphrase
    )
    with pytest.raises(ConfigError, match=reason):
        connect([tls_broker.url], tls)


def test_the_passphrase_never_appears_in_the_settings_repr(tls_broker: TlsBroker) -> None:
    assert "s3same" not in repr(replace(tls_broker.good, key_passphrase="s3same"))


# ------------------------------------------------------------------ refused


def _expired(tls_broker: TlsBroker, folder: Path) -> BrokerTLS:
    now = dt.datetime.now(dt.UTC)
    files = tls_broker.pki.ca.issue(
        folder,
        "expired",
        client=True,
        valid_from=now - dt.timedelta(days=30),
        valid_until=now - dt.timedelta(days=1),
    )
    return replace(tls_broker.good, cert_file=files.cert, key_file=files.key)


def _foreign(tls_broker: TlsBroker, folder: Path) -> BrokerTLS:
    files = _other_ca().issue(folder, "foreign", client=True)
    return replace(tls_broker.good, cert_file=files.cert, key_file=files.key)


def _wrong_ca(tls_broker: TlsBroker, folder: Path) -> BrokerTLS:
    return replace(tls_broker.good, ca_file=_other_ca().write_ca(folder / "other.pem"))


def _no_certificate(tls_broker: TlsBroker, folder: Path) -> BrokerTLS:
    return BrokerTLS(ca_file=tls_broker.pki.ca_file)


REFUSALS = {
    "wrong-ca": (_wrong_ca, "broker.tls_untrusted", "does not trust"),
    "expired-client-certificate": (_expired, "broker.tls_client_certificate", "expired"),
    "foreign-client-certificate": (
        _foreign,
        "broker.tls_client_certificate",
        "not signed by a CA the broker trusts",
    ),
    "no-client-certificate": (
        _no_certificate,
        "broker.tls_client_certificate",
        "requires a client certificate",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_node_with_a_bad_certificate_setup_is_refused_with_a_clear_reason(
    tls_broker: TlsBroker, make_node: NodeFactory, tmp_path: Path, case: str
) -> None:
    make_tls, code, words = REFUSALS[case]
    node = make_node(
        GENT,
        "ocmwdata",
        start=False,
        amqp_urls=[tls_broker.url],
        broker_tls=make_tls(tls_broker, tmp_path),
    )
    with pytest.raises(BrokerError) as refused:
        node.start(wait=5)
    assert refused.value.code == code
    assert words in refused.value.message


def test_plain_amqp_on_the_tls_port_is_refused_with_a_clear_reason(tls_broker: TlsBroker) -> None:
    plain = tls_broker.url.replace("amqps://", "amqp://")
    with pytest.raises(BrokerError) as refused:
        connect([plain], timeout=5)
    assert refused.value.code == "broker.handshake"
    assert "write amqps://" in refused.value.message


def test_tls_on_a_plain_port_is_refused_with_a_clear_reason(tls_broker: TlsBroker) -> None:
    tls_on_plain = tls_broker.node.url.replace("amqp://", "amqps://")
    with pytest.raises(BrokerError) as refused:
        connect([tls_on_plain], tls_broker.good, timeout=5)
    assert refused.value.code == "broker.tls_handshake"


def test_a_broker_certificate_for_another_name_is_refused(tls_broker: TlsBroker) -> None:
    tls = replace(tls_broker.good, server_name="mq.elsewhere.example")
    with pytest.raises(BrokerError) as refused:
        connect([tls_broker.url], tls, timeout=5)
    assert refused.value.code == "broker.tls_hostname"


def test_tls_settings_with_a_plain_address_are_a_configuration_error(
    tls_broker: TlsBroker,
) -> None:
    with pytest.raises(ConfigError, match="amqps://"):
        connect([tls_broker.node.url], tls_broker.good)


def test_a_refused_certificate_is_one_line_without_a_traceback(
    tls_broker: TlsBroker, federation: LocalFederation, tmp_path: Path
) -> None:
    expired = _expired(tls_broker, tmp_path)
    member = federation.member(GENT)
    config = federation.node_config(
        member.cpas_id,
        "ocmwdata",
        {"url": f"sqlite:///{tmp_path}/vendor.sqlite3"},
        amqp_url=tls_broker.url,
        namespace="tls-cli",
        broker_tls={
            "ca_file": str(expired.ca_file),
            "cert_file": str(expired.cert_file),
            "key_file": str(expired.key_file),
        },
    )
    assert config.tls is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPAS_GATEWAY_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "dead-letters",
            "list",
            "--config",
            str(member.folder / "node.toml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "expired" in result.stderr


# ------------------------------------------------------------------ provisioning


def test_provisioning_works_over_https_and_amqps(tls_broker: TlsBroker, tmp_path: Path) -> None:
    federation = make_local_federation(tmp_path / "fed", [GENT], small=True)
    report = provision(
        federation.directory,
        api=ManagementApi(tls_broker.node.management_tls_url, ca_file=tls_broker.pki.ca_file),
        amqp_admin_url=tls_broker.url,
        vhost="tls-provisioned",
        names=Names("tlsp"),
        tls=tls_broker.good,
        credentials_dir=tmp_path / "credentials",
    )
    assert report.created_users
    url = (tmp_path / "credentials" / f"{federation.member(GENT).cpas_id}.amqp-url").read_text()
    assert url.startswith("amqps://")


def test_the_management_api_with_an_untrusted_certificate_is_refused(
    tls_broker: TlsBroker,
) -> None:
    api = ManagementApi(tls_broker.node.management_tls_url)
    with pytest.raises(BrokerError) as refused:
        api.users()
    assert refused.value.code == "broker.tls_untrusted"
    assert "--ca-file" in refused.value.message


# ------------------------------------------------------------------ examples


def test_the_deployed_node_example_loads_with_its_tls_and_log_settings() -> None:
    config = NodeConfig.load(EXAMPLES / "node.toml")
    assert config.tls is not None and config.tls.cert_file is not None
    assert config.log_format == "json"


def test_the_broker_tls_example_holds_every_setting_the_tests_broker_runs_with(
    tls_broker: TlsBroker,
) -> None:
    listener = tls_broker.node.tls
    assert listener is not None
    tested = {line.split(" = ")[0] for line in listener.config_lines(management=True)}
    example = {
        line.split(" = ")[0]
        for line in (EXAMPLES / "rabbitmq" / "tls.conf").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert tested - {"management.ssl.ip"} <= example


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_the_minimum_tls_version_is_the_floor_of_every_connection(
    tls_broker: TlsBroker, version: str
) -> None:
    tls = replace(tls_broker.good, min_version=version)  # type: ignore[arg-type]
    assert tls.ssl_context().minimum_version is ssl.TLSVersion[version.replace(".", "_")]
    connect([tls_broker.url], tls).close()


def test_demo_tls_without_rabbitmq_installed_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPAS_GATEWAY_")}
    env["CPAS_RABBITMQ_SCRIPTS"] = str(tmp_path / "no-rabbitmq-here")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--tls", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env | {"COLUMNS": "500"},
        timeout=120,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "RabbitMQ is not installed" in result.stderr
