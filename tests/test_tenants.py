"""Many CPAS on one node: kept apart, failing apart, configured without mistakes.

Three CPAS (Gent, Liège, Namur) are tenants of one process; Antwerpen runs a
node of its own and sends to them through the real broker. Each tenant keeps
its vendor data in an adapter of its own (the in-memory test adapter), so the
tests can look at exactly what each vendor system received.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest
from conftest import GENT, LIEGE, NAMUR
from helpers.ci import unavailable
from memory_adapter import MemoryAdapter, MemoryPlugin
from postgres_server import PrivatePostgres, postgres_bin

from gateway.adapters import load_adapters
from gateway.broker import Names, delete_namespace
from gateway.cli import main
from gateway.config import NodeConfig
from gateway.dead_letters import list_dead_letters
from gateway.federation.localnet import LocalCpas, LocalFederation, make_local_federation
from gateway.hosting import (
    PER_CPAS_VARIABLES,
    Host,
    SharedDirectories,
    load_tenants,
    tenant_files,
)
from gateway.model.envelope import Purpose
from gateway.model.errors import ConfigError, DirectoryError
from gateway.node import Node, build_node
from gateway.preflight import run_preflight

ANTWERPEN = "11002"
"""Runs a node of its own, outside the hosted process: it sends to the tenants."""
HOSTED = (GENT, LIEGE, NAMUR)
PURPOSE = Purpose.CONTINUITY_AFTER_MOVE
REPOSITORY = Path(__file__).resolve().parent.parent


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _wait_for_output(
    run: subprocess.Popen[str], lines: list[str], needles: list[str], timeout: float = 120.0
) -> None:
    """Until the running command has printed every needle; fail with what it printed when it
    ends first or takes longer (then it is stopped)."""
    deadline = time.monotonic() + timeout
    while not all(needle in "".join(lines) for needle in needles):
        if run.poll() is not None or time.monotonic() > deadline:
            if run.poll() is None:
                run.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run.wait(30)
            time.sleep(0.5)  # the reader takes the last lines
            pytest.fail(f"exit {run.poll()}; output: {''.join(lines)[-4000:]}", pytrace=False)
        time.sleep(0.05)


def _toml(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value).lower()


def write_tenant(
    folder: Path,
    world: LocalFederation,
    member: LocalCpas,
    *,
    amqp_url: str,
    namespace: str,
    adapter: str = "memory",
    options: dict[str, str] | None = None,
    **settings: object,
) -> Path:
    """One CPAS's node file in ``folder`` (as a hosting provider writes it): no ``store``,
    so its state goes to ``state/<cpas_id>/`` beside the file."""
    lines = [
        f"cpas_id = {_toml(member.cpas_id)}",
        f"keys = {_toml(str(member.folder / 'keys'))}",
        f"directory = {_toml(str(world.directory_path))}",
        f"trust_anchor = {_toml(str(world.trust_anchor))}",
        f"amqp_url = {_toml(amqp_url)}",
        f"namespace = {_toml(namespace)}",
        *(f"{key} = {_toml(value)}" for key, value in settings.items()),
        "",
        "[adapter]",
        f"name = {_toml(adapter)}",
        "[adapter.options]",
        *(f"{key} = {_toml(value)}" for key, value in (options or {}).items()),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{member.nis_code}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_cpas_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's exported CPAS_GATEWAY_AMQP_URL would be every tenant's: see
    test_a_broker_address_in_the_environment_of_several_tenants_is_refused."""
    for name in PER_CPAS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> LocalFederation:
    return make_local_federation(
        tmp_path_factory.mktemp("federation"), [*HOSTED, ANTWERPEN], small=True
    )


# ------------------------------------------------------------ configuration


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "tenants"


def _dev(folder: Path, world: LocalFederation, nis: str, **settings: object) -> Path:
    return write_tenant(
        folder,
        world,
        world.member(nis),
        amqp_url="amqp://guest:guest@localhost:5672/",
        namespace="tenants-config",
        **settings,
    )


def test_each_file_of_a_tenants_folder_is_one_cpas(world: LocalFederation, folder: Path) -> None:
    for nis in HOSTED:
        _dev(folder, world, nis)
    (folder / "README.txt").write_text("not a configuration")
    tenants = load_tenants(tenant_files(folder))
    assert [t.cpas_id for t in tenants] == sorted(world.member(n).cpas_id for n in HOSTED)
    stores = {t.config.store for t in tenants}
    assert len(stores) == 3 and all(f"state/{t.cpas_id}/" in t.config.store for t in tenants)


