"""A PostgreSQL server of the tests' own, which they may stop and start at will.

The machine's PostgreSQL on port 5432 is shared by other tests: an outage is
never simulated on it. :class:`PrivatePostgres` runs ``initdb`` and
``pg_ctl`` from the installed PostgreSQL (``/usr/lib/postgresql/<n>/bin``, or
``$CPAS_POSTGRES_BIN``) in a temporary folder, on a free port of the loopback
interface, with trust authentication. PostgreSQL refuses to run as root: as
root, the server runs as the ``postgres`` system user.

    server = PrivatePostgres.create()
    server.start()
    url = server.database_url("faults")   # a database of its own
    server.stop()                          # an outage: every connection is cut
    server.start()
    server.remove()
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from brokers import free_port

START_TIMEOUT = 60


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, if PostgreSQL is installed."""
    configured = os.environ.get("CPAS_POSTGRES_BIN")
    candidates = [configured] if configured else sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    for folder in reversed(candidates):
        if folder and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


class PrivatePostgres:
    """One PostgreSQL server in a folder of its own; see the module docstring."""

    def __init__(self, folder: Path, bin_folder: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.bin = bin_folder
        self.port = port
        self._user = "postgres" if os.geteuid() == 0 else None

    @classmethod
    def create(cls) -> PrivatePostgres:
        """A fresh, initialised, stopped server (raises ``RuntimeError`` when not installed)."""
        bin_folder = postgres_bin()
        if bin_folder is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed")
        # Not under pytest's folders: the server user must be able to reach it.
        folder = Path(tempfile.mkdtemp(prefix="cpas-pg-"))
        server = cls(folder, bin_folder, free_port())
        if server._user is not None:
            account = pwd.getpwnam(server._user)
            os.chown(folder, account.pw_uid, account.pw_gid)
        server._run("initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return server

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        command = [str(self.bin / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, timeout=START_TIMEOUT, cwd=self.folder)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"{tool} failed: {output[-2000:]}")
        return done

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        """Create database ``name`` (if needed) and return its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"),
                  "-w", "-t", str(START_TIMEOUT), "start")  # fmt: skip

    def stop(self) -> None:
        """Stop at once: every client connection is cut (``-m immediate``, as a crash would)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
