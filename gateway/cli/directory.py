"""``cpas-gateway directory``: build, sign, verify, show and query the directory.

- ``directory build --institutions FILE.json --out FILE`` writes an unsigned
  directory from the federation's JSON input (format in ``docs/directory.md``).
- ``directory sign --key FEDERATION.key IN OUT`` signs it.
- ``directory verify --trust FEDERATION.pub FILE`` checks it as a node does:
  exit 0 and one ``OK`` line, or exit 1 and one line saying what is wrong;
  an edition older than the newest one it verified before (or than
  ``--min-serial``) is refused, ``directory.rollback``, as ``run`` refuses it.
- ``directory show FILE --trust FEDERATION.pub`` lists the institutions.
- ``directory check FILE --trust FEDERATION.pub ID`` prints the verdict on
  whether ID may receive a dossier: exit 0 when it may, 1 when it may not.
- ``directory publish FILE --trust FEDERATION.pub`` puts a signed edition on
  the broker for every node (:mod:`gateway.cli.directory_publish`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.cli import directory_publish
from gateway.cli.keys import add_passphrase_env, passphrase_from_env
from gateway.model import hardened_xml, keys
from gateway.model.base import format_timestamp
from gateway.model.directory import (
    Directory,
    Institution,
    InstitutionKind,
    InstitutionStatus,
    SeenEdition,
    directory_from_spec,
    load_directory_file,
    read_spec,
    read_unsigned,
    sign_directory,
)
from gateway.model.errors import GatewayError

console = Console(highlight=False)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``directory`` sub-command and its actions."""
    parser = subparsers.add_parser(
        "directory",
        help="build, sign, verify, show and query the signed directory of institutions",
        description="Build, sign, verify, show and query the federation's signed directory.",
    )
    actions = parser.add_subparsers(dest="directory_action", required=True, metavar="ACTION")

    build = actions.add_parser("build", help="write an unsigned directory from a JSON input file")
    build.add_argument(
        "--institutions", type=Path, required=True, metavar="FILE.json", help="JSON input"
    )
    build.add_argument("--out", type=Path, required=True, metavar="FILE", help="XML to write")
    build.set_defaults(func=run_build)

    sign = actions.add_parser("sign", help="sign a directory with the federation's key")
    sign.add_argument(
        "--key", type=Path, required=True, metavar="FEDERATION.key", help="federation key"
    )
    add_passphrase_env(sign)
    sign.add_argument("input", type=Path, metavar="IN", help="directory to sign")
    sign.add_argument("output", type=Path, metavar="OUT", help="signed directory to write")
    sign.set_defaults(func=run_sign)

    verify = actions.add_parser("verify", help="check a signed directory as a node does")
    _add_trust(verify)
    verify.add_argument("file", type=Path, metavar="FILE", help="signed directory")
    add_min_serial(verify)
    verify.add_argument(
        "--seen",
        type=Path,
        metavar="FILE",
        help="where the newest edition verified is kept (default: one file per trust anchor "
        "in $XDG_STATE_HOME/cpas-gateway)",
    )
    verify.set_defaults(func=run_verify)

    show = actions.add_parser("show", help="list the institutions of a signed directory")
    show.add_argument("file", type=Path, metavar="FILE", help="signed directory")
    _add_trust(show)
    show.add_argument("--lang", choices=("fr", "nl", "de"), default="fr", help="names in")
    show.add_argument(
        "--kind", choices=[kind.value for kind in InstitutionKind], help="only this kind"
    )
    show.add_argument(
        "--status", choices=[status.value for status in InstitutionStatus], help="only this status"
    )
    show.set_defaults(func=run_show)

    check = actions.add_parser("check", help="may this institution receive a dossier?")
    check.add_argument("file", type=Path, metavar="FILE", help="signed directory")
    _add_trust(check)
    check.add_argument("institution", metavar="ID", help="enterprise number")
    check.add_argument(
        "--at",
        type=_timestamp,
        metavar="TIME",
        help="moment to judge at, ISO 8601 with zone (default: now)",
    )
    check.set_defaults(func=run_check)

    directory_publish.register(actions)


