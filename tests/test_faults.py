"""The delivery guarantees under faults: nothing lost, nothing imported twice.

Every scenario moves a batch of dossiers (``CPAS_FAULT_DOSSIERS``, default
5,000) from Gent, on the relational vendor OCMWdata (SQLite), to Liège, on the
file-based vendor FicheSociale, with ``cpas-gateway send --all`` beside two
running nodes (``cpas-gateway run``), all of them separate processes so they
can be killed. Midway, a fault strikes:

1. the broker crashes (SIGKILL) and starts again;
2. the receiving node is SIGKILLed and started again;
3. the sending CPAS (its node and the bulk send) is SIGKILLed and started again;
4. the receiver's vendor system is unavailable for a while (shorter than the
   node's retry budget); 4b. longer than the budget: the receiver holds its
   deliveries and pauses, spending no delivery attempt, until the vendor is
   back;
5. poison messages are mixed into the receiver's inbox; 5b. many signed
   poison messages are being refused when the broker restarts;
6. on a three-node cluster, the member the nodes are connected to (and the
   leader of the quorum inboxes) stops;
7. the receiving node is killed ten times in a row, each time just after it
   started consuming (a crash-loop): nothing may end in the dead letters;
8. the PostgreSQL server holding the store and journal of the receiver (then
   of the sender) is down for 20 s: the nodes and the bulk send wait and
   resume on their own, without a restart;
9. (5,000-dossier variant, or ``CPAS_FAULT_DISK_FULL=1``) the file system
   holding the receiver's store and journal (then its vendor files, then the
   sender's store and journal) is full for 20 s: nothing is acked or
   half-written, no delivery attempt is spent, the bulk send stops with a
   clear message and resumes when run again.

Afterwards every good dossier is in FicheSociale exactly once, the sender
holds an ``imported`` receipt for each of them, the poison messages (and only
they) are in the receiver's dead-letter queue with their refusal codes, and
no other queue holds anything.

The brokers are nodes of the tests' own (``tests/brokers.py``): a single node
for scenarios 1-5, a three-node cluster for 6. The machine's default broker is
never touched. Figures per scenario (sent, imported, duplicates,
dead-lettered, redeliveries, recovery time) are printed at the end of the
session and written to ``fault-figures.json`` in pytest's base temporary
folder.

Run with ``pytest -m faults tests/test_faults.py``; ``CPAS_FAULT_DOSSIERS``
makes the batches smaller for a quicker run. Scenario 8 runs a PostgreSQL
server of its own (``tests/postgres_server.py``); scenario 9 mounts a small
tmpfs, which needs root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import psycopg
import pytest
from brokers import BrokerNode, BrokerUnavailable, Cluster, rabbitmq_installed
from conftest import GENT, LIEGE
from helpers.ci import unavailable
from postgres_server import PrivatePostgres, postgres_bin
from pydantic import SecretStr

from gateway.broker import Names
from gateway.config import split_urls
from gateway.database import is_postgres
from gateway.dead_letters import list_dead_letters
from gateway.federation.localnet import LocalFederation, cpas_id_of, make_local_federation
from gateway.journal import JournalSettings
from gateway.model.dossier import Dossier
from gateway.model.envelope import Header, MessageType, Purpose, TransferBody, seal
from gateway.node import build_node
from gateway.store import Outgoing as OutboxRecord
from gateway.store import Store
from ocmwdata.adapter import OcmwdataAdapter

pytestmark = [pytest.mark.faults, pytest.mark.slow]

DOSSIERS = int(os.environ.get("CPAS_FAULT_DOSSIERS", "5000"))
"""Dossiers per scenario."""

PURPOSE = Purpose.CONTINUITY_AFTER_MOVE
MIDWAY = 0.2
"""The fault strikes once the sender has recorded this share of the batch (and is still sending)."""

STALL_SECONDS = 75.0
"""No progress at all for this long means the batch is stuck (longer than any back-off)."""

OUTAGE_SECONDS = 10.0
"""How long the receiver's vendor system is away in scenario 4."""

POISON_IN_FLIGHT = 1000
"""Signed poison messages being refused while the broker restarts (scenario 5b)."""

IMPORT_RETRY_SECONDS = 60.0
"""Scenario 4's retry budget for one import: longer than the outage, so nothing is requeued."""

POISON_PREFIX = "POISON-"
"""Case references of the poison messages this file writes into the sender's outbox."""

CRASH_LOOP_KILLS = 10
"""How many times in a row scenario 7 kills the receiver."""

CRASH_LOOP_HOLD_SECONDS = 0.0
"""How long the receiver lives after its start-up line: at once, it holds its first deliveries."""

STORE_OUTAGE_SECONDS = 20.0
"""How long scenario 8's PostgreSQL server is down."""

DISK_FULL_SECONDS = 20.0
"""How long scenario 9's file system stays full."""

SMALL_DISK_MB = 512
"""The size of the file system scenario 9 fills."""

FULL_RUN_DOSSIERS = 5000
"""From this many dossiers on, the slower scenarios (a full disk) run too."""


# ------------------------------------------------------------------ brokers


def _require_rabbitmq() -> None:
    if rabbitmq_installed():
        return
    unavailable("RabbitMQ is not installed on this machine (the fault tests start their own nodes)")


@pytest.fixture(scope="module")
def fault_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerNode]:
    """A single RabbitMQ node of this module's own, which scenarios may restart."""
    _require_rabbitmq()
    node = BrokerNode.single(tmp_path_factory.mktemp("broker"), name="cpasfault")
    try:
        node.start()
    except BrokerUnavailable as exc:
        node.remove()
        pytest.fail(f"the fault tests' broker node did not start: {exc}", pytrace=False)
    yield node
    node.remove()


@pytest.fixture(scope="module")
def fault_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A three-node RabbitMQ cluster of this module's own."""
    _require_rabbitmq()
    cluster = Cluster.local(
        tmp_path_factory.mktemp("cluster"), prefix="cpasfaultc", first_port=None
    )
    try:
        cluster.start()
    except BrokerUnavailable as exc:
        cluster.stop(remove=True)
        pytest.fail(f"the fault tests' cluster did not start: {exc}", pytrace=False)
    yield cluster
    cluster.stop(remove=True)


