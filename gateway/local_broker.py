"""RabbitMQ nodes of our own on this machine: tests, ``demo --tls`` and ``scripts/cluster.sh``.

The fault tests stop, kill and restart brokers. They must never touch the
machine's default RabbitMQ node, which other tests share, so every node
started here has its own node name, AMQP and distribution ports, data and log
folders, configuration, enabled-plugins file and Erlang cookie. The nodes run
the installed RabbitMQ (``/usr/lib/rabbitmq/bin``, or ``$CPAS_RABBITMQ_SCRIPTS``)
as the current user; only the loopback interface is used.

Python API (the tests)::

    node = BrokerNode.single(tmp_path / "broker", name="faults")
    node.start()
    node.kill()          # SIGKILL, as a crash would
    node.start()
    node.stop()          # graceful

    cluster = Cluster.local(tmp_path / "cluster", prefix="faultmq", first_port=None)
    cluster.start()      # three nodes, joined into one cluster
    cluster.amqp_url     # the comma-separated list a gateway node is configured with

Command line (``scripts/cluster.sh`` is a thin wrapper)::

    python -m gateway.local_broker --root var/cluster start|stop|status|urls
    python -m gateway.local_broker --root var/cluster ctl 2 list_queues name type members

A node can also listen for TLS (:class:`TlsListener`): it then asks every
client for a certificate signed by its CA (``verify_peer`` with
``fail_if_no_peer_cert``), and serves the management API over HTTPS too::

    node = BrokerNode.single(tmp_path / "broker", name="tls", tls=TlsListener(ca, cert, key))
    node.tls_url         # amqps://guest:guest@127.0.0.1:<port>/

Only the standard library is used, so the script runs without the project's
virtualenv.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.private_files import write_private_file

HOST = "localhost"
"""The host part of every node name: the nodes only ever talk over the loopback interface."""

RABBITMQ_SCRIPTS = Path(os.environ.get("CPAS_RABBITMQ_SCRIPTS", "/usr/lib/rabbitmq/bin"))
START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
CLI_TIMEOUT = 120.0

CLUSTER_PREFIX = "cpasmq"
CLUSTER_FIRST_PORT = 5701
"""cluster.sh's nodes: AMQP 5701-5703, distribution 25701-25703, management 15701-15703."""


class BrokerUnavailable(RuntimeError):
    """A broker node could not be started, stopped or reached."""


def rabbitmq_installed() -> bool:
    """Whether the RabbitMQ server scripts this module drives are on this machine."""
    return (RABBITMQ_SCRIPTS / "rabbitmq-server").exists() and shutil.which("erl") is not None


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_cookie(home: Path) -> None:
    """Give ``home`` an Erlang cookie of its own (nodes and CLI sharing it can talk)."""
    home.mkdir(parents=True, exist_ok=True)
    cookie = home / ".erlang.cookie"
    # Erlang refuses a cookie file that others can read.
    if not cookie.exists():
        write_private_file(cookie, secrets.token_hex(20).encode("ascii"), mode=0o400)
    cookie.chmod(0o400)


@dataclass(frozen=True)
class NodeSpec:
    """What makes a node distinct from every other node on the machine."""

    name: str
    """Short node name; the node is ``<name>@localhost``."""
    amqp_port: int
    dist_port: int
    management_port: int | None = None
    """Enable the management plugin on this port (``None``: no plugins at all)."""


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener that requires client certificates: the broker's own PEM files."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    port: int = 0
    """AMQPS port (0: a free one)."""
    management_port: int = 0
    """HTTPS port of the management API when the plugin is enabled (0: a free one)."""

    def config_lines(self, *, management: bool) -> list[str]:
        """The ``rabbitmq.conf`` lines of this listener (see ``deploy/rabbitmq/tls.conf``)."""
        lines = [
            f"listeners.ssl.default = 127.0.0.1:{self.port}",
            f"ssl_options.cacertfile = {self.ca_file}",
            f"ssl_options.certfile = {self.cert_file}",
            f"ssl_options.keyfile = {self.key_file}",
            "ssl_options.verify = verify_peer",
            "ssl_options.fail_if_no_peer_cert = true",
            "ssl_options.versions.1 = tlsv1.3",
            "ssl_options.versions.2 = tlsv1.2",
        ]
        if management:
            lines += [
                f"management.ssl.port = {self.management_port}",
                "management.ssl.ip = 127.0.0.1",
                f"management.ssl.cacertfile = {self.ca_file}",
                f"management.ssl.certfile = {self.cert_file}",
                f"management.ssl.keyfile = {self.key_file}",
            ]
        return lines


