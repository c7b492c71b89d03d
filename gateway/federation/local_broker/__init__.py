"""RabbitMQ nodes of our own on this machine: tests, ``demo --tls`` and ``scripts/cluster.sh``.

The fault tests stop, kill and restart brokers. They must never touch the
machine's default RabbitMQ node, which other tests share, so every node
started here has its own node name, AMQP and distribution ports, data and log
folders, configuration, enabled-plugins file and Erlang cookie. The nodes run
the installed RabbitMQ (``/usr/lib/rabbitmq/bin``, or ``$CPAS_RABBITMQ_SCRIPTS``)
as the current user; only the loopback interface is used.

Python API (the tests)::

    node = BrokerNode.single(tmp_path / "broker", name="faults")
    node.start()
    node.kill()          # SIGKILL, as a crash would
    node.start()
    node.stop()          # graceful

    cluster = Cluster.local(tmp_path / "cluster", prefix="faultmq", first_port=None)
    cluster.start()      # three nodes, joined into one cluster
    cluster.amqp_url     # the comma-separated list a gateway node is configured with

Command line (``scripts/cluster.sh`` is a thin wrapper)::

    python -m gateway.federation.local_broker --root var/cluster start|stop|status|urls
    python -m gateway.federation.local_broker --root var/cluster ctl 2 list_queues name type members

A node can also listen for TLS (:class:`TlsListener`): it then asks every
client for a certificate signed by its CA (``verify_peer`` with
``fail_if_no_peer_cert``), and serves the management API over HTTPS too::

    node = BrokerNode.single(tmp_path / "broker", name="tls", tls=TlsListener(ca, cert, key))
    node.tls_url         # amqps://guest:guest@127.0.0.1:<port>/

Only the standard library is used, so the script runs without the project's
virtualenv.

The package: :mod:`~gateway.federation.local_broker.layout` (a node's folder, files and
environment), :mod:`~gateway.federation.local_broker.node` (one node's process),
:mod:`~gateway.federation.local_broker.cluster` (nodes joined into a cluster),
:mod:`~gateway.federation.local_broker.cli` (the command line).
"""

from gateway.federation.local_broker.cli import main
from gateway.federation.local_broker.cluster import CLUSTER_FIRST_PORT, CLUSTER_PREFIX, Cluster
from gateway.federation.local_broker.layout import (
    HOST,
    RABBITMQ_SCRIPTS,
    NodeLayout,
    NodeSpec,
    TlsListener,
    ensure_cookie,
    free_port,
)
from gateway.federation.local_broker.node import (
    CLI_TIMEOUT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    BrokerNode,
    BrokerUnavailable,
    rabbitmq_installed,
)

__all__ = [
    "CLI_TIMEOUT",
    "CLUSTER_FIRST_PORT",
    "CLUSTER_PREFIX",
    "HOST",
    "RABBITMQ_SCRIPTS",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "BrokerNode",
    "BrokerUnavailable",
    "Cluster",
    "NodeLayout",
    "NodeSpec",
    "TlsListener",
    "ensure_cookie",
    "free_port",
    "main",
    "rabbitmq_installed",
]
