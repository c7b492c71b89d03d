"""The suite's test data: the sample corpus shipped inside the package, and generated cases.

Files are read through :mod:`importlib.resources`, so the suite works the same
from the source tree, an editable install and an installed wheel. Cases are
data, as in the JSON-Schema test suite: adding a file to ``corpus/valid/`` or
``corpus/invalid/`` (through ``make_corpus.py``) adds a case, never code.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Final

from gateway.model.dossier import Dossier, HouseholdCategory
from gateway.testing.synthetic import make_decisions

PACKAGE: Final = "cpas_conformance"
MANIFEST: Final = "manifest.json"

LARGE_HISTORY_FILE: Final = "history-200-decisions.xml"
MAX_DECISIONS: Final = 1000
"""The schema's maximum number of decisions in one aid history."""
GENERATED_HISTORY_END: Final = dt.date(2025, 12, 31)
"""Generated decisions end here: fixed, so a case is the same on every run and never 'future'."""


@dataclass(frozen=True)
class CorpusFile:
    """One file of the corpus and what its manifest says about it.

    :param name: the file name, e.g. ``name-nguyen-vietnamese.xml``.
    :param description: the manifest's line about it.
    :param code: for a hostile file, the refusal code expected.
    """

    name: str
    description: str
    code: str | None = None

    @property
    def case_id(self) -> str:
        """The name without ``.xml``: how reports and test ids name the case."""
        return self.name.removesuffix(".xml")


def _folder(kind: str) -> Traversable:
    return resources.files(PACKAGE) / "corpus" / kind


def _manifest(kind: str) -> dict[str, dict[str, str]]:
    data = json.loads((_folder(kind) / MANIFEST).read_text(encoding="utf-8"))
    return {str(name): dict(entry) for name, entry in data.items()}


@functools.cache
def valid_files() -> tuple[CorpusFile, ...]:
    """Every file of ``corpus/valid/``, sorted by name."""
    manifest = _manifest("valid")
    names = sorted(item.name for item in _folder("valid").iterdir() if item.name.endswith(".xml"))
    return tuple(CorpusFile(name, manifest.get(name, {}).get("description", "")) for name in names)


@functools.cache
def invalid_files() -> tuple[CorpusFile, ...]:
    """Every file of ``corpus/invalid/`` listed in its manifest, with the code expected."""
    return tuple(
        CorpusFile(name, entry.get("description", ""), entry["code"])
        for name, entry in sorted(_manifest("invalid").items())
    )


def read_valid(name: str) -> bytes:
    """The bytes of one valid corpus file."""
    return (_folder("valid") / name).read_bytes()


def read_invalid(name: str) -> bytes:
    """The bytes of one hostile corpus file."""
    return (_folder("invalid") / name).read_bytes()


@functools.cache
def valid_dossier(name: str) -> Dossier:
    """A valid corpus file as a model (parsed once; models are immutable, so shared safely)."""
    return Dossier.from_xml(read_valid(name))


def has_special_names(dossier: Dossier) -> bool:
    """Whether the person's names hold anything but ASCII letters (accents, apostrophes...)."""
    names = [dossier.person.family_name, *dossier.person.given_names]
    return any(not (ch.isascii() and ch.isalpha()) for name in names for ch in name)


@functools.cache
def special_name_files() -> tuple[CorpusFile, ...]:
    """The valid files whose names test characters beyond ASCII letters."""
    return tuple(item for item in valid_files() if has_special_names(valid_dossier(item.name)))


@functools.cache
def generated_history(count: int = MAX_DECISIONS) -> Dossier:
    """The large-history corpus dossier, its history replaced by ``count`` generated decisions.

    Deterministic: the same decisions on every run and every machine.
    """
    base = valid_dossier(LARGE_HISTORY_FILE)
    rng = random.Random(f"cpas-conformance-history-{count}")
    history = make_decisions(
        rng, count, HouseholdCategory(base.household.category), today=GENERATED_HISTORY_END
    )
    # Revalidated through the model rather than copied: model_copy would skip the checks.
    data = base.model_dump()
    data["aid_history"] = [decision.model_dump() for decision in history]
    return Dossier.model_validate(data)
