"""``cpas-gateway broker provision``: make the broker match the directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.broker import Names
from gateway.cli.directory import add_min_serial
from gateway.cli.options import add_tls_arguments, tls_from
from gateway.config import amqp_url_from_env, split_urls
from gateway.federation.provision import ManagementApi, ProvisionReport, provision
from gateway.model.directory import Directory, load_directory_file
from gateway.model.errors import DirectoryError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("broker", help="provision the broker from the directory")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    prov = actions.add_parser(
        "provision", help="vhost, topology and one confined broker user per active CPAS"
    )
    prov.add_argument("--directory", type=Path, required=True, help="the signed directory")
    prov.add_argument("--trust", type=Path, required=True, help="the federation's public key")
    prov.add_argument("--vhost", default="/dse", help="virtual host (default /dse)")
    prov.add_argument("--namespace", default="dse", help="prefix of exchanges and queues")
    prov.add_argument(
        "--admin-url",
        default=None,
        help="AMQP URL of an administrator (default: CPAS_GATEWAY_AMQP_URL)",
    )
    prov.add_argument(
        "--management-url",
        default="http://guest:guest@localhost:15672/",
        help="RabbitMQ management API URL with administrator credentials",
    )
    prov.add_argument(
        "--credentials", type=Path, help="write new users' AMQP URLs here, one 0600 file per CPAS"
    )
    prov.add_argument("--node-host", help="broker host name to put in the nodes' AMQP URLs")
    add_min_serial(prov)
    add_tls_arguments(
        prov,
        title="for an amqps:// admin URL and an https:// management URL",
        whose="administrator's",
    )
    prov.set_defaults(func=run_provision)


def run_provision(args: argparse.Namespace) -> int:
    try:
        directory = load_directory_file(args.directory, args.trust)
        report = _provision(args, directory)
    except DirectoryError as exc:
        print(f"REFUSED  {args.directory}: [{exc.code}] {exc.message}", file=sys.stderr)
        return 1
    console = Console(highlight=False)
    console.print(
        f"vhost {args.vhost}: {report.queues} queues; users created {len(report.created_users)}, "
        f"kept {len(report.kept_users)}, removed {len(report.removed_users)}"
    )
    if report.federation_created:
        console.print(
            f"  created {Names(args.namespace).federation_user}, the federation's user: the only "
            "one that may publish directory editions (`cpas-gateway directory publish`)"
        )
    for user in report.removed_users:
        console.print(f"  removed {user} (no longer an active CPAS in the directory)")
    if report.credential_files:
        console.print(f"  credentials of new users written to {args.credentials}")
    return 0


def _provision(args: argparse.Namespace, directory: Directory) -> ProvisionReport:
    admin_url = split_urls(args.admin_url or amqp_url_from_env())[0]
    tls = tls_from(args, admin_url)
    return provision(
        directory,
        api=ManagementApi(args.management_url, ca_file=args.ca_file),
        amqp_admin_url=admin_url,
        tls=tls,
        vhost=args.vhost,
        names=Names(args.namespace),
        credentials_dir=args.credentials,
        node_amqp_host=args.node_host,
        min_serial=args.min_serial,
    )
