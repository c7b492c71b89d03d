"""The directory distributed live, on a provisioned broker.

The federation publishes signed editions on the directory exchange; running
nodes verify each one, apply a newer one without a restart and use it from
their next message on, and refuse (journaled, still running) an unsigned,
forged, older or malformed one. Only the federation's broker user may
publish there.
"""

from __future__ import annotations

import os
import random
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pika
import pytest
from conftest import GENT, LIEGE, NAMUR, NodeFactory
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pika.exceptions import ChannelClosedByBroker

from gateway.broker import Names
from gateway.cli import main
from gateway.config import NodeConfig
from gateway.directory_feed import DirectoryPoll, current_edition, publish_edition
from gateway.federation.local_pki import make_local_pki
from gateway.federation.localnet import FEDERATION_KEY, LocalFederation, make_local_federation
from gateway.federation.provision import ManagementApi, provision, remove_users
from gateway.journal import Event, JournalSettings
from gateway.model import keys
from gateway.model.directory import InstitutionStatus, sign_directory
from gateway.model.envelope import Purpose
from gateway.model.errors import BrokerError, ConfigError, DestinationRefused, DirectoryError
from gateway.node import Node
from gateway.store import Store

PURPOSE = Purpose.CONTINUITY_AFTER_MOVE
WAIT = 30.0
"""Seconds a condition may take before the test gives up (never a measure of speed)."""


@dataclass
class Federation:
    """A federation with its own provisioned virtual host on the broker."""

    local: LocalFederation
    names: Names
    credentials: Path

    def url_of(self, who: str) -> str:
        return (self.credentials / f"{who}.amqp-url").read_text().strip()

    @property
    def url(self) -> str:
        """The federation's own broker login (the only one that may publish editions)."""
        return self.url_of("federation")

    @property
    def anchor(self) -> Ed25519PublicKey:
        return keys.load_trust_anchor(self.local.trust_anchor)

    def publish_raw(self, body: bytes, url: str | None = None) -> None:
        """Put bytes on the directory exchange as the federation (or ``url``'s user) would."""
        params = pika.URLParameters(url or self.url)
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(
                self.names.directory_exchange,
                "",
                body,
                pika.BasicProperties(delivery_mode=2, user_id=params.credentials.username),
                mandatory=True,
            )
        finally:
            if connection.is_open:
                connection.close()