@pytest.fixture
def broker(fault_broker: BrokerNode) -> BrokerNode:
    """The module's broker node, running (a failed scenario may have left it stopped)."""
    fault_broker.start()
    return fault_broker


@pytest.fixture
def cluster(fault_cluster: Cluster) -> Cluster:
    """The module's cluster, every member running."""
    for node in fault_cluster.nodes:
        node.start()
    return fault_cluster


@pytest.fixture(scope="module", autouse=True)
def _no_gateway_overrides() -> Iterator[None]:
    """``CPAS_GATEWAY_*`` variables would override the scenarios' configuration files."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("CPAS_GATEWAY_")]:
            patch.delenv(name)
        yield


# ------------------------------------------------------------------ figures


@dataclass
class Figures:
    """What one scenario measured.

    ``vendor_duplicates`` is what the guarantee is about: imports beyond one
    per dossier in the vendor system (FicheSociale's message markers per
    fiche, and markers of messages that are not in the batch). The wire-level
    counts come from the receiving node's own counters, printed by ``run``
    when it stops: ``redeliveries`` are deliveries the broker flagged as
    redelivered, ``wire_duplicates`` are messages the node recognised as seen
    before and did not import again. A SIGKILLed process takes its counters
    with it (``lost_counters`` says how many lifetimes); redeliveries only
    ever follow a fault, so they are counted by the lifetime after it.
    """

    scenario: str
    dossiers: int
    sent: int = 0
    imported: int = 0
    vendor_duplicates: int = 0
    wire_duplicates: int = 0
    redeliveries: int = 0
    republished: int = 0
    dead_lettered: int = 0
    fault_seconds: float | None = None
    recovery_seconds: float | None = None
    elapsed_seconds: float = 0.0
    lost_counters: int = 0
    outcome: str = "passed"
    notes: list[str] = field(default_factory=list)


class FaultReport:
    """Collects every scenario's figures; prints a table and writes JSON at the session's end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[Figures] = []

    def add(self, figures: Figures) -> None:
        self.rows.append(figures)
        self.path.write_text(
            json.dumps([dataclasses.asdict(row) for row in self.rows], indent=2), encoding="utf-8"
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        columns = (
            ("scenario", "scenario", 22),
            ("sent", "sent", 6),
            ("imported", "imported", 8),
            ("vendor dup", "vendor_duplicates", 10),
            ("wire dup", "wire_duplicates", 8),
            ("redeliv", "redeliveries", 7),
            ("republ", "republished", 6),
            ("dead", "dead_lettered", 4),
            ("fault s", "fault_seconds", 7),
            ("recover s", "recovery_seconds", 9),
            ("total s", "elapsed_seconds", 7),
            ("outcome", "outcome", 7),
        )
        terminalreporter.section("delivery guarantees under faults")
        terminalreporter.write_line(" ".join(f"{title:>{width}}" for title, _, width in columns))
        for row in self.rows:
            cells = []
            for _, name, width in columns:
                value = getattr(row, name)
                text = (
                    "-" if value is None else f"{value:.1f}" if isinstance(value, float) else value
                )
                cells.append(f"{text!s:>{width}}")
            terminalreporter.write_line(" ".join(cells))
            for note in row.notes:
                terminalreporter.write_line(f"{'':>23}{note}")
        terminalreporter.write_line(f"figures written to {self.path}")


@pytest.fixture(scope="session")
def fault_report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> FaultReport:
    report = FaultReport(tmp_path_factory.getbasetemp() / "fault-figures.json")
    request.config.pluginmanager.register(report, "cpas-fault-report")
    return report


# ---------------------------------------------------------------- processes


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux), e.g. the workers of ``run --workers``."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Gateway:
    """One ``cpas-gateway`` command, run as a process of its own, started again at will.

    Output goes to ``<log_stem>-<n>.log`` per lifetime; ``stats`` keeps the
    counters each gracefully stopped lifetime printed.
    """

    def __init__(self, args: list[str], log_stem: Path) -> None:
        self.args = args
        self.workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
        """``run --workers N``: the processes that each say they run."""
        self.log_stem = log_stem
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []
        self.stats: list[Counter[str]] = []
        self.killed = 0
        self._counted = 0

    def start(self) -> Gateway:
        log = self.log_stem.with_name(f"{self.log_stem.name}-{len(self.logs) + 1}.log")
        self.logs.append(log)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CPAS_GATEWAY_")}
        # rich wraps at 80 columns when it writes to a file; the counters
        # line must stay on one line to be read back.
        env["COLUMNS"] = "500"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [_cli(), "-v", *self.args], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def output(self) -> str:
        return self.logs[-1].read_text(encoding="utf-8", errors="replace") if self.logs else ""

    def wait_running(self, timeout: float = 60.0) -> None:
        """Wait for ``run``'s start-up line (connected, consuming, outbox republished), one
        per worker."""
        deadline = time.monotonic() + timeout
        while self.output().count(" running") < self.workers or " running: " not in self.output():
            if not self.running:
                raise AssertionError(f"{self.args[0]} exited at start:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.args[0]} did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL (each worker first): no clean-up, no ack, no counters."""
        if self.process is not None and self.running:
            for child in _children(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self.killed += 1

    def terminate(self, timeout: float = 60.0) -> None:
        """SIGTERM (a graceful stop) and keep the counters it prints."""
        if self.process is None:
            return
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.args[0]} did not stop on SIGTERM") from None
        if self._counted == len(self.logs):
            return  # this lifetime's counters are already read
        self._counted = len(self.logs)
        stopped = re.findall(r"stopped \((.*)\)", self.output())  # one line per worker
        if stopped:
            counts = Counter[str]()
            for line in stopped:
                for item in [] if line == "nothing" else line.split(", "):
                    name, _, value = item.rpartition(" ")
                    counts[name] += int(value)
            self.stats.append(counts)

    def republished(self) -> int:
        """Messages this command's lifetimes published again from the outbox at start-up."""
        total = 0
        for log in self.logs:
            text = log.read_text(encoding="utf-8", errors="replace")
            total += sum(int(n) for n in re.findall(r"republished (\d+) unconfirmed", text))
        return total


def _cli() -> str:
    """The ``cpas-gateway`` console script of the Python running the tests."""
    beside = Path(sys.executable).with_name("cpas-gateway")
    return str(beside) if beside.exists() else shutil.which("cpas-gateway") or "cpas-gateway"


# ----------------------------------------------------------------- progress


@dataclass(frozen=True)
class Sample:
    at: float
    outbox: int
    confirmed: int
    receipts: int
    imported: int


class ProgressMonitor(threading.Thread):
    """Samples, ten times a second, what the two stores say about the batch.

    Reads the stores read-only, beside the nodes writing to them (SQLite in
    WAL mode, or PostgreSQL): the outbox rows of the batch, how many the
    broker confirmed, how many have an ``imported`` receipt, and how many the
    receiver recorded as imported. A store that cannot be read (busy, or its
    server down) skips the sample.
    """

    def __init__(self, sender_store: str, receiver_store: str) -> None:
        super().__init__(name="fault-progress", daemon=True)
        self.sender_store = sender_store
        self.receiver_store = receiver_store
        self.samples: list[Sample] = [Sample(time.monotonic(), 0, 0, 0, 0)]
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.1):
            self.samples.append(self.sample())

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def sample(self) -> Sample:
        last = self.samples[-1]
        outbox = _read_only(
            self.sender_store,
            "SELECT COUNT(*), COUNT(confirmed_at),"
            " COALESCE(SUM(CASE WHEN outcome = 'imported' THEN 1 ELSE 0 END), 0)"
            f" FROM outbox WHERE type = 'transfer' AND case_reference NOT LIKE '{POISON_PREFIX}%'",
        )
        imported = _read_only(
            self.receiver_store,
            "SELECT COUNT(*) FROM inbox WHERE type = 'transfer' AND outcome = 'imported'",
        )
        # A busy database skips a sample rather than going backwards.
        sent, confirmed, receipts = outbox or (last.outbox, last.confirmed, last.receipts)
        done = imported[0] if imported else last.imported
        return Sample(time.monotonic(), int(sent), int(confirmed), int(receipts), int(done))

    @property
    def latest(self) -> Sample:
        return self.samples[-1]

    def first_growth_after(self, baseline: Sample, measure: str) -> float | None:
        """When ``measure`` (a :class:`Sample` field) first grew beyond ``baseline``, if it did."""
        for sample in self.samples:
            if sample.at > baseline.at and getattr(sample, measure) > getattr(baseline, measure):
                return sample.at
        return None


