"""What every section of the benchmark shares.

A :class:`Bench` owns one run's private world: a temporary folder, a local
federation (keys and a signed directory), its own broker namespace, the
vendor systems it seeds, the nodes it starts in this process and the node
processes it starts beside it. :meth:`Bench.close` stops them all, deletes the
namespace's exchanges and queues and removes the folder.

It also reads what the kernel knows about a process (CPU time, peak resident
memory) and finds the broker's own process, so that CPU per dossier can be
split between the sender, the receiver and RabbitMQ.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pika

from gateway.adapters import AdapterRegistry, Inspectable, Seedable, load_adapters
from gateway.broker import Names, Topology, cpas_topology, delete_topology, directory_topology
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.node import Node
from gateway.store import Store

log = logging.getLogger(__name__)

OCMWDATA = "ocmwdata"
FICHESOCIALE = "fichesociale"

# One CPAS per role, so that no two nodes ever consume the same inbox.
# Large municipalities: that is where the volume is.
GENT, LIEGE = "44021", "62063"
"""Pipeline OCMWdata -> FicheSociale, and the latency runs (Gent asks, Liège answers)."""
NAMUR, ANTWERPEN = "92094", "11002"
"""Pipeline FicheSociale -> OCMWdata."""
CHARLEROI, BRUXELLES = "52011", "21004"
"""Bulk migration: two node processes."""
MEMBERS = (GENT, LIEGE, NAMUR, ANTWERPEN, CHARLEROI, BRUXELLES)

SEED_CHUNK = 20_000
"""People seeded per call: bounds the memory the generator holds at once."""


# ------------------------------------------------------------ process facts


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far, or ``None`` when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """The process's peak resident memory (``VmHWM``) in MB, or ``None`` when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return None if match is None else int(match.group(1)) / 1024


def broker_pid() -> int | None:
    """The local RabbitMQ's Erlang VM, when it runs on this machine and is visible."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() == "beam.smp":
                return int(entry.name)
    return None


def broker_version(url: str) -> str | None:
    """The version the broker announces when a client connects."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
    except Exception:
        return None
    try:
        # The blocking adapter keeps the announced properties on its
        # underlying connection object.
        properties = connection._impl.server_properties or {}
        version = properties.get("version")
        return version.decode() if isinstance(version, bytes) else version
    finally:
        connection.close()


@dataclass
class CpuMeter:
    """CPU seconds used by this process, a peer node (all its processes) and the broker
    between two readings."""

    peer_pids: list[int] = field(default_factory=list)
    _start: dict[str, float | None] = field(default_factory=dict)
    _broker: int | None = field(default_factory=broker_pid)

    def _read(self) -> dict[str, float | None]:
        peer = [process_cpu_seconds(pid) for pid in self.peer_pids]
        return {
            "sender": time.process_time(),
            "receiver": None if not peer or None in peer else sum(filter(None, peer)),
            "broker": None if self._broker is None else process_cpu_seconds(self._broker),
        }

    def start(self) -> CpuMeter:
        self._start = self._read()
        return self

    def used(self) -> dict[str, float | None]:
        """Seconds of CPU per party since :meth:`start` (``None`` when unreadable)."""
        now = self._read()
        out: dict[str, float | None] = {}
        for party, value in now.items():
            before = self._start.get(party)
            out[party] = None if value is None or before is None else value - before
        return out


# ------------------------------------------------------------------ nodes


