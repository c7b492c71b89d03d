"""``cpas-gateway demo --tls``: a private RabbitMQ node with mutual TLS, for the demo only.

The node runs the installed RabbitMQ under its own name, ports, data folder
and Erlang cookie (:mod:`gateway.federation.local_broker`), with a TLS listener that
requires a client certificate signed by a throw-away CA
(:mod:`gateway.federation.local_pki`). It is stopped and removed when the demo ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from gateway.broker import BrokerTLS
from gateway.federation.local_broker import (
    RABBITMQ_SCRIPTS,
    BrokerNode,
    BrokerUnavailable,
    TlsListener,
    rabbitmq_installed,
)
from gateway.federation.local_pki import make_local_pki
from gateway.model.codes import Fault
from gateway.model.errors import BrokerError


@contextlib.contextmanager
def private_tls_broker(folder: Path, console: Console) -> Iterator[tuple[str, BrokerTLS]]:
    """Start the node; yield its ``amqps://`` URL and the client's TLS settings; remove it.

    :raises BrokerError: RabbitMQ is not installed here, or the node did not start.
    """
    if not rabbitmq_installed():
        raise BrokerError(
            f"demo --tls starts a RabbitMQ node of its own, but RabbitMQ is not installed here "
            f"({RABBITMQ_SCRIPTS}/rabbitmq-server and erl are needed); install rabbitmq-server "
            "or run the demo without --tls.",
            code=Fault.BROKER_UNAVAILABLE,
        )
    pki = make_local_pki(folder / "pki", client_name="demo-node")
    node = BrokerNode.single(
        folder, name="cpasdemotls", tls=TlsListener(pki.ca_file, pki.server.cert, pki.server.key)
    )
    console.print(f"Starting a private RabbitMQ node with mutual TLS in {folder} …")
    try:
        node.start()
    except BrokerUnavailable as exc:
        node.remove()
        raise BrokerError(
            f"The private TLS broker did not start: {exc}", code=Fault.BROKER_UNAVAILABLE
        ) from None
    try:
        yield (
            node.tls_url,
            BrokerTLS(ca_file=pki.ca_file, cert_file=pki.client.cert, key_file=pki.client.key),
        )
    finally:
        node.remove()