def test_two_tenants_with_one_cpas_id_are_refused(world: LocalFederation, folder: Path) -> None:
    first = _dev(folder, world, GENT)
    second = folder / "gent-again.toml"
    second.write_text(first.read_text())
    with pytest.raises(ConfigError) as refused:
        load_tenants([first, second])
    assert refused.value.code == "config.tenants_share"
    assert "CPAS id" in refused.value.message and str(second) in refused.value.message


def test_two_tenants_with_one_store_are_refused(world: LocalFederation, folder: Path) -> None:
    shared = str(folder / "shared" / "node.sqlite3")
    files = [_dev(folder, world, nis, store=shared) for nis in (GENT, LIEGE)]
    with pytest.raises(ConfigError) as refused:
        load_tenants(files)
    assert refused.value.code == "config.tenants_share"
    assert "database" in refused.value.message


def test_two_tenants_with_one_journal_are_refused(world: LocalFederation, folder: Path) -> None:
    shared = str(folder / "journal.sqlite3")
    files = [_dev(folder, world, nis, journal=shared) for nis in (GENT, LIEGE)]
    with pytest.raises(ConfigError, match="database"):
        load_tenants(files)


def test_two_tenants_with_one_keys_folder_are_refused(world: LocalFederation, folder: Path) -> None:
    gent = _dev(folder, world, GENT)
    liege = _dev(folder, world, LIEGE)
    liege.write_text(
        liege.read_text().replace(
            str(world.member(LIEGE).folder / "keys"), str(world.member(GENT).folder / "keys")
        )
    )
    with pytest.raises(ConfigError, match="keys folder"):
        load_tenants([gent, liege])


def test_two_provisioned_tenants_with_one_broker_user_are_refused(
    world: LocalFederation, folder: Path
) -> None:
    files = [
        write_tenant(
            folder,
            world,
            world.member(nis),
            amqp_url="amqp://cpas-shared:secret@localhost:5672/dse",
            namespace="dse",
            broker_mode="provisioned",
        )
        for nis in (GENT, LIEGE)
    ]
    with pytest.raises(ConfigError) as refused:
        load_tenants(files)
    assert "broker user cpas-shared" in refused.value.message


def test_development_tenants_may_share_the_guest_user(world: LocalFederation, folder: Path) -> None:
    assert len(load_tenants([_dev(folder, world, nis) for nis in (GENT, LIEGE)])) == 2


def test_tenants_that_disagree_on_the_log_format_are_refused(
    world: LocalFederation, folder: Path
) -> None:
    files = [_dev(folder, world, GENT, log_format="json"), _dev(folder, world, LIEGE)]
    with pytest.raises(ConfigError) as refused:
        load_tenants(files)
    assert refused.value.code == "config.tenants_differ" and "log_format" in refused.value.message


def test_an_empty_tenants_folder_is_refused(folder: Path) -> None:
    folder.mkdir()
    with pytest.raises(ConfigError, match="holds no node configuration"):
        tenant_files(folder)


