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
    **{
        name: f"federation.{name}"
        for name in ("localnet", "provision", "local_pki", "local_broker")
    },
}


def _new_name(fullname: str) -> str | None:
    """What a former module name (or one of its submodules) is called now."""
    root, _, rest = fullname.partition(".")
    name, _, sub = rest.partition(".")
    if root != __name__ or name not in _MOVED:
        return None
    return f"{__name__}.{_MOVED[name]}" + (f".{sub}" if sub else "")


class _MovedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import a former ``gateway.<name>`` as the very module it became, with a warning.

    The alias is an entry in ``sys.modules`` pointing at the module itself: one
    module object under both names (the same classes for ``isinstance``), whose
    own spec, resources and reload are untouched.
    """

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if _new_name(fullname) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        """The default: a placeholder, replaced by the module itself in :meth:`exec_module`."""

    def exec_module(self, module: ModuleType) -> None:
        new = _new_name(module.__name__)
        assert new is not None
        # Point the warning at the code that imports, past the import machinery
        # (counting as `warnings` counts: it skips importlib's bootstrap frames).
        frame, level = sys._getframe(0), 1
        while frame.f_back is not None and (
            frame.f_code.co_filename == __file__ or "importlib" in frame.f_code.co_filename
        ):
            frame = frame.f_back
            if "_bootstrap" not in frame.f_code.co_filename:
                level += 1
        warnings.warn(
            f"{module.__name__} is now {new}; import it from there "
            "(the old name will be removed in a later release).",
            DeprecationWarning,
            stacklevel=level,
        )
        sys.modules[module.__name__] = importlib.import_module(new)

    def get_code(self, fullname: str) -> None:
        """``python -m`` with a former name: say the new one."""
        raise ImportError(f"{fullname} is now {_new_name(fullname)}: run that module instead.")


sys.meta_path.insert(0, _MovedModule())
