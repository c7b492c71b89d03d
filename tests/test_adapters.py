"""The adapter plugin system: discovery, restriction, and errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from gateway.adapters import AdapterInfo, ImportResult, impl, load_adapters, spec
from gateway.adapters.manager import ONLY_ENV
from gateway.model.dossier import Dossier
from gateway.model.errors import AdapterError, ConfigError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "adapters.md"


class NullAdapter:
    info = AdapterInfo(name="null", vendor="Test", product="Null", version="1")

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        self.cpas_id, self.options = cpas_id, dict(options)

    def export_dossier(self, person_number: str) -> Dossier | None:
        return None

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        return ImportResult("null", created=True)

    def close(self) -> None:
        pass


class NullPlugin:
    @impl
    def cpas_register_adapters(self, register: Callable[..., None]) -> None:
        register("null", NullAdapter)


def test_the_reference_adapters_are_found_through_their_entry_points() -> None:
    assert {"ocmwdata", "fichesociale"} <= set(load_adapters().names)


def test_a_plugin_given_directly_registers_its_adapter() -> None:
    adapter = load_adapters(plugins=[NullPlugin()]).create("null", "0200000142", {"a": "b"})
    assert isinstance(adapter, NullAdapter) and adapter.options == {"a": "b"}


def test_an_environment_variable_restricts_the_adapters_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ONLY_ENV, "null")
    assert load_adapters(plugins=[NullPlugin()]).names == ["null"]


def test_restricting_to_an_adapter_that_is_not_installed_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ONLY_ENV, "acme")
    with pytest.raises(ConfigError) as error:
        load_adapters()
    assert error.value.code == "adapter.unknown"


def test_an_unknown_adapter_name_names_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as error:
        load_adapters().create("acme", "0200000142")
    assert error.value.code == "adapter.unknown" and "ocmwdata" in error.value.message


def test_two_adapters_with_one_name_are_an_error() -> None:
    with pytest.raises(ConfigError) as error:
        load_adapters(plugins=[NullPlugin(), type("Again", (NullPlugin,), {})()])
    assert error.value.code == "adapter.duplicate"


def test_a_misspelt_hook_stops_the_gateway_at_start_up() -> None:
    class Typo:
        @impl
        def cpas_register_adapter(self, register: Callable[..., None]) -> None:  # no "s"
            register("typo", NullAdapter)

    with pytest.raises(ConfigError) as error:
        load_adapters(plugins=[Typo()])
    assert error.value.code == "adapter.hook_unknown"


def test_an_adapter_that_fails_to_start_becomes_a_project_error() -> None:
    class Broken:
        @impl
        def cpas_register_adapters(self, register: Callable[..., None]) -> None:
            def factory(cpas_id: str, options: Mapping[str, str]) -> NullAdapter:
                raise KeyError("url")

            register("broken", factory)

    with pytest.raises(AdapterError) as error:
        load_adapters(plugins=[Broken()]).create("broken", "0200000142")
    assert error.value.code == "adapter.start"


def test_every_hook_is_documented_for_plugin_authors() -> None:
    hooks = {name for name in dir(spec) if name.startswith("cpas_")}
    documented = set(re.findall(r"^### `(cpas_\w+)\(", DOCS.read_text(), flags=re.MULTILINE))
    assert hooks == documented
