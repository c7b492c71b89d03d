"""The OCMWdata reference adapter, on SQLite and on PostgreSQL.

Every behaviour runs on both databases: the ``db_options`` fixture gives a
fresh SQLite file, or a fresh PostgreSQL schema dropped afterwards. The
PostgreSQL cases skip with a reason when the server is unreachable, except in
CI, where they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from helpers.ci import unavailable
from psycopg import sql

from gateway.adapters import Adapter, Seedable, load_adapters
from gateway.model.dossier import AidKind, DecisionStatus, Dossier, HouseholdCategory, Language
from gateway.model.errors import AdapterError
from gateway.model.identifiers import make_enterprise_number
from gateway.testing.synthetic import FamilyMember, make_beneficiary
from ocmwdata import OcmwdataAdapter
from ocmwdata import __main__ as cli
from ocmwdata.vocabulary import (
    AID_KINDS,
    DateFormat,
    VocabularyError,
    amount_from_cents,
    cents_from_amount,
    date_from_vendor,
    date_to_vendor,
    join_name,
    split_name,
)

POSTGRES_URL = os.environ.get("CPAS_TEST_POSTGRES_URL", "postgresql://postgres@localhost:5432/test")
CPAS_ID = make_enterprise_number(4242)
SENDER_ID = make_enterprise_number(1717)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's URL, once it answered; skip (fail in CI) when it does not."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable: {' '.join(str(exc).split())}"
        unavailable(reason)
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_options(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[dict[str, str]]:
    """Adapter options for an empty database: a SQLite file or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield {"url": f"sqlite:///{tmp_path / 'ocmwdata.sqlite3'}"}
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"ocmwdata_test_{uuid.uuid4().hex[:12]}"
    yield {"url": url, "schema": schema}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def adapter(db_options: dict[str, str]) -> Iterator[OcmwdataAdapter]:
    """An OCMWdata adapter for ``CPAS_ID`` on an empty database."""
    with OcmwdataAdapter(CPAS_ID, db_options) as instance:
        yield instance


