"""A new vendor adapter package, written from the templates in :mod:`gateway.adapter_template`.

:func:`new_adapter_package` writes an installable package: ``pyproject.toml``
with the entry point, the plugin module, an adapter skeleton on
:mod:`gateway.adapters.base` with every place the vendor must still write
marked (:data:`VENDOR_MARK`), a README and a test file running the
conformance suite with pytest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Final

from gateway import __version__
from gateway.model.codes import Fault
from gateway.model.errors import ConfigError

VENDOR_MARK: Final = "# >>> VENDOR CODE"
"""Opens each block the vendor must still write; ``# <<< VENDOR CODE`` closes it."""

_NAME: Final = re.compile(r"[a-z][a-z0-9_]{1,30}")

# template file -> path in the package, with {package} for the module folder
_FILES: Final = (
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("README.md.tmpl", "README.md"),
    ("init.py.tmpl", "{package}/__init__.py"),
    ("plugin.py.tmpl", "{package}/plugin.py"),
    ("adapter.py.tmpl", "{package}/adapter.py"),
    ("test_conformance.py.tmpl", "tests/test_conformance.py"),
)


@dataclass(frozen=True)
class AdapterNames:
    """Every name the package uses, derived from the adapter's name."""

    name: str
    vendor: str

    @property
    def package(self) -> str:
        return f"{self.name}_cpas"

    @property
    def distribution(self) -> str:
        return f"{self.name.replace('_', '-')}-cpas-adapter"

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_") if part) + "Adapter"

    def substitutions(self) -> dict[str, str]:
        return {
            "name": self.name,
            "vendor": self.vendor,
            "package": self.package,
            "distribution": self.distribution,
            "class_name": self.class_name,
            "gateway_version": __version__,
        }


def adapter_names(name: str, vendor: str | None = None) -> AdapterNames:
    """Check an adapter name (lower case, a Python identifier) and derive the others.

    :raises ConfigError: ``adapter.name`` for a name that cannot be one.
    """
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} cannot name an adapter: use 2 to 31 lower-case letters, digits and "
            "underscores, starting with a letter (e.g. acme or acme_social).",
            code=Fault.ADAPTER_NAME,
        )
    return AdapterNames(name, vendor or name.replace("_", " ").title())


def new_adapter_package(name: str, folder: Path, *, vendor: str | None = None) -> list[Path]:
    """Write the package of a new adapter ``name`` into ``folder``; return the files written.

    :raises ConfigError: for a bad name, or a ``folder`` that exists and is not empty.
    """
    names = adapter_names(name, vendor)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(
            f"{folder} already exists and is not an empty folder: choose another with --dir.",
            code=Fault.ADAPTER_FOLDER,
        )
    values = names.substitutions()
    templates = resources.files("gateway.adapter_template")
    written = []
    for template, target in _FILES:
        text = Template(templates.joinpath(template).read_text(encoding="utf-8"))
        path = folder / target.format(package=names.package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.substitute(values), encoding="utf-8")
        written.append(path)
    return written
