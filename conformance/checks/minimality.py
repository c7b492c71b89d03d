"""DSE-MIN-001: planted sensitive data never leaves."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from gateway import hardened_xml
from gateway.dossier import Dossier
from gateway.errors import GatewayError
from gateway.synthetic import FamilyMember, SensitiveData

from .. import corpus
from .. import requirements as reqs
from ..context import Context
from ..outcomes import Failed
from .observe import HELD_FILE, OTHER_FILE, fails_on_error, give_people, planter
from .registry import Case, Evidence, check


@dataclass(frozen=True)
class Marker:
    """A unique string planted as sensitive data: found anywhere in an export, it leaked.

    :param kind: the kind of sensitive data it stands for.
    :param text: the planted text, realistic and beyond ASCII.
    :param token: its random part: found in any letter case, it leaked too.
    """

    kind: str
    text: str
    token: str


def _token() -> str:
    # Letters only: the token could be smuggled even into a name, and is
    # still found there.
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(16))


def make_markers(kind: str) -> tuple[SensitiveData, list[Marker]]:
    """Fresh sensitive data of one ``kind``, and the markers to search exports for."""
    a, b = _token(), _token()
    family = dt.date(1979, 2, 17)
    texts: dict[str, list[str]] = {
        "notes": [
            f"Note {a} : l'intéressé évoque une dépression, suivi psychiatrique à Liège",
            f"Gesprek {b}: cliënt agressief aan het loket — zie incidentverslag",
        ],
        "activation-measures": [
            f"Projet individualisé d'intégration {a} : stage article 60 à la Régie",
            f"Activeringstraject {b}: opleiding kok bij Çelik en Zonen",
        ],
        "sanctions": [
            f"Sanction {a} : revenu d'intégration suspendu un mois (non-respect du PIIS)",
            f"Sanktion {b}: Rückforderung wegen nicht gemeldeter Einkünfte",
        ],
        "refused-applications": [
            f"prime d'installation {a}",
            f"Refus {b} : ressources du partenaire au-delà du seuil",
        ],
        "family-members": [f"Zoë {a.capitalize()}", f"{b.capitalize()}-Nguyễn"],
    }
    first, second = texts[kind]
    if kind == "notes":
        sensitive = SensitiveData(notes=(first, second))
    elif kind == "activation-measures":
        sensitive = SensitiveData(activation_measures=(first, second))
    elif kind == "sanctions":
        sensitive = SensitiveData(sanctions=(first, second))
    elif kind == "refused-applications":
        sensitive = SensitiveData(refused_applications=((first, second),))
    else:
        sensitive = SensitiveData(
            family_members=(
                FamilyMember(first, "partner", family, Decimal("1234.56")),
                FamilyMember(second, "child", dt.date(2014, 9, 3), Decimal("0.00")),
            )
        )
    return sensitive, [Marker(kind, first, a), Marker(kind, second, b)]


MARKER_KINDS: Final = (
    ("notes", "social workers' notes"),
    ("activation-measures", "activation measures"),
    ("sanctions", "sanctions"),
    ("refused-applications", "a refused application and its reason"),
    ("family-members", "family members' names"),
)


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def find_markers(value: object, markers: Sequence[Marker]) -> list[Evidence]:
    """Where each marker appears in an export: its XML bytes and its ``model_dump_json``.

    A marker is found when its whole text appears, or its random token in any
    letter case and Unicode form (a leak that was reformatted still leaks).
    """
    xml, data, dumped = b"", None, repr(value)
    if isinstance(value, Dossier):
        # Whatever cannot be serialised is searched in the forms that can.
        with contextlib.suppress(Exception):
            xml = Dossier.to_xml(value)
        with contextlib.suppress(Exception):
            dumped = value.model_dump_json()
            data = value.model_dump(mode="json")
    texts = {"XML": xml.decode("utf-8", "replace"), "model_dump_json": dumped}
    found = []
    for marker in markers:
        for source, text in texts.items():
            exact = marker.text in text or marker.text.encode("utf-8") in xml
            if exact or marker.token in _folded(text):
                where = (
                    _locate_in_xml(xml, marker.token)
                    if source == "XML"
                    else _locate_in_data(data, marker.token)
                )
                found.append(
                    {
                        "kind": marker.kind,
                        "marker": marker.text,
                        "token": marker.token,
                        "foundIn": source,
                        "where": where or "somewhere in it",
                        "exact": exact,
                    }
                )
                break
    return found


def _locate_in_xml(xml: bytes, token: str) -> str | None:
    """The path of the element whose text or attribute holds ``token``."""
    try:
        root = hardened_xml.parse(xml)
    except GatewayError:
        return None
    for element in root.iter():
        values = [element.text or "", *element.attrib.values()]
        if any(token in _folded(str(text)) for text in values):
            path = [element, *element.iterancestors()]
            return "/" + "/".join(str(item.tag).rsplit("}", 1)[-1] for item in reversed(path))
    return None


def _locate_in_data(data: object, token: str, path: str = "") -> str | None:
    """The dotted path of the field of a dumped model whose value holds ``token``."""
    if isinstance(data, dict):
        items: list[tuple[str, object]] = [
            (f"{path}.{key}" if path else str(key), item) for key, item in data.items()
        ]
    elif isinstance(data, list):
        items = [(f"{path}[{index}]", item) for index, item in enumerate(data)]
    else:
        return path if token in _folded(str(data)) else None
    for where, item in items:
        found = _locate_in_data(item, token, where)
        if found is not None:
            return found
    return None


@check(
    reqs.MIN_001,
    lambda: [Case(kind, f"{label}, planted on one of two people") for kind, label in MARKER_KINDS],
)
def nothing_sensitive_leaves(ctx: Context, case: Case) -> Evidence:
    """Planted sensitive data appears in no export, of the person or of anyone else."""
    if not ctx.has("plant"):
        raise Failed(
            "the adapter cannot be certified for minimality: it does not implement the "
            "PlantsSensitiveData test hook (gateway.adapters.PlantsSensitiveData), so the suite "
            "cannot plant the data that must never leave"
        )
    planted_on = corpus.valid_dossier(HELD_FILE)
    other = corpus.valid_dossier(OTHER_FILE)
    sensitive, markers = make_markers(case.id)
    with ctx.fresh_adapter() as adapter:
        numbers = give_people(ctx, adapter, [planted_on, other])
        try:
            planter(adapter).add_sensitive(numbers[0], sensitive)
        except Exception as exc:
            raise fails_on_error("add_sensitive", exc) from exc
        if ctx.has("import"):
            # An update of the same person must not bring the planted data along either.
            try:
                ctx.import_(adapter, planted_on)
            except Exception as exc:
                raise fails_on_error("import_dossier of an update", exc) from exc
        searched = 0
        for index, number in enumerate(numbers):
            try:
                value = ctx.export(adapter, number)
            except Exception as exc:
                raise fails_on_error("export_dossier", exc) from exc
            if value is None:
                raise Failed("export_dossier gave no dossier for a person it holds")
            searched += 1
            leaks = find_markers(value, markers)
            if leaks:
                whose = "the person it was planted on" if index == 0 else "another person"
                leak = leaks[0]
                raise Failed(
                    f"a marker of {dict(MARKER_KINDS)[case.id]} appears in the export of "
                    f"{whose}, in {leak['foundIn']} at {leak['where']}",
                    {"leaks": leaks, "exportOf": whose},
                )
    return {"markers": [marker.text for marker in markers], "exportsSearched": searched}