def test_run_refuses_colliding_tenants_in_one_line(
    world: LocalFederation, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = str(folder / "shared.sqlite3")
    for nis in (GENT, LIEGE):
        _dev(folder, world, nis, store=shared)
    assert main(["run", "--tenants", str(folder)]) == 1
    captured = capsys.readouterr()
    assert "[config.tenants_share]" in captured.err and "Traceback" not in captured.err
    assert "running" not in captured.out
    assert not Path(shared).exists()  # refused before anything was opened


def test_check_refuses_colliding_tenants_first(
    world: LocalFederation, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [_dev(folder, world, nis, broker_mode="provisioned") for nis in (GENT, LIEGE)]
    assert main(["check", "--tenants", str(folder)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "FAIL CPAS of this node" in out and "broker user guest" in out
    assert all(str(f) in out for f in files)


# ------------------------------------------------------------ against the broker


@dataclass
class Hosting:
    """Three tenants in one process (a :class:`Host`) and Antwerpen's node beside it."""

    world: LocalFederation
    host: Host
    sender: Node
    files: dict[str, Path]
    amqp_url: str

    def node(self, nis: str) -> Node:
        return self.host.nodes[self.world.member(nis).cpas_id]

    def adapter(self, nis: str) -> MemoryAdapter:
        adapter = self.node(nis).adapter
        assert isinstance(adapter, MemoryAdapter)
        return adapter

    def send(self, nis: str, count: int, *, seed: int) -> dict[str, str]:
        """``count`` transfers from Antwerpen to one tenant: message id -> person."""
        to = self.world.member(nis).cpas_id
        people = self.sender.adapter.seed(count, seed=seed)  # type: ignore[attr-defined]
        return {self.sender.send_transfer(n, to, PURPOSE).message_id: n for n in people}

    def outcomes(self, sent: dict[str, str], timeout: float = 60.0) -> set[str | None]:
        done = self.sender.wait_for_outcomes(sent, timeout)
        return {done[m].outcome if m in done else None for m in sent}

    def publish_to_inbox(self, nis: str, bodies: list[bytes]) -> None:
        inbox = self.node(nis).names.inbox(self.world.member(nis).cpas_id)
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            for body in bodies:
                channel.basic_publish("", inbox, body, pika.BasicProperties(delivery_mode=2))
        finally:
            connection.close()


@contextlib.contextmanager
def hosted(
    world: LocalFederation,
    amqp_url: str,
    tmp_path: Path,
    settings: dict[str, dict[str, object]] | None = None,
) -> Iterator[Hosting]:
    """The three tenants started in one :class:`Host` (``settings`` by NIS code go to their
    files), Antwerpen's node started beside them; everything stopped and deleted after."""
    names = Names(f"tenants-{uuid.uuid4().hex[:10]}")
    folder = tmp_path / "tenants"
    files = {
        # A vendor system away is waited out at once, not retried message by message.
        nis: write_tenant(
            folder,
            world,
            world.member(nis),
            amqp_url=amqp_url,
            namespace=names.namespace,
            **({"import_retry_seconds": 0} | (settings or {}).get(nis, {})),
        )
        for nis in HOSTED
    }
    antwerpen = write_tenant(
        tmp_path / "antwerpen",
        world,
        world.member(ANTWERPEN),
        amqp_url=amqp_url,
        namespace=names.namespace,
        adapter="ocmwdata",
        options={"url": f"sqlite:///{tmp_path}/antwerpen-vendor.sqlite3"},
    )
    said: list[str] = []
    host = Host(
        load_tenants(tenant_files(folder)),
        say=said.append,
        adapters=load_adapters(plugins=[MemoryPlugin()]),
    )
    sender = build_node(NodeConfig.load(antwerpen))
    try:
        sender.start()
        assert host.start() == {}
        yield Hosting(world, host, sender, files, amqp_url)
    finally:
        host.stop()
        sender.stop()
        sender.adapter.close()
        delete_namespace(amqp_url, world.members, names=names)


@pytest.fixture
def hosting(world: LocalFederation, amqp_url: str, tmp_path: Path) -> Iterator[Hosting]:
    with hosted(world, amqp_url, tmp_path) as hosting:
        yield hosting


def test_each_tenants_adapter_receives_only_the_dossiers_sent_to_its_cpas(
    hosting: Hosting,
) -> None:
    sent = {nis: hosting.send(nis, 4, seed=10 + i) for i, nis in enumerate(HOSTED)}
    for nis in HOSTED:
        assert hosting.outcomes(sent[nis]) == {"imported"}
    for nis in HOSTED:
        assert set(hosting.adapter(nis).people) == set(sent[nis].values())


def test_an_envelope_for_one_tenant_planted_in_anothers_inbox_is_refused_not_imported(
    hosting: Hosting,
) -> None:
    sent = hosting.send(GENT, 1, seed=20)
    assert hosting.outcomes(sent) == {"imported"}
    (message_id,) = sent
    entry = hosting.sender.store.outgoing(message_id)
    assert entry is not None
    hosting.publish_to_inbox(LIEGE, [entry.envelope])
    liege = hosting.node(LIEGE)
    _wait(lambda: len(list_dead_letters(liege)) == 1)
    assert hosting.adapter(LIEGE).people == {}
    assert list_dead_letters(liege)[0].code.startswith("envelope.")


def test_one_tenants_poison_messages_do_not_stall_the_others(hosting: Hosting) -> None:
    poison = [b"<not-an-envelope>" + os.urandom(16) for _ in range(300)]
    hosting.publish_to_inbox(GENT, poison)
    sent = {nis: hosting.send(nis, 5, seed=30 + i) for i, nis in enumerate((LIEGE, NAMUR))}
    for nis in (LIEGE, NAMUR):
        assert hosting.outcomes(sent[nis]) == {"imported"}
        assert set(hosting.adapter(nis).people) == set(sent[nis].values())
    gent = hosting.node(GENT)
    _wait(lambda: gent.stats["refused"] >= len(poison))
    assert gent.health().ok and hosting.adapter(GENT).people == {}


def test_one_tenants_vendor_outage_does_not_stall_the_others(hosting: Hosting) -> None:
    hosting.adapter(GENT).make_store_unavailable()
    waiting = hosting.send(GENT, 3, seed=40)
    gent = hosting.node(GENT)
    _wait(lambda: gent.health().status == "vendor system unavailable")
    sent = {nis: hosting.send(nis, 5, seed=41 + i) for i, nis in enumerate((LIEGE, NAMUR))}
    for nis in (LIEGE, NAMUR):
        assert hosting.outcomes(sent[nis]) == {"imported"}
    assert gent.health().status == "vendor system unavailable"
    hosting.adapter(GENT).make_store_available()
    assert hosting.outcomes(waiting) == {"imported"}
    assert set(hosting.adapter(GENT).people) == set(waiting.values())


def test_one_tenants_vendor_system_that_hangs_does_not_stall_the_others(
    hosting: Hosting, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = hosting.adapter(GENT)
    released = threading.Event()
    hanging = threading.Event()
    real = adapter.write_dossier

    def write_dossier(dossier: Any) -> str:
        hanging.set()
        released.wait(60)  # a vendor call that never answers (until the test ends)
        return real(dossier)

    monkeypatch.setattr(adapter, "write_dossier", write_dossier)
    try:
        waiting = hosting.send(GENT, 1, seed=95)
        assert hanging.wait(30)
        sent = {nis: hosting.send(nis, 5, seed=96 + i) for i, nis in enumerate((LIEGE, NAMUR))}
        for nis in (LIEGE, NAMUR):
            assert hosting.outcomes(sent[nis]) == {"imported"}
    finally:
        released.set()
    assert hosting.outcomes(waiting) == {"imported"}


def test_a_tenant_whose_thread_dies_stops_alone_and_the_others_keep_importing(
    hosting: Hosting, monkeypatch: pytest.MonkeyPatch
) -> None:
    gent = hosting.node(GENT)

    def broken(batch: list[Any]) -> None:
        raise RuntimeError("a bug in the worker loop")

    monkeypatch.setattr(gent.receiver, "process_batch", broken)
    stop = threading.Event()
    watching = threading.Thread(target=hosting.host.watch, args=(stop,), kwargs={"interval": 0.1})
    watching.start()
    try:
        hosting.send(GENT, 1, seed=50)
        gent_id = hosting.world.member(GENT).cpas_id
        _wait(lambda: gent_id in hosting.host.failed)
        assert "a bug in the worker loop" in hosting.host.failed[gent_id]
        assert gent_id not in hosting.host.nodes
        sent = hosting.send(LIEGE, 3, seed=51)
        assert hosting.outcomes(sent) == {"imported"}
    finally:
        stop.set()
        watching.join()


def test_the_run_ends_when_no_tenant_is_left(hosting: Hosting) -> None:
    for nis in HOSTED:
        node = hosting.node(nis)
        assert hosting.host.thread_died(f"worker-{node.cpas_id}", RuntimeError("a bug"))
    stop = threading.Event()
    deadline = threading.Timer(30, stop.set)  # a watch that never ends fails, not hangs
    deadline.start()
    try:
        assert hosting.host.watch(stop, interval=0.05) is False
    finally:
        deadline.cancel()
    assert set(hosting.host.failed) == {hosting.world.member(n).cpas_id for n in HOSTED}


def test_a_thread_of_no_tenant_is_not_taken_for_one(hosting: Hosting) -> None:
    assert not hosting.host.thread_died("MainThread", RuntimeError("a bug"))
    assert not hosting.host.thread_died("worker-0999999999", RuntimeError("a bug"))
    assert hosting.host.failed == {}


def test_each_tenants_journal_and_report_show_only_its_own_exchanges(
    hosting: Hosting, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = {nis: hosting.send(nis, 2, seed=60 + i) for i, nis in enumerate(HOSTED)}
    for nis in HOSTED:
        assert hosting.outcomes(sent[nis]) == {"imported"}
    antwerpen = hosting.world.member(ANTWERPEN).cpas_id
    for nis in HOSTED:
        journal = hosting.node(nis).journal
        assert journal is not None
        entries = journal.tail(1000)
        assert {e.message_id for e in entries if e.message_type == "transfer"} == set(sent[nis])
        assert {e.peer for e in entries} <= {antwerpen, None}
    person = next(iter(sent[GENT].values()))
    reports = {}
    for nis in HOSTED:
        config = str(hosting.files[nis])
        assert main(["report", "--config", config, "--niss", person, "--format", "json"]) == 0
        reports[nis] = json.loads(capsys.readouterr().out)
    assert len(reports[GENT]["exchanges"]) == 1
    assert reports[LIEGE]["exchanges"] == reports[NAMUR]["exchanges"] == []


# ------------------------------------------------------------ the command line


def test_one_run_serves_every_cpas_of_a_tenants_folder_until_stopped(
    world: LocalFederation, amqp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = Names(f"tenants-{uuid.uuid4().hex[:10]}")
    folder = tmp_path / "tenants"
    for nis, adapter, options in (
        (GENT, "ocmwdata", {"url": f"sqlite:///{tmp_path}/gent-vendor.sqlite3"}),
        (LIEGE, "fichesociale", {"folder": str(tmp_path / "liege-fiches")}),
    ):
        write_tenant(
            folder,
            world,
            world.member(nis),
            amqp_url=amqp_url,
            namespace=names.namespace,
            adapter=adapter,
            options=options,
        )
    antwerpen = write_tenant(
        tmp_path / "antwerpen",
        world,
        world.member(ANTWERPEN),
        amqp_url=amqp_url,
        namespace=names.namespace,
        adapter="ocmwdata",
        options={"url": f"sqlite:///{tmp_path}/antwerpen-vendor.sqlite3"},
    )
    assert main(["check", "--tenants", str(folder)]) == 0
    checked = " ".join(capsys.readouterr().out.split())
    assert all(f"CPAS {world.member(nis).cpas_id}" in checked for nis in (GENT, LIEGE))
    assert "all checks passed for every CPAS" in checked
    run = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--tenants", str(folder)],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert run.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(run.stdout or ()), daemon=True)
    reader.start()
    hosted = [world.member(nis).cpas_id for nis in (GENT, LIEGE)]
    sender = build_node(NodeConfig.load(antwerpen))
    try:
        _wait_for_output(run, lines, [f"node {c} running" for c in hosted])
        sender.start()
        people = sender.adapter.seed(2, seed=70)  # type: ignore[attr-defined]
        sent = [
            sender.send_transfer(n, world.member(nis).cpas_id, PURPOSE).message_id
            for n, nis in zip(people, (GENT, LIEGE), strict=True)
        ]
        done = sender.wait_for_outcomes(sent, 120)
        assert {done[m].outcome for m in sent if m in done} == {"imported"} and len(done) == 2
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        reader.join(10)
    finally:
        if run.poll() is None:
            run.kill()
        sender.stop()
        sender.adapter.close()
        delete_namespace(amqp_url, world.members, names=names)
    out = "".join(lines)
    assert run.returncode == 0, out[-3000:]
    for cpas_id in hosted:
        assert f"node {cpas_id} running" in out
        assert f"node {cpas_id} stopped (" in out
        assert (folder / "state" / cpas_id / "node.sqlite3").exists()


# ------------------------------------------------------------ one directory for all


def test_tenants_reading_one_signed_edition_share_one_verified_directory(
    world: LocalFederation,
) -> None:
    directories = SharedDirectories()
    first = directories.load(world.directory_path, world.trust_anchor)
    assert directories.load(world.directory_path, world.trust_anchor, min_serial=1) is first


def test_shared_directories_keep_only_the_latest_editions_as_new_ones_come(
    tmp_path: Path,
) -> None:
    federation = make_local_federation(tmp_path, [GENT, LIEGE], small=True)
    directories = SharedDirectories()
    for _ in range(SharedDirectories.KEPT + 3):
        edition = directories.load(federation.directory_path, federation.trust_anchor)
        assert edition.serial == federation.directory.serial
        federation.reissue()
    assert len(directories) == SharedDirectories.KEPT


def test_a_shared_directory_older_than_a_tenant_has_seen_is_refused_to_that_tenant(
    world: LocalFederation,
) -> None:
    directories = SharedDirectories()
    edition = directories.load(world.directory_path, world.trust_anchor)
    with pytest.raises(DirectoryError) as refused:
        directories.load(world.directory_path, world.trust_anchor, min_serial=edition.serial + 1)
    assert refused.value.code == "directory.rollback"


def test_a_directory_file_changed_in_one_byte_is_verified_again_not_shared(
    world: LocalFederation, tmp_path: Path
) -> None:
    directories = SharedDirectories()
    directories.load(world.directory_path, world.trust_anchor)
    forged = tmp_path / "directory.xml"
    forged.write_bytes(world.directory_path.read_bytes().replace(b"CPAS de ", b"CPAS du ", 1))
    assert forged.read_bytes() != world.directory_path.read_bytes()
    with pytest.raises(DirectoryError) as refused:
        directories.load(forged, world.trust_anchor)
    assert refused.value.code == "directory.signature"


def test_a_broker_address_in_the_environment_of_several_tenants_is_refused(
    world: LocalFederation, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [_dev(folder, world, nis) for nis in (GENT, LIEGE)]
    monkeypatch.setenv("CPAS_GATEWAY_AMQP_URL", "amqp://cpas-x:secret@localhost:5672/dse")
    with pytest.raises(ConfigError) as refused:
        load_tenants(files)
    assert refused.value.code == "config.tenants_env"
    assert "CPAS_GATEWAY_AMQP_URL" in refused.value.message
    assert "secret" not in refused.value.message


def test_a_broker_address_in_the_environment_of_one_node_still_overrides_its_file(
    world: LocalFederation, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gent = _dev(folder, world, GENT)
    monkeypatch.setenv("CPAS_GATEWAY_AMQP_URL", "amqp://cpas-x:secret@mq:5672/dse")
    (tenant,) = load_tenants([gent])
    assert tenant.config.amqp_url.get_secret_value() == "amqp://cpas-x:secret@mq:5672/dse"


def test_a_log_line_from_a_tenants_thread_names_its_cpas(
    hosting: Hosting, caplog: pytest.LogCaptureFixture
) -> None:
    gent = hosting.node(GENT)
    caplog.handler.addFilter(hosting.host.log_filter())
    hosting.adapter(GENT).make_store_unavailable()
    hosting.send(GENT, 1, seed=80)
    _wait(lambda: gent.health().status == "vendor system unavailable")
    hosting.adapter(GENT).make_store_available()
    waiting = [r for r in caplog.records if "retrying until it is back" in r.getMessage()]
    assert waiting and {getattr(r, "cpas", None) for r in waiting} == {gent.cpas_id}


def test_the_deployed_tenants_example_loads_as_one_hosted_node() -> None:
    tenants = load_tenants(tenant_files(REPOSITORY / "deploy" / "tenants"))
    assert len(tenants) == 2
    assert all(t.config.broker_mode == "provisioned" for t in tenants)
    assert all(t.source.stem == t.cpas_id for t in tenants)


def test_a_tenant_failing_its_preflight_waits_while_the_others_run_then_starts(
    world: LocalFederation, amqp_url: str, tmp_path: Path
) -> None:
    names = Names(f"tenants-{uuid.uuid4().hex[:10]}")
    folder = tmp_path / "tenants"
    vendor = tmp_path / "not-mounted-yet"
    gent = write_tenant(
        folder,
        world,
        world.member(GENT),
        amqp_url=amqp_url,
        namespace=names.namespace,
        adapter="ocmwdata",
        options={"url": f"sqlite:///{vendor}/ocmw.sqlite3"},
    )
    liege = write_tenant(
        folder, world, world.member(LIEGE), amqp_url=amqp_url, namespace=names.namespace
    )
    registry = load_adapters(plugins=[MemoryPlugin()])
    said: list[str] = []
    host = Host(
        load_tenants([gent, liege]),
        say=said.append,
        preflight=lambda tenant: run_preflight(tenant.source, adapters=registry),
        adapters=registry,
        retry_seconds=0.2,
    )
    stop = threading.Event()
    watching = threading.Thread(target=host.watch, args=(stop,), kwargs={"interval": 0.1})
    try:
        gent_id, liege_id = world.member(GENT).cpas_id, world.member(LIEGE).cpas_id
        refused = host.start()
        assert set(refused) == {gent_id}
        assert [c.name for c in refused[gent_id].failures] == ["adapter"]
        assert set(host.nodes) == {liege_id} and set(host.waiting) == {gent_id}
        watching.start()
        vendor.mkdir()  # the vendor's database is there now
        _wait(lambda: gent_id in host.nodes)
        assert host.waiting == {} and f"node {gent_id} running" in " ".join(said)
    finally:
        stop.set()
        if watching.is_alive():
            watching.join()
        host.stop()
        delete_namespace(amqp_url, world.members, names=names)


# ------------------------------------------------------------ one tenant's store away


def _free_port() -> int:
    """A free port in 28000-28999, the range these tests' private servers use."""
    for port in range(28000 + os.getpid() % 500, 29000):
        with contextlib.suppress(OSError), socket.socket() as probe:
            probe.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free port in 28000-28999")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of these tests' own, to stop under one tenant's store."""
    if postgres_bin() is None:
        unavailable("PostgreSQL (initdb, pg_ctl) is not installed on this machine")
    server = PrivatePostgres.create()
    server.port = _free_port()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def test_one_tenants_store_outage_does_not_stall_the_others(
    world: LocalFederation, amqp_url: str, tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    store = private_postgres.database_url(f"tenants_{uuid.uuid4().hex[:10]}")
    with hosted(world, amqp_url, tmp_path, {GENT: {"store": store}}) as hosting:
        gent = hosting.node(GENT)
        private_postgres.stop()
        try:
            waiting = hosting.send(GENT, 3, seed=90)
            _wait(lambda: gent.health().status == "store unavailable")
            sent = {nis: hosting.send(nis, 5, seed=91 + i) for i, nis in enumerate((LIEGE, NAMUR))}
            for nis in (LIEGE, NAMUR):
                assert hosting.outcomes(sent[nis]) == {"imported"}
            assert gent.health().status == "store unavailable"
        finally:
            private_postgres.start()
        assert hosting.outcomes(waiting) == {"imported"}
        assert set(hosting.adapter(GENT).people) == set(waiting.values())


# ------------------------------------------------------------ the benchmark keeps working


def test_the_tenants_benchmark_serves_and_measures_every_count(
    amqp_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "tenants.json"
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "bench.tenants", "--counts", "1,3"),
            *("--idle-seconds", "0.2", "--json", str(output), "--amqp-url", amqp_url),
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    rows = json.loads(output.read_text(encoding="utf-8"))
    assert [(r["tenants"], r["serving"], r["answered"]) for r in rows] == [(1, 1, 1), (3, 3, 3)]
    assert all(r["rss_mb"] > 0 and r["threads"] > r["tenants"] for r in rows)


def test_run_starts_the_cpas_that_pass_their_checks_and_names_the_one_that_does_not(
    world: LocalFederation, amqp_url: str, tmp_path: Path
) -> None:
    names = Names(f"tenants-{uuid.uuid4().hex[:10]}")
    folder = tmp_path / "tenants"
    for nis, options in (
        (GENT, {"url": f"sqlite:///{tmp_path}/not-mounted/ocmw.sqlite3"}),
        (LIEGE, {"url": f"sqlite:///{tmp_path}/liege.sqlite3"}),
    ):
        write_tenant(
            folder,
            world,
            world.member(nis),
            amqp_url=amqp_url,
            namespace=names.namespace,
            adapter="ocmwdata",
            options=options,
        )
    run = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--tenants", str(folder)],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(run.stdout or ()), daemon=True)
    reader.start()
    gent, liege = world.member(GENT).cpas_id, world.member(LIEGE).cpas_id
    try:
        _wait_for_output(run, lines, [f"node {liege} running"])
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        reader.join(10)
    finally:
        if run.poll() is None:
            run.kill()
        delete_namespace(amqp_url, world.members, names=names)
    out = " ".join("".join(lines).split())
    assert run.returncode == 0, out[-3000:]
    assert f"node {gent} not started, its checks failed: FAIL adapter" in out
    assert f"node {gent} running" not in out
    assert "1 of 2 CPAS not started" in out