@pytest.fixture
def live(
    management_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("live")
    local = make_local_federation(root / "federation", [GENT, LIEGE, NAMUR], small=True)
    api = ManagementApi(management_url)
    tag = uuid.uuid4().hex[:8]
    vhost, names = f"ops-live-{tag}", Names(f"opslive{tag}")
    provision(
        local.directory,
        api=api,
        amqp_admin_url=amqp_url,
        vhost=vhost,
        names=names,
        credentials_dir=root / "credentials",
    )
    yield Federation(local, names, root / "credentials")
    api.delete_vhost(vhost)
    remove_users(api, names)


@pytest.fixture
def following(make_node: NodeFactory, live: Federation) -> NodeFactory:
    """A node on the provisioned broker that follows the federation's editions."""

    def factory(nis_code: str, adapter: str, **kwargs: object) -> Node:
        member = live.local.member(nis_code)
        return make_node(
            nis_code,
            adapter,
            amqp_urls=[live.url_of(member.cpas_id)],
            names=live.names,
            provisioned=True,
            directory=live.local.directory,
            keys=member.node_keys,
            trust_anchor=live.anchor,
            **kwargs,
        )

    return factory


def _merge(federation: Federation, nis_code: str, into: str) -> bytes:
    """The next edition, in which ``nis_code``'s CPAS merged into ``into``'s; signed bytes.

    The merged CPAS keeps its signing key listed, so that the receipts for the
    dossiers it still receives verify; it has no encryption key any more.
    """
    local = federation.local
    merged = local.directory.get(local.member(nis_code).cpas_id)
    assert merged is not None
    local.reissue(
        merged.model_copy(
            update={
                "status": InstitutionStatus.MERGED,
                "merged_into": local.member(into).cpas_id,
                "encryption_keys": [],
                "contact": None,
            }
        )
    )
    return local.directory_path.read_bytes()


def _events(node: Node, event: Event) -> list[tuple[str | None, str | None]]:
    assert node.journal is not None
    return [(e.outcome, e.code) for e in node.journal.tail(10_000) if e.event == event.value]


# ------------------------------------------------------------------ a merger


def test_a_merger_published_while_dossiers_flow_refuses_the_merged_cpas_from_the_next_message(
    following: NodeFactory, live: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    gent, liege = following(GENT, "ocmwdata"), following(LIEGE, "fichesociale")
    numbers = gent.adapter.seed(30, seed=51)  # type: ignore[attr-defined]
    sent, refused = [], []
    before = [gent.send_transfer(n, liege.cpas_id, PURPOSE) for n in numbers[:10]]
    sent += before
    signed = _merge(live, LIEGE, into=NAMUR)

    args = ["directory", "publish", str(live.local.directory_path)]
    args += ["--trust", str(live.local.trust_anchor), "--amqp-url", live.url]
    assert main([*args, "--namespace", live.names.namespace]) == 0
    assert "published edition 2" in capsys.readouterr().out
    # Dossiers keep flowing while the edition travels: these may go either way.
    for number in numbers[10:15]:
        try:
            sent.append(gent.send_transfer(number, liege.cpas_id, PURPOSE))
        except DestinationRefused as exc:
            refused.append(exc.code)
    assert gent.directory_feed is not None and gent.directory_feed.wait_for(2, WAIT)
    # From the next message on, every dossier for the merged CPAS is refused.
    for number in numbers[15:]:
        with pytest.raises(DestinationRefused) as refusal:
            gent.send_transfer(number, liege.cpas_id, PURPOSE)
        refused.append(refusal.value.code)

    assert len(sent) + len(refused) == len(numbers)
    assert set(refused) == {"directory.merged"}
    outcomes = gent.wait_for_outcomes([s.message_id for s in sent], WAIT)
    assert {mid: e.outcome for mid, e in outcomes.items()} == {
        s.message_id: "imported" for s in sent
    }
    assert liege.store.received_count("imported") == len(sent)
    assert [c for _o, c in _events(gent, Event.REFUSED_OUTGOING)] == ["directory.merged"] * len(
        refused
    )
    assert _events(gent, Event.DIRECTORY_APPLIED) == [("edition 2 (was 1)", None)]
    assert liege.directory_feed is not None and liege.directory_feed.wait_for(2, WAIT)
    assert gent.store.directory_edition() == signed


def test_a_restarted_node_keeps_the_edition_received_live_though_its_file_is_older(
    following: NodeFactory, live: Federation, tmp_path: Path
) -> None:
    gent = following(GENT, "ocmwdata")
    first_edition = tmp_path / "edition-1.xml"
    first_edition.write_bytes(live.local.directory_path.read_bytes())
    publish_edition(
        _merge(live, LIEGE, into=NAMUR),
        live.anchor,
        amqp_urls=[live.url],
        names=live.names,
    )
    assert gent.directory_feed is not None and gent.directory_feed.wait_for(2, WAIT)
    gent.stop()

    store = Store(gent.store.url)
    try:
        edition = current_edition(store, first_edition, live.local.trust_anchor)
    finally:
        store.close()

    assert edition.serial == 2
    assert not edition.may_receive(live.local.member(LIEGE).cpas_id).allowed


def test_a_file_older_than_the_edition_in_use_cannot_take_a_node_back(
    following: NodeFactory, live: Federation, tmp_path: Path
) -> None:
    gent = following(GENT, "ocmwdata")
    first_edition = tmp_path / "edition-1.xml"
    first_edition.write_bytes(live.local.directory_path.read_bytes())
    gent.directory_feed.receive(_merge(live, LIEGE, into=NAMUR))  # type: ignore[union-attr]
    gent.stop()
    store = Store(gent.store.url)
    try:
        store._db.query("SELECT 1")  # open
        with store._db.transaction() as cur:  # the kept edition lost (a restore gone wrong)
            cur.execute("DELETE FROM directory_edition")
        with pytest.raises(DirectoryError) as refused:
            current_edition(store, first_edition, live.local.trust_anchor)
    finally:
        store.close()
    assert refused.value.code == "directory.rollback"


# ---------------------------------------------------- editions a node refuses


@pytest.mark.parametrize(
    ("forge", "code"),
    [
        ("unsigned", "directory.unsigned"),
        ("another key", "directory.signature"),
        ("altered", "directory.signature"),
        ("not xml", "xml.malformed"),
        ("a doctype", "xml.doctype"),
    ],
)
def test_an_edition_not_signed_by_the_federation_is_refused_journaled_and_the_node_runs_on(
    following: NodeFactory, live: Federation, forge: str, code: str
) -> None:
    gent, liege = following(GENT, "ocmwdata"), following(LIEGE, "fichesociale")
    local = live.local
    edition = local.directory.model_copy(update={"serial": local.directory.serial + 1})
    body = {
        "unsigned": lambda: edition.to_xml(),
        "another key": lambda: sign_directory(edition, keys.generate_signing_key()),
        "altered": lambda: _altered(sign_directory(edition, _federation_key(local))),
        "not xml": lambda: b"not a directory",
        "a doctype": lambda: b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>',
    }[forge]()

    live.publish_raw(body)

    assert gent.directory_feed is not None and gent.directory_feed.wait_for_refusals(1, WAIT)
    assert gent.directory_feed.refused == [code]
    assert gent.directory.serial == 1
    assert _events(gent, Event.DIRECTORY_REFUSED) == [("refused", code)]
    assert gent.health().ok
    (number,) = gent.adapter.seed(1, seed=52)  # type: ignore[attr-defined]
    sent = gent.send_transfer(number, liege.cpas_id, PURPOSE)
    assert gent.wait_for_outcomes([sent.message_id], WAIT)[sent.message_id].outcome == "imported"


def test_an_older_edition_replayed_on_the_exchange_is_refused_as_a_rollback(
    following: NodeFactory, live: Federation
) -> None:
    gent = following(GENT, "ocmwdata")
    old = live.local.directory_path.read_bytes()
    newer = _merge(live, LIEGE, into=NAMUR)
    live.publish_raw(newer)
    assert gent.directory_feed is not None and gent.directory_feed.wait_for(2, WAIT)

    live.publish_raw(old)  # genuinely signed, but edition 1

    assert gent.directory_feed.wait_for_refusals(1, WAIT)
    assert gent.directory_feed.refused == ["directory.rollback"]
    assert gent.directory.serial == 2
    assert _events(gent, Event.DIRECTORY_REFUSED) == [("refused", "directory.rollback")]
    assert gent.health().ok


def test_the_same_edition_received_again_changes_nothing(
    following: NodeFactory, live: Federation
) -> None:
    gent = following(GENT, "ocmwdata")
    assert gent.directory_feed is not None
    current = live.local.directory_path.read_bytes()

    outcome = gent.directory_feed.receive(current)

    assert (outcome.applied, outcome.code) == (False, None)
    assert _events(gent, Event.DIRECTORY_APPLIED) == []
    assert _events(gent, Event.DIRECTORY_REFUSED) == []


# ------------------------------------------------ who may publish an edition


def test_a_cpas_broker_user_cannot_publish_an_edition(live: Federation) -> None:
    gent_url = live.url_of(live.local.member(GENT).cpas_id)
    signed = _merge(live, LIEGE, into=NAMUR)

    with pytest.raises(ChannelClosedByBroker) as closed:
        live.publish_raw(signed, url=gent_url)
    assert closed.value.reply_code == 403  # ACCESS_REFUSED

    with pytest.raises(BrokerError) as refused:
        publish_edition(signed, live.anchor, amqp_urls=[gent_url], names=live.names)
    assert refused.value.code == "broker.access_refused"


def test_the_federation_user_cannot_read_a_node_queue_of_editions(live: Federation) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(live.url))
    try:
        queue = live.names.directory_feed(live.local.member(GENT).cpas_id)
        with pytest.raises(ChannelClosedByBroker) as closed:
            connection.channel().basic_get(queue)
    finally:
        if connection.is_open:
            connection.close()
    assert closed.value.reply_code == 403


def test_publish_refuses_an_edition_the_nodes_would_refuse_before_it_reaches_the_broker(
    live: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unsigned = tmp_path / "unsigned.xml"
    unsigned.write_bytes(live.local.directory.to_xml())

    code = main(
        [
            "directory",
            "publish",
            str(unsigned),
            "--trust",
            str(live.local.trust_anchor),
            "--amqp-url",
            live.url,
            "--namespace",
            live.names.namespace,
        ]
    )

    assert code == 1
    assert "[directory.unsigned]" in capsys.readouterr().err


# ------------------------------------------------------------------ helpers


def _federation_key(local: LocalFederation) -> Ed25519PrivateKey:
    return keys.load_signing_key(local.root / FEDERATION_KEY)


def _altered(signed: bytes) -> bytes:
    """The signed edition with one character of an institution's name changed."""
    marker = b"OCMW Gent"
    assert marker in signed
    return signed.replace(marker, b"OCMW Gant", 1)


# ------------------------------------------------------------ cpas-gateway run


def test_cpas_gateway_run_applies_an_edition_published_while_it_runs_without_a_restart(
    live: Federation, tmp_path: Path
) -> None:
    member = live.local.member(GENT)
    config = live.local.node_config(
        member.cpas_id,
        "ocmwdata",
        {"url": f"sqlite:///{tmp_path}/vendor.sqlite3"},
        amqp_url=live.url_of(member.cpas_id),
        namespace=live.names.namespace,
        broker_mode="provisioned",
    )
    log = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPAS_GATEWAY_")}
    env["COLUMNS"] = "500"
    cli = str(Path(sys.executable).with_name("cpas-gateway"))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [cli, "run", "--config", str(member.folder / "node.toml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait(lambda: " running: " in log.read_text() or process.poll() is not None)
        assert process.poll() is None, log.read_text()
        assert "directory edition 1 (new editions from" in log.read_text()

        publish_edition(
            _merge(live, LIEGE, into=NAMUR), live.anchor, amqp_urls=[live.url], names=live.names
        )

        _wait(lambda: "directory-applied" in _journal_events(config))
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert process.returncode == 0, log.read_text()
    store = Store(config.store)
    try:
        assert current_edition(store, config.directory, config.trust_anchor).serial == 2
    finally:
        store.close()


def _journal_events(config: NodeConfig) -> list[str]:
    journal = JournalSettings.from_config(config).open(create_secret=False)
    try:
        return [entry.event for entry in journal.tail(100)]
    finally:
        journal.close()


def _wait(condition: Callable[[], bool]) -> None:
    """Wait for a condition the node brings about (the test gives up after WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come about"
        time.sleep(0.1)


# ------------------------------------------------- the edition served over HTTPS


@dataclass
class Served:
    """What the federation's HTTPS address serves right now."""

    url: str
    ca_file: Path
    content: bytes = b""


@pytest.fixture
def https_directory(tmp_path: Path) -> Iterator[Served]:
    """An HTTPS server of the test's own (certificate made here) serving one document."""
    pki = make_local_pki(tmp_path / "pki")
    served = Served("", pki.ca_file)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.content
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = _server_on_a_free_port(Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"https://localhost:{server.server_address[1]}/directory.xml"
    yield served
    server.shutdown()
    server.server_close()


def _server_on_a_free_port(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    for port in random.sample(range(27000, 28000), 50):  # this branch's range
        try:
            return ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError:
            continue
    raise AssertionError("no free port in 27000-27999")


def test_a_node_polling_the_https_address_applies_a_newer_edition(
    following: NodeFactory, live: Federation, https_directory: Served
) -> None:
    https_directory.content = live.local.directory_path.read_bytes()
    poll = DirectoryPoll(https_directory.url, 0.1, https_directory.ca_file)
    gent = following(GENT, "ocmwdata", directory_poll=poll)
    assert gent.directory_feed is not None and gent.directory_feed.wait_for_polls(1, WAIT)
    assert gent.directory.serial == 1

    https_directory.content = _merge(live, LIEGE, into=NAMUR)

    assert gent.directory_feed.wait_for(2, WAIT)
    assert _events(gent, Event.DIRECTORY_APPLIED) == [("edition 2 (was 1)", None)]
    assert gent.directory_feed.poll_errors == []


def test_a_forged_edition_served_over_https_is_refused_once_however_often_it_is_polled(
    following: NodeFactory, live: Federation, https_directory: Served
) -> None:
    edition = live.local.directory.model_copy(update={"serial": 9})
    https_directory.content = sign_directory(edition, Ed25519PrivateKey.generate())
    poll = DirectoryPoll(https_directory.url, 0.1, https_directory.ca_file)
    gent = following(GENT, "ocmwdata", directory_poll=poll)
    feed = gent.directory_feed
    assert feed is not None and feed.wait_for_refusals(1, WAIT)

    assert feed.wait_for_polls(feed.polls + 3, WAIT)

    assert feed.refused == ["directory.signature"]
    assert _events(gent, Event.DIRECTORY_REFUSED) == [("refused", "directory.signature")]
    assert gent.directory.serial == 1 and gent.health().ok


def test_an_https_address_whose_certificate_is_not_trusted_is_not_used(
    following: NodeFactory, live: Federation, https_directory: Served
) -> None:
    gent = following(GENT, "ocmwdata", directory_poll=DirectoryPoll(https_directory.url, 0.1))
    https_directory.content = _merge(live, LIEGE, into=NAMUR)
    assert gent.directory_feed is not None and gent.directory_feed.wait_for_polls(2, WAIT)

    assert set(gent.directory_feed.poll_errors) == {"directory.fetch_untrusted"}
    assert gent.directory.serial == 1
    assert gent.health().ok


def test_a_directory_address_that_is_not_https_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        DirectoryPoll("http://federation.example/directory.xml")
    assert refused.value.code == "config.directory_url"
