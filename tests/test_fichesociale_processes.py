"""FicheSociale with several writers on one folder: processes, and adapters of one process.

The workers of ``cpas-gateway run --workers N`` consume one inbox, so two
copies of a message (a sender republishing its outbox) can be imported by
two processes at the same moment.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.fiche_writers import Outcome, import_at_once

from fichesociale import FicheSocialeAdapter
from fichesociale import adapter as adapter_module
from gateway.adapters import ImportResult
from gateway.model.dossier import Dossier
from gateway.model.errors import AdapterError
from gateway.model.identifiers import make_enterprise_number
from gateway.testing.synthetic import make_beneficiary

CPAS = make_enterprise_number(1)
OTHER_CPAS = make_enterprise_number(2)
PEOPLE = 40
"""Enough dossiers for the imports of processes started together to overlap."""

WAIT = 60.0


def incoming(seed: int) -> Dossier:
    """A dossier sent by another CPAS, with a few decisions."""
    return make_beneficiary(random.Random(seed), OTHER_CPAS, decisions=6).dossier


def canonical(dossier: Dossier | None) -> tuple[Any, ...]:
    """What must survive the trip, decisions in the order of their ids."""
    assert dossier is not None
    decisions = sorted(dossier.aid_history, key=lambda decision: decision.decision_id)
    return (dossier.person, dossier.household, decisions, dossier.last_social_inquiry)


def half_of(dossier: Dossier, half: int) -> Dossier:
    """The dossier with every other decision, from the first (``0``) or the second (``1``)."""
    content = dossier.model_dump()
    return Dossier.model_validate({**content, "aid_history": content["aid_history"][half::2]})


def temporary_files(folder: Path) -> list[Path]:
    return list(folder.rglob(".*.tmp"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "fichesociale"


@pytest.fixture
def adapter(folder: Path) -> Iterator[FicheSocialeAdapter]:
    made = FicheSocialeAdapter(CPAS, {"folder": str(folder)})
    yield made
    made.close()


# ------------------------------------------- processes importing the same messages

SENT = [(incoming(seed), f"republished-{seed}") for seed in range(PEOPLE)]


@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Outcome]]:
    """Three processes import the same dossiers under the same message ids at the same moment."""
    folder = tmp_path_factory.mktemp("raced") / "fichesociale"
    FicheSocialeAdapter(CPAS, {"folder": str(folder)}).close()
    return folder, import_at_once(folder, CPAS, [SENT] * 3)


def test_processes_importing_the_same_message_at_once_create_it_once(
    raced: tuple[Path, list[Outcome]],
) -> None:
    _, outcomes = raced
    for index, (_, message_id) in enumerate(SENT):
        created = [outcome[index][1] for outcome in outcomes]
        assert created.count(True) == 1, f"{message_id}: created {created}"


def test_processes_importing_the_same_message_at_once_give_one_reference(
    raced: tuple[Path, list[Outcome]],
) -> None:
    _, outcomes = raced
    for index, (_, message_id) in enumerate(SENT):
        assert len({outcome[index][0] for outcome in outcomes}) == 1, message_id


def test_processes_importing_the_same_message_at_once_leave_each_fiche_merged_once(
    raced: tuple[Path, list[Outcome]],
) -> None:
    folder, _ = raced
    adapter = FicheSocialeAdapter(CPAS, {"folder": str(folder)})
    assert adapter.count_persons() == PEOPLE
    for dossier, _ in SENT:
        assert canonical(adapter.export_dossier(dossier.person.number)) == canonical(dossier)
    assert len(list((folder / "recus").iterdir())) == PEOPLE


def test_processes_importing_at_once_leave_no_temporary_file(
    raced: tuple[Path, list[Outcome]],
) -> None:
    folder, _ = raced
    assert temporary_files(folder) == []


# ------------------------------------------- processes updating the same people


def test_processes_updating_the_same_people_at_once_lose_no_merge(folder: Path) -> None:
    # Each process brings half of every person's decisions, under its own
    # message ids: the fiche must end up with both halves.
    whole = [incoming(seed) for seed in range(PEOPLE)]
    halves = [
        [(half_of(dossier, half), f"half-{half}-of-{n}") for n, dossier in enumerate(whole)]
        for half in (0, 1)
    ]
    FicheSocialeAdapter(CPAS, {"folder": str(folder)}).close()
    outcomes = import_at_once(folder, CPAS, halves)
    assert all(created for outcome in outcomes for _, created in outcome)
    adapter = FicheSocialeAdapter(CPAS, {"folder": str(folder)})
    for dossier in whole:
        assert canonical(adapter.export_dossier(dossier.person.number)) == canonical(dossier)


# -------------------------------------------------- adapters of one process


def test_a_second_adapter_on_the_folder_waits_for_the_first_ones_import(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = FicheSocialeAdapter(CPAS, {"folder": str(folder)})
    second = FicheSocialeAdapter(CPAS, {"folder": str(folder)})
    sent = incoming(1)
    inside, release = threading.Event(), threading.Event()
    write_fiche = first._write_fiche

    def held_inside(dossier: Dossier) -> str:
        inside.set()
        release.wait(WAIT)
        return write_fiche(dossier)

    monkeypatch.setattr(first, "_write_fiche", held_inside)
    results: dict[str, ImportResult] = {}
    threads = {
        name: threading.Thread(
            target=lambda name=name, made=made: results.update(
                {name: made.import_dossier(sent, message_id="twice")}
            )
        )
        for name, made in (("first", first), ("second", second))
    }
    threads["first"].start()
    try:
        assert inside.wait(WAIT)
        threads["second"].start()
        threads["second"].join(0.5)
        assert threads["second"].is_alive(), "the second adapter wrote while the first was writing"
    finally:
        release.set()
        for thread in threads.values():
            if thread.ident is not None:
                thread.join(WAIT)
    assert results["first"].created
    assert not results["second"].created
    assert results["second"].local_reference == results["first"].local_reference


def test_threads_of_two_adapters_on_one_folder_import_each_message_once(folder: Path) -> None:
    adapters = [FicheSocialeAdapter(CPAS, {"folder": str(folder)}) for _ in range(2)]
    sent = SENT[:10]
    created: list[str] = []

    def import_all(made: FicheSocialeAdapter) -> None:
        for dossier, message_id in sent:
            if made.import_dossier(dossier, message_id=message_id).created:
                created.append(message_id)

    threads = [
        threading.Thread(target=import_all, args=(made,)) for made in adapters for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "the imports are stuck"
    assert sorted(created) == sorted(message_id for _, message_id in sent)


# -------------------------------------------------------------- the lock file


def test_the_lock_file_is_readable_by_its_owner_only(
    folder: Path, adapter: FicheSocialeAdapter
) -> None:
    adapter.import_dossier(incoming(1), message_id="m")
    assert (folder / adapter_module.LOCK_FILE).stat().st_mode & 0o777 == 0o600


def test_the_outage_simulation_still_makes_writes_transient_and_ends(
    adapter: FicheSocialeAdapter,
) -> None:
    with adapter.store_unavailable(), pytest.raises(AdapterError) as caught:
        adapter.import_dossier(incoming(1), message_id="during")
    assert caught.value.code == "adapter.unavailable"
    assert caught.value.transient
    assert adapter.import_dossier(incoming(1), message_id="after").created
