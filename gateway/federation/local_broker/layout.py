"""A private node's own folder, configuration files and environment.

What makes a node distinct from every other node on the machine, the
machine's default one included: its name, ports, folders, configuration,
enabled plugins and Erlang cookie.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from gateway.private_files import write_private_file

HOST = "localhost"
"""The host part of every node name: the nodes only ever talk over the loopback interface."""

RABBITMQ_SCRIPTS = Path(os.environ.get("CPAS_RABBITMQ_SCRIPTS", "/usr/lib/rabbitmq/bin"))


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


@dataclass(frozen=True)
class NodeLayout:
    """Where a node keeps its files, and the files and environment it runs with.

    The node lives in ``root/<name>``; ``root`` holds the shared Erlang cookie
    (it is the nodes' ``$HOME``).
    """

    spec: NodeSpec
    root: Path
    peers: tuple[str, ...] = ()
    """Node names of the cluster members: a fresh node joins them when it first boots."""
    tls: TlsListener | None = None

    @property
    def folder(self) -> Path:
        return self.root / self.spec.name

    @property
    def node_name(self) -> str:
        return f"{self.spec.name}@{HOST}"

    @property
    def pid_file(self) -> Path:
        return self.folder / "rabbitmq.pid"

    @property
    def log_folder(self) -> Path:
        return self.folder / "log"

    def write_files(self) -> None:
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

    def cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env |= {
            # The cookie is read from $HOME: ours, not the default node's.
            "HOME": str(self.root),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        return env

    def server_env(self) -> dict[str, str]:
        return self.cli_env() | {
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
