"""Stand-ins for demos, tests and the conformance suite, never a node's own.

:mod:`gateway.testing.sample_directory` holds the sample federation's
institutions. :class:`MemoryBroker` is a process-local broker: give its
``client`` to a :class:`gateway.node.Node` as ``broker`` and nodes in one
process exchange messages without RabbitMQ (see
:mod:`gateway.testing.memory_broker` for what it models and what it does not).

The broker is loaded only when asked for: an adapter that imports the sample
data does not load the broker client with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.testing.memory_broker import MEMORY_URL, MemoryBroker, MemoryClient

__all__ = ["MEMORY_URL", "MemoryBroker", "MemoryClient"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("gateway.testing.memory_broker"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