def query(options: dict[str, str], statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run SQL on the vendor database directly, as the vendor's own product would."""
    url = options["url"]
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(statement, params).fetchall()
        conn.close()
        return rows
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(options["schema"])))
        cursor = pg.execute(statement.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def received(seed: int = 1, **kwargs: Any) -> Dossier:
    """A dossier as another CPAS would send it."""
    return make_beneficiary(random.Random(seed), SENDER_ID, **kwargs).dossier


def assert_same_content(exported: Dossier, sent: Dossier) -> None:
    """Everything but the envelope of the dossier (id, time, source) came through."""
    assert exported.person == sent.person
    assert exported.household == sent.household
    assert exported.aid_history == sent.aid_history
    assert exported.last_social_inquiry == sent.last_social_inquiry


# ------------------------------------------------------------------- export


def test_seeded_people_export_as_valid_dossiers(adapter: OcmwdataAdapter) -> None:
    numbers = adapter.seed(80, seed=7)
    assert len(set(numbers)) == 80
    for number in numbers:
        dossier = adapter.export_dossier(number)
        assert dossier is not None
        assert dossier.person.number == number
        assert dossier.source.cpas_id == CPAS_ID
        assert Dossier.from_xml(dossier.to_xml()) == dossier
        dates = [decision.decision_date for decision in dossier.aid_history]
        assert dates == sorted(dates)


def test_export_names_the_vendor_dossier_and_the_service_contact(
    db_options: dict[str, str],
) -> None:
    options = db_options | {"mailbox": "ocmw.sociaal@gent.example.be", "phone": "+3292661111"}
    with OcmwdataAdapter(CPAS_ID, options) as adapter:
        [number] = adapter.seed(1)
        dossier = adapter.export_dossier(number)
    assert dossier is not None
    [(dossiernummer,)] = query(db_options, "SELECT dossiernummer FROM clienten")
    assert dossier.source.case_reference == dossiernummer
    assert dossier.source.contact.mailbox == "ocmw.sociaal@gent.example.be"
    assert dossier.source.contact.phone == "+3292661111"


def test_each_export_is_a_new_dossier(adapter: OcmwdataAdapter) -> None:
    [number] = adapter.seed(1)
    first, second = adapter.export_dossier(number), adapter.export_dossier(number)
    assert first is not None and second is not None
    assert first.dossier_id != second.dossier_id
    assert first.created_at.tzinfo is not None


@pytest.mark.parametrize("number", ["85073003328", "85.07.30-033.28", "not a number", ""])
def test_unknown_person_exports_none(adapter: OcmwdataAdapter, number: str) -> None:
    adapter.seed(3)
    assert adapter.export_dossier(number) is None


def test_person_number_with_separators_is_found(adapter: OcmwdataAdapter) -> None:
    [number] = adapter.seed(1)
    formatted = f"{number[:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:]}"
    dossier = adapter.export_dossier(formatted)
    assert dossier is not None and dossier.person.number == number


def test_sensitive_data_never_leaves(adapter: OcmwdataAdapter, db_options: dict[str, str]) -> None:
    numbers = adapter.seed(25, seed=3)
    markers: list[str] = []
    for number in numbers[:10]:
        mark = {
            field: f"MARK-{field}-{uuid.uuid4().hex}"
            for field in ("note", "activation", "sanction", "refusal", "member")
        }
        markers += mark.values()
        adapter.add_sensitive(
            number,
            notes=[mark["note"]],
            activation_measures=[mark["activation"]],
            sanctions=[mark["sanction"]],
            refused_applications=[("huurwaarborg", mark["refusal"])],
            family_members=[mark["member"]],
        )
    # The seeded people's own sensitive data, read from the vendor tables.
    stored = [
        text
        for (text,) in query(db_options, "SELECT tekst FROM notities")
        + query(db_options, "SELECT omschrijving FROM activeringsmaatregelen")
        + query(db_options, "SELECT omschrijving FROM sancties")
        + query(db_options, "SELECT reden FROM geweigerde_aanvragen")
        + query(db_options, "SELECT naam FROM gezinsleden")
    ]
    assert set(markers) <= set(stored), "the markers must really be in the vendor tables"
    exported = b"".join(adapter.export_dossier(n).to_xml() for n in numbers)  # type: ignore[union-attr]
    for text in {*stored, *markers}:
        assert text.encode() not in exported, f"{text!r} leaked into an export"


def test_export_works_without_the_sensitive_tables(
    adapter: OcmwdataAdapter, db_options: dict[str, str]
) -> None:
    [number] = adapter.seed(1)
    for table in (
        "notities",
        "activeringsmaatregelen",
        "sancties",
        "geweigerde_aanvragen",
        "gezinsleden",
    ):
        query(db_options, f"DROP TABLE {table}")
    assert adapter.export_dossier(number) is not None


# ------------------------------------------------------------------- import


def test_import_then_export_gives_the_same_content(adapter: OcmwdataAdapter) -> None:
    sent = received(seed=11, decisions=12)
    result = adapter.import_dossier(sent, message_id="msg-1")
    assert result.created
    exported = adapter.export_dossier(sent.person.number)
    assert exported is not None
    assert_same_content(exported, sent)
    assert exported.source.cpas_id == CPAS_ID
    assert exported.source.case_reference == result.local_reference


def test_bis_number_and_no_history_survive(adapter: OcmwdataAdapter) -> None:
    sent = received(seed=12, bis=True, decisions=0)
    assert sent.person.bis is not None and sent.last_social_inquiry is None
    adapter.import_dossier(sent, message_id="msg-bis")
    exported = adapter.export_dossier(sent.person.number)
    assert exported is not None
    assert_same_content(exported, sent)


def test_same_message_twice_is_stored_once(
    adapter: OcmwdataAdapter, db_options: dict[str, str]
) -> None:
    sent = received(seed=13, decisions=5)
    first = adapter.import_dossier(sent, message_id="msg-twice")
    second = adapter.import_dossier(sent, message_id="msg-twice")
    assert first.created and not second.created
    assert second.local_reference == first.local_reference
    assert query(db_options, "SELECT COUNT(*) FROM ontvangen_berichten") == [(1,)]
    assert query(db_options, "SELECT COUNT(*) FROM clienten") == [(1,)]
    assert query(db_options, "SELECT COUNT(*) FROM beslissingen") == [(5,)]


def test_redelivered_message_changes_nothing(adapter: OcmwdataAdapter) -> None:
    sent = received(seed=14, decisions=3, language=Language.NL)
    adapter.import_dossier(sent, message_id="msg-a")
    altered = sent.model_copy(
        update={"person": sent.person.model_copy(update={"language": Language.FR})}
    )
    result = adapter.import_dossier(altered, message_id="msg-a")
    assert not result.created
    exported = adapter.export_dossier(sent.person.number)
    assert exported is not None and exported.person.language is Language.NL


def test_new_message_updates_the_client_and_merges_decisions_by_id(
    adapter: OcmwdataAdapter, db_options: dict[str, str]
) -> None:
    sent = received(seed=15, decisions=3)
    first = adapter.import_dossier(sent, message_id="msg-1")
    old, revised_original, _ = sent.aid_history
    revised = revised_original.model_copy(
        update={"status": DecisionStatus.REVISED, "monthly_amount": Decimal("1234.56")}
    )
    added = old.model_copy(update={"decision_id": "NEW-0001", "decision_date": dt.date.today()})
    later = sent.model_copy(
        update={
            "household": sent.household.model_copy(
                update={"category": HouseholdCategory.ISOLATED, "dependent_children": 0}
            ),
            "aid_history": [revised, added],
            "last_social_inquiry": dt.date.today(),
        }
    )
    second = adapter.import_dossier(later, message_id="msg-2")
    assert second.created and second.local_reference == first.local_reference

    exported = adapter.export_dossier(sent.person.number)
    assert exported is not None
    by_id = {decision.decision_id: decision for decision in exported.aid_history}
    assert len(by_id) == 4  # three kept or replaced, one added
    assert by_id[revised.decision_id] == revised
    assert by_id["NEW-0001"] == added
    assert exported.household == later.household
    assert exported.last_social_inquiry == dt.date.today()
    origins = query(db_options, "SELECT DISTINCT herkomst_kbo FROM beslissingen")
    assert origins == [(SENDER_ID,)]


def test_import_of_a_seeded_person_keeps_one_client(adapter: OcmwdataAdapter) -> None:
    [number] = adapter.seed(1, seed=21)
    mine = adapter.export_dossier(number)
    assert mine is not None
    result = adapter.import_dossier(mine, message_id="msg-self")
    assert result.local_reference == mine.source.case_reference
    assert adapter.count_persons() == 1


def test_non_ascii_names_survive(adapter: OcmwdataAdapter, db_options: dict[str, str]) -> None:
    base = received(seed=16)
    person = base.person.model_copy(
        update={
            "family_name": "Łukasiewicz-Nguyễn D'Hondt",
            "given_names": ["Zoë", "Jean-Luc", "Maëlle Anaïs", "Ó’Brí"],
        }
    )
    sent = base.model_copy(update={"person": person})
    adapter.import_dossier(sent, message_id="msg-names")
    exported = adapter.export_dossier(sent.person.number)
    assert exported is not None
    assert exported.person == person
    assert Dossier.from_xml(exported.to_xml()).person == person
    [(naam,)] = query(db_options, "SELECT naam FROM clienten")
    assert naam == "Łukasiewicz-Nguyễn D'Hondt, Zoë, Jean-Luc, Maëlle Anaïs, Ó’Brí"


def test_two_hundred_decisions_survive(adapter: OcmwdataAdapter) -> None:
    sent = received(seed=17, decisions=200)
    adapter.import_dossier(sent, message_id="msg-long")
    exported = adapter.export_dossier(sent.person.number)
    assert exported is not None
    assert len(exported.aid_history) == 200
    assert_same_content(exported, sent)
    assert Dossier.from_xml(exported.to_xml()) == exported


def test_vendor_encoding_really_differs(
    adapter: OcmwdataAdapter, db_options: dict[str, str]
) -> None:
    sent = received(
        seed=18, decisions=20, kinds=[AidKind.INTEGRATION_INCOME, AidKind.RENT_GUARANTEE]
    )
    adapter.import_dossier(sent, message_id="msg-encoding")
    [(naam, geboortedatum, taalcode, categorie)] = query(
        db_options, "SELECT naam, geboortedatum, taalcode, leefloon_categorie FROM clienten"
    )
    assert naam.startswith(f"{sent.person.family_name}, ")
    assert geboortedatum == sent.person.birth_date.strftime("%Y%m%d")
    assert taalcode in {"N", "F", "D"}
    assert categorie in {1, 2, 3}
    rows = query(
        db_options,
        "SELECT referentie, steuncode, wettelijke_basis, beslissingsdatum, maandbedrag_cent"
        " FROM beslissingen",
    )
    by_id = {decision.decision_id: decision for decision in sent.aid_history}
    assert len(rows) == 20
    for referentie, steuncode, basis, beslissingsdatum, cents in rows:
        decision = by_id[referentie]
        assert steuncode == {"integration-income": "LL", "rent-guarantee": "HW"}[decision.kind]
        assert basis == ("RMI" if steuncode == "LL" else "OW")
        assert re.fullmatch(r"\d{2}-\d{2}-\d{4}", beslissingsdatum)
        assert beslissingsdatum == decision.decision_date.strftime("%d-%m-%Y")
        if decision.monthly_amount is None:
            assert cents is None
        else:
            assert isinstance(cents, int)
            assert cents == int(decision.monthly_amount * 100)


# ------------------------------------------------------------ vendor errors


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ("UPDATE beslissingen SET steuncode = 'XX'", "'XX' is not a known steuncode"),
        ("UPDATE beslissingen SET beslissingsdatum = '2024-01-05'", "DD-MM-YYYY"),
        ("UPDATE beslissingen SET einddatum = '01-01-1990'", "ends"),
        ("UPDATE beslissingen SET maandbedrag_cent = -5", "negative"),
        ("UPDATE clienten SET naam = 'Peeters'", "Familienaam, Voornaam1"),
        ("UPDATE clienten SET taalcode = 'E'", "taalcode"),
        ("UPDATE clienten SET geboortedatum = '19851301'", "YYYYMMDD"),
    ],
)
def test_data_that_cannot_make_a_dossier_is_invalid_data(
    adapter: OcmwdataAdapter, db_options: dict[str, str], statement: str, says: str
) -> None:
    sent = received(seed=19, decisions=2, kinds=[AidKind.INTEGRATION_INCOME])
    adapter.import_dossier(sent, message_id="msg-corrupt")
    query(db_options, statement)
    with pytest.raises(AdapterError) as caught:
        adapter.export_dossier(sent.person.number)
    error = caught.value
    assert error.code == "adapter.invalid_data"
    assert not error.transient
    assert says in error.message
    [(dossiernummer,)] = query(db_options, "SELECT dossiernummer FROM clienten")
    assert dossiernummer in error.message
    assert sent.person.number not in error.message


