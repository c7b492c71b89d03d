"""A fingerprint of the gateway's own checks, to see an adapter change them in-process.

An adapter runs inside the node's process and could replace a function of
the directory, the envelope, the dossier model or the hardened parser (a
monkey-patch, a swapped ``__code__``) so that the police is a destination or
a hostile document parses. :class:`Fingerprint` records, when the suite is
imported and before any adapter is built, the identity of every function and
class those modules define, every member of those classes, and every
function's code and defaults; a module that is a package is guarded with
every module inside it. :meth:`Fingerprint.changes` lists what differs now,
and :meth:`Fingerprint.restore` puts the originals back, so that the rest of
a run judges the genuine gateway.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

GUARDED_MODULES: Final = (
    "gateway.model.directory",
    "gateway.model.envelope",
    "gateway.model.dossier",
    "gateway.model.hardened_xml",
    "gateway.model.identifiers",
    "gateway.model.keys",
    "gateway.cli.validate",
)
"""The modules whose functions decide what may leave and what is accepted."""


@dataclass(frozen=True)
class _Entry:
    where: str
    owner: Any
    name: str
    value: Any
    code: Any = None
    defaults: Any = None
    kwdefaults: Any = None


def _function_state(value: Any) -> tuple[Any, Any, Any]:
    function = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
    if inspect.isfunction(function):
        return function.__code__, function.__defaults__, function.__kwdefaults__
    return None, None, None


class Fingerprint:
    """The identity of the guarded modules' functions, classes and class members."""

    def __init__(self, modules: tuple[str, ...] = GUARDED_MODULES) -> None:
        self._entries: list[_Entry] = []
        self._members: dict[str, tuple[type, frozenset[str]]] = {}
        seen_classes: set[type] = set()
        for guarded in modules:
            for module in _with_submodules(guarded):
                for name, value in list(vars(module).items()):
                    if not _defined_in(value, guarded):
                        continue
                    where = f"{module.__name__}.{name}"
                    if inspect.isfunction(value):
                        self._add(where, module, name, value)
                    elif inspect.isclass(value):
                        self._add(where, module, name, value)
                        # A class re-exported by its package is fingerprinted once, under
                        # the first name found: the package's, the one callers use.
                        if value in seen_classes:
                            continue
                        seen_classes.add(value)
                        members = vars(value)
                        self._members[where] = (value, frozenset(members))
                        for member, item in list(members.items()):
                            self._add(f"{where}.{member}", value, member, item)

    def _add(self, where: str, owner: Any, name: str, value: Any) -> None:
        code, defaults, kwdefaults = _function_state(value)
        self._entries.append(_Entry(where, owner, name, value, code, defaults, kwdefaults))

    def changes(self) -> list[str]:
        """What differs from the fingerprint: replaced, removed or added members, changed code."""
        found = []
        for entry in self._entries:
            current = vars(entry.owner).get(entry.name, _MISSING)
            if current is _MISSING:
                found.append(f"{entry.where} was removed")
            elif current is not entry.value:
                found.append(f"{entry.where} was replaced")
            elif _function_state(current) != (entry.code, entry.defaults, entry.kwdefaults):
                found.append(f"the code or defaults of {entry.where} were changed")
        for where, (owner, members) in self._members.items():
            added = sorted(name for name in set(vars(owner)) - members if not name.startswith("__"))
            found += [f"{where}.{name} was added" for name in added]
        return found

    def restore(self) -> None:
        """Put every original back (what was added is removed)."""
        for entry in self._entries:
            current = vars(entry.owner).get(entry.name, _MISSING)
            if current is not entry.value:
                setattr(entry.owner, entry.name, entry.value)
            function = (
                entry.value.__func__
                if isinstance(entry.value, (classmethod, staticmethod))
                else entry.value
            )
            if inspect.isfunction(function):
                function.__code__ = entry.code
                function.__defaults__ = entry.defaults
                function.__kwdefaults__ = entry.kwdefaults
        for owner, members in self._members.values():
            for name in set(vars(owner)) - members:
                if not name.startswith("__"):
                    delattr(owner, name)


def _with_submodules(name: str) -> list[ModuleType]:
    """The module ``name`` and, when it is a package, every module inside it, package first."""
    module = importlib.import_module(name)
    found = [module]
    for info in pkgutil.walk_packages(getattr(module, "__path__", ()), prefix=f"{name}."):
        found.append(importlib.import_module(info.name))
    return found


def _defined_in(value: Any, guarded: str) -> bool:
    """Whether ``value`` was defined in the guarded module, or in a module of that package."""
    module = getattr(value, "__module__", None)
    return isinstance(module, str) and (module == guarded or module.startswith(f"{guarded}."))


_MISSING: Final = object()

BASELINE: Final = Fingerprint()
"""Taken when the suite is imported: before the command loads any adapter plugin."""
