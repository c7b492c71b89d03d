"""Many CPAS on one node: one process serving several CPAS, each a tenant of its own.

A hosting provider configures one file per CPAS -- the same node
configuration a CPAS running its own node writes -- in one folder, and runs
them together::

    cpas-gateway check --tenants /etc/cpas-gateway/tenants
    cpas-gateway run --tenants /etc/cpas-gateway/tenants      # every *.toml in the folder

Each tenant is a whole :class:`~gateway.node.Node`: its own keys, broker
connection under its own broker user, inbox, adapter instance, store, journal
chain and threads. Nothing that carries a message, a key or a transaction is
shared; the process shares only what holds no CPAS's data: the interpreter,
the loaded adapter plugins, the verified directory (read-only, one copy per
signed edition: :class:`SharedDirectories`), logging, and the supervisor
(:class:`Host`). Separate broker connections are not a cost to cut: the
broker checks every message's ``user_id`` against the login of its
connection, so each CPAS needs a connection of its own. The tenants' memory
is not walled off from one another: every adapter runs beside every CPAS's
keys, so one process is one trust domain.

Tenants fail apart. A vendor outage, a store outage or poison messages are
handled inside the tenant's node and never wait on another tenant. A tenant
whose preflight fails at start is not started, and its checks run again
every :data:`RETRY_SECONDS` until it can start; the others run meanwhile. A
thread of a tenant that dies of an unexpected error stops that tenant only
(its deliveries go back to the broker), reported with its CPAS id: it is a
bug, and restarting the tenant in the same process would repeat it. The run
ends with exit status 1 once no tenant is left running or waiting to start,
when a thread of no tenant dies, and after a stop when any tenant stopped on
an error -- for a single CPAS, the rule a node always had: a thread's death
ends the run with exit status 1.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.adapters import AdapterRegistry, load_adapters
from gateway.config import NodeConfig
from gateway.dead_letters import requeue_after_delivery_limit
from gateway.journal import JournalSettings
from gateway.model.codes import Fault
from gateway.model.directory import Directory, check_not_older, load_directory_file
from gateway.model.errors import ConfigError, GatewayError
from gateway.node import Node, build_node
from gateway.ownership import printable
from gateway.preflight import Preflight

log = logging.getLogger(__name__)

TENANT_FILES = "*.toml"
"""The node configuration files ``--tenants DIR`` serves, one per CPAS."""
START_AT_ONCE = 8
"""Tenants checked and started at the same time."""
RETRY_SECONDS = 60.0
"""How often a tenant that could not start has its preflight run again."""
PROCESS_SETTINGS = ("log_format", "log_level", "log_levels")
PER_CPAS_VARIABLES = frozenset(
    f"CPAS_GATEWAY_{name}"
    for name in (
        "CPAS_ID",
        "AMQP_URL",
        "KEYS",
        "KEY_PASSPHRASE",
        "STORE",
        "JOURNAL",
        "JOURNAL_SECRET",
        "JOURNAL_HEAD",
        "BROKER_TLS__CERT_FILE",
        "BROKER_TLS__KEY_FILE",
        "BROKER_TLS__KEY_PASSPHRASE",
    )
)
"""Environment variables naming what belongs to one CPAS: refused when a process serves several."""
"""Settings of the process, not of a CPAS: every tenant's file must agree on them."""


@dataclass(frozen=True)
class Tenant:
    """One CPAS served by the process: its configuration file, loaded."""

    source: Path
    config: NodeConfig

    @property
    def cpas_id(self) -> str:
        return self.config.cpas_id


def tenant_files(folder: Path) -> list[Path]:
    """The configuration files a node serving several CPAS reads: every ``*.toml`` in ``folder``.

    :raises ConfigError: the folder does not exist or holds no configuration.
    """
    if not folder.is_dir():
        raise ConfigError(f"The tenants folder {folder} does not exist.", code=Fault.CONFIG_TENANTS)
    found = sorted(folder.glob(TENANT_FILES))
    if not found:
        raise ConfigError(
            f"The tenants folder {folder} holds no node configuration ({TENANT_FILES}): "
            "write one file per CPAS there.",
            code=Fault.CONFIG_TENANTS,
        )
    return found


