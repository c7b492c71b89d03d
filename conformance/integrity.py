"""A fingerprint of the gateway's own checks, to see an adapter change them in-process.

An adapter runs inside the node's process and could replace a function of
the directory, the envelope, the dossier model or the hardened parser (a
monkey-patch, a swapped ``__code__``) so that the police is a destination or
a hostile document parses. :class:`Fingerprint` records, when the suite is
imported and before any adapter is built, the identity of every function and
class those modules define, every member of those classes, and every
function's code and defaults. :meth:`Fingerprint.changes` lists what differs
now, and :meth:`Fingerprint.restore` puts the originals back, so that the
rest of a run judges the genuine gateway.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
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
        for module_name in modules:
            module = importlib.import_module(module_name)
            for name, value in list(vars(module).items()):
                if getattr(value, "__module__", None) != module_name:
                    continue
                if inspect.isfunction(value):
                    self._add(f"{module_name}.{name}", module, name, value)
                elif inspect.isclass(value):
                    self._add(f"{module_name}.{name}", module, name, value)
                    where = f"{module_name}.{name}"
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


_MISSING: Final = object()

BASELINE: Final = Fingerprint()
"""Taken when the suite is imported: before the command loads any adapter plugin."""
