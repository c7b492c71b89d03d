"""What tests of the gateway (and of a vendor's integration) use instead of infrastructure.

:class:`MemoryBroker` is a process-local broker: give its ``client`` to a
:class:`gateway.node.Node` as ``broker`` and nodes in one process exchange
messages without RabbitMQ (see :mod:`gateway.testing.memory_broker` for what
it models and what it does not).
"""

from __future__ import annotations

from gateway.testing.memory_broker import MEMORY_URL, MemoryBroker, MemoryClient

__all__ = ["MEMORY_URL", "MemoryBroker", "MemoryClient"]