class BrokerNode:
    """One RabbitMQ node in its own folder: start, stop, kill and ask it things.

    :param spec: name and ports.
    :param root: the folder of the node set; the node lives in ``root/<name>``
        and ``root`` holds the shared Erlang cookie (it is the nodes' ``$HOME``).
    """

    def __init__(
        self,
        spec: NodeSpec,
        root: Path,
        *,
        peers: Sequence[str] = (),
        tls: TlsListener | None = None,
    ) -> None:
        self.spec = spec
        self.root = root.resolve()
        self.folder = self.root / spec.name
        self.peers = tuple(peers)
        """Node names of the cluster members: a fresh node joins them when it first boots."""
        self.tls = tls
        if tls is not None and (tls.port == 0 or tls.management_port == 0):
            self.tls = replace(
                tls,
                port=tls.port or free_port(),
                management_port=tls.management_port or free_port(),
            )
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def single(
        cls,
        root: Path,
        *,
        name: str,
        tls: TlsListener | None = None,
        management: bool = False,
    ) -> BrokerNode:
        """A stand-alone node with free ports, named uniquely for this process."""
        unique = f"{name}{os.getpid()}"
        spec = NodeSpec(unique, free_port(), free_port(), free_port() if management else None)
        return cls(spec, root, tls=tls)

    def __repr__(self) -> str:
        return f"BrokerNode({self.node_name}, amqp={self.spec.amqp_port})"

    # ------------------------------------------------------------ addresses

    @property
    def node_name(self) -> str:
        return f"{self.spec.name}@{HOST}"

    @property
    def url(self) -> str:
        """The AMQP URL of the node (the default ``guest`` user, loopback only)."""
        return f"amqp://guest:guest@127.0.0.1:{self.spec.amqp_port}/"

    @property
    def tls_url(self) -> str:
        """The AMQPS URL of the node's TLS listener (``guest``, by IP: the certificate lists it)."""
        if self.tls is None:
            raise BrokerUnavailable(f"{self.node_name} has no TLS listener")
        return f"amqps://guest:guest@127.0.0.1:{self.tls.port}/"

    @property
    def management_url(self) -> str:
        """The management API over plain HTTP (loopback only)."""
        if self.spec.management_port is None:
            raise BrokerUnavailable(f"{self.node_name} has no management plugin")
        return f"http://guest:guest@127.0.0.1:{self.spec.management_port}/"

    @property
    def management_tls_url(self) -> str:
        """The management API over HTTPS, when the node listens for TLS."""
        if self.spec.management_port is None or self.tls is None:
            raise BrokerUnavailable(f"{self.node_name} has no management API over TLS")
        return f"https://guest:guest@127.0.0.1:{self.tls.management_port}/"

    @property
    def pid_file(self) -> Path:
        return self.folder / "rabbitmq.pid"

    @property
    def log_folder(self) -> Path:
        return self.folder / "log"

    # ------------------------------------------------------------ lifecycle

    def start(self, *, timeout: float = START_TIMEOUT, wait: bool = True) -> None:
        """Start the node (nothing happens if it runs); wait until it accepts clients.

        :raises BrokerUnavailable: it did not come up within ``timeout``.
        """
        if self.is_running():
            if wait and not _port_open(self.spec.amqp_port):
                self.wait_ready(timeout)
            return
        self._write_files()
        self.pid_file.unlink(missing_ok=True)
        console = (self.log_folder / "console.log").open("ab")
        # A session of its own: the node outlives the command that started it
        # (cluster.sh) and never receives the terminal's Ctrl-C.
        self._process = subprocess.Popen(
            [str(RABBITMQ_SCRIPTS / "rabbitmq-server")],
            env=self._server_env(),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
            start_new_session=True,
        )
        console.close()
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Block until the node's applications run and its AMQP port answers."""
        deadline = time.monotonic() + timeout
        while not self.pid_file.exists():
            if self._process is not None and self._process.poll() is not None:
                raise BrokerUnavailable(
                    f"{self.node_name} exited at start-up; see {self.log_folder}/console.log"
                )
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"{self.node_name} wrote no pid file in {timeout:.0f} s")
            time.sleep(0.1)
        remaining = max(1.0, deadline - time.monotonic())
        result = self._cli(
            "rabbitmqctl",
            "wait",
            str(self.pid_file),
            "--timeout",
            str(int(remaining)),
            check=False,
            timeout=remaining + 10,
        )
        if result.returncode != 0:
            raise BrokerUnavailable(
                f"{self.node_name} did not start: {result.stdout.strip()[-500:]}"
                f" (see {self.log_folder})"
            )
        ports = [self.spec.amqp_port] + ([self.tls.port] if self.tls is not None else [])
        for port in ports:
            while not _port_open(port):
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(f"{self.node_name} does not listen on port {port}")
                time.sleep(0.1)

    def stop(self, *, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the node gracefully (clients see the connection closed); no-op if stopped."""
        if not self.is_running():
            self._reap()
            return
        result = self._cli("rabbitmqctl", "stop", str(self.pid_file), check=False, timeout=timeout)
        if result.returncode != 0 and self.is_running():
            raise BrokerUnavailable(f"{self.node_name} did not stop: {result.stdout.strip()}")
        self._wait_gone(timeout)

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM, as a crash or a pulled plug would."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._wait_gone(STOP_TIMEOUT)

    def remove(self) -> None:
        """Stop the node (killing it if it will not stop) and delete its folder."""
        try:
            self.stop()
        except BrokerUnavailable:
            self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def pid(self) -> int | None:
        """The operating-system pid of the node's Erlang VM, if it has written one."""
        try:
            return int(self.pid_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, owned by someone else
            return True
        # A killed child stays a zombie until reaped; it does not run.
        return not _is_zombie(pid)

    def _wait_gone(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.is_running():
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"{self.node_name} still runs after {timeout:.0f} s")
            time.sleep(0.05)
        self._reap()

    def _reap(self) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            if self._process.returncode is not None:
                self._process = None

    # -------------------------------------------------------------- the CLI

    def ctl(self, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        """Run ``rabbitmqctl`` against this node; return its output.

        :raises BrokerUnavailable: the command failed.
        """
        result = self._cli("rabbitmqctl", *args, check=False, timeout=timeout)
        if result.returncode != 0:
            raise BrokerUnavailable(
                f"rabbitmqctl {' '.join(args)} on {self.node_name}: {result.stdout.strip()}"
            )
        return result.stdout

    def queues(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """The queues whose names start with ``prefix``: type, message counts and members."""
        out = self.ctl(
            "list_queues",
            "--quiet",
            "--formatter",
            "json",
            "name",
            "type",
            "messages",
            "messages_ready",
            "messages_unacknowledged",
            "members",
            "leader",
        )
        rows = json.loads(out or "[]")
        return {row["name"]: row for row in rows if str(row["name"]).startswith(prefix)}

    def cluster_status(self) -> dict[str, Any]:
        return dict(json.loads(self.ctl("cluster_status", "--formatter", "json")))

    def _cli(
        self, tool: str, *args: str, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [str(RABBITMQ_SCRIPTS / tool), "-n", self.node_name, *args],
                env=self._cli_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=check,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerUnavailable(
                f"{tool} {' '.join(args)} timed out on {self.node_name}"
            ) from exc

    # ---------------------------------------------------------------- files

    def _write_files(self) -> None:
        ensure_cookie(self.root)
        self.log_folder.mkdir(parents=True, exist_ok=True)
        # An empty environment file of its own: the machine's
        # /etc/rabbitmq/rabbitmq-env.conf names the default node.
        (self.folder / "rabbitmq-env.conf").write_text("", encoding="ascii")
        plugins = "[rabbitmq_management]." if self.spec.management_port else "[]."
        (self.folder / "enabled_plugins").write_text(plugins + "\n", encoding="ascii")
        lines = [
            f"listeners.tcp.1 = 127.0.0.1:{self.spec.amqp_port}",
            # Quorum queues need a majority: a member cut off from the others
            # pauses instead of serving stale data.
            "cluster_partition_handling = pause_minority",
            "log.file.level = info",
            "log.console = false",
        ]
        if self.peers:
            # Peer discovery from a fixed list: a fresh node joins the first
            # member it reaches, with no command to run.
            lines += [
                "cluster_name = cpas-local",
                "cluster_formation.peer_discovery_backend = classic_config",
                *(
                    f"cluster_formation.classic_config.nodes.{i} = {peer}"
                    for i, peer in enumerate(self.peers, 1)
                ),
            ]
        if self.spec.management_port:
            lines += [
                f"management.tcp.port = {self.spec.management_port}",
                "management.tcp.ip = 127.0.0.1",
            ]
        if self.tls is not None:
            lines += self.tls.config_lines(management=bool(self.spec.management_port))
        (self.folder / "rabbitmq.conf").write_text("\n".join(lines) + "\n", encoding="ascii")

    def _cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env |= {
            # The cookie is read from $HOME: ours, not the default node's.
            "HOME": str(self.root),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        return env

    def _server_env(self) -> dict[str, str]:
        return self._cli_env() | {
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.spec.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.spec.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_folder),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }


class Cluster:
    """Several :class:`BrokerNode` joined into one RabbitMQ cluster."""

    def __init__(self, nodes: Sequence[BrokerNode]) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        self.nodes = list(nodes)

    @classmethod
    def local(
        cls,
        root: Path,
        *,
        size: int = 3,
        prefix: str = CLUSTER_PREFIX,
        first_port: int | None = CLUSTER_FIRST_PORT,
        management: bool = False,
    ) -> Cluster:
        """``size`` nodes ``<prefix>1..n@localhost`` in ``root``.

        :param first_port: AMQP ports ``first_port..`` (distribution +20000,
            management +10000); ``None`` picks free ports and makes the names
            unique to this process (tests).
        """
        specs = []
        for i in range(1, size + 1):
            if first_port is None:
                name, amqp, dist, mgmt = (
                    f"{prefix}{os.getpid()}n{i}",
                    free_port(),
                    free_port(),
                    None,
                )
                if management:
                    mgmt = free_port()
            else:
                name, amqp = f"{prefix}{i}", first_port + i - 1
                dist, mgmt = amqp + 20000, (amqp + 10000) if management else None
            specs.append(NodeSpec(name, amqp, dist, mgmt))
        peers = [f"{spec.name}@{HOST}" for spec in specs]
        return cls([BrokerNode(spec, root, peers=peers) for spec in specs])

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def amqp_url(self) -> str:
        """Every member, comma-separated: what ``amqp_url`` / ``CPAS_GATEWAY_AMQP_URL`` takes."""
        return ",".join(self.urls)

    def running(self) -> list[BrokerNode]:
        return [node for node in self.nodes if node.is_running()]

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start every node and join them into one cluster; idempotent.

        The first node boots alone; the others then boot together and find it
        through peer discovery. A node that still stands alone (its data
        predates the cluster) is joined with ``rabbitmqctl join_cluster``.
        """
        first, others = self.nodes[0], self.nodes[1:]
        first.start(timeout=timeout)
        for node in others:
            node.start(wait=False)
        for node in others:
            node.wait_ready(timeout)
        for node in others:
            if first.node_name not in self._known_members(node):
                node.ctl("stop_app")
                node.ctl("reset")
                node.ctl("join_cluster", first.node_name)
                node.ctl("start_app")
        first.ctl("await_online_nodes", str(len(self.nodes)), "--timeout", str(int(timeout)))

    def stop(self, *, remove: bool = False) -> None:
        """Stop every node, all at once; with ``remove``, delete their data too."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for future in [
                pool.submit(node.remove if remove else node.stop) for node in self.nodes
            ]:
                future.result()

    def any_running(self) -> BrokerNode:
        """A member that runs (for questions about the whole cluster)."""
        for node in self.nodes:
            if node.is_running():
                return node
        raise BrokerUnavailable("no member of the cluster runs")

    def status(self) -> Iterator[str]:
        """Lines describing each node, the cluster's membership and its quorum queues."""
        for node in self.nodes:
            state = f"running (pid {node.pid()})" if node.is_running() else "stopped"
            yield f"{node.node_name:<28} {node.url:<36} {state}"
        try:
            member = self.any_running()
        except BrokerUnavailable:
            return
        status = member.cluster_status()
        yield f"running members: {', '.join(map(str, status.get('running_nodes', [])))}"
        for name, queue in sorted(member.queues().items()):
            members = queue.get("members") or []
            yield (
                f"  {name}: {queue.get('type')}, {queue.get('messages')} messages, "
                f"leader {queue.get('leader', '-')}, members {', '.join(map(str, members))}"
            )

    @staticmethod
    def _known_members(node: BrokerNode) -> set[str]:
        status = node.cluster_status()
        nodes = status.get("disk_nodes", []) or []
        assert isinstance(nodes, list)
        return set(map(str, nodes))


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


# --------------------------------------------------------------- command line


def _cluster(args: argparse.Namespace) -> Cluster:
    return Cluster.local(
        Path(args.root), size=args.size, first_port=args.first_port, management=args.management
    )


def main(argv: Iterable[str] | None = None) -> int:
    """``start | stop | status | urls | ctl N ARGS…`` for a local cluster."""
    parser = argparse.ArgumentParser(
        prog="cluster.sh", description="A RabbitMQ cluster of several nodes on this machine."
    )
    parser.add_argument("--root", default="var/cluster", help="folder of the nodes' data and logs")
    parser.add_argument("--size", type=int, default=3, help="number of nodes (default 3)")
    parser.add_argument(
        "--first-port", type=int, default=CLUSTER_FIRST_PORT, help="AMQP port of the first node"
    )
    parser.add_argument(
        "--no-management",
        dest="management",
        action="store_false",
        help="do not enable the management plugin (ports AMQP+10000)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start the nodes and join them (idempotent)")
    commands.add_parser("stop", help="stop the nodes and remove their data")
    commands.add_parser("status", help="nodes, members and quorum queues")
    commands.add_parser("urls", help="print the comma-separated AMQP URLs")
    ctl = commands.add_parser("ctl", help="rabbitmqctl against node N (with the cluster's cookie)")
    ctl.add_argument("index", type=int, help="node number, from 1")
    ctl.add_argument("ctl_args", nargs=argparse.REMAINDER, help="rabbitmqctl arguments")
    args = parser.parse_args(list(argv) if argv is not None else None)

    if not rabbitmq_installed():
        print(
            f"RabbitMQ is not installed here ({RABBITMQ_SCRIPTS} has no rabbitmq-server).",
            file=sys.stderr,
        )
        return 1
    cluster = _cluster(args)
    try:
        if args.command == "start":
            cluster.start()
            for line in cluster.status():
                print(line)
            print(f"CPAS_GATEWAY_AMQP_URL={cluster.amqp_url}")
        elif args.command == "stop":
            cluster.stop(remove=True)
            shutil.rmtree(Path(args.root), ignore_errors=True)
            print("stopped and removed")
        elif args.command == "status":
            for line in cluster.status():
                print(line)
        elif args.command == "urls":
            print(cluster.amqp_url)
        else:
            node = cluster.nodes[args.index - 1]
            print(node.ctl(*args.ctl_args), end="")
    except BrokerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
