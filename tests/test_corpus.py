"""The sample dossier corpus, run as data: one test per file.

``conformance/corpus/valid/`` must round-trip exactly; every file of
``conformance/corpus/invalid/`` must be refused with the code its manifest
gives. Adding a case is adding a file (through ``conformance/make_corpus.py``),
never a test.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
from lxml import etree

from gateway.cli.validate import check_document
from gateway.model import hardened_xml
from gateway.model.dossier import AidKind, Dossier, HouseholdCategory, Language
from gateway.model.errors import GatewayError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "conformance" / "corpus"
VALID_DIR = CORPUS / "valid"
INVALID_DIR = CORPUS / "invalid"

VALID_FILES = sorted(VALID_DIR.glob("*.xml"))
VALID_MANIFEST: dict[str, dict[str, str]] = json.loads(
    (VALID_DIR / "manifest.json").read_text("utf-8")
)
INVALID_MANIFEST: dict[str, dict[str, str]] = json.loads(
    (INVALID_DIR / "manifest.json").read_text("utf-8")
)
INVALID_CASES = [
    pytest.param(name, case["code"], id=name.removesuffix(".xml"))
    for name, case in sorted(INVALID_MANIFEST.items())
]


def canonical(data: bytes) -> str:
    """The document as canonical XML: prefixes, comments and indentation do not count."""
    root = hardened_xml.parse(data)
    return etree.canonicalize(root, strip_text=True, rewrite_prefixes=True)


def assert_xml_equal(expected: bytes, actual: bytes) -> None:
    """Compare two documents as trees, with a line diff of their canonical forms on failure."""
    left, right = canonical(expected), canonical(actual)
    if left != right:
        diff = difflib.unified_diff(
            left.replace("><", ">\n<").splitlines(),
            right.replace("><", ">\n<").splitlines(),
            "expected",
            "actual",
            lineterm="",
        )
        pytest.fail("XML differs:\n" + "\n".join(diff))


def load_generator() -> ModuleType:
    """Import ``conformance/make_corpus.py`` by path (the folder is not a package)."""
    path = ROOT / "conformance" / "make_corpus.py"
    spec = importlib.util.spec_from_file_location("make_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def corpus_models() -> list[Dossier]:
    return [Dossier.from_xml(path.read_bytes()) for path in VALID_FILES]


# ------------------------------------------------------------------ the corpus itself


def test_corpus_has_at_least_25_valid_and_15_invalid_documents() -> None:
    assert len(VALID_FILES) >= 25
    assert len(INVALID_MANIFEST) >= 15


def test_valid_manifest_describes_exactly_the_valid_files() -> None:
    assert sorted(VALID_MANIFEST) == [path.name for path in VALID_FILES]
    for case in VALID_MANIFEST.values():
        assert set(case) == {"description", "source"}
        assert all(case.values())


def test_invalid_manifest_lists_exactly_the_invalid_files() -> None:
    on_disk = sorted(path.name for path in INVALID_DIR.iterdir() if path.name != "manifest.json")
    assert sorted(INVALID_MANIFEST) == on_disk
    for case in INVALID_MANIFEST.values():
        assert set(case) == {"code", "description"}
        assert case["description"]


def test_no_committed_file_is_over_the_size_cap() -> None:
    # The oversize case is generated at test time, never committed.
    assert all(path.stat().st_size < 1024 * 1024 for path in CORPUS.rglob("*") if path.is_file())


def test_generator_reproduces_the_committed_corpus_byte_for_byte(generator: ModuleType) -> None:
    stale = generator.differences(CORPUS, generator.build_corpus())
    assert stale == [], "run `python conformance/make_corpus.py` and commit the result"


# ------------------------------------------------------------------ valid documents


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda path: path.stem)
def test_valid_dossier_round_trips(path: Path) -> None:
    original = path.read_bytes()
    dossier = Dossier.from_xml(original)
    written = dossier.to_xml()

    assert hardened_xml.validate(hardened_xml.parse(written)) == "dossier"
    assert Dossier.from_xml(written) == dossier
    assert_xml_equal(original, written)


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda path: path.stem)
def test_valid_dossier_passes_the_document_check(path: Path) -> None:
    assert check_document(path.read_bytes()) == "dossier"


# ------------------------------------------------------------------ invalid documents


@pytest.mark.parametrize(("name", "code"), INVALID_CASES)
def test_invalid_document_is_refused_with_its_code(name: str, code: str) -> None:
    # Anything but a GatewayError escapes pytest.raises and fails the test.
    with pytest.raises(GatewayError) as refused:
        check_document((INVALID_DIR / name).read_bytes())
    assert refused.value.code == code, refused.value.message
    assert refused.value.message.strip()
    assert "Traceback" not in refused.value.message


MODEL_CASES = [
    pytest.param(name, case["code"], id=name.removesuffix(".xml"))
    for name, case in sorted(INVALID_MANIFEST.items())
]


@pytest.mark.parametrize(("name", "code"), MODEL_CASES)
def test_invalid_document_is_refused_by_the_model_with_its_code(name: str, code: str) -> None:
    with pytest.raises(GatewayError) as refused:
        Dossier.from_xml((INVALID_DIR / name).read_bytes())
    assert refused.value.code == code, refused.value.message


# ------------------------------------------------------------------ what the corpus covers


def test_corpus_covers_niss_born_before_and_after_2000(corpus_models: list[Dossier]) -> None:
    years = {d.person.birth_date.year for d in corpus_models if d.person.niss}
    assert min(years) < 2000 <= max(years)
    assert {1999, 2000} <= years


def test_corpus_covers_both_bis_month_offsets(corpus_models: list[Dossier]) -> None:
    offsets = {int(d.person.bis[2:4]) // 20 * 20 for d in corpus_models if d.person.bis}
    assert offsets == {20, 40}


def test_corpus_covers_every_aid_kind(corpus_models: list[Dossier]) -> None:
    kinds = {decision.kind for d in corpus_models for decision in d.aid_history}
    assert kinds == set(AidKind)


def test_corpus_covers_every_household_category(corpus_models: list[Dossier]) -> None:
    assert {d.household.category for d in corpus_models} == set(HouseholdCategory)


def test_corpus_covers_every_language(corpus_models: list[Dossier]) -> None:
    assert {d.person.language for d in corpus_models} == set(Language)


def test_corpus_covers_empty_and_200_decision_histories(corpus_models: list[Dossier]) -> None:
    sizes = {len(d.aid_history) for d in corpus_models}
    assert {0, 200} <= sizes


def test_corpus_covers_names_with_diacritics_apostrophes_and_hyphens(
    corpus_models: list[Dossier],
) -> None:
    names = {d.person.family_name for d in corpus_models}
    assert {"D'Hondt", "Müller-Lüdenscheidt", "Lefèvre", "Nguyễn", "Ó Briain"} <= names
    assert any(len(d.person.given_names) == 4 for d in corpus_models)
    # Decomposed form: a letter followed by a combining mark.
    assert any("\u0300" in d.person.family_name for d in corpus_models)


def test_corpus_covers_optional_elements_absent_and_present(
    corpus_models: list[Dossier],
) -> None:
    decisions = [decision for d in corpus_models for decision in d.aid_history]
    for present in (
        [d.source.contact.phone is not None for d in corpus_models],
        [d.last_social_inquiry is not None for d in corpus_models],
        [decision.period_end is not None for decision in decisions],
        [decision.monthly_amount is not None for decision in decisions],
    ):
        assert True in present and False in present


def test_corpus_covers_zero_and_maximum_amounts(corpus_models: list[Dossier]) -> None:
    amounts = {
        decision.monthly_amount
        for d in corpus_models
        for decision in d.aid_history
        if decision.monthly_amount is not None
    }
    assert Decimal("0.00") in amounts
    assert Decimal("99999.99") in amounts


def test_corpus_dates_are_fixed(corpus_models: list[Dossier], generator: ModuleType) -> None:
    # Fixed dates keep the corpus reproducible and valid whenever the suite runs.
    latest = max(decision.decision_date for d in corpus_models for decision in d.aid_history)
    assert latest <= generator.TODAY
    assert {d.created_at for d in corpus_models} == {generator.CREATED_AT}


def test_corpus_source_cpas_are_distinct_real_municipalities(
    corpus_models: list[Dossier], generator: ModuleType
) -> None:
    known = {generator.cpas_id(nis) for nis in generator.municipalities()}
    sources = {d.source.cpas_id for d in corpus_models}
    assert sources <= known
    assert len(sources) >= 10
