"""Finding adapter plugins and building adapters: the typed façade over pluggy."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

import pluggy

from gateway.adapters import spec
from gateway.adapters.protocol import Adapter, AdapterFactory
from gateway.model.codes import Fault
from gateway.model.errors import AdapterError, ConfigError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "cpas_gateway.adapters"
ONLY_ENV = "CPAS_GATEWAY_ADAPTERS"
"""Comma-separated adapter names to load; unset loads every installed adapter."""


class AdapterRegistry:
    """The adapters available in this process, by name."""

    def __init__(self, plugin_manager: pluggy.PluginManager, only: Iterable[str] | None) -> None:
        self._pm = plugin_manager
        self._only = None if only is None else frozenset(only)
        self._factories: dict[str, AdapterFactory] = {}
        self._pm.hook.cpas_register_adapters(register=self._register)
        if self._only is not None:
            missing = sorted(self._only - self._factories.keys())
            if missing:
                raise ConfigError(
                    f"{ONLY_ENV} names adapters that are not installed: {', '.join(missing)}.",
                    code=Fault.ADAPTER_UNKNOWN,
                )

    def _register(self, name: str, factory: AdapterFactory) -> None:
        if self._only is not None and name not in self._only:
            log.debug("adapter %s installed but not enabled", name)
            return
        if name in self._factories:
            raise ConfigError(
                f"Two plugins register an adapter named {name!r}.", code=Fault.ADAPTER_DUPLICATE
            )
        self._factories[name] = factory

    @property
    def names(self) -> list[str]:
        """Names of the enabled adapters, sorted."""
        return sorted(self._factories)

    def suite_options(self, name: str) -> dict[str, str]:
        """The conformance suite's default options that the adapter ``name`` declares.

        An adapter declares them as ``suite_options``, a mapping of option
        templates (``{workdir}``, ``{workid}``) on its factory -- for an
        adapter class, a class attribute. Anything else declares none.
        """
        declared = getattr(self._factories.get(name), "suite_options", None)
        if not isinstance(declared, Mapping):
            return {}
        return {str(key): str(value) for key, value in declared.items()}

    def create(self, name: str, cpas_id: str, options: Mapping[str, str] | None = None) -> Adapter:
        """Build the adapter ``name`` for one CPAS, turning any failure into a project error."""
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise ConfigError(
                f"No adapter named {name!r} is installed (installed: {known}).",
                code=Fault.ADAPTER_UNKNOWN,
            ) from None
        try:
            return factory(cpas_id, dict(options or {}))
        except AdapterError:
            raise
        except Exception as exc:
            raise AdapterError(
                f"The adapter {name!r} could not start: {exc}.", code=Fault.ADAPTER_START
            ) from exc


def load_adapters(
    *, only: Iterable[str] | None = None, plugins: Iterable[object] = ()
) -> AdapterRegistry:
    """Load the installed adapter plugins (and any ``plugins`` given directly, for tests).

    ``only`` restricts which adapters are enabled; by default it is read from
    the ``CPAS_GATEWAY_ADAPTERS`` environment variable.
    """
    pm = pluggy.PluginManager(spec.PROJECT)
    pm.add_hookspecs(spec)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        pm.register(plugin)
    # A hook implementation with a misspelt name would otherwise be ignored.
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(
            f"An adapter plugin implements a hook the gateway does not know: {exc}.",
            code=Fault.ADAPTER_HOOK_UNKNOWN,
        ) from None
    if only is None and os.environ.get(ONLY_ENV):
        only = [name.strip() for name in os.environ[ONLY_ENV].split(",") if name.strip()]
    return AdapterRegistry(pm, only)