def test_unreachable_postgres_is_transient() -> None:
    with pytest.raises(AdapterError) as caught:
        OcmwdataAdapter(CPAS_ID, {"url": "postgresql://postgres@127.0.0.1:1/test", "timeout": "1"})
    assert caught.value.code == "adapter.unavailable"
    assert caught.value.transient


def test_unreachable_sqlite_file_is_transient(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'missing-folder' / 'db.sqlite3'}"
    with pytest.raises(AdapterError) as caught:
        OcmwdataAdapter(CPAS_ID, {"url": url})
    assert caught.value.code == "adapter.unavailable" and caught.value.transient


def test_locked_database_is_transient(db_options: dict[str, str]) -> None:
    with OcmwdataAdapter(CPAS_ID, db_options | {"timeout": "0.2"}) as adapter:
        if db_options["url"].startswith("sqlite:///"):
            blocker: Any = sqlite3.connect(
                db_options["url"].removeprefix("sqlite:///"), isolation_level=None
            )
            blocker.execute("BEGIN EXCLUSIVE")
        else:
            blocker = psycopg.connect(db_options["url"])
            blocker.execute(
                "SELECT pg_advisory_lock(hashtext(%s))", (f"ocmwdata:{db_options['schema']}",)
            )
        try:
            with pytest.raises(AdapterError) as caught:
                adapter.import_dossier(received(seed=20), message_id="msg-locked")
        finally:
            blocker.close()
        assert caught.value.code == "adapter.unavailable" and caught.value.transient
        # Once the lock is gone, the same call succeeds.
        assert adapter.import_dossier(received(seed=20), message_id="msg-locked").created


