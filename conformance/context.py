"""What the suite checks and what every check is given.

An :class:`AdapterTarget` says how to build a *fresh* adapter over a fresh,
empty store: the suite gives each case its own work folder, and the target
turns it into an adapter. For an installed adapter, the options name that
folder through placeholders::

    cpas-conformance --adapter acme --option db=sqlite:///{workdir}/acme.db

``{workdir}`` is the case's own empty folder; ``{workid}`` the folder's name,
unique to the case and the run and safe as an SQL identifier (for stores that
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
import itertools
import logging
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Final, TypeVar

from gateway.adapters import (
    Adapter,
    AdapterInfo,
    Inspectable,
    PlantsSensitiveData,
    Seedable,
    load_adapters,
)
from gateway.adapters.manager import ENTRY_POINT_GROUP
from gateway.dossier import Dossier
from gateway.errors import ConfigError, GatewayError
from gateway.identifiers import make_enterprise_number

from .outcomes import Failed
from .requirements import DECLARED_CAPABILITIES

log = logging.getLogger(__name__)

T = TypeVar("T")


def draw_cpas_id() -> str:
    """A synthetic CPAS for the adapter under test to serve, drawn anew for each run.

    Drawn, not fixed, so that an adapter cannot recognise the suite by it.
    Corpus dossiers come from CPAS numbered after five-digit municipality
    codes; drawing from six-digit seeds keeps the two apart, so a dossier
    passed on under its sender's id never matches by chance (DSE-EXP-004).
    """
    return make_enterprise_number(100_000 + secrets.randbelow(900_000))


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

    :param builder: builds a fresh adapter over an empty store.
    :param name: the name it is registered under, when it was loaded by name.
    :param options: the option templates given (for the report).
    :param distribution: the package that provides it and its version, when known.
    """

    builder: AdapterBuilder
    name: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    distribution: tuple[str, str] | None = None

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
            code="adapter.unknown",
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
        optional protocols it implements (``seed``, ``inspect``, ``plant``).
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
    :param cpas_id: the CPAS the adapters under test serve (drawn by default).
    :param keep_workdirs: keep each case's folder after the case (to look at the store).
    """

    def __init__(
        self,
        target: AdapterTarget,
        workdir: Path,
        *,
        cpas_id: str | None = None,
        keep_workdirs: bool = False,
    ) -> None:
        self.target = target
        self.workdir = Path(workdir)
        self.cpas_id = cpas_id or draw_cpas_id()
        self.keep_workdirs = keep_workdirs
        self.timings: dict[str, list[float]] = {"export": [], "import": []}
        self._counter = itertools.count(1)
        self._run_id = secrets.token_hex(3)
        self._cache: dict[Any, Any] = {}
        self._profile: AdapterProfile | None = None

    # ------------------------------------------------------------- adapters

    @contextlib.contextmanager
    def fresh_adapter(self) -> Iterator[Adapter]:
        """A new adapter over a new, empty store; closed (and its folder removed) afterwards.

        :raises Failed: when the adapter cannot be built.
        """
        # Unique across runs and a valid identifier: it doubles as {workid}.
        workdir = self.workdir / f"c{self._run_id}_{next(self._counter):04d}"
        workdir.mkdir(parents=True)
        try:
            adapter = self.target.builder(self.cpas_id, workdir)
        except Exception as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise Failed(f"the adapter could not start: {exc}", describe_exception(exc)) from exc
        try:
            yield adapter
        finally:
            try:
                adapter.close()
            except Exception:
                # A close that fails after the case is logged, not judged: the
                # case already has its outcome, and DSE-ERR-001 probes close.
                log.warning("closing the adapter after a case failed", exc_info=True)
            if not self.keep_workdirs:
                shutil.rmtree(workdir, ignore_errors=True)

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

    # --------------------------------------------------------------- timing

    def export(self, adapter: Adapter, person_number: str) -> object:
        """``adapter.export_dossier(person_number)``, timed; exceptions pass through."""
        return self._timed("export", adapter.export_dossier, person_number)

    def import_(self, adapter: Adapter, dossier: Dossier, message_id: str | None = None) -> object:
        """``adapter.import_dossier(dossier, message_id=...)``, timed; a fresh id by default."""
        # Plain UUIDs, as a node's message ids are: nothing marks a call as the suite's.
        message_id = message_id or str(uuid.uuid4())
        return self._timed("import", adapter.import_dossier, dossier, message_id=message_id)

    def _timed(self, operation: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            self.timings[operation].append(time.perf_counter() - started)

    # ---------------------------------------------------------------- cache

    def cached(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` once per run for ``key``; an observation several requirements judge."""
        if key not in self._cache:
            self._cache[key] = compute()
        result: T = self._cache[key]
        return result
