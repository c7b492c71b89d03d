"""What the suite checks and what every check is given.

An :class:`AdapterTarget` says how to build a *fresh* adapter over a fresh,
empty store: the suite gives each case its own work folder, and the target
turns it into an adapter. For an installed adapter, the options name that
folder through placeholders::

    cpas-conformance --adapter acme --option db=sqlite:///{workdir}/acme.db

``{workdir}`` is the case's own empty folder; ``{workid}`` the folder's name,
unique to the case and the run (drawn from the run's seed: nothing in it
names the suite) and safe as an SQL identifier (for stores that
are not files: a PostgreSQL schema, a test tenant). The two reference
adapters have built-in defaults (:data:`FRESH_STORE_OPTIONS`), any other
adapter may declare its own (a ``suite_options`` mapping on its factory, see
``docs/adapters.md``); ``--option`` overrides them.

A :class:`Context` is one run against one target: it builds fresh adapters,
times every export and import, and keeps observations several requirements
judge (one round trip per corpus file feeds DSE-EXP-001, DSE-EXP-002,
DSE-RTR-001 and DSE-TXT-001), so the work is done once and each requirement
judges only its own property.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Final, TypeVar

from gateway.adapters import (
    Adapter,
    AdapterInfo,
    BatchImporter,
    Inspectable,
    PlantsSensitiveData,
    ReceivesEvents,
    Seedable,
    SimulatesOutage,
    load_adapters,
)
from gateway.adapters.manager import ENTRY_POINT_GROUP
from gateway.model.codes import Fault
from gateway.model.dossier import Dossier
from gateway.model.errors import ConfigError, GatewayError
from gateway.model.identifiers import make_enterprise_number

from . import integrity, watch
from .outcomes import Failed
from .people import People
from .requirements import DECLARED_CAPABILITIES

log = logging.getLogger(__name__)

T = TypeVar("T")


def draw_cpas_id(rng: random.Random) -> str:
    """A synthetic CPAS for the adapter under test to serve, drawn anew for each run.

    Drawn, not fixed, so that an adapter cannot recognise the suite by it.
    Corpus dossiers come from CPAS numbered after five-digit municipality
    codes; drawing from six-digit seeds keeps the two apart, so a dossier
    passed on under its sender's id never matches by chance (DSE-EXP-004).
    """
    return make_enterprise_number(100_000 + rng.randrange(900_000))


def draw_seed() -> int:
    """A seed for a run: everything the suite draws comes from it, and reports record it."""
    return secrets.randbits(32)


FRESH_STORE_OPTIONS: Final[Mapping[str, Mapping[str, str]]] = {
    "ocmwdata": {"url": "{workdir}/ocmwdata.sqlite3"},
    "fichesociale": {"folder": "{workdir}/fichesociale"},
}
"""Options giving the reference adapters a fresh, empty store in the case's work folder."""

PLACEHOLDERS: Final = ("{workdir}", "{workid}")

AdapterBuilder = Callable[[str, Path], Adapter]
"""Builds a fresh adapter: ``builder(cpas_id, workdir)``; the folder exists and is empty."""


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dictionary; :class:`ValueError` for one without ``=``."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r} is not KEY=VALUE")
        options[key] = value
    return options


def expand(options: Mapping[str, str], workdir: Path, workid: str) -> dict[str, str]:
    """The options with ``{workdir}`` and ``{workid}`` replaced (no other brace is touched)."""
    return {
        key: value.replace("{workdir}", str(workdir)).replace("{workid}", workid)
        for key, value in options.items()
    }


@dataclass(frozen=True)
class AdapterTarget:
    """The adapter under test.

    :param builder: builds a fresh adapter over an empty store (or, given the
        same folder again, over the store a previous adapter left there).
    :param name: the name it is registered under, when it was loaded by name.
    :param options: the option templates given (for the report).
    :param distribution: the package that provides it and its version, when known.
    """

    builder: AdapterBuilder
    name: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    distribution: tuple[str, str] | None = None

    def endpoints(self, workdir: Path) -> tuple[watch.Endpoint, ...]:
        """The servers the options name for a case's store (allowed connections)."""
        return watch.endpoints_of(expand(self.options, workdir, workdir.name))

    @property
    def fresh_store_declared(self) -> bool:
        """Whether the options point the adapter at the case's own work area."""
        return any(mark in value for value in self.options.values() for mark in PLACEHOLDERS)


