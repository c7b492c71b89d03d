"""Deliberately broken adapters, to prove the conformance suite fails when it should.

Each wraps a reference adapter and breaks exactly one thing; the suite must
fail on exactly the requirement that thing breaks (``EXPECTED_FAILURE``).
Two more declare less than the reference adapters do, to prove that what an
adapter does not declare gives visible skips, and that leaving out the
minimality test hook does not avoid the minimality requirement.

They reach the suite as a pluggy plugin object, ``PLUGIN``, passed to
:func:`gateway.adapters.load_adapters` (``cpas_conformance.cli.main(...,
plugins=[PLUGIN])``). Their options are the wrapped adapter's, e.g.
``url={workdir}/db.sqlite3`` for OCMWdata or ``folder={workdir}/fiches`` for
FicheSociale.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

from fichesociale import FicheSocialeAdapter
from gateway.adapters import AdapterFactory, ImportResult, impl
from gateway.dossier import Dossier
from gateway.errors import GatewayError
from gateway.identifiers import validate_person_number
from gateway.synthetic import SensitiveData
from ocmwdata import OcmwdataAdapter

OPTIONS: Final = {
    OcmwdataAdapter: {"url": "{workdir}/ocmwdata.sqlite3"},
    FicheSocialeAdapter: {"folder": "{workdir}/fiches"},
}


class Wrapper:
    """A reference adapter seen through a thin layer; subclasses break one thing.

    Optional protocols (seed, inspect, add_sensitive) pass through unless
    named in ``hidden``, so that ``isinstance(wrapper, Seedable)`` tells the
    truth about the wrapper.
    """

    name: ClassVar[str]
    wraps: ClassVar[type[Any]]
    capabilities: ClassVar[frozenset[str]] = frozenset({"export", "import"})
    hidden: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        self.inner = self.wraps(cpas_id, options)
        self.info = dataclasses.replace(
            self.inner.info,
            name=self.name,
            vendor="Broken on purpose",
            capabilities=self.capabilities,
        )

    def __getattr__(self, name: str) -> Any:
        if name in self.hidden or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def export_dossier(self, person_number: str) -> Dossier | None:
        return self.inner.export_dossier(person_number)

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        return self.inner.import_dossier(dossier, message_id=message_id)

    def close(self) -> None:
        self.inner.close()


class LeakyNote(Wrapper):
    """Sends the latest social worker's note as the case reference (breaks DSE-MIN-001).

    A real adapter would read the note from its own tables; this one keeps
    what the test hook planted, which is the same note.
    """

    name = "broken-leaky-note"
    wraps = OcmwdataAdapter

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        super().__init__(cpas_id, options)
        self.notes: dict[str, str] = {}

    def add_sensitive(self, person_number: str, sensitive: SensitiveData) -> None:
        self.inner.add_sensitive(person_number, sensitive)
        if sensitive.notes:
            self.notes[person_number] = sensitive.notes[-1]

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        note = self.notes.get(person_number)
        if dossier is None or note is None:
            return dossier
        ascii_note = unicodedata.normalize("NFKD", note).encode("ascii", "ignore").decode()
        reference = re.sub(r"[^A-Za-z0-9._/-]+", "-", ascii_note).strip("-")[:64]
        source = dossier.source.model_copy(update={"case_reference": reference})
        return dossier.model_copy(update={"source": source})


class LostDiacritics(Wrapper):
    """Drops accents and other combining marks from names on export (breaks DSE-TXT-001)."""

    name = "broken-lost-diacritics"
    wraps = FicheSocialeAdapter

    @staticmethod
    def _strip(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", text)
        return "".join(ch for ch in decomposed if not unicodedata.combining(ch))

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is None:
            return None
        person = dossier.person.model_copy(
            update={
                "family_name": self._strip(dossier.person.family_name),
                "given_names": [self._strip(name) for name in dossier.person.given_names],
            }
        )
        return dossier.model_copy(update={"person": person})


class DoubleImport(Wrapper):
    """Forgets message ids: a redelivered message is imported again (breaks DSE-IMP-002)."""

    name = "broken-double-import"
    wraps = OcmwdataAdapter

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        return super().import_dossier(dossier, message_id=f"{message_id}/{uuid.uuid4()}")


class BadCheckDigits(Wrapper):
    """Exports the person number with its check digits off by one (breaks DSE-EXP-002).

    ``model_copy`` does not validate, which is exactly how such a defect slips
    past an adapter's own model.
    """

    name = "broken-check-digits"
    wraps = OcmwdataAdapter

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is None:
            return None
        person = dossier.person
        number = person.number
        wrong = f"{number[:9]}{(int(number[9:]) + 1) % 100:02d}"
        field = "niss" if person.niss is not None else "bis"
        return dossier.model_copy(update={"person": person.model_copy(update={field: wrong})})


class CrashOnUnknown(Wrapper):
    """Raises ``KeyError`` for a valid person number it does not hold (breaks DSE-EXP-003).

    A person number is 11 ASCII digits with valid check digits, as the schema
    writes it; anything else still gives ``None``.
    """

    name = "broken-crash-on-unknown"
    wraps = FicheSocialeAdapter

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is None:
            if not person_number.isascii():
                return None
            try:
                validate_person_number(person_number)
            except GatewayError:
                return None
            raise KeyError(person_number)
        return dossier


class ExportOnly(Wrapper):
    """Declares only ``export``: import requirements must be skipped, visibly."""

    name = "export-only"
    wraps = OcmwdataAdapter
    capabilities = frozenset({"export"})


class NoTestHooks(Wrapper):
    """Implements none of the optional protocols (no seed, inspect or planting hook)."""

    name = "no-test-hooks"
    wraps = FicheSocialeAdapter
    hidden = frozenset({"seed", "add_sensitive", "list_person_numbers", "count_persons"})


BROKEN: Final[tuple[type[Wrapper], ...]] = (
    LeakyNote,
    LostDiacritics,
    DoubleImport,
    BadCheckDigits,
    CrashOnUnknown,
)
DECLARING_LESS: Final[tuple[type[Wrapper], ...]] = (ExportOnly, NoTestHooks)

EXPECTED_FAILURE: Final = {
    LeakyNote.name: "DSE-MIN-001",
    LostDiacritics.name: "DSE-TXT-001",
    DoubleImport.name: "DSE-IMP-002",
    BadCheckDigits.name: "DSE-EXP-002",
    CrashOnUnknown.name: "DSE-EXP-003",
}
"""The one requirement each broken adapter must fail."""


def options_for(name: str) -> list[str]:
    """``--option`` arguments giving the named test adapter a fresh store per case."""
    wrapper = next(item for item in (*BROKEN, *DECLARING_LESS) if item.name == name)
    return [f"{key}={value}" for key, value in OPTIONS[wrapper.wraps].items()]


class Plugin:
    """The pluggy plugin registering every test adapter."""

    @impl
    def cpas_register_adapters(self, register: Callable[[str, AdapterFactory], None]) -> None:
        for wrapper in (*BROKEN, *DECLARING_LESS):
            register(wrapper.name, wrapper)


PLUGIN: Final = Plugin()
