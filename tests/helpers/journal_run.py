"""A realistic week of exchanges recorded in a journal, and the node configuration around it.

Shared by the journal, tampering and report tests.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import gateway.cli
from gateway.federation.localnet import LocalFederation, cpas_id_of
from gateway.journal import Event, Journal
from gateway.model.dossier import Dossier, Language
from gateway.model.identifiers import make_enterprise_number
from gateway.testing.synthetic import make_beneficiary

BRUSSELS, GENT, EUPEN = "21004", "44021", "63023"
THIS = cpas_id_of(BRUSSELS)
GENT_ID, EUPEN_ID = cpas_id_of(GENT), cpas_id_of(EUPEN)
POLICE_ID = make_enterprise_number(900002)  # the sample directory's federal police
START = dt.datetime(2025, 3, 4, 9, 30, tzinfo=dt.UTC)


# ---------------------------------------------------------------- scenario


@dataclass
class Person:
    """Someone the run is about: their dossier, and what the journal holds for them."""

    dossier: Dossier
    seqs: list[int] = field(default_factory=list)
    contents: dict[int, bytes] = field(default_factory=dict)

    @property
    def number(self) -> str:
        return self.dossier.person.number

    @property
    def family_name(self) -> str:
        return self.dossier.person.family_name


@dataclass
class Run:
    """A realistic sequence of exchanges recorded by the Brussels node."""

    people: dict[str, Person]
    unfiled: list[int]
    total: int


def _person(seed: int, source: str, family_name: str, language: Language) -> Person:
    beneficiary = make_beneficiary(
        random.Random(seed),
        source,
        decisions=3,
        language=language,
        bis=False,
        born_after_2000=False,
        family_name=family_name,
        created_at=START,
    )
    return Person(beneficiary.dossier)


def record_run(journal: Journal, start: dt.datetime = START) -> Run:
    """Record what a week at the CPAS of Brussels looks like, for six people."""
    people = {
        "alice": _person(1, THIS, "Lambert", Language.FR),
        "bob": _person(2, THIS, "Peeters", Language.NL),
        "chloe": _person(3, THIS, "Schmitz", Language.DE),
        "dirk": _person(4, GENT_ID, "Janssens", Language.NL),
        "emma": _person(5, THIS, "Dubois", Language.FR),
        "frank": _person(6, GENT_ID, "Maes", Language.NL),
    }
    assert len({p.number for p in people.values()}) == len(people)
    clock = iter(start + dt.timedelta(hours=5 * i) for i in range(1000))
    unfiled: list[int] = []

    def add(who: str | None, event: Event, content: bytes | None = None, **kw: Any) -> str:
        # A new message id unless the entry names one (or None: no message was made).
        message_id = kw.pop("message_id") if "message_id" in kw else str(uuid.uuid4())
        seq = journal.record(event, message_id=message_id, content=content, at=next(clock), **kw)
        if who is None:
            unfiled.append(seq)
        else:
            people[who].seqs.append(seq)
            if content is not None:
                people[who].contents[seq] = content
        return message_id

    move = "continuity-after-move"
    inquiry = "new-application-inquiry"

    # Alice moved to Gent: her dossier goes there and is imported.
    alice = people["alice"]
    xml = alice.dossier.to_xml()
    sent = add(
        "alice",
        Event.SENT,
        xml,
        message_type="transfer",
        peer=GENT_ID,
        purpose=move,
        case_reference="2025/00017",
        person_number=alice.number,
    )
    # The receipt carries no person number: it is filed under Alice through its correlation.
    add(
        "alice",
        Event.RECEIPT_RECEIVED,
        message_type="receipt",
        peer=GENT_ID,
        purpose=move,
        case_reference="2025/00017",
        correlation_id=sent,
        outcome="imported",
    )

    # Bob: someone tries to send his dossier to the police; later it goes to Eupen,
    # whose software fails to import it.
    bob = people["bob"]
    add(
        "bob",
        Event.REFUSED_OUTGOING,
        message_type="transfer",
        peer=POLICE_ID,
        purpose=move,
        case_reference="2025/00018",
        person_number=bob.number,
        code="directory.not_cpas",
        message_id=None,
    )
    sent = add(
        "bob",
        Event.SENT,
        bob.dossier.to_xml(),
        message_type="transfer",
        peer=EUPEN_ID,
        purpose=move,
        case_reference="2025/00018",
        person_number=bob.number,
    )
    add(
        "bob",
        Event.RECEIPT_RECEIVED,
        message_type="receipt",
        peer=EUPEN_ID,
        purpose=move,
        correlation_id=sent,
        outcome="rejected",
        code="adapter.failed",
    )

    # Chloé: Eupen asks for her dossier; a social worker holds, then releases it.
    chloe = people["chloe"]
    request = add(
        "chloe",
        Event.RECEIVED,
        message_type="request",
        peer=EUPEN_ID,
        purpose=inquiry,
        case_reference="EUP-2025-4",
        person_number=chloe.number,
    )
    for event in (Event.REQUEST_HELD, Event.REQUEST_RELEASED):
        add(
            "chloe",
            event,
            message_id=request,
            message_type="request",
            peer=EUPEN_ID,
            purpose=inquiry,
            case_reference="EUP-2025-4",
            person_number=chloe.number,
        )
    response = add(
        "chloe",
        Event.RESPONSE_SENT,
        chloe.dossier.to_xml(),
        message_type="response",
        peer=EUPEN_ID,
        purpose=inquiry,
        case_reference="EUP-2025-4",
        correlation_id=request,
        person_number=chloe.number,
    )
    add(
        "chloe",
        Event.RECEIPT_RECEIVED,
        message_type="receipt",
        peer=EUPEN_ID,
        purpose=inquiry,
        correlation_id=response,
        outcome="imported",
    )

    # Dirk moved here from Gent: his dossier arrives and is imported.
    dirk = people["dirk"]
    received = add(
        "dirk",
        Event.RECEIVED,
        dirk.dossier.to_xml(),
        message_type="transfer",
        peer=GENT_ID,
        purpose=move,
        case_reference="2024/99812",
        person_number=dirk.number,
        outcome="imported",
    )
    add(
        "dirk",
        Event.RECEIPT_SENT,
        message_type="receipt",
        peer=GENT_ID,
        purpose=move,
        correlation_id=received,
        person_number=dirk.number,
        outcome="imported",
    )

    # Emma: Gent asks for a dossier this CPAS does not hold.
    emma = people["emma"]
    request = add(
        "emma",
        Event.RECEIVED,
        message_type="request",
        peer=GENT_ID,
        purpose=inquiry,
        case_reference="G-2025-77",
        person_number=emma.number,
    )
    add(
        "emma",
        Event.RESPONSE_SENT,
        message_type="response",
        peer=GENT_ID,
        purpose=inquiry,
        case_reference="G-2025-77",
        correlation_id=request,
        person_number=emma.number,
        outcome="unknown-person",
    )

    # Frank applies here: this CPAS asks Gent for his dossier and imports the answer.
    frank = people["frank"]
    request = add(
        "frank",
        Event.SENT,
        message_type="request",
        peer=GENT_ID,
        purpose=inquiry,
        case_reference="2025/00031",
        person_number=frank.number,
    )
    response = add(
        "frank",
        Event.RESPONSE_RECEIVED,
        frank.dossier.to_xml(),
        message_type="response",
        peer=GENT_ID,
        purpose=inquiry,
        case_reference="2025/00031",
        correlation_id=request,
        person_number=frank.number,
        outcome="imported",
    )
    add(
        "frank",
        Event.RECEIPT_SENT,
        message_type="receipt",
        peer=GENT_ID,
        purpose=inquiry,
        correlation_id=response,
        person_number=frank.number,
        outcome="imported",
    )

    # A forged message: refused before anything was decrypted, so it concerns no one known.
    add(
        None,
        Event.REFUSED_INCOMING,
        message_type="transfer",
        peer=make_enterprise_number(4711),
        purpose=move,
        case_reference="X-1",
        code="envelope.signature",
    )
    return Run(people, unfiled, journal.count())


def node_config(federation: LocalFederation, folder: Path) -> Path:
    """A node configuration for Brussels, without journal settings (their defaults apply)."""
    (folder / "keys").mkdir(parents=True, exist_ok=True)
    path = folder / "node.toml"
    path.write_text(
        f'cpas_id = "{THIS}"\n'
        'store = "state/node.sqlite3"\n'
        'keys = "keys"\n'
        f'directory = "{federation.directory_path}"\n'
        f'trust_anchor = "{federation.trust_anchor}"\n'
        "[adapter]\n"
        'name = "ocmwdata"\n',
        encoding="utf-8",
    )
    return path


def cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    modules = tuple(dict.fromkeys((*gateway.cli.COMMAND_MODULES, "journal", "report")))
    monkeypatch.setattr(gateway.cli, "COMMAND_MODULES", modules)
    return gateway.cli.main(list(argv))