def installed_adapter(
    name: str, options: Mapping[str, str] | None = None, *, plugins: Iterable[object] = ()
) -> AdapterTarget:
    """The installed adapter ``name``, loaded through :func:`gateway.adapters.load_adapters`.

    :param options: option templates, on top of those the adapter declares
        (``suite_options``) and of :data:`FRESH_STORE_OPTIONS` for the
        reference adapters.
    :param plugins: extra adapter plugins (tests register deliberately broken ones).
    :raises ConfigError: ``adapter.unknown`` when no adapter of that name is installed.
    """
    registry = load_adapters(plugins=plugins)
    if name not in registry.names:
        known = ", ".join(registry.names) or "none"
        raise ConfigError(
            f"No adapter named {name!r} is installed (installed: {known}).",
            code=Fault.ADAPTER_UNKNOWN,
        )
    templates = {
        **FRESH_STORE_OPTIONS.get(name, {}),
        **registry.suite_options(name),
        **(options or {}),
    }

    def build(cpas_id: str, workdir: Path) -> Adapter:
        return registry.create(name, cpas_id, expand(templates, workdir, workdir.name))

    return AdapterTarget(build, name, templates, _distribution_of(name))


def _distribution_of(name: str) -> tuple[str, str] | None:
    """The installed distribution whose entry point registers ``name``, and its version."""
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name and entry.dist is not None:
            return entry.dist.name, entry.dist.version
    return None


@dataclass(frozen=True)
class AdapterProfile:
    """What a fresh adapter says it is and does, read once per run.

    :param info: its ``info``, when it is an :class:`AdapterInfo`.
    :param capabilities: declared capabilities (``export``, ``import``) and the
        optional protocols it implements (``seed``, ``inspect``, ``plant``,
        ``batch``, ``outage``).
    :param start_error: why no adapter could be built, if none could.
    """

    info: AdapterInfo | None
    capabilities: frozenset[str]
    start_error: str | None = None


def describe_exception(exc: BaseException) -> dict[str, str]:
    """An exception as evidence: its class (qualified) and, for project errors, its code."""
    kind = type(exc)
    evidence = {
        "exception": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(exc)[:300],
    }
    if isinstance(exc, GatewayError):
        evidence["code"] = exc.code
    return evidence


