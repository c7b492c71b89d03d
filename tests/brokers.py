"""Private RabbitMQ nodes for the tests: see :mod:`gateway.federation.local_broker`."""

from __future__ import annotations

from gateway.federation.local_broker import (
    BrokerNode,
    BrokerUnavailable,
    Cluster,
    NodeSpec,
    TlsListener,
    free_port,
    rabbitmq_installed,
)

__all__ = [
    "BrokerNode",
    "BrokerUnavailable",
    "Cluster",
    "NodeSpec",
    "TlsListener",
    "free_port",
    "rabbitmq_installed",
]