def _read_only(url: str, sql: str, args: tuple[str, ...] = ()) -> tuple[Any, ...] | None:
    """One row from a node's store, read beside the node; ``None`` if it cannot be read now."""
    try:
        rows = _query(url, sql, args, timeout=0.5)
    except (sqlite3.Error, psycopg.Error):
        return None
    return rows[0] if rows else None


def _read_all(url: str, sql: str) -> list[tuple[Any, ...]]:
    return _query(url, sql, (), timeout=10)


def _query(url: str, sql: str, args: tuple[str, ...], *, timeout: float) -> list[tuple[Any, ...]]:
    if is_postgres(url):
        with psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=True) as conn:
            if not args:  # without parameters, a "%" in the SQL is just a "%"
                return [tuple(row) for row in conn.execute(sql)]
            return [tuple(row) for row in conn.execute(sql.replace("?", "%s"), args)]
    path = Path(url.removeprefix("sqlite:///"))
    if not path.exists():
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
    try:
        return [tuple(row) for row in connection.execute(sql, args)]
    finally:
        connection.close()


# ---------------------------------------------------------------- the batch


@dataclass(frozen=True)
class Poison:
    """A message that must end in the receiver's dead-letter queue."""

    message_id: str
    body: bytes
    codes: frozenset[str]
    """The refusal codes it may carry."""


@dataclass(frozen=True)
class Template:
    """The sender's vendor database, seeded once per module and copied per scenario."""

    database: Path
    numbers: frozenset[str]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    folder = tmp_path_factory.mktemp("ocmwdata-template")
    database = folder / "vendor.sqlite3"
    gent = cpas_id_of(GENT)
    adapter = OcmwdataAdapter(gent, {"url": f"sqlite:///{database}"})
    try:
        numbers = adapter.seed(DOSSIERS, seed=2024)
    finally:
        adapter.close()
    return Template(database, frozenset(numbers))


