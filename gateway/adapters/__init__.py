"""Writing a vendor adapter: the quick-start (the full guide is ``docs/adapters.md``).

An adapter translates between one vendor's own data (a database, files, an
API) and the canonical :class:`~gateway.model.dossier.Dossier`. It is a pluggy
plugin found through the entry-point group ``cpas_gateway.adapters``.
``cpas-gateway adapter new acme`` writes such a package, ready to fill in::

    # pyproject.toml of your package
    [project.entry-points."cpas_gateway.adapters"]
    acme = "acme_cpas.plugin"

    # acme_cpas/adapter.py
    from gateway.adapters import AdapterInfo, ImportResult
    from gateway.model.dossier import Dossier

    class AcmeAdapter:
        info = AdapterInfo(
            name="acme",
            vendor="Acme",
            product="Acme Social",
            version="3.1",
            schema_versions=("1",),
            capabilities=frozenset({"export", "import"}),
        )

        def __init__(self, cpas_id: str, options: dict[str, str]) -> None: ...
        def export_dossier(self, person_number: str) -> Dossier | None: ...
        def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult: ...
        def close(self) -> None: ...

    # acme_cpas/plugin.py
    from gateway.adapters import impl
    from acme_cpas.adapter import AcmeAdapter

    @impl
    def cpas_register_adapters(register):
        register("acme", AcmeAdapter)

:class:`gateway.adapters.base.StoreAdapter` gives an adapter over the
vendor's own store the error guard, person-number checks, idempotency by
message id and seeding; an adapter need not use it.

Rules an adapter keeps (the conformance suite checks them):

- export only what the canonical dossier holds: never notes, activation
  measures, sanctions, refused applications or other people's data;
- return ``None`` for a person it does not know, never raise;
- import idempotently: the same ``message_id`` twice gives one record;
- raise :class:`~gateway.model.errors.AdapterError` (``transient=True`` when a
  retry may help, with the code ``adapter.unavailable`` when the whole
  vendor system is away, e.g. the database is down or the disk full) rather
  than anything else.

Plugins import only this package, :mod:`gateway.model.dossier`,
:mod:`gateway.model.identifiers`, :mod:`gateway.testing.synthetic` and :mod:`gateway.model.errors`.
"""

from __future__ import annotations

from gateway.adapters.manager import AdapterRegistry, load_adapters
from gateway.adapters.protocol import (
    Adapter,
    AdapterFactory,
    AdapterInfo,
    BatchImporter,
    ImportResult,
    Inspectable,
    PlantsSensitiveData,
    ReceivesEvents,
    Seedable,
    SimulatesOutage,
    VendorEvent,
    VendorEventKind,
)
from gateway.adapters.spec import impl

__all__ = [
    "Adapter",
    "AdapterFactory",
    "AdapterInfo",
    "AdapterRegistry",
    "BatchImporter",
    "ImportResult",
    "Inspectable",
    "PlantsSensitiveData",
    "ReceivesEvents",
    "Seedable",
    "SimulatesOutage",
    "VendorEvent",
    "VendorEventKind",
    "impl",
    "load_adapters",
]