class Context:
    """One run of the suite against one adapter target.

    :param target: the adapter under test.
    :param workdir: a folder the run may fill; each case gets a sub-folder.
    :param cpas_id: the CPAS the adapters under test serve (drawn from the seed by default).
    :param keep_workdirs: keep each case's folder after the case (to look at the store).
    :param seed: everything the run draws comes from it (drawn by default; reports record it).
    """

    def __init__(
        self,
        target: AdapterTarget,
        workdir: Path,
        *,
        cpas_id: str | None = None,
        keep_workdirs: bool = False,
        seed: int | None = None,
    ) -> None:
        self.target = target
        self.workdir = Path(workdir)
        self.seed = draw_seed() if seed is None else seed
        self.people = People(self.seed)
        self.cpas_id = cpas_id or draw_cpas_id(self.people.rng("cpas"))
        self.keep_workdirs = keep_workdirs
        self.timings: dict[str, list[float]] = {"export": [], "import": [], "batch": []}
        self.case_timings: dict[str, dict[str, list[float]]] = {}
        self.case_id = ""
        self.side_channels: list[dict[str, str]] = []
        self.tampering: list[dict[str, Any]] = []
        self._folders = self.people.rng("folders")
        self.host_threads = watch.host_threads()
        self._cache: dict[Any, Any] = {}
        self._profile: AdapterProfile | None = None

    def begin_case(self, case_id: str) -> None:
        """Say which case runs now: timings and side channels are recorded under it."""
        self.case_id = case_id

    # ------------------------------------------------------------- adapters

    def _folder_name(self) -> str:
        # A plain name drawn from the seed, valid as an SQL identifier: it doubles as {workid}.
        return f"d{self._folders.getrandbits(48):012x}"

    @contextlib.contextmanager
    def fresh_store(self) -> Iterator[Store]:
        """A new, empty store, which adapters can open one after the other (removed afterwards)."""
        workdir = self.workdir / self._folder_name()
        while workdir.exists():
            workdir = self.workdir / self._folder_name()
        workdir.mkdir(parents=True)
        try:
            yield Store(self, workdir)
        finally:
            if not self.keep_workdirs:
                shutil.rmtree(workdir, ignore_errors=True)

    @contextlib.contextmanager
    def fresh_adapter(self) -> Iterator[Adapter]:
        """A new adapter over a new, empty store; closed (and its folder removed) afterwards.

        :raises Failed: when the adapter cannot be built.
        """
        with self.fresh_store() as store, store.open() as adapter:
            yield adapter

    def watching(self, workdir: Path) -> contextlib.AbstractContextManager[watch.Watch]:
        """Watch for side channels of an adapter whose store is ``workdir``."""
        return watch.watching([workdir], self.target.endpoints(workdir), self.host_threads)

    def note_side_channels(self, seen: watch.Watch) -> None:
        """Keep what a watch saw, under the current case, for DSE-SID-001."""
        for item in seen.found:
            self.side_channels.append({"case": self.case_id, **item})
        if seen.count > len(seen.found):
            self.side_channels.append(
                {"case": self.case_id, "kind": "more", "detail": f"{seen.count} in all"}
            )

    def note_tampering(self, when: str) -> None:
        """Compare the gateway's checks with their fingerprint; record and undo any change."""
        changes = integrity.BASELINE.changes()
        if changes:
            self.tampering.append({"case": self.case_id, "when": when, "changes": changes})
            integrity.BASELINE.restore()

    @property
    def profile(self) -> AdapterProfile:
        """The adapter's description and capabilities (read from one fresh adapter, once)."""
        if self._profile is None:
            self._profile = self._read_profile()
        return self._profile

    def _read_profile(self) -> AdapterProfile:
        try:
            with self.fresh_adapter() as adapter:
                info = getattr(adapter, "info", None)
                protocols = {
                    name
                    for name, protocol in (
                        ("seed", Seedable),
                        ("inspect", Inspectable),
                        ("plant", PlantsSensitiveData),
                        ("batch", BatchImporter),
                        ("outage", SimulatesOutage),
                        ("events", ReceivesEvents),
                    )
                    if isinstance(adapter, protocol)
                }
        except Failed as exc:
            return AdapterProfile(None, frozenset(DECLARED_CAPABILITIES), exc.message)
        declared = getattr(info, "capabilities", None) if isinstance(info, AdapterInfo) else None
        if not isinstance(declared, (set, frozenset)) or not declared:
            # An adapter that does not say what it does is held to everything:
            # a broken description must not excuse it from any requirement.
            declared = DECLARED_CAPABILITIES
        known = {str(item) for item in declared} & DECLARED_CAPABILITIES
        return AdapterProfile(
            info if isinstance(info, AdapterInfo) else None, frozenset(known | protocols)
        )

    def has(self, capability: str) -> bool:
        """Whether the adapter declares or implements ``capability``."""
        return capability in self.profile.capabilities

    # --------------------------------------------------------------- people

    def dossier(self, name: str) -> Dossier:
        """The corpus file ``name`` as this run's person (see :mod:`cpas_conformance.people`)."""
        return self.people.dossier(name)

    # ---------------------------------------------------------------- zones

    @contextlib.contextmanager
    def time_zone(self, zone: str) -> Iterator[None]:
        """Run the block with the process's local time zone set to ``zone`` (``TZ`` and tzset)."""
        previous = os.environ.get("TZ")
        os.environ["TZ"] = zone
        time.tzset()
        try:
            yield
        finally:
            if previous is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = previous
            time.tzset()

    # --------------------------------------------------------------- timing

    def export(self, adapter: Adapter, person_number: str) -> object:
        """``adapter.export_dossier(person_number)``, timed; exceptions pass through."""
        return self._timed("export", adapter.export_dossier, person_number)

    def import_(self, adapter: Adapter, dossier: Dossier, message_id: str | None = None) -> object:
        """``adapter.import_dossier(dossier, message_id=...)``, timed; a fresh id by default."""
        # Plain UUIDs, as a node's message ids are: nothing marks a call as the suite's.
        message_id = message_id or str(uuid.uuid4())
        return self._timed("import", adapter.import_dossier, dossier, message_id=message_id)

    def import_batch(self, adapter: BatchImporter, items: Sequence[tuple[Dossier, str]]) -> object:
        """``adapter.import_batch(items)``, timed as one ``batch`` call."""
        return self._timed("batch", adapter.import_batch, list(items))

    def _timed(self, operation: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            self.timings[operation].append(elapsed)
            per_case = self.case_timings.setdefault(self.case_id, {})
            per_case.setdefault(operation, []).append(elapsed)

    # ---------------------------------------------------------------- cache

    def cached(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` once per run for ``key``; an observation several requirements judge."""
        if key not in self._cache:
            self._cache[key] = compute()
        result: T = self._cache[key]
        return result


class Store:
    """One case's store: a folder in which adapters are opened, one after the other.

    Every adapter opened here is watched for side channels from its
    construction to the end of its ``close()`` (:mod:`cpas_conformance.watch`),
    and the gateway's checks are compared with their fingerprint after it is
    built and after it is closed (:mod:`cpas_conformance.integrity`).
    """

    def __init__(self, context: Context, workdir: Path) -> None:
        self.context = context
        self.workdir = workdir

    def build(self) -> Adapter:
        """An adapter over this store, built in the calling thread and watched while built.

        :raises Failed: when it cannot be built.
        """
        ctx = self.context
        with ctx.watching(self.workdir) as seen:
            try:
                with out_of_sight():
                    adapter = ctx.target.builder(ctx.cpas_id, self.workdir)
            except Exception as exc:
                log.error("the adapter could not start", exc_info=True)
                raise Failed(
                    f"the adapter could not start: {exc}", describe_exception(exc)
                ) from exc
            finally:
                ctx.note_side_channels(seen)
        ctx.note_tampering("after the adapter was built")
        return adapter

    @contextlib.contextmanager
    def open(self) -> Iterator[Adapter]:
        """An adapter over this store, closed afterwards; watched throughout.

        :raises Failed: when it cannot be built.
        """
        ctx = self.context
        adapter = self.build()
        with ctx.watching(self.workdir) as seen:
            try:
                yield adapter
            finally:
                ctx.note_tampering("while the adapter was in use")
                try:
                    adapter.close()
                except Exception:
                    # A close that fails after the case is logged, not judged: the
                    # case already has its outcome, and DSE-ERR-001 probes close.
                    log.warning("closing the adapter after a case failed", exc_info=True)
                ctx.note_side_channels(seen)
        ctx.note_tampering("after the adapter was closed")


SUITE_PACKAGE: Final = __name__.split(".", 1)[0]


@contextlib.contextmanager
def out_of_sight() -> Iterator[None]:
    """Hide the suite's modules and loggers while an adapter is built.

    An adapter that looked, at construction, for the suite among the loaded
    modules or the loggers finds a process like a node's. The suite's code
    keeps its references to its modules; nothing is imported in the meantime.
    """

    def ours(name: str) -> bool:
        return name == SUITE_PACKAGE or name.startswith(SUITE_PACKAGE + ".")

    modules = {name: module for name, module in list(sys.modules.items()) if ours(name)}
    registry = logging.Logger.manager.loggerDict
    loggers = {name: item for name, item in list(registry.items()) if ours(name)}
    for name in modules:
        del sys.modules[name]
    for name in loggers:
        del registry[name]
    try:
        yield
    finally:
        sys.modules.update(modules)
        registry.update(loggers)


def in_other_thread(call: Callable[[], T], name: str = "worker") -> T:
    """``call()`` in a new thread (as the node calls its adapter), its result or its exception."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result