class Batch:
    """One scenario's world: a federation, the two CPAS's files, their processes, the monitor.

    Gent (sender) runs ``run`` and ``send --all``; Liège (receiver) runs
    ``run``. All use their own namespace on the given broker URL(s).
    """

    def __init__(
        self,
        name: str,
        root: Path,
        amqp_url: str,
        template: Template,
        *,
        receiver_settings: dict[str, object] | None = None,
        sender_settings: dict[str, object] | None = None,
        fiches: Path | None = None,
        recovery_measure: str = "receipts",
        receiver_workers: int = 1,
    ) -> None:
        self.name = name
        self.recovery_measure = recovery_measure
        """What counts as progress after the fault: ``receipts`` (end to end) or ``imported``."""
        self.root = root
        self.amqp_url = amqp_url
        self.numbers = template.numbers
        self.names = Names(f"faults-{uuid.uuid4().hex[:8]}")
        self.federation: LocalFederation = make_local_federation(
            root / "federation", [GENT, LIEGE], small=True
        )
        self.gent = self.federation.member(GENT)
        self.liege = self.federation.member(LIEGE)
        vendor = self.gent.folder / "vendor.sqlite3"
        shutil.copyfile(template.database, vendor)
        self.fiches = fiches or self.liege.folder / "fichesociale"
        self.gent_config = self.federation.node_config(
            self.gent.cpas_id, "ocmwdata", {"url": f"sqlite:///{vendor}"},
            amqp_url=amqp_url, namespace=self.names.namespace, **(sender_settings or {}),
        )  # fmt: skip
        self.liege_config = self.federation.node_config(
            self.liege.cpas_id, "fichesociale", {"folder": str(self.fiches)},
            amqp_url=amqp_url, namespace=self.names.namespace, **(receiver_settings or {}),
        )  # fmt: skip
        gent_toml, liege_toml = self.gent.folder / "node.toml", self.liege.folder / "node.toml"
        logs = root / "logs"
        logs.mkdir()
        self.receiver = Gateway(
            ["run", "--config", str(liege_toml), "--workers", str(receiver_workers)],
            logs / "liege-run",
        )
        self.sender_node = Gateway(["run", "--config", str(gent_toml)], logs / "gent-run")
        self.send = Gateway(
            ["send", "--config", str(gent_toml), "--all", "--to", self.liege.cpas_id,
             "--purpose", PURPOSE.value, "--wait", "0"],
            logs / "gent-send",
        )  # fmt: skip
        self.monitor = ProgressMonitor(self.gent_config.store, self.liege_config.store)
        self.poison: list[Poison] = []
        self.figures = Figures(name, len(self.numbers))
        self.started_at = 0.0
        self.fault_at: float | None = None
        self.baseline: Sample | None = None
        """What the stores said when the fault was removed: progress is measured from it."""
        self.passed = False
        """Set by the scenario once every check held."""

    # --------------------------------------------------------------- running

    @property
    def processes(self) -> tuple[Gateway, ...]:
        return (self.receiver, self.sender_node, self.send)

    def start(self) -> None:
        """Receiver first (its inbox must exist), then the sender's node, then the bulk send."""
        self.started_at = time.monotonic()
        self.receiver.start().wait_running()
        self.sender_node.start().wait_running()
        self.monitor.start()
        self.send.start()

    def wait_for(self, what: str, condition: Callable[[Sample], bool]) -> None:
        """Wait until ``condition`` holds of the latest sample; fail if the batch is stuck."""
        last_change, previous = time.monotonic(), self.monitor.latest
        while not condition(self.monitor.latest):
            current = self.monitor.latest
            if (current.outbox, current.confirmed, current.receipts, current.imported) != (
                previous.outbox, previous.confirmed, previous.receipts, previous.imported,
            ):  # fmt: skip
                last_change, previous = time.monotonic(), current
            if time.monotonic() - last_change > STALL_SECONDS:
                raise AssertionError(f"stuck while waiting for {what}: {self.diagnosis()}")
            time.sleep(0.2)

    def midway(self) -> None:
        """Wait until the bulk send is under way and dossiers are arriving."""
        self.wait_for(
            "the batch to be midway",
            lambda s: s.outbox >= MIDWAY * len(self.numbers) and s.imported > 0,
        )

    def fault(self) -> None:
        self.fault_at = time.monotonic()

    def fault_removed(self) -> None:
        # A fresh sample: the monitor's last one may predate a commit made
        # just before the fault.
        self.baseline = self.monitor.sample()

    def finish(self) -> None:
        """Wait for every receipt and the end of the bulk send; stop the nodes gracefully."""
        total = len(self.numbers)
        self.wait_for(
            "every receipt",
            lambda s: s.receipts == total and s.outbox == total and not self.send.running,
        )
        self.wait_for_poison_receipts()
        # Republished duplicates may still be on their way after the last
        # receipt: the nodes recognise and ack them, so let the inboxes drain
        # (twice empty, a second apart) before stopping the nodes.
        _eventually("the inboxes to drain", self._inboxes_drained)
        for process in self.processes:
            process.terminate()
        self.monitor.stop()

    def _inboxes_drained(self) -> bool:
        for attempt in range(2):
            depths = self.queue_depths()
            if depths["liege inbox"] or depths["gent inbox"]:
                return False
            if attempt == 0:
                time.sleep(1.0)
        return True

    def wait_for_poison_receipts(self, timeout: float = 60.0) -> None:
        """Gent gets a rejected receipt for the poison it signed; wait until it is recorded."""
        ids = [p.message_id for p in self.expected_rejections()]
        store = self.gent_config.store
        deadline = time.monotonic() + timeout
        while ids and time.monotonic() < deadline:
            marks = ",".join("?" * len(ids))
            row = _read_only(
                store,
                f"SELECT COUNT(*) FROM outbox WHERE message_id IN ({marks})"
                " AND outcome IS NOT NULL",
                tuple(ids),
            )
            if row and row[0] == len(ids):
                return
            time.sleep(0.2)

    def kill_everything(self) -> None:
        for process in self.processes:
            process.kill()
        with contextlib.suppress(RuntimeError):
            self.monitor.stop()

    # ---------------------------------------------------------------- poison

    def publish_poison(self, poison: list[Poison]) -> None:
        """Put messages straight into Liège's inbox, as a broken or hostile sender would."""
        connection = _connect(self.amqp_url)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for item in poison:
                channel.basic_publish(
                    self.names.route,
                    self.liege.cpas_id,
                    item.body,
                    pika.BasicProperties(
                        delivery_mode=2,
                        content_type="application/xml",
                        message_id=item.message_id,
                        type="transfer",
                    ),
                    mandatory=True,
                )
        finally:
            connection.close()
        self.poison.extend(poison)

    def make_poison(self, kinds: Sequence[str]) -> list[Poison]:
        """One poison message per kind: ``garbage``, ``tampered`` or ``bad-number``.

        ``tampered`` is an envelope from Gent whose header was changed after
        signing; ``bad-number`` is a well-signed, well-sealed transfer from
        Gent whose NISS fails its check digits. Those are recorded in Gent's
        outbox, as if Gent's own software had produced them, so that Gent's
        rejected receipts have a message to land on.
        """
        adapter = OcmwdataAdapter(self.gent.cpas_id, self.gent_config.adapter.options)
        try:
            people = [adapter.export_dossier(n) for n in sorted(self.numbers)[:10]]
        finally:
            adapter.close()
        store = Store(self.gent_config.store)
        poison: list[Poison] = []
        try:
            for i, kind in enumerate(kinds, 1):
                dossier = people[i % len(people)]
                assert dossier is not None
                if kind == "garbage":
                    poison.append(self._garbage(i))
                elif kind == "tampered":
                    poison.append(self._tampered(i, dossier))
                else:
                    poison.append(self._bad_number(i, dossier, store))
        finally:
            store.close()
        return poison

    def _garbage(self, i: int) -> Poison:
        body = (b"\x00\x9fnot a message\xff", b"PK\x03\x04not xml")[i % 2]
        return Poison(f"garbage-{i}", body, frozenset({"xml.encoding", "xml.malformed"}))

    def _poison_header(self, i: int) -> Header:
        return Header.new(
            MessageType.TRANSFER,
            sender=self.gent.cpas_id,
            recipient=self.liege.cpas_id,
            purpose=PURPOSE,
            case_reference=f"{POISON_PREFIX}{i}",
        )

    def _tampered(self, i: int, dossier: Dossier) -> Poison:
        header = self._poison_header(i)
        body = TransferBody(dossier).to_xml()
        envelope = seal(header, body, keys=self.gent.node_keys, directory=self.federation.directory)
        changed = header.model_copy(update={"case_reference": "CHANGED-AFTER-SIGNING"})
        tampered = envelope.model_copy(update={"header": changed}).to_xml()
        return Poison(str(header.message_id), tampered, frozenset({"envelope.signature"}))

    def _bad_number(self, i: int, dossier: Dossier, store: Store) -> Poison:
        header = self._poison_header(i)
        good = dossier.person.number
        bad = good[:-2] + f"{(int(good[-2:]) + 1) % 100:02d}"
        body = TransferBody(dossier).to_xml()
        body = body.replace(good.encode(), bad.encode())
        envelope = seal(header, body, keys=self.gent.node_keys, directory=self.federation.directory)
        data = envelope.to_xml()
        message_id = str(header.message_id)
        store.add_outgoing(
            [
                OutboxRecord(
                    message_id=message_id,
                    type=MessageType.TRANSFER.value,
                    recipient=self.liege.cpas_id,
                    purpose=PURPOSE.value,
                    case_reference=header.case_reference,
                    correlation_id=None,
                    envelope=data,
                )
            ]
        )
        # Confirmed at once: the node must not publish it again at start-up.
        store.mark_confirmed([message_id])
        return Poison(message_id, data, frozenset({"niss.checksum", "bis.checksum"}))

    def expected_rejections(self) -> list[Poison]:
        """Poison that Gent recorded in its outbox (it gets a rejected receipt for it)."""
        return [p for p in self.poison if p.codes & {"niss.checksum", "bis.checksum"}]

    # ---------------------------------------------------------------- checks

    def diagnosis(self) -> str:
        """Where the batch stands, to explain a stuck or failed scenario."""
        s = self.monitor.latest
        parts = [
            f"outbox {s.outbox}/{len(self.numbers)}, confirmed {s.confirmed}, "
            f"receipts {s.receipts}, imported by the receiver {s.imported}",
            f"unconfirmed in the sender's outbox: {s.outbox - s.confirmed}",
            "processes: "
            + ", ".join(
                f"{p.args[0]}:{'running' if p.running else f'exit {p.returncode}'}"
                for p in self.processes
            ),
        ]
        with contextlib.suppress(Exception):
            parts.append(f"queues: {self.queue_depths()}")
        return "; ".join(parts)

    def queue_depths(self) -> dict[str, int]:
        """Ready messages in the four queues of the two CPAS (all of them, once nodes stopped)."""
        queues = {
            "liege inbox": self.names.inbox(self.liege.cpas_id),
            "liege dead": self.names.dead_letters(self.liege.cpas_id),
            "gent inbox": self.names.inbox(self.gent.cpas_id),
            "gent dead": self.names.dead_letters(self.gent.cpas_id),
        }
        connection = _connect(self.amqp_url)
        depths = {}
        try:
            for label, queue in queues.items():
                try:
                    declared = connection.channel().queue_declare(queue, passive=True)
                    depths[label] = declared.method.message_count
                except pika.exceptions.ChannelClosedByBroker:
                    depths[label] = 0  # never declared: that CPAS's node never ran
        finally:
            connection.close()
        return depths

    def verify(self, *, listing_url: str | None = None) -> None:
        """Every good dossier imported exactly once, receipted; only poison dead-lettered.

        :param listing_url: the broker address(es) to list dead letters from,
            when not the nodes' own (see the cluster scenario).
        """
        figures, total = self.figures, len(self.numbers)
        good = self._check_sender()
        figures.sent = len(good)
        imported = self._check_receiver_store(good)
        figures.imported = len(imported)
        figures.vendor_duplicates = self._check_vendor(good)
        depths = self.queue_depths()
        figures.dead_lettered = depths["liege dead"]
        config = self.liege_config
        if listing_url is not None:
            config = config.model_copy(update={"amqp_url": SecretStr(listing_url)})
        letters = list_dead_letters(build_node(config, consume=False))
        assert {d.message_id: d.code for d in letters}.keys() == {p.message_id for p in self.poison}
        for letter in letters:
            expected = next(p for p in self.poison if p.message_id == letter.message_id)
            assert letter.code in expected.codes, (letter, expected.codes)
        assert depths == {
            "liege inbox": 0,
            "liege dead": len(self.poison),
            "gent inbox": 0,
            "gent dead": 0,
        }
        assert figures.sent == figures.imported == total
        assert figures.vendor_duplicates == 0

    def verify_journals(self) -> None:
        """Both journals intact, and the sender's journal records exactly what its outbox sent."""
        for toml in (self.gent.folder / "node.toml", self.liege.folder / "node.toml"):
            done = subprocess.run(
                [_cli(), "journal", "verify", "--config", str(toml)], capture_output=True
            )
            assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
        journal = JournalSettings.from_config(self.gent_config).url
        journaled = {
            row[0]
            for row in _read_all(
                journal,
                "SELECT message_id FROM journal_entries"
                " WHERE event = 'sent' AND message_type = 'transfer'",
            )
        }
        outbox = {
            row[0]
            for row in _read_all(
                self.gent_config.store, "SELECT message_id FROM outbox WHERE type = 'transfer'"
            )
        }
        # Every message that can leave is journaled. The store and the journal
        # are two databases: a full disk may let the journal's commit through
        # and fail the outbox's just after it. Such a batch never left (the
        # bulk send records it again, under new ids): journaled, never received.
        assert outbox <= journaled
        received = {
            row[0]
            for row in _read_all(
                self.liege_config.store, "SELECT message_id FROM inbox WHERE type = 'transfer'"
            )
        }
        assert not (journaled - outbox) & received

    def _check_sender(self) -> set[str]:
        store = Store(self.gent_config.store)
        try:
            entries = store.outgoing_all()
        finally:
            store.close()
        good = [
            e
            for e in entries
            if e.type == "transfer" and not e.case_reference.startswith(POISON_PREFIX)
        ]
        # One message per dossier: a resumed bulk send never sends a case twice.
        assert len({e.case_reference for e in good}) == len(good) == len(self.numbers)
        not_imported = [e for e in good if e.outcome != "imported"]
        assert not not_imported, f"{len(not_imported)} messages without an imported receipt"
        assert all(e.confirmed_at is not None for e in good)
        rejected = {e.message_id: e.outcome_code for e in entries if e.outcome == "rejected"}
        assert rejected.keys() == {p.message_id for p in self.expected_rejections()}
        assert set(rejected.values()) <= {"niss.checksum", "bis.checksum"}
        return {e.message_id for e in good}

    def _check_receiver_store(self, good: set[str]) -> set[str]:
        rows = _read_all(
            self.liege_config.store,
            "SELECT message_id, outcome FROM inbox WHERE type = 'transfer'",
        )
        imported = {mid for mid, outcome in rows if outcome == "imported"}
        rejected = {mid for mid, outcome in rows if outcome == "rejected"}
        assert imported == good
        assert rejected == {p.message_id for p in self.expected_rejections()}
        return imported

    def _check_vendor(self, good: set[str]) -> int:
        """Fiches are exactly the batch's people; one message marker per fiche, per message."""
        fiches = sorted(p.stem for p in (self.fiches / "fiches").glob("*.json"))
        assert fiches == sorted(self.numbers), "the fiches are not exactly the people sent"
        markers = [
            json.loads(p.read_text(encoding="utf-8"))
            for p in (self.fiches / "recus").glob("*.json")
        ]
        per_fiche = Counter(m["numero_dossier"] for m in markers)
        strangers = {m["message_id"] for m in markers} - good
        return sum(n - 1 for n in per_fiche.values()) + len(strangers)

    def record(self, report: FaultReport, outcome: str) -> None:
        """Fill in the counters and timings, whatever the outcome, and add them to the report."""
        figures = self.figures
        figures.outcome = outcome
        figures.elapsed_seconds = round(time.monotonic() - self.started_at, 1)
        receiver_stats = sum(self.receiver.stats, Counter[str]())
        figures.wire_duplicates = receiver_stats["duplicates"]
        figures.redeliveries = receiver_stats["redelivered"]
        figures.republished = self.sender_node.republished() + self.send.republished()
        figures.lost_counters = self.receiver.killed
        if self.fault_at is not None and self.baseline is not None:
            figures.fault_seconds = round(self.baseline.at - self.fault_at, 1)
            progress = self.monitor.first_growth_after(self.baseline, self.recovery_measure)
            if progress is not None:
                figures.recovery_seconds = round(progress - self.fault_at, 1)
        if outcome != "passed":
            figures.notes.append(self.diagnosis())
        report.add(figures)


