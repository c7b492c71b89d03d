"""The FicheSociale reference adapter: its dialect, its folder and the adapter contract."""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import io
import json
import os
import random
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fichesociale import FicheSocialeAdapter, dialect
from fichesociale import adapter as adapter_module
from fichesociale.__main__ import main as cli_main
from gateway.adapters import Adapter, Seedable, load_adapters
from gateway.model.dossier import (
    AidKind,
    ContactPoint,
    Dossier,
    HouseholdCategory,
    Language,
)
from gateway.model.errors import AdapterError
from gateway.model.identifiers import make_enterprise_number, make_niss
from gateway.testing.synthetic import FamilyMember, SensitiveData, make_beneficiary

CPAS = make_enterprise_number(1)
OTHER_CPAS = make_enterprise_number(2)
UNKNOWN_NISS = make_niss(dt.date(1935, 7, 31), 1)  # valid; synthetic people are born after 1940


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "fichesociale"


@pytest.fixture
def adapter(folder: Path) -> Iterator[FicheSocialeAdapter]:
    made = FicheSocialeAdapter(CPAS, {"folder": str(folder)})
    yield made
    made.close()


def incoming(seed: int, **kwargs: Any) -> Dossier:
    """A dossier sent by another CPAS."""
    return make_beneficiary(random.Random(seed), OTHER_CPAS, **kwargs).dossier


def canonical(dossier: Dossier) -> tuple[Any, ...]:
    """What must survive a trip through the vendor system."""
    return (
        dossier.person,
        dossier.household,
        dossier.aid_history,
        dossier.last_social_inquiry,
    )


def fiche_path(folder: Path, number: str) -> Path:
    return folder / "fiches" / f"{number}.json"


def read_fiche(folder: Path, number: str) -> dict[str, Any]:
    return json.loads(fiche_path(folder, number).read_text(encoding="utf-8"))


def leftovers(folder: Path) -> list[Path]:
    """Anything in the folder that is not a fiche, a marker or the writers' lock file."""
    found = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".json")]
    found += folder.rglob(".*")
    return [p for p in found if p != folder / adapter_module.LOCK_FILE]


# ------------------------------------------------------------- the contract


def test_adapter_follows_the_adapter_and_seedable_protocols(adapter: FicheSocialeAdapter) -> None:
    assert isinstance(adapter, Adapter)
    assert isinstance(adapter, Seedable)
    assert adapter.info.name == "fichesociale"
    assert adapter.info.vendor == "FicheSociale"


def test_found_through_the_entry_point(folder: Path) -> None:
    registry = load_adapters(only=["fichesociale"])
    made = registry.create("fichesociale", CPAS, {"folder": str(folder)})
    try:
        assert isinstance(made, FicheSocialeAdapter)
        assert made.folder == folder
    finally:
        made.close()


def test_folder_and_its_subfolders_are_created(folder: Path, adapter: FicheSocialeAdapter) -> None:
    assert (folder / "fiches").is_dir()
    assert (folder / "recus").is_dir()


def test_a_bad_cpas_id_is_a_configuration_error(folder: Path) -> None:
    with pytest.raises(AdapterError) as caught:
        FicheSocialeAdapter("0200000143", {"folder": str(folder)})
    assert caught.value.code == "adapter.config"
    assert not caught.value.transient


def test_a_bad_contact_option_is_a_configuration_error(folder: Path) -> None:
    with pytest.raises(AdapterError) as caught:
        FicheSocialeAdapter(CPAS, {"folder": str(folder), "phone": "call us"})
    assert caught.value.code == "adapter.config"


# ------------------------------------------------------------------ export


def test_seeded_people_export_as_valid_dossiers(adapter: FicheSocialeAdapter) -> None:
    numbers = adapter.seed(150, seed=7)
    assert len(set(numbers)) == 150
    for number in numbers:
        dossier = adapter.export_dossier(number)
        assert dossier is not None
        assert Dossier.from_xml(dossier.to_xml()) == dossier
        assert dossier.person.number == number
        assert dossier.source.cpas_id == CPAS
        dates = [d.decision_date for d in dossier.aid_history]
        assert dates == sorted(dates)


