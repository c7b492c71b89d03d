"""The person's report: exactly their exchanges, in their language, printable."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import struct
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Final

import lxml.html
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from helpers.ci import unavailable
from helpers.journal_run import (
    EUPEN_ID,
    GENT_ID,
    POLICE_ID,
    START,
    THIS,
    Run,
    cli,
    node_config,
    record_run,
)

import gateway.model.codes
import gateway.model.directory
import gateway.report
from gateway.config import NodeConfig
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.journal import Event, Journal, JournalSettings
from gateway.model.codes import Outcome, Refusal, RefusalReason, Worded
from gateway.model.dossier import AidKind, Decision, DecisionStatus, Language, legal_basis_for
from gateway.model.identifiers import make_niss
from gateway.report import LANGUAGES, Report, build_report, render

CHROMIUM = Path("/usr/bin/chromium")
REPORT_SOURCES = sorted(Path(gateway.report.__file__).parent.glob("*.py"))
CODES_SOURCE = Path(gateway.model.codes.__file__)
DIRECTORY_SOURCES = sorted(Path(gateway.model.directory.__file__).parent.glob("*.py"))
CATALOGUES = Path(gateway.__file__).parent / "locale"


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> LocalFederation:
    return make_local_federation(tmp_path_factory.mktemp("federation"), ["21004", "44021", "63023"])


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(f"sqlite:///{tmp_path / 'journal.sqlite3'}", os.urandom(32)) as opened:
        yield opened


@pytest.fixture
def run(journal: Journal) -> Run:
    return record_run(journal)


def report_for(
    journal: Journal, federation: LocalFederation, number: str, lang: str | None = "fr"
) -> Report:
    return build_report(
        journal,
        federation.directory,
        cpas_id=THIS,
        person_number=number,
        lang=lang,
        verified=journal.verify(),
        now=START + dt.timedelta(days=10),
    )


def steps_of(report: Report) -> list[int]:
    return [step.seq for exchange in report.exchanges for step in exchange.steps]


# ----------------------------------------------------------------- content


def test_the_report_lists_exactly_the_persons_exchanges(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    for key, person in run.people.items():
        report = report_for(journal, federation, person.number)
        assert steps_of(report) == person.seqs, key
        text = render(report, "text") + render(report, "html") + render(report, "json")
        for other_key, other in run.people.items():
            if other_key != key:
                assert other.number not in text
                assert other.family_name not in text


def test_the_dossier_in_the_report_is_the_recorded_one_byte_for_byte(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    for person in run.people.values():
        report = json.loads(render(report_for(journal, federation, person.number), "json"))
        shown = [
            view["xml"].encode("utf-8")
            for exchange in report["exchanges"]
            for view in exchange["dossiers"]
        ]
        assert shown == list(person.contents.values())


def test_a_refused_attempt_to_send_to_the_police_is_reported_as_refused(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    report = report_for(journal, federation, run.people["bob"].number, "nl")
    refused = report.exchanges[0]
    assert refused.refused and refused.peer_id == POLICE_ID
    assert refused.peer == "Federale Politie, een politiedienst"
    assert refused.steps[0].text == (
        "OCMW Brussel heeft geweigerd uw dossier te versturen (bestemmeling: Federale Politie, "
        "een politiedienst): de bestemmeling is geen OCMW. Er werd niets verstuurd."
    )
    assert not refused.dossiers


def test_the_report_says_whether_the_dossier_was_imported(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    alice = report_for(journal, federation, run.people["alice"].number, "fr")
    bob = report_for(journal, federation, run.people["bob"].number, "fr")
    assert alice.exchanges[0].outcome == "enregistré"
    assert bob.exchanges[1].outcome == "non enregistré"
    assert bob.exchanges[1].steps[-1].text == (
        "Le CPAS d’Eupen n’a pas enregistré votre dossier\u00a0: le logiciel du CPAS n’a pas "
        "pu enregistrer le dossier."
    )


def test_a_held_then_released_request_tells_its_whole_story(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    report = report_for(journal, federation, run.people["chloe"].number, "de")
    (exchange,) = report.exchanges
    assert exchange.title == "Anfrage nach Ihrer Akte durch das ÖSHZ Eupen"
    assert [step.event for step in exchange.steps] == [
        Event.RECEIVED,
        Event.REQUEST_HELD,
        Event.REQUEST_RELEASED,
        Event.RESPONSE_SENT,
        Event.RECEIPT_RECEIVED,
    ]
    assert exchange.purpose == "Sozialuntersuchung für einen neuen Antrag"
    assert exchange.dossiers[0].heading == "Die Akte, wie sie gesendet wurde"


@pytest.mark.parametrize(
    ("lang", "eupen", "gent"),
    [
        ("fr", "CPAS d’Eupen", "CPAS de Gand"),
        ("nl", "OCMW Eupen", "OCMW Gent"),
        ("de", "ÖSHZ Eupen", None),
    ],
)
def test_the_report_names_each_cpas_in_its_language(
    journal: Journal,
    federation: LocalFederation,
    run: Run,
    lang: str,
    eupen: str,
    gent: str | None,
) -> None:
    chloe = report_for(journal, federation, run.people["chloe"].number, lang)
    assert chloe.exchanges[0].peer_id == EUPEN_ID
    assert chloe.exchanges[0].peer == eupen
    assert eupen in render(chloe, "text") and eupen in render(chloe, "html")
    if gent is not None:
        alice = report_for(journal, federation, run.people["alice"].number, lang)
        assert alice.exchanges[0].peer_id == GENT_ID
        assert alice.exchanges[0].peer == gent


def test_dates_are_belgian_time_written_as_each_language_writes_them(
    journal: Journal, federation: LocalFederation
) -> None:
    # 23:30 UTC on 4 March is already 5 March in Brussels (UTC+1 in winter).
    number = "85073003328"
    journal.record(
        Event.SENT,
        message_type="request",
        peer=GENT_ID,
        person_number=number,
        at=dt.datetime(2025, 3, 4, 23, 30, tzinfo=dt.UTC),
    )
    whens = [report_for(journal, federation, number, lang).exchanges[0].when for lang in LANGUAGES]
    assert whens == ["5 mars 2025 à 00:30", "5 maart 2025 om 00:30", "5. März 2025 um 00:30 Uhr"]


def test_amounts_in_euro_are_written_as_each_language_writes_them(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    person = run.people["alice"]
    decision = Decision(
        decision_id="DEC-1",
        kind=AidKind.INTEGRATION_INCOME,
        legal_basis=legal_basis_for(AidKind.INTEGRATION_INCOME),
        decision_date=dt.date(2025, 1, 1),
        period_start=dt.date(2025, 1, 1),
        status=DecisionStatus.GRANTED,
        monthly_amount=Decimal("1314.20"),
    )
    dossier = person.dossier.model_copy(update={"aid_history": [decision]})
    number = dossier.person.number
    journal.record(
        Event.SENT,
        message_type="transfer",
        peer=GENT_ID,
        person_number=number,
        content=dossier.to_xml(),
    )
    amounts = [
        report_for(journal, federation, number, lang).exchanges[-1].dossiers[0].decisions[0]
        for lang in LANGUAGES
    ]
    assert [d.monthly_amount for d in amounts] == [
        "1\u202f314,20\u00a0€",
        "€\u00a01.314,20",
        "1.314,20\u00a0€",
    ]
    assert [d.kind for d in amounts] == [
        "Revenu d’intégration",
        "Leefloon",
        "Eingliederungseinkommen",
    ]
    assert [d.period for d in amounts] == [
        "à partir du 1er janvier 2025",
        "vanaf 1 januari 2025",
        "ab dem 1. Januar 2025",
    ]


def test_content_past_retention_is_reported_as_erased(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    journal.destroy_expired(dt.datetime.now(dt.UTC) + dt.timedelta(days=3650))
    report = report_for(journal, federation, run.people["dirk"].number, "nl")
    (view,) = report.exchanges[0].dossiers
    assert view.state == "destroyed" and view.xml is None
    assert view.note is not None and view.note.startswith("De inhoud wordt niet meer bewaard")


def test_the_report_is_in_the_persons_own_language_unless_asked_otherwise(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    chloe = run.people["chloe"]
    assert chloe.dossier.person.language is Language.DE
    assert report_for(journal, federation, chloe.number, lang=None).lang == "de"


def test_a_person_without_exchanges_gets_a_report_that_says_so(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    report = report_for(journal, federation, make_niss(dt.date(1990, 1, 1), 1), "fr")
    assert report.exchanges == ()
    assert "Aucun échange vous concernant n’a été enregistré." in render(report, "text")


def test_the_report_states_whether_the_journal_is_intact(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    number = run.people["alice"].number
    intact = render(report_for(journal, federation, number, "fr"), "text")
    assert "rien n’y a été modifié ni supprimé (18 entrées)" in " ".join(intact.split())


def test_a_journal_that_is_not_intact_is_stated_in_the_report(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    database = journal.url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE journal_entries SET code = NULL WHERE seq = 3")
    conn.close()
    report = report_for(journal, federation, run.people["alice"].number, "de")
    assert report.journal_intact is False
    assert "ist NICHT unversehrt" in render(report, "html")


# ------------------------------------------------------------- catalogues


def _messages() -> list[str | tuple[str, ...]]:
    found = [
        message
        for source in (*REPORT_SOURCES, CODES_SOURCE, *DIRECTORY_SOURCES)
        for _, message, _, _ in extract_from_file(
            "python", str(source), keywords={"N_": None, "ngettext": (1, 2)}
        )
    ]
    return list(dict.fromkeys(found))


def _catalogue(lang: str) -> Catalog:
    with (CATALOGUES / lang / "LC_MESSAGES" / "gateway.po").open("rb") as po:
        return read_po(po, locale=lang)


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", text))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_of_the_report_is_translated(lang: str) -> None:
    catalogue = _catalogue(lang)
    problems = []
    for message in _messages():
        key = message if isinstance(message, str) else message[0]
        entry = catalogue.get(key)
        if entry is None or entry.fuzzy:
            problems.append(f"missing: {message!r}")
            continue
        sources = [message] if isinstance(message, str) else list(message)
        targets = [entry.string] if isinstance(entry.string, str) else list(entry.string or ())
        if not all(targets):
            problems.append(f"empty: {message!r}")
        elif any(_placeholders(t) != _placeholders(sources[0]) for t in targets):
            problems.append(f"placeholders differ: {message!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_catalogues_hold_no_message_the_report_no_longer_uses(lang: str) -> None:
    used = {m if isinstance(m, str) else m[0] for m in _messages()}
    held = {entry.id if isinstance(entry.id, str) else entry.id[0] for entry in _catalogue(lang)}
    assert held - {""} == used


_VOCABULARY: Final = [
    pytest.param(member, id=f"{type(member).__name__}.{member.name}")
    for vocabulary in (Refusal, RefusalReason, Outcome)
    for member in vocabulary
]


def _record_member(journal: Journal, number: str, member: Worded) -> None:
    """One entry whose reason (or, for a receipt's word, outcome) is ``member``."""
    if member in (Outcome.IMPORTED, Outcome.REJECTED):
        journal.record(
            Event.RECEIPT_RECEIVED, message_type="receipt", peer=GENT_ID,
            person_number=number, outcome=member,
        )  # fmt: skip
    elif isinstance(member, Refusal):
        journal.record(
            Event.RECEIPT_RECEIVED, message_type="receipt", peer=GENT_ID,
            person_number=number, outcome=Outcome.REJECTED, code=member,
        )  # fmt: skip
    else:
        journal.record(
            Event.RESPONSE_RECEIVED, message_type="response", peer=GENT_ID,
            person_number=number, outcome=member,
        )  # fmt: skip


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("member", _VOCABULARY)
def test_every_code_reads_as_words_in_the_persons_language(
    journal: Journal, federation: LocalFederation, member: Worded, lang: str
) -> None:
    number = "85073003328"
    _record_member(journal, number, member)
    report = report_for(journal, federation, number, lang)
    exchange = report.exchanges[0]
    shown = (
        exchange.outcome
        if member in (Outcome.IMPORTED, Outcome.REJECTED)
        else exchange.steps[0].reason
    )
    words = _catalogue(lang).get(member.words)
    assert words is not None and words.string, f"no {lang} words for {member.words!r}"
    assert shown == words.string
    assert shown != member.words, "English words in a report that is not in English"
    assert member.value not in render(report, "text")
    assert member.value not in lxml.html.fromstring(render(report, "html")).body.text_content()


def test_a_receipt_rejected_for_a_bad_check_digit_is_told_in_words(
    journal: Journal, federation: LocalFederation
) -> None:
    number = "85073003328"
    journal.record(
        Event.RECEIPT_RECEIVED,
        message_type="receipt",
        peer=GENT_ID,
        person_number=number,
        outcome="rejected",
        code="niss.checksum",
    )
    reason = report_for(journal, federation, number, "fr").exchanges[0].steps[0].reason
    assert reason == "un numéro d’identification du dossier n’était pas valable"


def test_an_unknown_refusal_code_is_shown_as_itself(
    journal: Journal, federation: LocalFederation
) -> None:
    number = "85073003328"
    journal.record(
        Event.REFUSED_INCOMING,
        message_type="transfer",
        peer=GENT_ID,
        person_number=number,
        code="envelope.something_new",
    )
    report = report_for(journal, federation, number, "de")
    assert report.exchanges[0].steps[0].reason == "envelope.something_new"


# -------------------------------------------------------------------- HTML


def test_the_html_report_is_one_self_contained_page(
    journal: Journal, federation: LocalFederation, run: Run
) -> None:
    html = render(report_for(journal, federation, run.people["bob"].number, "fr"), "html")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="fr">' in html
    assert "<style>" in html and "@media print" in html
    for external in ("<link", "<script", "src=", "url(", "http://", "https://", "@import"):
        assert external not in html


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_html_report_renders_in_headless_chromium(
    journal: Journal, federation: LocalFederation, run: Run, tmp_path: Path, lang: str
) -> None:
    if not CHROMIUM.exists():
        unavailable("headless Chromium is not installed at /usr/bin/chromium")
    page = tmp_path / f"report-{lang}.html"
    shot = tmp_path / f"report-{lang}.png"
    page.write_text(
        render(report_for(journal, federation, run.people["bob"].number, lang), "html"),
        encoding="utf-8",
    )
    subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={shot}",
            "--window-size=1000,1400", page.as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    png = shot.read_bytes()
    assert _png_size(png) == (1000, 1400)
    # A blank page of that size compresses to a few kilobytes; text and tables do not.
    assert len(png) > 50_000, "the screenshot is blank"


# --------------------------------------------------------------------- CLI


def test_report_command_writes_the_html_page_to_the_file(
    federation: LocalFederation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = node_config(federation, tmp_path)
    with JournalSettings.from_config(NodeConfig.load(config)).open() as journal:
        run = record_run(journal)
    out = tmp_path / "out" / "report.html"
    argv = ["report", "--config", str(config), "--niss", run.people["frank"].number]
    assert cli(monkeypatch, *argv, "--lang", "nl", "--format", "html", "--out", str(out)) == 0
    html = out.read_text(encoding="utf-8")
    assert "Uw dossier ontvangen van OCMW Gent" not in html  # Frank asked; Gent answered
    assert "Aanvraag van uw dossier verstuurd naar OCMW Gent" in html
    assert "Maes" in html


def test_report_command_prints_json_for_a_formatted_niss(
    federation: LocalFederation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = node_config(federation, tmp_path)
    with JournalSettings.from_config(NodeConfig.load(config)).open() as journal:
        run = record_run(journal)
    n = run.people["emma"].number
    written = f"{n[:2]}.{n[2:4]}.{n[4:6]}-{n[6:9]}.{n[9:]}"
    assert cli(monkeypatch, "report", "--config", str(config), "--niss", written,
               "--format", "json", "--lang", "fr") == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["journal_intact"] is True
    assert [e["outcome"] for e in report["exchanges"]] == ["réponse sans le dossier"]


def test_report_command_refuses_an_invalid_niss_in_one_line(
    federation: LocalFederation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = node_config(federation, tmp_path)
    with JournalSettings.from_config(NodeConfig.load(config)).open() as journal:
        record_run(journal)
    assert cli(monkeypatch, "report", "--config", str(config), "--niss", "85073003329") == 1
    assert "niss.checksum" in capsys.readouterr().err