def load_tenants(files: Iterable[Path]) -> list[Tenant]:
    """Load every file; refuse two tenants that would share a CPAS id, a database or a key.

    :raises ConfigError: a file that does not load, two that collide (code
        ``config.tenants_share``) or disagree on a setting of the process
        (``config.tenants_differ``).
    """
    tenants = [Tenant(path, NodeConfig.load(path)) for path in files]
    if len(tenants) > 1:
        check_environment(os.environ)
    check_separate(tenants)
    process_settings(tenants)
    return tenants


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse a setting of one CPAS in the environment of a process serving several.

    ``CPAS_GATEWAY_*`` variables override every file the process reads: a
    broker address, a key passphrase or a client certificate set there would
    be every tenant's. Each tenant's secrets go in its own file instead.

    :raises ConfigError: such a variable is set (code ``config.tenants_env``).
    """
    found = sorted(name for name in environ if name.upper() in PER_CPAS_VARIABLES)
    if found:
        raise ConfigError(
            f"{', '.join(found)} would apply to every CPAS this node serves: unset it, and "
            "write each CPAS's own value in its configuration file (readable by the "
            "gateway's user only).",
            code=Fault.CONFIG_TENANTS_ENV,
        )


def check_separate(tenants: Sequence[Tenant]) -> None:
    """Refuse two tenants with the same CPAS id, store or journal, keys or broker user.

    Two tenants in development mode may share a broker user (``guest`` on a
    developer's broker, where nothing is confined anyway); a provisioned
    tenant never does: the broker would let one CPAS publish as the other.
    """
    owners: dict[tuple[str, str], Tenant] = {}
    for tenant in tenants:
        for what, value in _owned(tenant.config):
            other = owners.setdefault((what, value), tenant)
            if other is not tenant:
                raise ConfigError(
                    f"{other.source} and {tenant.source} both use the {what} {value}: each CPAS "
                    f"a node serves needs a {what} of its own (CPAS {other.cpas_id} and "
                    f"{tenant.cpas_id}).",
                    code=Fault.CONFIG_TENANTS_SHARE,
                )


def _owned(config: NodeConfig) -> list[tuple[str, str]]:
    """What a tenant must hold alone, each as (what it is, where it is)."""
    journal = JournalSettings.from_config(config)
    owned = [
        ("CPAS id", config.cpas_id),
        ("keys folder", str(Path(config.keys).resolve())),
        ("journal secret", str(journal.secret_path.resolve())),
        *(("database", _database(url)) for url in {config.store, journal.url}),
    ]
    if journal.head_path is not None:
        owned.append(("journal head witness", str(journal.head_path.resolve())))
    if config.broker_mode == "provisioned":
        owned.append(("broker user", _broker_user(config)))
    return owned


def _database(url: str) -> str:
    if url.startswith("sqlite:///"):
        return str(Path(url.removeprefix("sqlite:///")).resolve())
    return printable(url)


def _broker_user(config: NodeConfig) -> str:
    return urllib.parse.unquote(urllib.parse.urlparse(config.amqp_urls[0]).username or "guest")


def process_settings(tenants: Sequence[Tenant]) -> NodeConfig:
    """The configuration holding the process's settings (:data:`PROCESS_SETTINGS`).

    Logging is the process's, not a CPAS's: every tenant's file must agree.

    :raises ConfigError: two tenants' files disagree (code ``config.tenants_differ``).
    """
    first = tenants[0]
    for name in PROCESS_SETTINGS:
        value = getattr(first.config, name)
        for tenant in tenants[1:]:
            if getattr(tenant.config, name) != value:
                raise ConfigError(
                    f"{first.source} and {tenant.source} set {name} differently: it is a "
                    "setting of the process serving them, so give it the same value in every "
                    "file.",
                    code=Fault.CONFIG_TENANTS_DIFFER,
                )
    return first.config


# ---------------------------------------------------------------- the supervisor


class SharedDirectories:
    """One verified directory for every tenant that reads the same signed edition.

    The parsed directory of every Belgian CPAS is the largest thing a node
    holds (a few MB); it is immutable, so tenants reading the same bytes
    under the same trust anchor share one copy, verified once. Each tenant
    still refuses an edition older than the one its store has seen.
    """

    KEPT = 4
    """Editions kept verified at once: a node runs for months and sees many editions."""

    def __init__(self) -> None:
        # Least recently used first; an edition dropped is verified again if asked for.
        self._verified: collections.OrderedDict[tuple[bytes, bytes], Directory] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._verified)

    def load(self, path: Path, trust_anchor: Path, *, min_serial: int | None = None) -> Directory:
        """As :func:`~gateway.model.directory.load_directory_file`, sharing what it verified."""
        try:
            key = (_digest(path), _digest(trust_anchor))
        except OSError:
            return load_directory_file(path, trust_anchor, min_serial=min_serial)
        with self._lock:
            directory = self._verified.get(key)
            if directory is None:
                directory = load_directory_file(path, trust_anchor)
                self._verified[key] = directory
                while len(self._verified) > self.KEPT:
                    self._verified.popitem(last=False)
            self._verified.move_to_end(key)
        check_not_older(directory, min_serial)
        return directory


def _digest(path: Path) -> bytes:
    return hashlib.sha256(Path(path).read_bytes()).digest()


class Host:
    """The tenants of one process: started, watched and stopped together; failing apart.

    :param say: where the lines for the operator's terminal go (one per
        tenant started, stopped or failed).
    :param preflight: the checks a tenant must pass to start (``None``: none).
    :param adapters: the adapter plugins, loaded once for every tenant.
    """

    def __init__(
        self,
        tenants: Sequence[Tenant],
        *,
        say: Callable[[str], None],
        preflight: Callable[[Tenant], Preflight] | None = None,
        adapters: AdapterRegistry | None = None,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.tenants = list(tenants)
        self._ids = frozenset(t.cpas_id for t in self.tenants)
        self._say = say
        self._preflight = preflight
        self._adapters = adapters
        self._retry_seconds = retry_seconds
        self.nodes: dict[str, Node] = {}
        """The running tenants' nodes, by CPAS id."""
        self.waiting: dict[str, Tenant] = {}
        """Tenants not started yet: their preflight failed, it runs again."""
        self.failed: dict[str, str] = {}
        """Tenants stopped by an error, with what happened."""
        self._died: dict[str, str] = {}
        self._lock = threading.Lock()
        self._next_try = 0.0
        self._directories = SharedDirectories()

    # ------------------------------------------------------------ starting

    def start(self) -> dict[str, Preflight]:
        """Start every tenant that passes its preflight; return the failed preflights by CPAS.

        Tenants are checked and started a few at a time. The others wait and
        are tried again by :meth:`watch`. When no tenant starts and none
        failed a check, the first error is raised.
        """
        if self._adapters is None:
            self._adapters = load_adapters()
        refused: dict[str, Preflight] = {}
        errors: list[GatewayError] = []
        for tenant, outcome in self._start_all(self.tenants):
            if outcome is None:
                continue
            self.waiting[tenant.cpas_id] = tenant
            if isinstance(outcome, GatewayError):
                errors.append(outcome)
                self._say(f"node {tenant.cpas_id} not started: {outcome}")
            else:
                refused[tenant.cpas_id] = outcome
        if not self.nodes and errors and not refused:
            raise errors[0]
        self._next_try = time.monotonic() + self._retry_seconds
        return refused

    def _start_all(
        self, tenants: Sequence[Tenant]
    ) -> list[tuple[Tenant, Preflight | GatewayError | None]]:
        """Check and start ``tenants``, :data:`START_AT_ONCE` at a time (a preflight waits on
        the broker and the vendor system far more than on the processor)."""

        def attempt(tenant: Tenant) -> Preflight | GatewayError | None:
            try:
                return self._start(tenant)
            except GatewayError as exc:
                return exc

        if len(tenants) == 1:
            return [(tenants[0], attempt(tenants[0]))]
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=min(len(tenants), START_AT_ONCE), thread_name_prefix="start"
        ) as pool:
            return list(zip(tenants, pool.map(attempt, tenants), strict=True))

    def _start(self, tenant: Tenant) -> Preflight | None:
        if self._preflight is not None:
            result = self._preflight(tenant)
            if not result.passed:
                return result
        node = build_node(
            tenant.config,
            adapters=self._adapters,
            load_directory=self._directories.load,
            follow_directory=True,
        )
        try:
            node.start()
        except BaseException:
            _close(node)
            raise
        try:
            requeue_after_delivery_limit(node)
        except GatewayError as exc:
            log.warning("node %s: dead letters not checked at start: %s", node.cpas_id, exc)
        self.nodes[tenant.cpas_id] = node
        self._say(
            f"node {node.cpas_id} running: adapter {node.adapter.info.name}, "
            f"inbox {node.names.inbox(node.cpas_id)} on {node.broker.addresses}"
        )
        return None

    def log_filter(self) -> logging.Filter:
        """A filter for log handlers: records of a tenant's threads name its CPAS (``cpas``).

        A line such as "store unavailable, retrying" then says whose store,
        in text and JSON logs alike.
        """
        host = self

        class TenantField(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                if getattr(record, "cpas", None) is None:
                    owner = host.tenant_of_thread(record.threadName or "")
                    if owner is not None:
                        record.cpas = owner
                return True

        return TenantField()

    # ------------------------------------------------------------ watching

    def tenant_of_thread(self, thread_name: str) -> str | None:
        """The CPAS whose node a thread belongs to (its name ends with the CPAS id)."""
        owner = thread_name.rsplit("-", 1)[-1]
        return owner if owner in self._ids else None

    def thread_died(self, thread_name: str, error: BaseException) -> bool:
        """A thread died of ``error``: stop its tenant (at the next :meth:`watch` turn).

        Returns ``False`` when the thread belongs to no tenant: then the
        process as a whole is in doubt, and the caller stops the run.
        """
        owner = self.tenant_of_thread(thread_name)
        if owner is None:
            return False
        with self._lock:
            self._died.setdefault(owner, f"thread {thread_name}: {type(error).__name__}: {error}")
        return True

    def watch(self, stop: threading.Event, *, interval: float = 0.5) -> bool:
        """Until ``stop`` is set or no tenant is left: stop failed tenants, retry waiting ones.

        Returns ``False`` when it ended because no tenant is left running.
        """
        while not stop.wait(interval):
            self._stop_failed()
            if self.waiting and time.monotonic() >= self._next_try:
                self._retry_waiting()
            if not self.nodes and not self.waiting:
                return False
        return True

    def _stop_failed(self) -> None:
        for cpas_id, node in list(self.nodes.items()):
            with self._lock:
                died = self._died.get(cpas_id)
            if not node.failed.is_set() and died is None:
                continue
            reason = died or node.health().detail or "a thread died"
            del self.nodes[cpas_id]
            self.failed[cpas_id] = reason
            log.critical(
                "node %s stopped on an error (%s); %d other CPAS of this process keep running",
                cpas_id,
                reason,
                len(self.nodes),
                extra={"cpas": cpas_id},
            )
            self._say(f"node {cpas_id} stopped on an error: {reason}")
            _close(node)

    def _retry_waiting(self) -> None:
        for tenant, outcome in self._start_all(list(self.waiting.values())):
            if outcome is None:
                del self.waiting[tenant.cpas_id]
            elif isinstance(outcome, GatewayError):
                log.warning("node %s still not started: %s", tenant.cpas_id, outcome)
            else:
                log.warning(
                    "node %s still not started: %s",
                    tenant.cpas_id,
                    "; ".join(f"{c.name}: {c.detail}" for c in outcome.failures),
                )
        self._next_try = time.monotonic() + self._retry_seconds

    # ------------------------------------------------------------ stopping

    def stop(self) -> dict[str, dict[str, int]]:
        """Stop every running tenant at once (each finishes its message in hand).

        Returns what each did, by CPAS id.
        """
        nodes = list(self.nodes.values())
        self.nodes.clear()
        if not nodes:
            return {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(nodes), 32)) as pool:
            list(pool.map(_close, nodes))
        return {node.cpas_id: dict(node.stats.counts) for node in nodes}


def _close(node: Node) -> None:
    """Stop a node and close what it opened: its adapter, store and journal."""
    node.stop()
    for thing in (node.adapter, node.store, node.journal):
        close = getattr(thing, "close", None)
        if close is None:
            continue
        try:
            close()
        except Exception as exc:  # closing after a failure: say it, carry on
            log.warning("node %s: closing %s failed: %s", node.cpas_id, type(thing).__name__, exc)
