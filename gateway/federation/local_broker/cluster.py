"""Several private nodes joined into one RabbitMQ cluster: the fault tests, ``cluster.sh``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.federation.local_broker.layout import HOST, NodeSpec, free_port
from gateway.federation.local_broker.node import START_TIMEOUT, BrokerNode, BrokerUnavailable

CLUSTER_PREFIX = "cpasmq"
CLUSTER_FIRST_PORT = 5701
"""cluster.sh's nodes: AMQP 5701-5703, distribution 25701-25703, management 15701-15703."""


class Cluster:
    """Several :class:`BrokerNode` joined into one RabbitMQ cluster."""

    def __init__(self, nodes: Sequence[BrokerNode]) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        self.nodes = list(nodes)

    @classmethod
    def local(
        cls,
        root: Path,
        *,
        size: int = 3,
        prefix: str = CLUSTER_PREFIX,
        first_port: int | None = CLUSTER_FIRST_PORT,
        management: bool = False,
    ) -> Cluster:
        """``size`` nodes ``<prefix>1..n@localhost`` in ``root``.

        :param first_port: AMQP ports ``first_port..`` (distribution +20000,
            management +10000); ``None`` picks free ports and makes the names
            unique to this process (tests).
        """
        specs = []
        for i in range(1, size + 1):
            if first_port is None:
                name, amqp, dist, mgmt = (
                    f"{prefix}{os.getpid()}n{i}",
                    free_port(),
                    free_port(),
                    None,
                )
                if management:
                    mgmt = free_port()
            else:
                name, amqp = f"{prefix}{i}", first_port + i - 1
                dist, mgmt = amqp + 20000, (amqp + 10000) if management else None
            specs.append(NodeSpec(name, amqp, dist, mgmt))
        peers = [f"{spec.name}@{HOST}" for spec in specs]
        return cls([BrokerNode(spec, root, peers=peers) for spec in specs])

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def amqp_url(self) -> str:
        """Every member, comma-separated: what ``amqp_url`` / ``CPAS_GATEWAY_AMQP_URL`` takes."""
        return ",".join(self.urls)

    def running(self) -> list[BrokerNode]:
        return [node for node in self.nodes if node.is_running()]

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start every node and join them into one cluster; idempotent.

        The first node boots alone; the others then boot together and find it
        through peer discovery. A node that still stands alone (its data
        predates the cluster) is joined with ``rabbitmqctl join_cluster``.
        """
        first, others = self.nodes[0], self.nodes[1:]
        first.start(timeout=timeout)
        for node in others:
            node.start(wait=False)
        for node in others:
            node.wait_ready(timeout)
        for node in others:
            if first.node_name not in self._known_members(node):
                node.ctl("stop_app")
                node.ctl("reset")
                node.ctl("join_cluster", first.node_name)
                node.ctl("start_app")
        first.ctl("await_online_nodes", str(len(self.nodes)), "--timeout", str(int(timeout)))

    def stop(self, *, remove: bool = False) -> None:
        """Stop every node, all at once; with ``remove``, delete their data too."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for future in [
                pool.submit(node.remove if remove else node.stop) for node in self.nodes
            ]:
                future.result()

    def any_running(self) -> BrokerNode:
        """A member that runs (for questions about the whole cluster)."""
        for node in self.nodes:
            if node.is_running():
                return node
        raise BrokerUnavailable("no member of the cluster runs")

    def status(self) -> Iterator[str]:
        """Lines describing each node, the cluster's membership and its quorum queues."""
        for node in self.nodes:
            state = f"running (pid {node.pid()})" if node.is_running() else "stopped"
            yield f"{node.node_name:<28} {node.url:<36} {state}"
        try:
            member = self.any_running()
        except BrokerUnavailable:
            return
        status = member.cluster_status()
        yield f"running members: {', '.join(map(str, status.get('running_nodes', [])))}"
        for name, queue in sorted(member.queues().items()):
            members = queue.get("members") or []
            yield (
                f"  {name}: {queue.get('type')}, {queue.get('messages')} messages, "
                f"leader {queue.get('leader', '-')}, members {', '.join(map(str, members))}"
            )

    @staticmethod
    def _known_members(node: BrokerNode) -> set[str]:
        status = node.cluster_status()
        nodes = status.get("disk_nodes", []) or []
        assert isinstance(nodes, list)
        return set(map(str, nodes))
