"""``cpas-gateway run --workers N``: one node as several processes on one inbox, exactly once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest
from conftest import GENT, LIEGE

from gateway.broker import Names, Outgoing, delete_namespace
from gateway.config import NodeConfig
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.journal import Event
from gateway.model.envelope import MessageType, Purpose, TransferBody
from gateway.node import Node, build_node

WAIT = 60.0
COPIES = 3
PEOPLE = 24


@pytest.fixture
def world(tmp_path: Path) -> LocalFederation:
    return make_local_federation(tmp_path / "federation", [GENT, LIEGE], small=True)


@pytest.fixture
def names(world: LocalFederation, amqp_url: str) -> Iterator[Names]:
    names = Names(f"test-{uuid.uuid4().hex[:10]}")
    yield names
    delete_namespace(amqp_url, world.members, names=names)


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Where the receiving node keeps its store and journal: its folder, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield {}
        return
    in_schema = request.getfixturevalue("postgres_schema")
    yield {"store": in_schema, "journal": in_schema}


class Running:
    """``cpas-gateway run --workers N`` in a process of its own, its output collected."""

    def __init__(self, config: Path, workers: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "run",
                "--config",
                str(config),
                "--workers",
                f"{workers}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "400"},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, count: int = 1, timeout: float = WAIT) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if re.search(pattern, line)]
            if len(found) >= count:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{count} line(s) matching {pattern!r} not seen in:\n" + self.output)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self) -> list[int]:
        (line,) = self.wait_for(r"worker processes \(")
        return [int(p) for p in re.findall(r"\d+", line.split("(", 1)[1])]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(WAIT)
        self._reader.join(5)
        return status


def _configs(world: LocalFederation, amqp_url: str, names: Names, state: dict[str, str]) -> Node:
    """Gent (OCMWdata) receives through the command; Liège (FicheSociale) sends from here."""
    root = world.member(GENT).folder
    world.node_config(
        world.member(GENT).cpas_id,
        "ocmwdata",
        {"url": f"sqlite:///{root}/vendor.sqlite3"},
        amqp_url=amqp_url,
        namespace=names.namespace,
        **state,
    )
    liege = world.node_config(
        world.member(LIEGE).cpas_id,
        "fichesociale",
        {"folder": str(world.member(LIEGE).folder / "fiches")},
        amqp_url=amqp_url,
        namespace=names.namespace,
    )
    return build_node(liege).start()


def _gent(world: LocalFederation) -> Node:
    return build_node(NodeConfig.load(world.member(GENT).folder / "node.toml"), consume=False)


def test_copies_of_each_message_taken_by_two_workers_are_imported_journaled_and_answered_once(
    world: LocalFederation, amqp_url: str, names: Names, state: dict[str, str]
) -> None:
    sender = _configs(world, amqp_url, names, state)
    running = Running(world.member(GENT).folder / "node.toml", workers=2)
    try:
        running.wait_for(r"running", count=2)
        gent = world.member(GENT).cpas_id
        numbers = sender.adapter.seed(PEOPLE, seed=7)  # type: ignore[attr-defined]
        # A sender publishing each message three times at once: the copies
        # follow one another, and the broker hands them to both workers in turn.
        publish_many = sender.broker.publish_many

        def in_copies(outgoing: Sequence[Outgoing]) -> list[Future[None]]:
            return publish_many([o for o in outgoing for _ in range(COPIES)])[::COPIES]

        sender.broker.publish_many = in_copies  # type: ignore[method-assign]
        transfers = []
        for number in numbers:
            dossier = sender.vendor.export(number)
            assert dossier is not None
            header = sender.sender.header(
                MessageType.TRANSFER,
                gent,
                Purpose.CONTINUITY_AFTER_MOVE,
                dossier.source.case_reference,
            )
            transfers.append((header, TransferBody(dossier)))
        sent = sender.sender.send_many(transfers)
        outcomes = sender.wait_for_outcomes([s.message_id for s in sent], WAIT)
        assert {e.outcome for e in outcomes.values()} == {"imported"}
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not _every_copy_answered(sender):
            time.sleep(0.2)
    finally:
        sender.stop()
        status = running.stop()
    assert status == 0, running.output

    received = [int(m) for m in re.findall(r"received (\d+)", running.output)]
    assert len(received) == 2 and min(received) > 0, running.output
    assert sum(received) == PEOPLE * COPIES
    node = _gent(world)
    try:
        assert node.store.received_count() == PEOPLE
        assert node.adapter.count_persons() == PEOPLE  # type: ignore[attr-defined]
        assert node.journal is not None
        entries = node.journal.tail(10_000)
        imported = [e.message_id for e in entries if e.event == Event.RECEIVED.value]
        assert sorted(imported) == sorted(s.message_id for s in sent)
        receipts = [e for e in entries if e.event == Event.RECEIPT_SENT.value]
        assert len(receipts) == PEOPLE
        assert node.journal.verify().ok
    finally:
        node.adapter.close()
        node.store.close()


def _every_copy_answered(sender: Node) -> bool:
    """Every copy got the receipt of its message again (a duplicate receipt to the sender)."""
    return sender.stats.counts.get("duplicates", 0) >= PEOPLE * (COPIES - 1)


def test_a_worker_that_dies_stops_the_other_and_the_command_ends_with_status_1(
    world: LocalFederation, amqp_url: str, names: Names
) -> None:
    _configs(world, amqp_url, names, {}).stop()
    running = Running(world.member(GENT).folder / "node.toml", workers=2)
    try:
        running.wait_for(r"running", count=2)
        first, second = running.pids()
        os.kill(second, signal.SIGKILL)
        status = running.process.wait(WAIT)
    finally:
        if running.process.poll() is None:
            running.stop()
    assert status == 1
    assert "worker 1 ended" in running.output
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)


def test_a_further_worker_adopts_the_edition_the_first_kept_and_refuses_a_forged_one(
    world: LocalFederation, amqp_url: str, names: Names
) -> None:
    _configs(world, amqp_url, names, {}).stop()
    config = NodeConfig.load(world.member(GENT).folder / "node.toml")
    further = build_node(config, follow_directory=True, primary=False)
    try:
        assert further.directory_feed is None
        edition = world.reissue()
        signed = world.directory_path.read_bytes()
        forged = signed.replace(b"</", b" </", 1)
        further.store.keep_directory_edition(edition.serial, forged)
        further.worker.sweep()
        assert further.directory.serial == edition.serial - 1
        further.store.keep_directory_edition(edition.serial, signed)
        further.worker.sweep()
        assert further.directory.serial == edition.serial
    finally:
        further.adapter.close()
        further.store.close()


def test_workers_below_one_or_with_tenants_are_refused(tmp_path: Path) -> None:
    from gateway.cli import main

    with pytest.raises(SystemExit) as refused:
        main(["run", "--config", str(tmp_path / "node.toml"), "--workers", "0"])
    assert refused.value.code == 2
    assert main(["run", "--tenants", str(tmp_path), "--workers", "2"]) == 2