@pytest.mark.postgres
def test_a_dropped_postgres_connection_costs_one_transient_error(postgres_url: str) -> None:
    schema = f"ocmwdata_test_{uuid.uuid4().hex[:12]}"
    try:
        with OcmwdataAdapter(CPAS_ID, {"url": postgres_url, "schema": schema}) as adapter:
            adapter.seed(2)
            backend = adapter._db._conn.info.backend_pid  # type: ignore[union-attr]
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                # As a database restart would: the server ends the adapter's session.
                admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
            with pytest.raises(AdapterError) as caught:
                adapter.count_persons()
            assert caught.value.code == "adapter.unavailable" and caught.value.transient
            assert adapter.count_persons() == 2
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


def test_no_driver_exception_escapes(adapter: OcmwdataAdapter, db_options: dict[str, str]) -> None:
    [number] = adapter.seed(1)
    query(db_options, "DROP TABLE beslissingen")
    with pytest.raises(AdapterError):
        adapter.export_dossier(number)


def test_a_closed_adapter_refuses_work(db_options: dict[str, str]) -> None:
    adapter = OcmwdataAdapter(CPAS_ID, db_options)
    adapter.close()
    adapter.close()
    with pytest.raises(AdapterError) as caught:
        adapter.count_persons()
    assert caught.value.code == "adapter.closed"


