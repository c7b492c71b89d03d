"""Options several commands share: ``--option KEY=VALUE`` for adapters, TLS to the broker for
the commands that reach it themselves, and the logging of ``run``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from gateway.broker import BrokerTLS
from gateway.cli.style import UsageError
from gateway.config import NodeConfig
from gateway.logs import configure_logging


def add_option_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Add a repeatable ``--option KEY=VALUE`` to ``parser``."""
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help=help)


def options_from(args: argparse.Namespace) -> dict[str, str]:
    """The ``--option`` pairs as a dictionary; :class:`UsageError` for one without ``=``."""
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {item!r} is not KEY=VALUE.")
        options[key] = value
    return options


# ------------------------------------------------------------ TLS to the broker

TLS_PASSPHRASE_ENV = "CPAS_GATEWAY_BROKER_TLS__KEY_PASSPHRASE"


def add_tls_arguments(parser: argparse.ArgumentParser, *, title: str, whose: str) -> None:
    """``--ca-file``, ``--cert-file``, ``--key-file`` for a command that reaches the broker
    itself; ``whose`` names the holder of the client certificate."""
    tls = parser.add_argument_group("TLS", title)
    tls.add_argument("--ca-file", type=Path, help="CA that signed the broker's certificates")
    tls.add_argument("--cert-file", type=Path, help=f"{whose} client certificate (PEM)")
    tls.add_argument(
        "--key-file", type=Path, help=f"its key (PEM); passphrase in {TLS_PASSPHRASE_ENV}"
    )


def tls_from(args: argparse.Namespace, url: str) -> BrokerTLS | None:
    """The TLS settings given on the command line, for an ``amqps://`` URL (else ``None``)."""
    if not url.startswith("amqps:"):
        return None
    return BrokerTLS(
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        key_passphrase=os.environ.get(TLS_PASSPHRASE_ENV),
    )


# ------------------------------------------------------------ logging of run


def configure_run_logging(
    args: argparse.Namespace, config: NodeConfig, levels: dict[str, str]
) -> None:
    """The logging ``run`` asks for: the configuration's, overridden by ``-v``,
    ``--log-format`` and ``--log-level`` on the command line."""
    verbose = logging.WARNING - 10 * min(args.verbose, 2)
    configure_logging(
        level=min(logging.getLevelNamesMapping()[config.log_level], verbose)
        if args.verbose
        else config.log_level,
        log_format=args.log_format or config.log_format,
        levels=config.log_levels | levels,
    )