def _connect(amqp_url: str) -> pika.BlockingConnection:
    """A connection to the first member that answers."""
    error: Exception | None = None
    for url in split_urls(amqp_url):
        try:
            return pika.BlockingConnection(pika.URLParameters(url))
        except pika.exceptions.AMQPError as exc:
            error = exc
    raise AssertionError(f"no broker answers at {amqp_url}: {error}")


@pytest.fixture
def batch(
    tmp_path: Path, template: Template, fault_report: FaultReport
) -> Iterator[Callable[..., Batch]]:
    """Make the scenario's :class:`Batch`; record its figures and kill what is left at the end."""
    made: list[Batch] = []

    def factory(
        scenario: str,
        amqp_url: str,
        *,
        recovery_measure: str = "receipts",
        sender_settings: dict[str, object] | None = None,
        fiches: Path | None = None,
        receiver_workers: int = 1,
        **settings: Any,
    ) -> Batch:
        world = Batch(
            scenario,
            tmp_path,
            amqp_url,
            template,
            receiver_settings=settings or None,
            sender_settings=sender_settings,
            fiches=fiches,
            recovery_measure=recovery_measure,
            receiver_workers=receiver_workers,
        )
        made.append(world)
        return world

    yield factory
    for world in made:
        world.kill_everything()
        world.record(fault_report, "passed" if world.passed else "FAILED")