class TimedStore(Store):
    """A node's store that also notes when each final outcome was recorded.

    The benchmark reads the moment a receipt or a response reaches the
    sender from here: it is when the node records the message's fate.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.outcome_times: dict[str, float] = {}
        self._recorded = threading.Condition()

    def record_outcome(self, message_id: str, outcome: str, code: str | None) -> bool:
        known = super().record_outcome(message_id, outcome, code)
        if outcome != "awaiting-release":
            self.outcome_times.setdefault(message_id, time.monotonic())
            with self._recorded:
                self._recorded.notify_all()
        return known

    def wait_outcomes(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` outcomes are recorded; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._recorded:
            while len(self.outcome_times) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._recorded.wait(min(remaining, 0.5))
        return True


@dataclass
class Peer:
    """A node in its own process: ``cpas-gateway run --config FILE``, or its ``--workers``."""

    cpas_id: str
    config: Path
    process: subprocess.Popen[str]
    workers: int = 1
    lines: list[str] = field(default_factory=list)
    peak_mb: float | None = None
    """The largest peak resident memory of one of the node's processes."""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def pids(self) -> list[int]:
        """Every process of the node: the command and, with ``--workers``, each worker."""
        for line in self.lines:
            if "worker processes (" in line:
                workers = line.rsplit("(", 1)[1].rstrip(")")
                return [self.pid, *(int(p) for p in workers.split(", "))]
        return [self.pid]

    def wait_running(self, timeout: float = 60.0) -> None:
        """Block until the node says it consumes its inbox (each of its workers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(" running" in line for line in self.lines) >= self.workers:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(
            f"the node {self.cpas_id} did not start: {' / '.join(self.lines[-5:]) or 'no output'}"
        )

    def sample_peak(self) -> float | None:
        """Read the peak resident memory so far (kept: the processes may be gone later)."""
        for pid in self.pids:
            value = peak_rss_mb(pid)
            if value is not None:
                self.peak_mb = max(value, self.peak_mb or 0.0)
        return self.peak_mb

    def stop(self, timeout: float = 60.0) -> dict[str, int]:
        """SIGTERM (a graceful stop), then the node's final counters."""
        self.sample_peak()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        counts: dict[str, int] = {}
        for line in self.lines:  # one line per worker
            if line.startswith("stopped ("):
                for name, value in re.findall(r"([\w.\-]+) (\d+)", line):
                    counts[name] = counts.get(name, 0) + int(value)
        return counts


