"""Watching what an adapter does besides its store: files, sockets, processes, the broker client.

An adapter runs inside the node, next to the person's dossiers in clear. What
it writes outside its own store (a support folder, a debug dump), whom it
connects to (a broker, a web service) and which programs it starts are side
channels the dossier's minimality cannot see. The suite watches them through
a Python audit hook (:pep:`578`): installed once per process, it does nothing
unless a :class:`Watch` is active, and an active watch records every event it
does not allow.

What is allowed while an adapter is built, called and closed:

- file writes (open for writing, create, rename, remove, SQLite databases)
  inside the case's own work folder, the adapter's store;
- socket connections to a host and port named by an option URL (the store's
  server: ``postgresql://db.example:5432/acme``), or to a Unix socket inside
  the work folder;
- nothing else: no other file written, no other connection, no subprocess,
  and no import of an AMQP client (the adapter never talks to the broker;
  the node does, sealed).

Python bytecode caches (``__pycache__``) are not side channels and are ignored.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

BROKER_CLIENTS: Final = frozenset(
    {"pika", "aio_pika", "aiormq", "pamqp", "kombu", "amqp", "amqpstorm", "rabbitpy", "proton"}
)
"""Top-level modules of AMQP clients: an adapter importing one fails."""

DEFAULT_PORTS: Final = {
    "postgresql": 5432,
    "postgres": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "mssql": 1433,
    "oracle": 1521,
    "mongodb": 27017,
    "redis": 6379,
    "http": 80,
    "https": 443,
}
"""Ports of an option URL that names none."""

_WRITE_FLAGS: Final = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PROCESS_EVENTS: Final = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.spawn",
        "os.posix_spawn",
        "os.fork",
        "os.forkpty",
        "pty.spawn",
    }
)
_PATH_EVENTS: Final = {
    "os.mkdir": (0,),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "shutil.copyfile": (1,),
}
"""Audit events that change the file system, and which of their arguments are paths."""

MAX_RECORDED: Final = 20
"""Side channels kept per watch; the count says how many there were."""


@dataclass(frozen=True)
class Endpoint:
    """A network address an option names: its resolved addresses and its port."""

    host: str
    port: int
    addresses: frozenset[str]


def endpoints_of(options: Mapping[str, str]) -> tuple[Endpoint, ...]:
    """The servers the options name by URL (a store's database server, an API)."""
    found = []
    for value in options.values():
        if "://" not in value:
            continue
        try:
            parts = urlsplit(value)
            host, port = parts.hostname, parts.port
        except ValueError:
            continue
        if not host:
            continue
        port = port or DEFAULT_PORTS.get(parts.scheme.split("+", 1)[0].lower())
        if port is None:
            continue
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
            addresses = frozenset(str(info[4][0]) for info in infos)
        except OSError:
            addresses = frozenset()
        found.append(Endpoint(host, port, addresses | {host}))
    return tuple(found)


@dataclass
class Watch:
    """What one adapter did besides its store, while the watch was active.

    :param roots: folders the adapter may write in (its store).
    :param endpoints: servers it may connect to.
    :param ignored_threads: threads that ran before any adapter was built (the
        host's own: a test runner's, a progress bar's); what they do is not the
        adapter's doing. Every thread started since is watched.
    """

    roots: tuple[Path, ...]
    endpoints: tuple[Endpoint, ...] = ()
    ignored_threads: frozenset[int] = frozenset()
    found: list[dict[str, str]] = field(default_factory=list)
    count: int = 0

    def _record(self, kind: str, detail: str) -> None:
        self.count += 1
        if len(self.found) < MAX_RECORDED:
            self.found.append(
                {"kind": kind, "detail": detail, "thread": threading.current_thread().name}
            )

    def _inside(self, path: object) -> bool:
        if isinstance(path, int):  # an open descriptor: its opening was judged
            return True
        try:
            text = os.fsdecode(path)  # type: ignore[arg-type]
        except TypeError:
            return True
        if text in ("", ":memory:") or text.startswith("file::memory:"):
            return True
        if text.startswith("file:"):
            text = text[5:].split("?", 1)[0]
        resolved = Path(os.path.realpath(os.path.abspath(text)))
        if resolved.parent.name == "__pycache__":
            return True
        return any(resolved.is_relative_to(root) for root in self.roots)

    def _endpoint_allowed(self, address: object) -> bool:
        if isinstance(address, (str, bytes)):  # a Unix socket
            return self._inside(address)
        if not isinstance(address, tuple) or len(address) < 2:
            return False
        host, port = str(address[0]), address[1]
        with contextlib.suppress(ValueError):
            host = str(ipaddress.ip_address(host.split("%", 1)[0]))
        return any(port == item.port and host in item.addresses for item in self.endpoints)

    def see(self, event: str, args: tuple[Any, ...]) -> None:
        """Judge one audit event."""
        if threading.get_ident() in self.ignored_threads:
            return
        if event == "open":
            path, mode, flags = (*args, None, None, None)[:3]
            writes = (isinstance(mode, str) and any(ch in mode for ch in "wax+")) or (
                isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
            )
            if writes and not self._inside(path):
                self._record("file", f"opened {os.fsdecode(path)} for writing")
        elif event in _PATH_EVENTS:
            for index in _PATH_EVENTS[event]:
                if index < len(args) and not self._inside(args[index]):
                    self._record("file", f"{event} {os.fsdecode(args[index])}")
                    break
        elif event == "sqlite3.connect":
            if args and not self._inside(args[0]):
                self._record("file", f"opened the SQLite database {args[0]}")
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            address = args[1] if len(args) > 1 else None
            if not self._endpoint_allowed(address):
                self._record("network", f"{event} to {address!r}")
        elif event == "socket.bind":
            self._record("network", f"socket.bind on {args[1] if len(args) > 1 else '?'!r}")
        elif event in _PROCESS_EVENTS:
            program = args[0] if args else "?"
            self._record("process", f"{event} {program!r}"[:200])
        elif event == "import":
            module = str(args[0]) if args else ""
            if module.split(".", 1)[0] in BROKER_CLIENTS:
                self._record("broker", f"imported the AMQP client module {module}")


_active: Watch | None = None
_installed = False
_install_lock = threading.Lock()


def _hook(event: str, args: tuple[Any, ...]) -> None:
    watch = _active
    if watch is None:
        return
    try:
        watch.see(event, args)
    except Exception:  # an audit hook that raises would break the adapter's own call
        return


def _install() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


def host_threads() -> frozenset[int]:
    """The threads running now, but the calling one: the host's, before any adapter exists."""
    current = threading.get_ident()
    return frozenset(
        thread.ident
        for thread in threading.enumerate()
        if thread.ident is not None and thread.ident != current
    )


@contextlib.contextmanager
def watching(
    roots: Iterable[Path],
    endpoints: Iterable[Endpoint] = (),
    ignored_threads: frozenset[int] = frozenset(),
) -> Iterator[Watch]:
    """Record side channels until the block ends (one watch at a time, in any thread)."""
    global _active
    _install()
    watch = Watch(
        tuple(Path(os.path.realpath(root)) for root in roots), tuple(endpoints), ignored_threads
    )
    previous, _active = _active, watch
    try:
        yield watch
    finally:
        _active = previous


def broker_clients_held(adapter: object) -> list[str]:
    """AMQP client modules the adapter's own code holds (its package's globals, its attributes).

    An import at the top of the vendor's module happened before any watch
    began, so it is found here, where it stays: in the module's globals.
    """
    held: set[str] = set()

    def look(value: object) -> None:
        name = getattr(value, "__name__", None) if isinstance(value, type(sys)) else None
        name = name or getattr(value, "__module__", None)
        if isinstance(name, str) and name.split(".", 1)[0] in BROKER_CLIENTS:
            held.add(name.split(".", 1)[0])

    package = type(adapter).__module__.split(".", 1)[0]
    for module_name, module in list(sys.modules.items()):
        if module_name == package or module_name.startswith(package + "."):
            for value in list(vars(module).values()):
                look(value)
    for value in list(getattr(adapter, "__dict__", {}).values()):
        look(value)
    return sorted(held)
