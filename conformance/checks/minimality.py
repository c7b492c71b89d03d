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
from typing import Any, Final

from gateway.model import hardened_xml
from gateway.model.dossier import Dossier
from gateway.model.errors import GatewayError
from gateway.testing.synthetic import FamilyMember, SensitiveData

from .. import requirements as reqs
from ..context import Context
from ..outcomes import Failed, NotJudged
from .importing import content
from .observe import HELD_FILE, OTHER_FILE, as_dossier, fails_on_error, give_people, planter
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
    # still found there. Drawn afresh (not from the run's seed): a replayed run
    # must not give an adapter markers it could have kept from the first.
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
        "addresses": [
            f"Rue de l'Église {a} 14 bte 3, 4000 Liège",
            f"Kerkstraat {b} 7, 9000 Gent",
        ],
        "health-data": [
            f"Diabète de type 2 {a}, insuline — médecin traitant Dr Lemaître",
            f"Opname psychiatrie {b}: 3 weken, ontslag met nazorg",
        ],
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
    elif kind == "addresses":
        sensitive = SensitiveData(addresses=(first, second))
    elif kind == "health-data":
        sensitive = SensitiveData(health_data=(first, second))
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
    ("addresses", "addresses"),
    ("health-data", "health data"),
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
    planted_on = ctx.dossier(HELD_FILE)
    other = ctx.dossier(OTHER_FILE)
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


# -------------------------------------------------------------- DSE-MIN-002

STRUCTURE_KINDS: Final = (
    *MARKER_KINDS[:4],
    ("family-members", "household members"),
    *MARKER_KINDS[5:],
)


def _export_content(
    ctx: Context, adapter: Any, number: str, markers: Sequence[Marker] = ()
) -> dict[str, Any]:
    try:
        value = ctx.export(adapter, number)
    except Exception as exc:
        raise fails_on_error("export_dossier", exc) from exc
    if value is None:
        raise Failed("export_dossier gave no dossier for a person it holds")
    if markers and find_markers(value, markers):
        # The planted text itself left: DSE-MIN-001 reports that leak.
        raise NotJudged("the planted text itself appears in the export", by=reqs.MIN_001.id)
    return content(as_dossier(value))


@check(
    reqs.MIN_002,
    lambda: [
        Case(kind, f"{label}: the exports before and after planting")
        for kind, label in STRUCTURE_KINDS
    ],
)
def planting_changes_nothing(ctx: Context, case: Case) -> Evidence:
    """Exports before and after planting non-minimal data are equal, field by field."""
    if not ctx.has("plant"):
        raise NotJudged("the adapter has no planting hook", by=reqs.MIN_001.id)
    people = [ctx.dossier(HELD_FILE), ctx.dossier(OTHER_FILE)]
    sensitive, markers = make_markers(case.id)
    with ctx.fresh_adapter() as adapter:
        numbers = give_people(ctx, adapter, people)
        before = [_export_content(ctx, adapter, number) for number in numbers]
        try:
            planter(adapter).add_sensitive(numbers[0], sensitive)
        except Exception as exc:
            raise fails_on_error("add_sensitive", exc) from exc
        after = [_export_content(ctx, adapter, number, markers) for number in numbers]
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        if old != new:
            found = _content_differences(old, new)
            whose = "the person it was planted on" if index == 0 else "another person"
            raise Failed(
                f"planting {dict(STRUCTURE_KINDS)[case.id]} changed the export of {whose} "
                f"in {len(found)} place(s), first {found[0]['field']}",
                {"exportOf": whose, "differences": len(found), "first": found[:5]},
            )
    return {"exportsCompared": len(before) * 2}


def _content_differences(old: Any, new: Any, path: str = "") -> list[Evidence]:
    """Where two dumped exports differ: dotted paths with the value before and after."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[Evidence] = []
        for key in sorted(set(old) | set(new)):
            found += _content_differences(old.get(key), new.get(key), f"{path}.{key}".lstrip("."))
        return found
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            added = [item for item in new if item not in old][:3]
            return [
                {
                    "field": path,
                    "before": f"{len(old)} item(s)",
                    "after": f"{len(new)} item(s)",
                    "added": added,
                }
            ]
        found = []
        for index, (left, right) in enumerate(zip(old, new, strict=True)):
            found += _content_differences(left, right, f"{path}[{index}]")
        return found
    return [] if old == new else [{"field": path, "before": old, "after": new}]