# ---------------------------------------------------------------- scenarios


def test_a_broker_restart_mid_batch_loses_nothing_and_imports_nothing_twice(
    broker: BrokerNode, batch: Callable[..., Batch]
) -> None:
    world = batch("1 broker restart", broker.url)
    world.start()
    world.midway()
    world.fault()
    # A crash rather than a graceful stop: it is instant, so it strikes while
    # the bulk send is still publishing, and only what the broker confirmed
    # (written to disk) may count as held.
    broker.kill()
    broker.start()
    world.fault_removed()
    world.finish()
    world.verify()
    world.passed = True


@pytest.mark.parametrize("workers", [1, 2])
def test_a_receiving_node_killed_mid_batch_imports_everything_once_after_restart(
    broker: BrokerNode, batch: Callable[..., Batch], workers: int
) -> None:
    name = "2 receiver SIGKILL" + (f", {workers} workers" if workers > 1 else "")
    world = batch(name, broker.url, recovery_measure="imported", receiver_workers=workers)
    world.start()
    world.midway()
    world.fault()
    world.receiver.kill()
    world.receiver.start()
    world.fault_removed()
    world.receiver.wait_running()
    world.finish()
    world.verify()
    world.passed = True


def test_a_sending_cpas_killed_mid_batch_finishes_the_batch_after_restart(
    broker: BrokerNode, batch: Callable[..., Batch]
) -> None:
    world = batch("3 sender SIGKILL", broker.url)
    world.start()
    world.midway()
    world.fault()
    world.send.kill()
    world.sender_node.kill()
    # The node first (it republishes what the outbox holds unconfirmed),
    # then the same bulk send again: it resumes after what was sent.
    world.sender_node.start()
    world.fault_removed()
    world.sender_node.wait_running()
    world.send.start()
    world.finish()
    assert world.baseline is not None and world.fault_at is not None
    resumed = world.monitor.first_growth_after(world.baseline, "outbox")
    if resumed is not None:
        world.figures.notes.append(
            f"sending resumed {resumed - world.fault_at:.1f} s after the kill"
        )
    world.verify()
    world.passed = True