def test_export_carries_the_node_identity_and_the_vendor_reference(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    [number] = adapter.seed(1, seed=3)
    dossier = adapter.export_dossier(number)
    assert dossier is not None
    assert dossier.source.case_reference == read_fiche(folder, number)["numero_dossier"]
    assert dossier.source.contact == ContactPoint(mailbox=f"service.social@cpas-{CPAS}.example.be")
    assert dossier.created_at.tzinfo is not None
    assert dt.datetime.now(dt.UTC) - dossier.created_at < dt.timedelta(minutes=1)
    assert adapter.export_dossier(number).dossier_id != dossier.dossier_id  # type: ignore[union-attr]


def test_contact_options_go_into_the_exported_source(folder: Path) -> None:
    made = FicheSocialeAdapter(
        CPAS, {"folder": str(folder), "mailbox": "social@cpas.example.be", "phone": "+3225550199"}
    )
    [number] = made.seed(1)
    dossier = made.export_dossier(number)
    assert dossier is not None
    assert dossier.source.contact == ContactPoint(
        mailbox="social@cpas.example.be", phone="+3225550199"
    )


@pytest.mark.parametrize("number", [UNKNOWN_NISS, "123", "", "../../etc/passwd", "8507310018x"])
def test_an_unknown_person_exports_as_none(adapter: FicheSocialeAdapter, number: str) -> None:
    adapter.seed(3)
    assert adapter.export_dossier(number) is None


def test_person_numbers_are_accepted_with_separators(adapter: FicheSocialeAdapter) -> None:
    [number] = adapter.seed(1)
    written = f"{number[:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:]}"
    dossier = adapter.export_dossier(written)
    assert dossier is not None
    assert dossier.person.number == number


def test_seeding_lists_and_counts_the_people(adapter: FicheSocialeAdapter) -> None:
    numbers = adapter.seed(25, seed=1)
    assert adapter.list_person_numbers() == sorted(numbers)
    assert adapter.count_persons() == 25


def test_the_same_seed_gives_the_same_people(tmp_path: Path) -> None:
    first = FicheSocialeAdapter(CPAS, {"folder": str(tmp_path / "a")}).seed(20, seed=5)
    second = FicheSocialeAdapter(CPAS, {"folder": str(tmp_path / "b")}).seed(20, seed=5)
    assert first == second


def test_seeding_reports_progress(adapter: FicheSocialeAdapter) -> None:
    ticks: list[int] = []
    adapter.seed(12, progress=ticks.append)
    assert sum(ticks) == 12


# ------------------------------------------------------- professional secrecy


def test_seeded_sensitive_data_is_in_the_fiche_but_never_exported(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    numbers = adapter.seed(60, seed=11)
    checked = 0
    for number in numbers:
        fiche = read_fiche(folder, number)
        secrets = [*fiche["notes_assistant_social"], *fiche["mesures_activation"]]
        secrets += [*fiche["sanctions"], *(d["motif"] for d in fiche["demandes_refusees"])]
        secrets += [m["nom"] for m in fiche["membres_du_menage"]]
        secrets += [m["revenus_mensuels"] for m in fiche["membres_du_menage"]]
        assert fiche["notes_assistant_social"], "every synthetic beneficiary has notes"
        xml = adapter.export_dossier(number).to_xml()  # type: ignore[union-attr]
        for secret in secrets:
            # Short strings (an income of "0,00") could occur by chance.
            if len(secret) > 8:
                assert secret.encode() not in xml
                checked += 1
    assert checked > 100


def test_planted_markers_never_appear_in_the_exported_xml(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    numbers = adapter.seed(5, seed=2)
    for number in numbers:
        markers = {field: f"MARK{uuid.uuid4().hex}" for field in dialect.SENSITIVE_FIELDS}
        adapter.add_sensitive(
            number,
            notes=[markers["notes_assistant_social"]],
            activation_measures=[markers["mesures_activation"]],
            sanctions=[markers["sanctions"]],
            refused_applications=[("rent guarantee", markers["demandes_refusees"])],
            family_members=[markers["membres_du_menage"]],
        )
        raw = fiche_path(folder, number).read_text(encoding="utf-8")
        xml = adapter.export_dossier(number).to_xml()  # type: ignore[union-attr]
        for marker in markers.values():
            assert marker in raw
            assert marker.encode() not in xml
        assert b"MARK" not in xml


def test_planting_accepts_sensitive_data_as_one_object(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    [number] = adapter.seed(1)
    marker = f"MARK{uuid.uuid4().hex}"
    adapter.add_sensitive(number, SensitiveData(notes=(marker,), sanctions=(marker + "s",)))
    fiche = read_fiche(folder, number)
    assert marker in fiche["notes_assistant_social"]
    assert marker + "s" in fiche["sanctions"]
    assert marker.encode() not in adapter.export_dossier(number).to_xml()  # type: ignore[union-attr]


def test_planting_into_an_unknown_person_is_refused(adapter: FicheSocialeAdapter) -> None:
    with pytest.raises(AdapterError) as caught:
        adapter.add_sensitive(UNKNOWN_NISS, notes=["x"])
    assert caught.value.code == "adapter.unknown_person"


def test_planting_accepts_structured_family_members(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    [number] = adapter.seed(1)
    member = FamilyMember("Jürgen Peeters", "partner", dt.date(1980, 5, 4), Decimal("1234.5"))
    adapter.add_sensitive(number, family_members=[member])
    members = read_fiche(folder, number)["membres_du_menage"]
    assert {
        "nom": "Jürgen Peeters",
        "lien": "partenaire",
        "date_naissance": "04/05/1980",
        "revenus_mensuels": "1 234,50",
    } in members


# ------------------------------------------------------------------ import


def test_import_then_export_gives_back_the_same_canonical_content(
    adapter: FicheSocialeAdapter,
) -> None:
    for seed in range(30):
        sent = incoming(seed)
        result = adapter.import_dossier(sent, message_id=f"msg-{seed}")
        assert result.created
        back = adapter.export_dossier(sent.person.number)
        assert back is not None
        assert canonical(back) == canonical(sent)
        assert back.source.cpas_id == CPAS
        assert back.source.case_reference == result.local_reference
        assert Dossier.from_xml(back.to_xml()) == back


def test_the_same_message_twice_is_imported_once(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    sent = incoming(1)
    first = adapter.import_dossier(sent, message_id="msg-1")
    before = fiche_path(folder, sent.person.number).read_bytes()
    again = adapter.import_dossier(sent, message_id="msg-1")
    assert first.created and not again.created
    assert again.local_reference == first.local_reference
    assert adapter.count_persons() == 1
    assert fiche_path(folder, sent.person.number).read_bytes() == before
    assert len(list((folder / "recus").iterdir())) == 1


def test_a_recorded_message_is_not_applied_again_even_if_it_changed(
    adapter: FicheSocialeAdapter,
) -> None:
    sent = incoming(1, decisions=3)
    adapter.import_dossier(sent, message_id="msg-1")
    altered = sent.model_copy(update={"aid_history": []})
    assert not adapter.import_dossier(altered, message_id="msg-1").created
    assert canonical(adapter.export_dossier(sent.person.number)) == canonical(sent)  # type: ignore[arg-type]


def test_a_new_message_for_a_known_person_updates_the_same_fiche(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    sent = incoming(4, decisions=2)
    first = adapter.import_dossier(sent, message_id="msg-a")
    later = incoming(4, decisions=2).model_copy(update={"aid_history": incoming(5).aid_history})
    second = adapter.import_dossier(later, message_id="msg-b")
    assert second.created
    assert second.local_reference == first.local_reference
    assert adapter.count_persons() == 1
    ids = [d.decision_id for d in adapter.export_dossier(sent.person.number).aid_history]  # type: ignore[union-attr]
    expected = {d.decision_id for d in [*sent.aid_history, *later.aid_history]}
    assert set(ids) == expected


def test_the_nodes_dossier_imported_event_after_the_import_changes_nothing(
    adapter: FicheSocialeAdapter, folder: Path
) -> None:
    result = adapter.import_dossier(incoming(11), message_id="m-event")
    (written,) = (folder / "evenements").glob("*.json")
    before = (written.read_bytes(), written.stat().st_mtime_ns)
    (event,) = adapter.read_events()
    # The node tells the vendor the same event again, later, at least once.
    adapter.receive_event(dataclasses.replace(event, at="2099-01-01T00:00:00+00:00"))
    assert (written.read_bytes(), written.stat().st_mtime_ns) == before
    assert adapter.read_events() == [event] and event.local_reference == result.local_reference


def test_import_keeps_the_vendors_sensitive_fields_of_an_existing_fiche(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    [number] = adapter.seed(1, seed=9)
    before = read_fiche(folder, number)
    exported = adapter.export_dossier(number)
    assert exported is not None
    adapter.import_dossier(exported, message_id="round-trip")
    after = read_fiche(folder, number)
    for field in dialect.SENSITIVE_FIELDS:
        assert after[field] == before[field]
    assert after["numero_dossier"] == before["numero_dossier"]
    assert canonical(adapter.export_dossier(number)) == canonical(exported)  # type: ignore[arg-type]


def test_an_imported_fiche_has_empty_sensitive_fields(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    sent = incoming(2)
    adapter.import_dossier(sent, message_id="m")
    fiche = read_fiche(folder, sent.person.number)
    assert all(fiche[field] == [] for field in dialect.SENSITIVE_FIELDS)
    assert fiche["provenance"]["cpas"] == OTHER_CPAS


@pytest.mark.parametrize(
    ("family_name", "given_names"),
    [
        ("Müller-Lüdenscheidt", ["Jürgen", "Günther"]),
        ("Lefèvre", ["Élodie", "Anne Marie"]),
        ("Nguyễn", ["Thị Minh"]),
        ("D'Hondt", ["Zoë", "Raphaël", "Maëlle"]),
    ],
)
def test_names_with_diacritics_survive(
    folder: Path, adapter: FicheSocialeAdapter, family_name: str, given_names: list[str]
) -> None:
    sent = incoming(3, family_name=family_name, given_names=given_names)
    adapter.import_dossier(sent, message_id=f"msg-{family_name}")
    assert read_fiche(folder, sent.person.number)["nom"] == family_name
    back = adapter.export_dossier(sent.person.number)
    assert back is not None
    assert back.person.family_name == family_name
    assert back.person.given_names == given_names
    assert Dossier.from_xml(back.to_xml()).person == sent.person


def test_two_hundred_decisions_survive(adapter: FicheSocialeAdapter) -> None:
    sent = incoming(8, decisions=200)
    adapter.import_dossier(sent, message_id="big")
    back = adapter.export_dossier(sent.person.number)
    assert back is not None
    assert len(back.aid_history) == 200
    assert back.aid_history == sent.aid_history
    assert Dossier.from_xml(back.to_xml()) == back


def test_bis_numbers_survive(adapter: FicheSocialeAdapter) -> None:
    sent = incoming(12, bis=True)
    adapter.import_dossier(sent, message_id="bis")
    back = adapter.export_dossier(sent.person.number)
    assert back is not None
    assert back.person.bis == sent.person.bis
    assert back.person.niss is None


# --------------------------------------------------------- the vendor dialect


def test_the_fiche_is_in_the_vendors_own_french_dialect(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    sent = incoming(
        6,
        decisions=8,
        language=Language.NL,
        category=HouseholdCategory.FAMILY_DEPENDANTS,
        kinds=[AidKind.INTEGRATION_INCOME, AidKind.URGENT_MEDICAL_AID],
    )
    adapter.import_dossier(sent, message_id="dialect")
    raw = fiche_path(folder, sent.person.number).read_text(encoding="utf-8")
    fiche = json.loads(raw)
    person = sent.person
    assert fiche["numero_national"] == person.number
    assert fiche["nom"] == person.family_name
    assert fiche["prenoms"] == ", ".join(person.given_names)
    assert fiche["date_naissance"] == person.birth_date.strftime("%d/%m/%Y")
    assert fiche["langue"] == "néerlandais"
    assert fiche["categorie"] == "famille à charge"
    assert fiche["enfants_a_charge"] == sent.household.dependent_children
    assert {aide["type"] for aide in fiche["aides"]} == {"RIS", "AMU"}
    for aide, decision in zip(fiche["aides"], sent.aid_history, strict=True):
        assert aide["reference"] == decision.decision_id
        assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", aide["date_decision"])
        assert aide["statut"] in {"octroi", "révision", "fin"}
        assert aide["base_legale"].startswith("loi")
        if decision.monthly_amount is not None:
            assert re.fullmatch(r"\d{1,3}( \d{3})*,\d{2}", aide["montant_mensuel"])
    # None of the canonical vocabulary leaks into the vendor's file.
    for word in ("integration-income", "family-dependants", "decision_id", "birth_date", '"nl"'):
        assert word not in raw
    assert "\\u" not in raw, "names are stored as UTF-8, not escaped"


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1 263,17", Decimal("1263.17")),
        ("1\u202f263,17", Decimal("1263.17")),
        ("1\u00a0263,17 €", Decimal("1263.17")),
        ("1.263,17", Decimal("1263.17")),
        ("876,1", Decimal("876.10")),
        ("12 345 678,00", Decimal("12345678.00")),
        ("1263", Decimal("1263.00")),
        ("0,00", Decimal("0.00")),
    ],
)
def test_french_amounts_are_read(text: str, amount: Decimal) -> None:
    assert dialect.parse_amount(text, "montant") == amount


@pytest.mark.parametrize("text", ["1,263.17", "12,345", "1 26,00", "abc", "", 1263.17, None])
def test_amounts_in_another_notation_are_refused(text: Any) -> None:
    with pytest.raises(dialect.FicheInvalid, match="montant"):
        dialect.parse_amount(text, "montant")


@pytest.mark.parametrize(
    ("amount", "text"),
    [(Decimal("1263.17"), "1 263,17"), (Decimal("5"), "5,00"), (Decimal("99999.99"), "99 999,99")],
)
def test_amounts_are_written_the_french_way(amount: Decimal, text: str) -> None:
    assert dialect.format_amount(amount) == text
    assert dialect.parse_amount(text, "x") == amount


def test_labels_are_read_regardless_of_case_and_accents(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    [number] = adapter.seed(1, seed=4)
    fiche = read_fiche(folder, number)
    fiche.update(langue="Francais", categorie="ISOLE", enfants_a_charge=0)
    fiche["aides"] = [
        {
            "reference": "X-1",
            "type": "equivalent ris",
            "base_legale": "",  # blank: the usual basis for the kind
            "date_decision": "05/01/2024",
            "du": "01/01/2024",
            "au": "",
            "statut": "Revision",
            "montant_mensuel": "1 000,00 €",
        },
        {
            "reference": "X-0",
            "type": "RIS",
            "base_legale": "loi DIS",
            "date_decision": "03/01/2023",
            "du": "01/01/2023",
            "au": "31/12/2023",
            "statut": "fin",
            "montant_mensuel": "1.314,20",
        },
    ]
    fiche_path(folder, number).write_text(json.dumps(fiche), encoding="utf-8")
    dossier = adapter.export_dossier(number)
    assert dossier is not None
    assert dossier.person.language is Language.FR
    assert dossier.household.category is HouseholdCategory.ISOLATED
    assert [d.decision_id for d in dossier.aid_history] == ["X-0", "X-1"]
    assert dossier.aid_history[1].period_end is None
    assert dossier.aid_history[0].monthly_amount == Decimal("1314.20")


# ------------------------------------------------------------------ failures


def test_corrupt_json_is_refused_as_invalid_data(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    [number] = adapter.seed(1)
    fiche_path(folder, number).write_bytes(b'{"version_fiche": 3, "nom": ')
    with pytest.raises(AdapterError) as caught:
        adapter.export_dossier(number)
    assert caught.value.code == "adapter.invalid_data"
    assert not caught.value.transient
    assert "not readable JSON" in caught.value.message


@pytest.mark.parametrize("content", [b"\xff\xfe garbage", b"[1, 2]", b"[" * 100_000, b"null"])
def test_unreadable_fiches_are_refused_as_invalid_data(
    folder: Path, adapter: FicheSocialeAdapter, content: bytes
) -> None:
    [number] = adapter.seed(1)
    fiche_path(folder, number).write_bytes(content)
    with pytest.raises(AdapterError) as caught:
        adapter.export_dossier(number)
    assert caught.value.code == "adapter.invalid_data"


AIDE = {
    "reference": "A",
    "type": "AMU",
    "base_legale": "",
    "date_decision": "02/02/2021",
    "du": "01/02/2021",
    "au": None,
    "statut": "octroi",
    "montant_mensuel": None,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date_naissance": "1985-07-31"}, "date_naissance"),
        ({"langue": "anglais"}, "langue"),
        ({"categorie": "couple"}, "categorie"),
        ({"enfants_a_charge": "deux"}, "enfants_a_charge"),
        ({"nom": ""}, "nom"),
        ({"version_fiche": 1}, "version_fiche"),
        ({"numero_dossier": "dossier de Jean"}, "numero_dossier"),
        ({"aides": [{**AIDE, "montant_mensuel": "-5,00"}]}, "montant_mensuel"),
        ({"aides": [{**AIDE, "au": "01/01/2020"}]}, "aides[reference=A]"),
        ({"aides": [{**AIDE, "base_legale": "loi DIS"}]}, "aides[reference=A]"),
        ({"numero_national": "85073100188"}, "numero_national"),
        ({"date_naissance": "01/01/1986"}, "numero_national"),
        ({"aides": [{**AIDE, "type": "bon alimentaire"}]}, "aides[0].type"),
        ({"date_naissance": "31/02/1985"}, "date_naissance"),
    ],
)
def test_a_fiche_that_cannot_make_a_valid_dossier_is_refused_clearly(
    folder: Path, adapter: FicheSocialeAdapter, change: dict[str, Any], field: str
) -> None:
    [number] = adapter.seed(1, seed=21)
    fiche = read_fiche(folder, number)
    fiche.update(change)
    fiche_path(folder, number).write_text(json.dumps(fiche), encoding="utf-8")
    with pytest.raises(AdapterError) as caught:
        adapter.export_dossier(number)
    assert caught.value.code == "adapter.invalid_data"
    assert field in caught.value.message
    assert caught.value.message.startswith("The FicheSociale fiche")


def test_a_fiche_under_another_persons_number_is_refused(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    first, second = adapter.seed(2, seed=30)
    fiche_path(folder, first).write_bytes(fiche_path(folder, second).read_bytes())
    with pytest.raises(AdapterError) as caught:
        adapter.export_dossier(first)
    assert caught.value.code == "adapter.invalid_data"


def test_a_folder_that_cannot_be_created_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(AdapterError) as caught:
        FicheSocialeAdapter(CPAS, {"folder": str(blocker / "data")})
    assert caught.value.code == "adapter.unavailable"
    assert caught.value.transient


def test_a_folder_that_went_away_is_transient_not_unknown(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    [number] = adapter.seed(1)
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    for action in (
        lambda: adapter.export_dossier(number),
        lambda: adapter.import_dossier(incoming(1), message_id="m"),
        adapter.list_person_numbers,
    ):
        with pytest.raises(AdapterError) as caught:
            action()
        assert caught.value.code == "adapter.unavailable"
        assert caught.value.transient


@pytest.mark.parametrize(
    ("module", "call", "error"),
    [
        # Tests may run as root, for whom file modes do not forbid anything.
        ("tempfile", "mkstemp", OSError(errno.EACCES, "Permission denied")),
        # The lock file beside the fiches, taken by every write.
        ("fcntl", "flock", OSError(errno.ENOLCK, "No locks available")),
    ],
    ids=["unwritable folder", "no lock"],
)
def test_a_folder_that_refuses_a_write_or_its_lock_is_transient(
    adapter: FicheSocialeAdapter,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    call: str,
    error: OSError,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(getattr(adapter_module, module), call, refuse)
    with pytest.raises(AdapterError) as caught:
        adapter.import_dossier(incoming(1), message_id="m")
    assert caught.value.code == "adapter.unavailable"
    assert caught.value.transient
    assert error.strerror in caught.value.message


def test_a_full_disk_is_transient_and_leaves_the_old_fiche_whole(
    folder: Path, adapter: FicheSocialeAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = incoming(1)
    adapter.import_dossier(sent, message_id="first")
    before = fiche_path(folder, sent.person.number).read_bytes()

    class FullDisk(io.BytesIO):
        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def disk_full(fd: int, *args: Any, **kwargs: Any) -> FullDisk:
        os.close(fd)
        return FullDisk()

    monkeypatch.setattr(adapter_module.os, "fdopen", disk_full)
    with pytest.raises(AdapterError) as caught:
        adapter.import_dossier(incoming(1, decisions=9), message_id="second")
    assert caught.value.code == "adapter.unavailable"
    assert caught.value.transient
    assert fiche_path(folder, sent.person.number).read_bytes() == before
    assert leftovers(folder) == []


def test_writes_leave_no_temporary_files(folder: Path, adapter: FicheSocialeAdapter) -> None:
    numbers = adapter.seed(20)
    for seed in range(5):
        adapter.import_dossier(incoming(seed), message_id=f"m{seed}")
    adapter.add_sensitive(numbers[0], notes=["n"])
    assert leftovers(folder) == []


def test_a_crash_between_fiche_and_marker_reimports_to_one_record(
    folder: Path, adapter: FicheSocialeAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = incoming(1)
    real_write = adapter_module.write_atomically

    def crash_on_marker(path: Path, data: bytes, **kwargs: Any) -> None:
        if path.parent.name == "recus":
            raise OSError(errno.EIO, "Input/output error")
        real_write(path, data, **kwargs)

    monkeypatch.setattr(adapter_module, "write_atomically", crash_on_marker)
    with pytest.raises(AdapterError):
        adapter.import_dossier(sent, message_id="once")
    assert adapter.count_persons() == 1
    assert list((folder / "recus").iterdir()) == []
    reference = read_fiche(folder, sent.person.number)["numero_dossier"]

    monkeypatch.setattr(adapter_module, "write_atomically", real_write)
    redelivered = adapter.import_dossier(sent, message_id="once")
    assert redelivered.local_reference == reference
    assert adapter.count_persons() == 1
    assert canonical(adapter.export_dossier(sent.person.number)) == canonical(sent)  # type: ignore[arg-type]
    assert not adapter.import_dossier(sent, message_id="once").created


def test_stale_temporary_files_are_swept_at_start(folder: Path) -> None:
    FicheSocialeAdapter(CPAS, {"folder": str(folder)}).close()
    stale = folder / "fiches" / ".85073100187.json.abc.tmp"
    fresh = folder / "fiches" / ".85073100187.json.def.tmp"
    stale.write_text("half")
    fresh.write_text("in progress")
    old = dt.datetime.now().timestamp() - 3600
    os.utime(stale, (old, old))
    FicheSocialeAdapter(CPAS, {"folder": str(folder)}).close()
    assert not stale.exists()
    assert fresh.exists()


# ----------------------------------------------------------------- the CLI


def test_cli_seeds_counts_and_exports(folder: Path, capsysbinary: pytest.CaptureFixture) -> None:
    args = ["--folder", str(folder), "--cpas", CPAS]
    assert cli_main(["seed", *args, "--count", "4", "--seed", "2"]) == 0
    assert cli_main(["count", *args]) == 0
    assert capsysbinary.readouterr().out.strip() == b"4"
    number = FicheSocialeAdapter(CPAS, {"folder": str(folder)}).list_person_numbers()[0]
    assert cli_main(["export", *args, number]) == 0
    assert Dossier.from_xml(capsysbinary.readouterr().out).person.number == number
    assert cli_main(["export", *args, UNKNOWN_NISS]) == 1