def _add_trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        type=Path,
        required=True,
        metavar="FEDERATION.pub",
        help="the federation's public key (trust anchor)",
    )


def add_min_serial(parser: argparse.ArgumentParser) -> None:
    """``--min-serial``: refuse an edition older than this one, whatever was seen before."""
    parser.add_argument(
        "--min-serial",
        type=int,
        default=None,
        metavar="N",
        help="refuse an edition older than N (directory.rollback)",
    )


def _timestamp(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone (add Z for UTC)")
    return moment


# ---------------------------------------------------------------- actions


def run_build(args: argparse.Namespace) -> int:
    """``directory build``."""
    directory = directory_from_spec(read_spec(args.institutions), args.institutions.parent)
    args.out.write_bytes(directory.to_xml())
    console.print(
        f"Wrote unsigned edition {directory.serial} ({_summary(directory)}) to {args.out}. "
        "Sign it with 'cpas-gateway directory sign'."
    )
    return 0


def run_sign(args: argparse.Namespace) -> int:
    """``directory sign``."""
    key = keys.load_signing_key(args.key, passphrase_from_env(args.passphrase_env))
    directory = read_unsigned(hardened_xml.read_file(args.input))
    args.output.write_bytes(sign_directory(directory, key))
    kid = keys.key_id(keys.signing_public_raw(key))
    console.print(
        f"Signed edition {directory.serial} ({_summary(directory)}) with key {kid}: {args.output}"
    )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """``directory verify``: exit 0 with an OK line, or 1 with the reason."""
    try:
        seen = SeenEdition(args.seen) if args.seen else SeenEdition.for_anchor(args.trust)
        newest = max(seen.serial, args.min_serial or 0)
        directory = load_directory_file(args.file, args.trust, min_serial=newest)
        seen.remember(directory.serial)
    except GatewayError as exc:
        sentence = " ".join(exc.message.split())
        print(f"INVALID  {args.file}: [{exc.code}] {sentence}", file=sys.stderr)
        return 1
    print(
        f"OK  {args.file}: edition {directory.serial} of {directory.issuer}, issued "
        f"{format_timestamp(directory.issued_at)}, {_summary(directory)}, signed by "
        f"{keys.key_id(keys.load_trust_anchor(args.trust).public_bytes_raw())}"
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    """``directory show``: a table of the institutions."""
    directory = _load(args)
    table = Table(
        title=f"Directory edition {directory.serial} ({directory.issuer}), "
        f"issued {format_timestamp(directory.issued_at)}"
    )
    table.add_column("id", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("name", min_width=16, ratio=1)
    table.add_column("NIS", no_wrap=True, min_width=5)
    table.add_column("status")
    table.add_column("keys S/E", justify="right")
    shown = 0
    for institution in directory.institutions:
        if args.kind and institution.kind.value != args.kind:
            continue
        if args.status and institution.status.value != args.status:
            continue
        table.add_row(
            institution.id,
            institution.kind.value,
            institution.name(args.lang),
            institution.municipality or "",
            _status(institution),
            _keys(institution),
        )
        shown += 1
    console.print(table)
    console.print(f"{shown} of {len(directory.institutions)} institutions shown.")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """``directory check``: the verdict for one id; exit 0 when it may receive."""
    directory = _load(args)
    verdict = directory.may_receive(args.institution, args.at)
    word = "allowed" if verdict.allowed else "refused"
    print(f"{word}  [{verdict.code}] {verdict.reason}")
    return 0 if verdict.allowed else 1


# ---------------------------------------------------------------- helpers


def _load(args: argparse.Namespace) -> Directory:
    return load_directory_file(args.file, args.trust)


def _summary(directory: Directory) -> str:
    return f"{len(directory.institutions)} institutions, {len(directory.cpas_ids())} active CPAS"


def _status(institution: Institution) -> str:
    if institution.merged_into is None:
        return institution.status.value
    return f"merged into {institution.merged_into}"


def _keys(institution: Institution) -> str:
    # Counts only (signing/encryption): key ids and validity are in the XML.
    return f"{len(institution.signing_keys)}/{len(institution.encryption_keys)}"