def test_an_unavailable_vendor_system_delays_imports_without_losing_or_refusing_any(
    broker: BrokerNode, batch: Callable[..., Batch]
) -> None:
    world = batch(
        "4 vendor outage",
        broker.url,
        recovery_measure="imported",
        import_retry_seconds=IMPORT_RETRY_SECONDS,
    )
    world.start()
    world.midway()
    world.fault()
    with _vendor_unavailable(world):
        # The batch in hand may still finish (its fiches were written); then nothing.
        time.sleep(OUTAGE_SECONDS / 2)
        imported_before = world.monitor.latest.imported
        time.sleep(OUTAGE_SECONDS / 2)
        imported_during = world.monitor.latest.imported - imported_before
    world.fault_removed()
    assert imported_during == 0, f"{imported_during} imports while the vendor was away"
    world.finish()
    world.verify()
    world.passed = True


def test_a_vendor_outage_beyond_the_retry_budget_pauses_the_receiver_and_dead_letters_nothing(
    broker: BrokerNode, batch: Callable[..., Batch]
) -> None:
    # No retry budget at all: every import fails at once while the vendor is
    # away. The receiver holds its deliveries and pauses instead of giving
    # them back, so no delivery attempt is spent and nothing is dead-lettered.
    world = batch(
        "4b outage > budget",
        broker.url,
        recovery_measure="imported",
        import_retry_seconds=0.0,
    )
    world.start()
    world.midway()
    world.fault()
    with _vendor_unavailable(world):
        time.sleep(OUTAGE_SECONDS)
        assert world.queue_depths()["liege dead"] == 0
    world.fault_removed()
    world.finish()
    world.verify()
    world.passed = True


@contextlib.contextmanager
def _vendor_unavailable(world: Batch) -> Iterator[None]:
    """FicheSociale's ``fiches`` folder replaced by a regular file for the block's duration.

    Every read and write of a fiche then fails with an OSError, which the
    adapter reports as a transient AdapterError (permissions would not stop
    the root user the tests may run as).
    """
    fiches = world.fiches / "fiches"
    away = world.fiches / "fiches.away"
    fiches.rename(away)
    fiches.write_bytes(b"")
    try:
        yield
    finally:
        fiches.unlink()
        away.rename(fiches)


def test_poison_messages_are_dead_lettered_with_their_reasons_and_the_rest_goes_through(
    broker: BrokerNode, batch: Callable[..., Batch]
) -> None:
    world = batch("5 poison messages", broker.url)
    poison = world.make_poison(["garbage", "tampered", "bad-number"] * 2)
    world.start()
    world.publish_poison(poison[:3])
    world.midway()
    world.publish_poison(poison[3:])
    world.finish()
    world.verify()
    world.passed = True


def test_poison_being_refused_while_the_broker_restarts_all_ends_in_the_dead_letter_queue(
    broker: BrokerNode, batch: Callable[..., Batch]
) -> None:
    world = batch("5b poison + restart", broker.url)
    world.figures.dossiers = 0
    world.figures.notes.append(f"{POISON_IN_FLIGHT} signed poison messages, no good ones")
    poison = world.make_poison(["bad-number"] * POISON_IN_FLIGHT)
    world.started_at = time.monotonic()
    # Start once to declare the inbox, stop, and let the poison pile up: then
    # many refusals are in hand when the broker goes away.
    world.receiver.start().wait_running()
    world.receiver.terminate()
    world.publish_poison(poison)
    world.receiver.start().wait_running()
    _eventually(
        "a third of the poison to be dead-lettered",
        lambda: world.queue_depths()["liege dead"] >= POISON_IN_FLIGHT // 3,
    )
    world.fault()
    broker.stop()
    broker.start()
    world.fault_removed()
    seen: list[int] = []

    def settled() -> bool:
        depths = world.queue_depths()
        seen.append(depths["liege dead"])
        return depths["liege inbox"] == 0 and seen[-6:] == [seen[-1]] * 6

    _eventually("the inbox to drain", settled)
    world.receiver.terminate()
    depths = world.queue_depths()
    world.figures.dead_lettered = depths["liege dead"]
    letters = list_dead_letters(build_node(world.liege_config, consume=False))
    assert depths["liege inbox"] == 0
    missing = {p.message_id for p in poison} - {d.message_id for d in letters}
    assert not missing, f"{len(missing)} refused messages are neither in the inbox nor dead letters"
    assert {d.code for d in letters} <= {"niss.checksum", "bis.checksum"}
    world.passed = True


