"""CPAS Dossier Gateway: a minimal electronic social dossier, moved only between CPAS.

The layers are packages: :mod:`gateway.model` (dossier, directory, envelope,
keys, hardened XML, identifiers, the vocabulary of codes) never imports the
broker, the node or the command line, so vendors and the conformance suite can
use it without a broker; vendor adapters import :mod:`gateway.adapters` and
the model only.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

__version__ = "0.1.0"

# Modules that moved into a layer's package: code written against the old
# names (a vendor's adapter, an operator's script) keeps working, and is told
# where they went.
_MOVED: dict[str, str] = {
    **{
        name: f"model.{name}"
        for name in (
            "codes",
            "errors",
            "identifiers",
            "hardened_xml",
            "keys",
            "dossier",
            "directory",
            "envelope",
            "municipalities",
            "sensitive",
            "staff",
        )
    },
    "synthetic": "testing.synthetic",
}


class _MovedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import a former ``gateway.<name>`` as the very module it became, with a warning."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in _MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = f"{__name__}.{_MOVED[spec.name.rpartition('.')[2]]}"
        warnings.warn(
            f"{spec.name} is now {new}; import it from there "
            "(the old name will be removed in a later release).",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module is already executed: it is the one it became."""


sys.meta_path.append(_MovedModule())
