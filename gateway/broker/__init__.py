"""RabbitMQ: the topology as data, the broker a node needs, and one asynchronous client per node.

One job per module:

- :mod:`~gateway.broker.protocol`: the :class:`Broker` protocol a node talks
  to, the :class:`BrokerFactory` that makes one, and the values that cross it
  (:class:`Delivery`, :class:`Outgoing`, the refusal headers, :func:`wait_all`);
- :mod:`~gateway.broker.topology`: exchanges, queues and bindings as frozen
  values (:class:`Topology`, :class:`Names`), the gateway's topology
  (:func:`cpas_topology`, :func:`directory_topology`), the one function that
  declares it, and clean-up (:func:`delete_namespace`);
- :mod:`~gateway.broker.connection`: every AMQP connection's parameters,
  TLS (:class:`BrokerTLS`), and failures to connect explained in a sentence;
- :mod:`~gateway.broker.client`: :class:`BrokerClient`, the RabbitMQ client
  of one node (connection thread, reconnection), which owns a
  :mod:`~gateway.broker.publisher` (publisher confirms) and a
  :mod:`~gateway.broker.consumer` (deliveries, acks from any thread).

Everything other code imports is re-exported here.
"""

from __future__ import annotations

from gateway.broker.client import BrokerClient
from gateway.broker.connection import (
    BrokerTLS,
    TlsVersion,
    connect,
    connection_parameters,
    explain_connection_error,
    where,
)
from gateway.broker.protocol import (
    PERSISTENT,
    REFUSAL_CODE_HEADER,
    REFUSAL_REASON_HEADER,
    Broker,
    BrokerFactory,
    Delivery,
    Outgoing,
    wait_all,
)
from gateway.broker.topology import (
    BROKER_DELIVERY_LIMIT,
    DEFAULT_NAMESPACE,
    DIRECTORY_FEED_LENGTH,
    Binding,
    Exchange,
    Names,
    Queue,
    Topology,
    cpas_topology,
    delete_namespace,
    delete_topology,
    directory_topology,
)

__all__ = [
    "BROKER_DELIVERY_LIMIT",
    "DEFAULT_NAMESPACE",
    "DIRECTORY_FEED_LENGTH",
    "PERSISTENT",
    "REFUSAL_CODE_HEADER",
    "REFUSAL_REASON_HEADER",
    "Binding",
    "Broker",
    "BrokerClient",
    "BrokerFactory",
    "BrokerTLS",
    "Delivery",
    "Exchange",
    "Names",
    "Outgoing",
    "Queue",
    "TlsVersion",
    "Topology",
    "connect",
    "connection_parameters",
    "cpas_topology",
    "delete_namespace",
    "delete_topology",
    "directory_topology",
    "explain_connection_error",
    "wait_all",
    "where",
]
