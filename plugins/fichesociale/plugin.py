"""The hook that makes the FicheSociale adapter known to the gateway."""

from __future__ import annotations

from collections.abc import Callable

from fichesociale.adapter import FicheSocialeAdapter
from gateway.adapters import AdapterFactory, impl


@impl
def cpas_register_adapters(register: Callable[[str, AdapterFactory], None]) -> None:
    """Register the ``fichesociale`` adapter."""
    register("fichesociale", FicheSocialeAdapter)
