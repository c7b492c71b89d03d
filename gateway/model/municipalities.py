"""Belgium's municipalities, from the packaged reference file ``gateway/data/municipalities.csv``.

The file lists the 581 municipalities as they stood from 2019 to 2024 (NIS
code, Dutch and French names, region, inhabitants). Each one has a CPAS/OCMW,
so the sample directory builds one CPAS per row. German names are added here
for the nine municipalities of the German-speaking Community.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Final


class Region(StrEnum):
    """The three regions."""

    FLANDERS = "flanders"
    WALLONIA = "wallonia"
    BRUSSELS = "brussels"


_REGIONS: Final = {
    "Région flamande": Region.FLANDERS,
    "Région wallonne": Region.WALLONIA,
    "Région de Bruxelles-Capitale": Region.BRUSSELS,
}

GERMAN_NAMES: Final = {
    "63001": "Amel",
    "63012": "Büllingen",
    "63013": "Bütgenbach",
    "63023": "Eupen",
    "63040": "Kelmis",
    "63048": "Lontzen",
    "63061": "Raeren",
    "63067": "Sankt Vith",
    "63087": "Burg-Reuland",
}
"""The municipalities of the German-speaking Community, by NIS code."""


@dataclass(frozen=True)
class Municipality:
    """One municipality: NIS code, names, region and inhabitants."""

    nis_code: str
    name_nl: str
    name_fr: str
    name_de: str | None
    region: Region
    population: int

    @property
    def german_speaking(self) -> bool:
        """Whether the municipality belongs to the German-speaking Community."""
        return self.name_de is not None

    def name(self, lang: str) -> str:
        """The municipality's name in ``lang`` (fr, nl or de); French or Dutch when it has none."""
        if lang == "de" and self.name_de:
            return self.name_de
        return self.name_nl if lang == "nl" else self.name_fr


@functools.cache
def municipalities() -> tuple[Municipality, ...]:
    """Every municipality in the reference file, in NIS-code order."""
    text = resources.files("gateway.data").joinpath("municipalities.csv").read_text("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    found = [
        Municipality(
            nis_code=row["NIS_code"].strip(),
            name_nl=row["municipality_NL"].strip(),
            name_fr=row["municipality_FR"].strip(),
            name_de=GERMAN_NAMES.get(row["NIS_code"].strip()),
            region=_REGIONS[row["region_FR"].strip()],
            population=int(row["inhabitants"]),
        )
        for row in rows
    ]
    return tuple(sorted(found, key=lambda m: m.nis_code))


def by_nis_code(nis_code: str) -> Municipality | None:
    """The municipality with this NIS code, or ``None``."""
    return _index().get(nis_code)


@functools.cache
def _index() -> dict[str, Municipality]:
    return {m.nis_code: m for m in municipalities()}


def by_name(name: str) -> Municipality | None:
    """The municipality called ``name`` in any of its languages (case-insensitive), or ``None``."""
    wanted = name.casefold()
    for m in municipalities():
        if wanted in {m.name_nl.casefold(), m.name_fr.casefold(), (m.name_de or "").casefold()}:
            return m
    return None
