"""``python -m gateway.federation.local_broker``: a local cluster from the command line."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from gateway.federation.local_broker.cluster import CLUSTER_FIRST_PORT, Cluster
from gateway.federation.local_broker.layout import RABBITMQ_SCRIPTS
from gateway.federation.local_broker.node import BrokerUnavailable, rabbitmq_installed


def _cluster(args: argparse.Namespace) -> Cluster:
    return Cluster.local(
        Path(args.root), size=args.size, first_port=args.first_port, management=args.management
    )


def main(argv: Iterable[str] | None = None) -> int:
    """``start | stop | status | urls | ctl N ARGS…`` for a local cluster."""
    parser = argparse.ArgumentParser(
        prog="cluster.sh", description="A RabbitMQ cluster of several nodes on this machine."
    )
    parser.add_argument("--root", default="var/cluster", help="folder of the nodes' data and logs")
    parser.add_argument("--size", type=int, default=3, help="number of nodes (default 3)")
    parser.add_argument(
        "--first-port", type=int, default=CLUSTER_FIRST_PORT, help="AMQP port of the first node"
    )
    parser.add_argument(
        "--no-management",
        dest="management",
        action="store_false",
        help="do not enable the management plugin (ports AMQP+10000)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start the nodes and join them (idempotent)")
    commands.add_parser("stop", help="stop the nodes and remove their data")
    commands.add_parser("status", help="nodes, members and quorum queues")
    commands.add_parser("urls", help="print the comma-separated AMQP URLs")
    ctl = commands.add_parser("ctl", help="rabbitmqctl against node N (with the cluster's cookie)")
    ctl.add_argument("index", type=int, help="node number, from 1")
    ctl.add_argument("ctl_args", nargs=argparse.REMAINDER, help="rabbitmqctl arguments")
    args = parser.parse_args(list(argv) if argv is not None else None)

    if not rabbitmq_installed():
        print(
            f"RabbitMQ is not installed here ({RABBITMQ_SCRIPTS} has no rabbitmq-server).",
            file=sys.stderr,
        )
        return 1
    cluster = _cluster(args)
    try:
        if args.command == "start":
            cluster.start()
            for line in cluster.status():
                print(line)
            print(f"CPAS_GATEWAY_AMQP_URL={cluster.amqp_url}")
        elif args.command == "stop":
            cluster.stop(remove=True)
            shutil.rmtree(Path(args.root), ignore_errors=True)
            print("stopped and removed")
        elif args.command == "status":
            for line in cluster.status():
                print(line)
        elif args.command == "urls":
            print(cluster.amqp_url)
        else:
            node = cluster.nodes[args.index - 1]
            print(node.ctl(*args.ctl_args), end="")
    except BrokerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