def _eventually(what: str, condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_a_cluster_member_stopping_mid_batch_loses_nothing_and_imports_nothing_twice(
    cluster: Cluster, batch: Callable[..., Batch]
) -> None:
    world = batch("6 cluster member stop", cluster.amqp_url)
    world.start()
    before = cluster.any_running().queues(world.names.namespace)
    everyone = {node.node_name for node in cluster.nodes}
    assert len(before) == 6  # each CPAS: its inbox, dead letters and queue of directory editions
    for name, queue in before.items():
        assert queue["type"] == "quorum", name
        assert set(queue["members"]) == everyone, f"{name} is not replicated on every member"
    # The nodes connect to the first address of their list: stop that member.
    first = cluster.nodes[0]
    inbox = world.names.inbox(world.liege.cpas_id)
    world.figures.notes.append(f"leader of the inbox before: {before[inbox]['leader']}")
    world.midway()
    world.fault()
    first.stop()
    world.fault_removed()
    world.finish()
    # Dead letters listed through a running member: whether the listing
    # itself fails over is the next test's subject.
    others = ",".join(node.url for node in cluster.nodes[1:])
    world.verify(listing_url=others)
    after = cluster.any_running().queues(world.names.namespace)
    world.figures.notes.append(f"leader of the inbox after: {after[inbox]['leader']}")
    assert all(queue["leader"] != first.node_name for queue in after.values())
    # The member comes back and takes its place in every queue again.
    first.start()
    for name, queue in first.queues(world.names.namespace).items():
        assert set(queue["members"]) == everyone, name
        assert queue["messages"] == (len(world.poison) if ".dead." in name else 0), name
    world.passed = True


def test_dead_letters_are_listed_when_the_first_cluster_member_is_down(
    cluster: Cluster, tmp_path: Path
) -> None:
    federation = make_local_federation(tmp_path / "federation", [LIEGE], small=True)
    liege = federation.member(LIEGE)
    config = federation.node_config(
        liege.cpas_id, "fichesociale", {"folder": str(tmp_path / "fiches")},
        amqp_url=cluster.amqp_url, namespace=f"faults-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    node = build_node(config)
    node.start()
    node.stop()
    first = cluster.nodes[0]
    first.stop()
    try:
        assert list_dead_letters(node) == []
    finally:
        first.start()


# ---------------------------------------------- crash-loops, store outages, full disks


def test_a_receiver_killed_ten_times_in_a_row_mid_batch_dead_letters_nothing(
    broker: BrokerNode, batch: Callable[..., Batch]
) -> None:
    world = batch("7 receiver crash-loop", broker.url, recovery_measure="imported")
    world.start()
    world.midway()
    world.fault()
    for _ in range(CRASH_LOOP_KILLS):
        # Killed just after it started consuming: it dies holding deliveries,
        # which the broker counts against them every time.
        world.receiver.kill()
        world.receiver.start().wait_running()
        time.sleep(CRASH_LOOP_HOLD_SECONDS)
    world.fault_removed()
    world.finish()
    world.verify()
    world.passed = True


@pytest.fixture(scope="module")
def fault_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this module's own, which scenarios stop and start."""
    if postgres_bin() is None:
        unavailable("PostgreSQL (initdb, pg_ctl) is not installed on this machine")
    server = PrivatePostgres.create()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.mark.parametrize("side", ["receiver", "sender"])
def test_a_store_outage_mid_batch_is_waited_out_without_a_restart(
    broker: BrokerNode, batch: Callable[..., Batch], fault_postgres: PrivatePostgres, side: str
) -> None:
    if not fault_postgres.running:
        fault_postgres.start()
    store = fault_postgres.database_url(f"{side}_{uuid.uuid4().hex[:8]}")
    settings: dict[str, Any] = {"store": store}
    if side == "sender":
        world = batch("8 sender store outage", broker.url, sender_settings=settings)
    else:
        world = batch(
            "8 receiver store outage", broker.url, recovery_measure="imported", **settings
        )
    world.start()
    world.midway()
    world.fault()
    fault_postgres.stop()
    time.sleep(STORE_OUTAGE_SECONDS)
    fault_postgres.start()
    world.fault_removed()
    world.finish()
    world.verify()
    # Nobody was restarted: one lifetime each, and the bulk send went through.
    assert [len(p.logs) for p in world.processes] == [1, 1, 1]
    assert world.send.returncode == 0
    waiting = world.receiver if side == "receiver" else world.sender_node
    assert "store unavailable" in waiting.output()
    world.passed = True


@pytest.fixture
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Path]]:
    """Make small file systems (tmpfs) the scenario can fill; unmounted afterwards."""
    mounted: list[Path] = []

    def mount() -> Path:
        folder = tmp_path_factory.mktemp("small-disk")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK_MB}m", "tmpfs", str(folder)],
            capture_output=True,
        )
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip()
            unavailable(f"cannot mount a small file system here (root needed): {reason}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        # Lazy: a process of a failed scenario may still hold a file there.
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def _disk_full(folder: Path) -> Iterator[None]:
    """Fill the file system of ``folder`` to the last byte for the block's duration."""
    filler = folder / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
        with contextlib.suppress(OSError):  # the last few bytes
            while True:
                out.write(b"\0" * 512)
    try:
        yield
    finally:
        filler.unlink()


@pytest.mark.skipif(
    DOSSIERS < FULL_RUN_DOSSIERS and not os.environ.get("CPAS_FAULT_DISK_FULL"),
    reason="disk-full scenarios run in the 5,000-dossier variant (or with CPAS_FAULT_DISK_FULL=1)",
)
@pytest.mark.parametrize("full", ["receiver store", "receiver vendor files", "sender store"])
def test_a_full_disk_mid_batch_spends_no_delivery_attempt_and_resumes_when_space_returns(
    small_disk: Callable[[], Path], broker: BrokerNode, batch: Callable[..., Batch], full: str
) -> None:
    disk = small_disk()
    store = str(disk / "state" / "node.sqlite3")
    name = f"9 {full} full"
    if full == "sender store":
        world = batch(name, broker.url, sender_settings={"store": store})
        # The bulk send stops rather than wait for long: run again, it resumes.
        world.send.args += ["--store-wait", "2"]
    elif full == "receiver store":
        world = batch(name, broker.url, recovery_measure="imported", store=store)
    else:
        # A short retry budget: the receiver soon holds the batch and pauses.
        world = batch(name, broker.url, recovery_measure="imported",
                      fiches=disk / "fichesociale", import_retry_seconds=2.0)  # fmt: skip
    world.start()
    world.midway()
    world.fault()
    with _disk_full(disk):
        time.sleep(DISK_FULL_SECONDS)
        assert world.queue_depths()["liege dead"] == 0
        if full == "sender store":
            _eventually("the bulk send to stop", lambda: not world.send.running)
    world.fault_removed()
    if full == "sender store":
        output = world.send.output()
        assert world.send.returncode == 1, output[-2000:]
        assert "the bulk send stopped" in output and "Traceback" not in output, output[-2000:]
        world.figures.notes.append("send --all stopped on the full disk; run again, it resumed")
        world.send.start()
    node = world.sender_node if full == "sender store" else world.receiver
    said = "vendor system unavailable" if full == "receiver vendor files" else "store unavailable"
    assert f"{said} (" in node.output()
    world.finish()
    world.verify()
    world.verify_journals()
    world.passed = True
