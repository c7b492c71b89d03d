"""The schemas are closed and documented.

Nothing in a schema may open a door to content the minimal dossier does not
define: no wildcard (``xs:any``, ``xs:anyAttribute``), no ``anyType`` (also
what an element without a type silently gets), no mixed content. Every named
component carries documentation in English, French and Dutch. Each schema in
``schemas/xsd/`` is checked, so the envelope and directory schemas are held
to the same rules as soon as they exist.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

XSD_DIR = Path(__file__).resolve().parent.parent / "schemas" / "xsd"
XS_NS = "http://www.w3.org/2001/XMLSchema"
XS = f"{{{XS_NS}}}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
LANGUAGES = {"en", "fr", "nl"}

SCHEMAS = sorted(XSD_DIR.glob("*.xsd"))
OPEN_TYPES = {"anyType", "anySimpleType"}
STRING_TYPES = {"string", "normalizedString", "token"}


def load(path: Path) -> etree._Element:
    return etree.parse(str(path)).getroot()


def resolves_to(element: etree._Element, qname: str | None, namespace: str) -> str | None:
    """The local name of ``qname`` if its prefix is bound to ``namespace`` at ``element``."""
    if not qname:
        return None
    prefix, _, local = qname.rpartition(":")
    return local if element.nsmap.get(prefix or None) == namespace else None


def named_components(path: Path) -> list[tuple[str, etree._Element]]:
    root = load(path)
    return [
        (f"{path.name}:{etree.QName(el).localname}:{el.get('name')}", el)
        for el in root.iter(f"{XS}element", f"{XS}simpleType", f"{XS}complexType")
        if el.get("name")
    ]


# ------------------------------------------------------------------ closed


def test_the_dossier_schema_exists() -> None:
    assert XSD_DIR / "dossier.xsd" in SCHEMAS


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda path: path.name)
def test_schema_has_no_wildcard(path: Path) -> None:
    wildcards = list(load(path).iter(f"{XS}any", f"{XS}anyAttribute"))
    assert wildcards == [], [f"line {el.sourceline}" for el in wildcards]


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda path: path.name)
def test_schema_never_refers_to_any_type(path: Path) -> None:
    open_refs = [
        f"line {el.sourceline}: {attribute}={el.get(attribute)}"
        for el in load(path).iter(etree.Element)
        for attribute in ("type", "base", "itemType")
        if resolves_to(el, el.get(attribute), XS_NS) in OPEN_TYPES
    ]
    assert open_refs == []


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda path: path.name)
def test_every_element_declares_its_type(path: Path) -> None:
    # An element with neither a type nor an inline type is of anyType: open.
    untyped = [
        f"line {el.sourceline}: {el.get('name')}"
        for el in load(path).iter(f"{XS}element")
        if el.get("ref") is None
        and el.get("type") is None
        and el.find(f"{XS}simpleType") is None
        and el.find(f"{XS}complexType") is None
    ]
    assert untyped == []


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda path: path.name)
def test_schema_has_no_mixed_content(path: Path) -> None:
    mixed = [
        f"line {el.sourceline}"
        for el in load(path).iter(f"{XS}complexType", f"{XS}complexContent")
        if el.get("mixed") in {"true", "1"}
    ]
    assert mixed == []


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda path: path.name)
def test_schema_loads_nothing_from_the_network(path: Path) -> None:
    references = [
        el.get("schemaLocation", "")
        for el in load(path).iter(f"{XS}import", f"{XS}include", f"{XS}redefine", f"{XS}override")
    ]
    assert not [ref for ref in references if "://" in ref]


def test_dossier_schema_has_no_free_text() -> None:
    # Every text value is held by a pattern or a closed list: none can carry a sentence
    # beyond a name.
    root = load(XSD_DIR / "dossier.xsd")
    free = [
        f"line {el.sourceline}: {el.get('name')}"
        for el in root.iter(f"{XS}element", f"{XS}attribute")
        if resolves_to(el, el.get("type"), XS_NS) in STRING_TYPES
    ]
    unconstrained = [
        f"line {restriction.sourceline}"
        for restriction in root.iter(f"{XS}restriction")
        if resolves_to(restriction, restriction.get("base"), XS_NS) in STRING_TYPES
        and restriction.find(f"{XS}pattern") is None
        and restriction.find(f"{XS}enumeration") is None
    ]
    assert free == []
    assert unconstrained == []


def test_dossier_schema_is_its_own_version_namespace() -> None:
    root = load(XSD_DIR / "dossier.xsd")
    assert root.get("targetNamespace") == "urn:be:cpas:dse:dossier:1"
    assert root.get("version") == "1"


# ------------------------------------------------------------------ documented


def documentation(element: etree._Element) -> dict[str, str]:
    return {
        doc.get(XML_LANG, ""): "".join(doc.itertext()).strip()
        for doc in element.findall(f"{XS}annotation/{XS}documentation")
    }


# Elements documented only through their named type (the dossier's four parts,
# the envelope's parts and message bodies). Each still needs its own documentation;
# remove a name here as soon as it has it.
def documentation_cases() -> list[object]:
    return [
        pytest.param(element, id=ident)
        for path in SCHEMAS
        for ident, element in named_components(path)
    ]


@pytest.mark.parametrize("component", documentation_cases())
def test_named_component_is_documented_in_english_french_and_dutch(
    component: etree._Element,
) -> None:
    docs = documentation(component)
    assert set(docs) >= LANGUAGES, f"line {component.sourceline}: only {sorted(docs)}"
    assert all(docs[language] for language in LANGUAGES)


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda path: path.name)
def test_schema_itself_is_documented(path: Path) -> None:
    assert set(documentation(load(path))) >= LANGUAGES
