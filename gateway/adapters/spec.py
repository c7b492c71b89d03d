"""Hook specifications for adapter plugins."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from gateway.adapters.protocol import AdapterFactory

PROJECT = "cpas_gateway"

spec = pluggy.HookspecMarker(PROJECT)
impl = pluggy.HookimplMarker(PROJECT)
"""The marker a plugin puts on its hook implementations."""


@spec
def cpas_register_adapters(register: Callable[[str, AdapterFactory], None]) -> None:
    """Register the adapters this plugin provides.

    Called once when the gateway loads its plugins. Call ``register`` once per
    adapter, with the name users put in their configuration and a factory
    ``factory(cpas_id, options) -> Adapter``.

    :param register: the callback that records one adapter factory.
    """
