"""Writing a vendor adapter: the quick-start.

An adapter translates between one vendor's own data (a database, files, an
API) and the canonical :class:`~gateway.dossier.Dossier`. It is a pluggy
plugin found through the entry-point group ``cpas_gateway.adapters``::

    # pyproject.toml of your package
    [project.entry-points."cpas_gateway.adapters"]
    acme = "acme_cpas.adapter"

    # acme_cpas/adapter.py
    from gateway.adapters import AdapterInfo, ImportResult, impl

    class AcmeAdapter:
        info = AdapterInfo(name="acme", vendor="Acme", product="Acme Social", version="3.1")

        def __init__(self, cpas_id: str, options: dict[str, str]) -> None: ...
        def export_dossier(self, person_number: str) -> Dossier | None: ...
        def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult: ...
        def close(self) -> None: ...

    @impl
    def cpas_register_adapters(register):
        register("acme", AcmeAdapter)

Rules an adapter keeps (the conformance suite checks them):

- export only what the canonical dossier holds: never notes, activation
  measures, sanctions, refused applications or other people's data;
- return ``None`` for a person it does not know, never raise;
- import idempotently: the same ``message_id`` twice gives one record;
- raise :class:`~gateway.errors.AdapterError` (``transient=True`` when a
  retry may help, e.g. the database is down) rather than anything else.

Plugins import only this package, :mod:`gateway.dossier`,
:mod:`gateway.identifiers`, :mod:`gateway.synthetic` and :mod:`gateway.errors`.
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
    Seedable,
    SimulatesOutage,
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
    "Seedable",
    "SimulatesOutage",
    "impl",
    "load_adapters",
]
