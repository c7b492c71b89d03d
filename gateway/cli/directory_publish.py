"""``cpas-gateway directory publish FILE --trust FEDERATION.pub``: an edition to every node.

The federation publishes each signed edition on the broker's directory
exchange, logged in as its own broker user (``<ns>.federation``, made by
``broker provision``: the only login the broker lets publish there). The
edition is verified first, as a node would; every running node then verifies
it again, applies it if it is newer and uses it from its next message on.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.broker import Names
from gateway.cli.options import add_tls_arguments, tls_from
from gateway.config import amqp_url_from_env, split_urls
from gateway.directory_feed import publish_edition
from gateway.model import hardened_xml, keys
from gateway.model.base import format_timestamp


def register(actions: argparse._SubParsersAction[Any]) -> None:
    parser = actions.add_parser(
        "publish", help="publish a signed edition to every node through the broker"
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="signed directory")
    parser.add_argument(
        "--trust", type=Path, required=True, metavar="FEDERATION.pub", help="trust anchor"
    )
    parser.add_argument(
        "--amqp-url",
        help="the federation's AMQP URL (user <namespace>.federation; "
        "default: CPAS_GATEWAY_AMQP_URL)",
    )
    parser.add_argument("--namespace", default="dse", help="prefix of exchanges and queues")
    add_tls_arguments(parser, title="for an amqps:// URL", whose="the federation's")
    parser.set_defaults(func=run_publish)


def run_publish(args: argparse.Namespace) -> int:
    urls = split_urls(args.amqp_url or amqp_url_from_env())
    tls = tls_from(args, urls[0])
    names = Names(args.namespace)
    edition = publish_edition(
        hardened_xml.read_file(args.file),
        keys.load_trust_anchor(args.trust),
        amqp_urls=urls,
        names=names,
        tls=tls,
    )
    Console(highlight=False).print(
        f"published edition {edition.serial} of {edition.issuer} (issued "
        f"{format_timestamp(edition.issued_at)}) on {names.directory_exchange}: confirmed by "
        "the broker; every node applies it from its next message on",
        markup=False,
    )
    return 0
