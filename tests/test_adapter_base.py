"""The base class for adapters over a vendor's store: what it gives every adapter, once."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from memory_adapter import MemoryAdapter, MemoryPlugin

from gateway.adapters import (
    Adapter,
    BatchImporter,
    Inspectable,
    PlantsSensitiveData,
    Seedable,
    SimulatesOutage,
    load_adapters,
)
from gateway.adapters.base import Seeding, person_number_or_none
from gateway.adapters.protocol import AdapterInfo
from gateway.model.dossier import Dossier
from gateway.model.errors import AdapterError
from gateway.testing.synthetic import SensitiveData, make_beneficiary

CPAS = "0200000142"


def person(seed: int = 1) -> Dossier:
    return make_beneficiary(random.Random(seed), "0201234517").dossier


@pytest.fixture
def adapter() -> MemoryAdapter:
    return MemoryAdapter(CPAS, {})


def test_an_adapter_on_the_base_class_offers_every_protocol(adapter: MemoryAdapter) -> None:
    for protocol in (
        Adapter,
        BatchImporter,
        Seedable,
        Inspectable,
        PlantsSensitiveData,
        SimulatesOutage,
    ):
        assert isinstance(adapter, protocol)


@pytest.mark.parametrize(
    "value", ["", "abc", "1234567890", "８５０７３０００１２３", "85.07.30-001.2\0"]
)
def test_what_is_not_a_person_number_never_reaches_the_vendor_code(
    adapter: MemoryAdapter, value: str
) -> None:
    assert adapter.export_dossier(value) is None
    assert adapter.reads == []


def test_a_person_number_with_separators_reaches_the_vendor_code_as_eleven_digits(
    adapter: MemoryAdapter,
) -> None:
    number = person().person.number
    adapter.export_dossier(f"{number[:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:]}")
    assert adapter.reads == [number]
    assert person_number_or_none(number + "0") is None


def test_the_same_message_id_twice_in_one_batch_imports_once(adapter: MemoryAdapter) -> None:
    first, second = adapter.import_batch([(person(1), "m-1"), (person(2), "m-1")])
    assert first.created and not second.created
    assert second.local_reference == first.local_reference
    assert adapter.count_persons() == 1


def test_an_update_under_a_new_message_id_is_reported_created(adapter: MemoryAdapter) -> None:
    dossier = person()
    adapter.import_dossier(dossier, message_id="m-1")
    again = adapter.import_dossier(dossier, message_id="m-2")
    assert again.created and adapter.count_persons() == 1


def test_a_message_seen_before_is_not_written_again(adapter: MemoryAdapter) -> None:
    adapter.import_dossier(person(1), message_id="m-1")
    repeat = adapter.import_dossier(person(2), message_id="m-1")
    assert not repeat.created and person(2).person.number not in adapter.people


def test_an_exception_of_the_vendor_code_becomes_an_adapter_error_without_its_text(
    adapter: MemoryAdapter,
) -> None:
    adapter.failure = ValueError("Jan Peeters 85073000123 has a broken row")
    with pytest.raises(AdapterError) as error:
        adapter.export_dossier(person().person.number)
    assert error.value.code == "adapter.failed" and not error.value.transient
    assert "Peeters" not in str(error.value) and "ValueError" in str(error.value)


def test_an_unreachable_store_is_a_transient_error(adapter: MemoryAdapter) -> None:
    adapter.failure = ConnectionRefusedError("db host down")
    with pytest.raises(AdapterError) as error:
        adapter.export_dossier(person().person.number)
    assert error.value.transient and error.value.code == "adapter.unavailable"


def test_the_transient_hook_decides_what_a_retry_may_help(adapter: MemoryAdapter) -> None:
    adapter.failure = LookupError("locked")
    adapter.is_transient = lambda exc: isinstance(exc, LookupError)  # type: ignore[method-assign]
    with pytest.raises(AdapterError) as error:
        adapter.export_dossier(person().person.number)
    assert error.value.transient


def test_code_still_to_be_written_is_named_in_the_error() -> None:
    class Unwritten(Seeding):
        info = AdapterInfo(name="u", vendor="Test", product="Unwritten", version="1")

    with pytest.raises(AdapterError) as error:
        Unwritten(CPAS, {}).export_dossier(person().person.number)
    assert error.value.code == "adapter.not_written" and "read_dossier" in error.value.message


def test_during_an_outage_every_call_is_transient_and_afterwards_all_works(
    adapter: MemoryAdapter,
) -> None:
    number = person().person.number
    adapter.import_dossier(person(), message_id="m-1")
    with adapter.store_unavailable():
        for call in (
            lambda: adapter.export_dossier(number),
            lambda: adapter.import_dossier(person(2), message_id="m-2"),
            adapter.count_persons,
        ):
            with pytest.raises(AdapterError) as error:
                call()
            assert error.value.transient and error.value.code == "adapter.unavailable"
    assert adapter.export_dossier(number) is not None
    assert adapter.import_dossier(person(2), message_id="m-2").created


def test_the_store_comes_back_when_the_outage_block_ends_with_an_error(
    adapter: MemoryAdapter,
) -> None:
    with pytest.raises(KeyError), adapter.store_unavailable():
        raise KeyError("the test gave up")
    assert adapter.count_persons() == 0


def test_an_outage_hook_still_to_be_written_is_named_in_the_error() -> None:
    class Unwritten(Seeding):
        info = AdapterInfo(name="u", vendor="Test", product="Unwritten", version="1")

    with pytest.raises(AdapterError) as error, Unwritten(CPAS, {}).store_unavailable():
        pass
    assert error.value.code == "adapter.not_written"
    assert "make_store_unavailable" in error.value.message


def test_a_closed_adapter_refuses_with_a_project_error(adapter: MemoryAdapter) -> None:
    adapter.close()
    adapter.close()
    with pytest.raises(AdapterError) as error:
        adapter.import_dossier(person(), message_id="m-1")
    assert error.value.code == "adapter.closed"


def test_the_export_names_this_cpas_and_the_contact_of_the_options() -> None:
    adapter = MemoryAdapter(
        CPAS, {"mailbox": "sozialdienst@oeshz.example.be", "phone": "+3287590100"}
    )
    adapter.import_dossier(person(), message_id="m-1")
    exported = adapter.export_dossier(person().person.number)
    assert exported is not None and exported.source.cpas_id == CPAS
    assert exported.source.contact.mailbox == "sozialdienst@oeshz.example.be"
    assert exported.source.contact.phone == "+3287590100"


def test_a_contact_option_that_is_not_one_stops_the_adapter_at_start() -> None:
    with pytest.raises(AdapterError) as error:
        MemoryAdapter(CPAS, {"mailbox": "Jan Peeters"})
    assert error.value.code == "adapter.config"


def test_seeding_twice_gives_the_same_people_and_adds_nobody(adapter: MemoryAdapter) -> None:
    first = adapter.seed(5, seed=3)
    assert adapter.seed(5, seed=3) == first
    assert sorted(adapter.list_person_numbers()) == sorted(first) and len(set(first)) == 5
    assert all(adapter.sensitive.get(number) for number in first)


def test_planting_on_a_person_the_store_does_not_hold_is_refused(adapter: MemoryAdapter) -> None:
    with pytest.raises(AdapterError) as error:
        adapter.add_sensitive(person().person.number, SensitiveData(notes=("x",)))
    assert error.value.code == "adapter.unknown_person"


def test_planting_by_keyword_gives_the_vendor_code_addresses_and_health_data(
    adapter: MemoryAdapter,
) -> None:
    number = person().person.number
    adapter.import_dossier(person(), message_id="m-1")
    adapter.add_sensitive(
        number,
        SensitiveData(notes=("note",)),
        addresses=("Rue Haute 12, 1000 Bruxelles",),
        health_data=("Diabète de type 2",),
        refused_applications=("no cooperation",),
    )
    assert adapter.sensitive[number] == [
        "note",
        "no cooperation",
        "Rue Haute 12, 1000 Bruxelles",
        "Diabète de type 2",
    ]


def test_an_adapter_built_in_one_thread_is_called_from_another(adapter: MemoryAdapter) -> None:
    number = person().person.number
    worker = threading.Thread(target=adapter.export_dossier, args=(number,))
    worker.start()
    worker.join()
    assert adapter.threads == {worker.ident}


def test_the_suite_options_an_adapter_declares_reach_the_suite(tmp_path: Path) -> None:
    from cpas_conformance.context import installed_adapter

    assert load_adapters(plugins=[MemoryPlugin()]).suite_options("memory") == {
        "folder": "{workdir}/memory"
    }
    target = installed_adapter("memory", {"extra": "1"}, plugins=[MemoryPlugin()])
    assert target.options == {"folder": "{workdir}/memory", "extra": "1"}
    assert target.fresh_store_declared
    built = target.builder(CPAS, tmp_path)
    assert isinstance(built, MemoryAdapter)
    assert built.options == {"folder": f"{tmp_path}/memory", "extra": "1"}


def test_an_option_given_to_the_suite_wins_over_the_declared_default() -> None:
    from cpas_conformance.context import installed_adapter

    target = installed_adapter("memory", {"folder": "/elsewhere"}, plugins=[MemoryPlugin()])
    assert target.options == {"folder": "/elsewhere"}