def gateway_command() -> list[str]:
    """The ``cpas-gateway`` console script of this environment."""
    script = Path(sys.executable).with_name("cpas-gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def child_environment(amqp_url: str) -> dict[str, str]:
    """The environment for node processes: this broker, no stray overrides, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPAS_GATEWAY_")}
    env["CPAS_GATEWAY_AMQP_URL"] = amqp_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(command: list[str], *, env: dict[str, str], stderr_to: Path) -> subprocess.Popen[str]:
    """Start a child whose output lines are read as they come."""
    with stderr_to.open("w") as stderr:
        return subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=stderr_to.parent,
        )


def follow(process: subprocess.Popen[str], sink: list[str]) -> threading.Thread:
    """Collect a child's output lines in ``sink`` (keeps its pipe from filling up)."""

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            sink.append(line.rstrip("\n"))

    thread = threading.Thread(target=read, name=f"follow-{process.pid}", daemon=True)
    thread.start()
    return thread


class Bench:
    """One benchmark run's federation, namespace, vendor systems and nodes.

    :param amqp_url: the broker.
    :param root: where to keep the run's files (default: a new temporary folder,
        removed at :meth:`close`).
    """

    def __init__(self, amqp_url: str, *, root: Path | None = None) -> None:
        self.amqp_url = amqp_url
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="cpas-bench-"))
        self.names = Names(f"bench-{uuid.uuid4().hex[:10]}")
        try:
            self.federation: LocalFederation = make_local_federation(
                self.root / "federation", list(MEMBERS), small=True
            )
            self.registry: AdapterRegistry = load_adapters()
        except BaseException:
            if self._own_root:
                shutil.rmtree(self.root, ignore_errors=True)
            raise
        self.extra_topologies: list[Topology] = []
        """What sections declare beyond the CPAS inboxes, deleted at :meth:`close` too."""
        self._nodes: list[Node] = []
        self._peers: list[Peer] = []

    # ---------------------------------------------------------- identities

    def cpas_id(self, nis_code: str) -> str:
        return self.federation.member(nis_code).cpas_id

    def town(self, nis_code: str) -> str:
        return self.federation.member(nis_code).name

    # ------------------------------------------------------ vendor systems

    def vendor_options(self, adapter: str, nis_code: str) -> dict[str, str]:
        """Where this CPAS's vendor system keeps its data, inside the run's folder."""
        folder = self.federation.member(nis_code).folder / "vendor"
        folder.mkdir(parents=True, exist_ok=True)
        if adapter == OCMWDATA:
            return {"url": f"sqlite:///{folder / 'ocmwdata.sqlite3'}"}
        return {"folder": str(folder / "fichesociale")}

    def seed(
        self,
        adapter: str,
        nis_code: str,
        count: int,
        *,
        seed: int = 1,
        on_chunk: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Fill a CPAS's vendor system with exactly ``count`` synthetic people.

        Seeded in chunks (each chunk its own random stream) so that a large
        caseload never sits in memory at once; people drawn twice across
        chunks are topped up with a further stream. ``on_chunk(people)`` is
        called after each chunk with how many people the system holds.
        """
        vendor = self.registry.create(
            adapter, self.cpas_id(nis_code), self.vendor_options(adapter, nis_code)
        )
        assert isinstance(vendor, Seedable) and isinstance(vendor, Inspectable)
        try:
            stream = seed * 1_000_000
            while (have := vendor.count_persons()) < count:
                vendor.seed(min(SEED_CHUNK, count - have), seed=stream)
                stream += 1
                if on_chunk is not None:
                    on_chunk(vendor.count_persons())
            return vendor.list_person_numbers()[:count]
        finally:
            vendor.close()

    # --------------------------------------------------------------- nodes

    def local_node(self, nis_code: str, adapter: str) -> tuple[Node, TimedStore]:
        """A started node in this process, with a store that notes when outcomes arrive."""
        member = self.federation.member(nis_code)
        store = TimedStore(f"sqlite:///{member.folder / 'local' / 'node.sqlite3'}")
        node = Node(
            member.cpas_id,
            directory=self.federation.directory,
            keys=member.node_keys,
            adapter=self.registry.create(
                adapter, member.cpas_id, self.vendor_options(adapter, nis_code)
            ),
            store=store,
            amqp_urls=[self.amqp_url],
            names=self.names,
        )
        self._nodes.append(node)
        node.start(wait=30.0)
        return node, store

    def stop_node(self, node: Node) -> None:
        if node in self._nodes:
            self._nodes.remove(node)
        node.stop()
        node.adapter.close()
        node.store.close()

    def node_config(self, nis_code: str, adapter: str) -> Path:
        """Write the CPAS's ``node.toml`` (the file an operator would write) and return it."""
        member = self.federation.member(nis_code)
        self.federation.node_config(
            member.cpas_id,
            adapter,
            self.vendor_options(adapter, nis_code),
            amqp_url=self.amqp_url,
            namespace=self.names.namespace,
        )
        return member.folder / "node.toml"

    def peer(self, nis_code: str, adapter: str, *, workers: int = 1) -> Peer:
        """``cpas-gateway run --config [--workers N]`` for this CPAS in its own processes, once
        every worker consumes."""
        config = self.node_config(nis_code, adapter)
        process = spawn(
            [*gateway_command(), "run", "--config", str(config), "--workers", str(workers)],
            env=child_environment(self.amqp_url),
            stderr_to=config.with_name("run.stderr"),
        )
        peer = Peer(self.cpas_id(nis_code), config, process, workers)
        follow(process, peer.lines)
        self._peers.append(peer)
        peer.wait_running()
        return peer

    def stop_peer(self, peer: Peer) -> dict[str, int]:
        if peer in self._peers:
            self._peers.remove(peer)
        return peer.stop()

    # ------------------------------------------------------------- closing

    def close(self) -> None:
        """Stop what still runs, delete the namespace's exchanges and queues, remove the files."""
        for peer in list(self._peers):
            with contextlib.suppress(Exception):
                self.stop_peer(peer)
        for node in list(self._nodes):
            with contextlib.suppress(Exception):
                self.stop_node(node)
        own = cpas_topology(self.federation.members, names=self.names)
        editions = directory_topology(self.federation.members, names=self.names)
        for topology in (own, editions, *self.extra_topologies):
            try:
                delete_topology(self.amqp_url, topology)
            except Exception as exc:  # the figures are written; say what is left behind
                log.warning("could not delete the namespace %s: %s", self.names.namespace, exc)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
