"""One private RabbitMQ node: start it, stop it, kill it, and ask it things."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.federation.local_broker.layout import (
    RABBITMQ_SCRIPTS,
    NodeLayout,
    NodeSpec,
    TlsListener,
    free_port,
)

START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
CLI_TIMEOUT = 120.0


class BrokerUnavailable(RuntimeError):
    """A broker node could not be started, stopped or reached."""


def rabbitmq_installed() -> bool:
    """Whether the RabbitMQ server scripts this module drives are on this machine."""
    return (RABBITMQ_SCRIPTS / "rabbitmq-server").exists() and shutil.which("erl") is not None


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
        if tls is not None and (tls.port == 0 or tls.management_port == 0):
            tls = replace(
                tls,
                port=tls.port or free_port(),
                management_port=tls.management_port or free_port(),
            )
        self.layout = NodeLayout(spec, root.resolve(), tuple(peers), tls)
        self.spec = spec
        self.root = self.layout.root
        self.folder = self.layout.folder
        self.peers = self.layout.peers
        """Node names of the cluster members: a fresh node joins them when it first boots."""
        self.tls = tls
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
        return self.layout.node_name

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
        return self.layout.pid_file

    @property
    def log_folder(self) -> Path:
        return self.layout.log_folder

    # ------------------------------------------------------------ lifecycle

    def start(self, *, timeout: float = START_TIMEOUT, wait: bool = True) -> None:
        """Start the node (nothing happens if it runs); wait until it accepts clients.

        :raises BrokerUnavailable: it did not come up within ``timeout``.
        """
        if self.is_running():
            if wait and not _port_open(self.spec.amqp_port):
                self.wait_ready(timeout)
            return
        self.layout.write_files()
        self.pid_file.unlink(missing_ok=True)
        console = (self.log_folder / "console.log").open("ab")
        # A session of its own: the node outlives the command that started it
        # (cluster.sh) and never receives the terminal's Ctrl-C.
        self._process = subprocess.Popen(
            [str(RABBITMQ_SCRIPTS / "rabbitmq-server")],
            env=self.layout.server_env(),
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
                env=self.layout.cli_env(),
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
