"""The layers as packages: the model lives in gateway.model, old names still import."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import gateway.model.dossier


def test_a_model_module_imported_by_its_former_name_is_the_same_module_with_a_warning() -> None:
    sys.modules.pop("gateway.dossier", None)
    with pytest.warns(DeprecationWarning, match=r"gateway\.dossier is now gateway\.model\.dossier"):
        old = importlib.import_module("gateway.dossier")
    assert old is gateway.model.dossier
    assert old.Dossier is gateway.model.dossier.Dossier


def test_a_name_that_never_was_a_module_of_the_gateway_is_still_not_found() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("gateway.dossiers")


def test_the_adapter_api_and_the_reference_adapters_load_no_broker_client() -> None:
    # Vendors import the adapter API and the model: the broker, its AMQP
    # library and the in-memory stand-in stay out of their process.
    script = (
        "import sys, gateway.adapters, fichesociale.adapter, ocmwdata.adapter;"
        "print(sorted(m for m in ('pika', 'gateway.broker', 'gateway.node',"
        " 'gateway.testing.memory_broker') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_the_synthetic_people_imported_by_their_former_name_are_the_testing_module() -> None:
    sys.modules.pop("gateway.synthetic", None)
    with pytest.warns(DeprecationWarning, match=r"gateway\.testing\.synthetic"):
        old = importlib.import_module("gateway.synthetic")
    assert old is importlib.import_module("gateway.testing.synthetic")