@pytest.mark.parametrize(
    ("cpas_id", "options"),
    [
        ("0123456789", {}),
        (CPAS_ID, {"mailbox": "Not A Mailbox"}),
        (CPAS_ID, {"timeout": "soon"}),
        (CPAS_ID, {"timeout": "0"}),
        (CPAS_ID, {"schema": "x"}),
    ],
)
def test_bad_configuration_is_refused(tmp_path: Any, cpas_id: str, options: dict[str, str]) -> None:
    with pytest.raises(AdapterError) as caught:
        OcmwdataAdapter(cpas_id, {"url": str(tmp_path / "db.sqlite3"), **options})
    assert caught.value.code == "adapter.config"


# -------------------------------------------------- seeding and bookkeeping


def test_seeding_is_repeatable_and_adds_nobody_twice(adapter: OcmwdataAdapter) -> None:
    first = adapter.seed(10, seed=5)
    again = adapter.seed(10, seed=5)
    assert again == first
    assert adapter.count_persons() == 10
    other = adapter.seed(5, seed=6)
    assert adapter.count_persons() == 15
    assert adapter.list_person_numbers() == first + other


def test_seed_reports_progress(adapter: OcmwdataAdapter) -> None:
    drawn: list[int] = []
    adapter.seed(1203, progress=drawn.append)
    assert sum(drawn) == 1203
    assert adapter.count_persons() == 1203


def test_built_in_one_thread_and_used_from_others(adapter: OcmwdataAdapter) -> None:
    numbers = adapter.seed(8)
    with ThreadPoolExecutor(max_workers=4) as pool:
        dossiers = list(pool.map(adapter.export_dossier, numbers))
        results = list(
            pool.map(
                lambda n: adapter.import_dossier(received(seed=100 + n), message_id=f"msg-{n}"),
                range(8),
            )
        )
    assert all(dossier is not None for dossier in dossiers)
    assert all(result.created for result in results)
    assert adapter.count_persons() == 16


def test_schema_creation_is_idempotent(db_options: dict[str, str]) -> None:
    with OcmwdataAdapter(CPAS_ID, db_options) as first:
        numbers = first.seed(4)
    with OcmwdataAdapter(CPAS_ID, db_options) as second:
        assert second.list_person_numbers() == numbers


