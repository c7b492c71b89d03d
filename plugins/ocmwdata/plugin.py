"""The hook implementation that registers the OCMWdata adapter with the gateway."""

from __future__ import annotations

from collections.abc import Callable

from gateway.adapters import AdapterFactory, impl
from ocmwdata.adapter import OcmwdataAdapter


@impl
def cpas_register_adapters(register: Callable[[str, AdapterFactory], None]) -> None:
    """Register ``ocmwdata``: ``OcmwdataAdapter(cpas_id, options)``."""
    register("ocmwdata", OcmwdataAdapter)