def test_adding_sensitive_data_to_an_unknown_person_is_refused(
    adapter: OcmwdataAdapter,
) -> None:
    with pytest.raises(AdapterError) as caught:
        adapter.add_sensitive("85073003328", notes=["x"])
    assert caught.value.code == "adapter.unknown_person"


def test_add_sensitive_accepts_structured_values(
    adapter: OcmwdataAdapter, db_options: dict[str, str]
) -> None:
    [number] = adapter.seed(1, seed=9)
    member = FamilyMember("Jan Peeters", "child", dt.date(2012, 3, 4), Decimal("12.34"))
    adapter.add_sensitive(number, family_members=[member], refused_applications=["bare reason"])
    rows = query(
        db_options,
        "SELECT geboortedatum, maandinkomen_cent FROM gezinsleden WHERE naam = 'Jan Peeters'",
    )
    assert ("20120304", 1234) in rows
    assert query(
        db_options, "SELECT COUNT(*) FROM geweigerde_aanvragen WHERE reden = 'bare reason'"
    ) == [(1,)]


# ---------------------------------------------------------- plugin and CLI


def test_found_through_the_entry_point(db_options: dict[str, str]) -> None:
    registry = load_adapters()
    assert "ocmwdata" in registry.names
    adapter = registry.create("ocmwdata", CPAS_ID, db_options)
    try:
        assert isinstance(adapter, OcmwdataAdapter)
        assert isinstance(adapter, Adapter) and isinstance(adapter, Seedable)
        assert adapter.info.name == "ocmwdata" and adapter.info.vendor == "OCMWdata"
    finally:
        adapter.close()


def test_registry_passes_the_transient_error_through() -> None:
    registry = load_adapters()
    with pytest.raises(AdapterError) as caught:
        registry.create("ocmwdata", CPAS_ID, {"url": "postgresql://postgres@127.0.0.1:1/x"})
    assert caught.value.transient


def test_command_line_seeds_a_database(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    assert cli.main(["seed", "--url", url, "--cpas", CPAS_ID, "--count", "30"]) == 0
    assert cli.main(["count", "--url", url, "--cpas", CPAS_ID]) == 0
    assert capsys.readouterr().out.strip() == "30"


def test_command_line_reports_an_unreachable_database(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://postgres@127.0.0.1:1/x"
    assert cli.main(["count", "--url", url, "--cpas", CPAS_ID]) == 1
    assert "adapter.unavailable" in capsys.readouterr().err


# ---------------------------------------------------------------- vocabulary


def test_vendor_dates_round_trip_and_refuse_other_forms() -> None:
    day = dt.date(2024, 2, 29)
    assert date_to_vendor(day) == "29-02-2024"
    assert date_to_vendor(day, DateFormat.BIRTH) == "20240229"
    assert date_from_vendor("29-02-2024") == day
    assert date_from_vendor("20240229", DateFormat.BIRTH) == day
    for text in ("2024-02-29", "29-2-2024", "30-02-2024", " 29-02-2024"):
        with pytest.raises(VocabularyError):
            date_from_vendor(text)


def test_amounts_are_whole_cents() -> None:
    assert cents_from_amount(Decimal("1314.20")) == 131420
    assert amount_from_cents(131420) == Decimal("1314.20")
    assert str(amount_from_cents(5)) == "0.05"
    with pytest.raises(VocabularyError):
        cents_from_amount(Decimal("0.001"))


def test_names_share_one_column() -> None:
    assert join_name("De Smet", ["Anne Sophie", "Marie"]) == "De Smet, Anne Sophie, Marie"
    assert split_name("De Smet, Anne Sophie, Marie") == ("De Smet", ["Anne Sophie", "Marie"])
    with pytest.raises(VocabularyError):
        split_name("De Smet")


def test_every_kind_of_aid_has_a_code() -> None:
    assert sorted(AID_KINDS.vendor(kind) for kind in AidKind) == sorted(AID_KINDS.codes)
