"""``cpas-gateway keys``: make a node's keys, rotate its encryption key, make a federation key.

- ``keys generate --out DIR [--kem x25519|mlkem768-x25519] [--passphrase-env VAR]``
  writes ``signing.key``, ``encryption-<id>.key`` and ``public.json`` into DIR
  and prints the public parts, which the federation puts in the directory.
- ``keys rotate --dir DIR`` adds a new encryption key beside the old one.
- ``keys federation --out FILE [--public FILE]`` makes the federation's
  directory-signing key and its public half (the nodes' trust anchor).

Passphrases are never taken on the command line (they would end up in the
shell history and the process list): ``--passphrase-env VAR`` names an
environment variable that holds it.
"""

from __future__ import annotations

import argparse
import base64
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.model import keys
from gateway.model.codes import Fault
from gateway.model.errors import KeyMaterialError

console = Console(highlight=False)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``keys`` sub-command and its actions."""
    parser = subparsers.add_parser(
        "keys",
        help="make a node's keys, rotate them, or make a federation key",
        description="Make and rotate the keys of a CPAS node, or the federation's signing key.",
    )
    actions = parser.add_subparsers(dest="keys_action", required=True, metavar="ACTION")

    generate = actions.add_parser(
        "generate",
        help="write a node's signing and encryption keys and print their public parts",
    )
    generate.add_argument("--out", type=Path, required=True, metavar="DIR", help="key folder")
    _add_kem(generate)
    add_passphrase_env(generate)
    generate.set_defaults(func=run_generate)

    rotate = actions.add_parser(
        "rotate", help="add a new encryption key beside the current one (a rotation)"
    )
    rotate.add_argument("--dir", type=Path, required=True, metavar="DIR", help="key folder")
    _add_kem(rotate)
    add_passphrase_env(rotate)
    rotate.set_defaults(func=run_rotate)

    federation = actions.add_parser(
        "federation", help="make the federation's directory-signing key and its public half"
    )
    federation.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="private key file to create"
    )
    federation.add_argument(
        "--public",
        type=Path,
        metavar="FILE",
        help="public key file (trust anchor) to write; default: FILE with suffix .pub",
    )
    add_passphrase_env(federation)
    federation.set_defaults(func=run_federation)


def add_passphrase_env(parser: argparse.ArgumentParser) -> None:
    """Add ``--passphrase-env VAR`` to a parser."""
    parser.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="environment variable holding the passphrase that protects the private keys",
    )


def passphrase_from_env(variable: str | None) -> bytes | None:
    """The passphrase held by the environment variable ``variable``; ``None`` without one."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise KeyMaterialError(
            f"The environment variable {variable} that should hold the passphrase "
            "is not set or empty.",
            code=Fault.KEYS_PASSPHRASE,
        )
    return value.encode("utf-8")


def _add_kem(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kem",
        choices=keys.KEMS,
        default=keys.KEM_X25519,
        help="key encapsulation of the encryption key (default: %(default)s)",
    )


def run_generate(args: argparse.Namespace) -> int:
    """``keys generate``."""
    node = keys.write_node_keys(
        args.out, kem=args.kem, passphrase=passphrase_from_env(args.passphrase_env)
    )
    console.print(f"Wrote the keys of a node in {args.out} (private files are mode 0600).")
    _print_public(args.out)
    console.print(
        f"Give {args.out / keys.PUBLIC_FILE} to the federation: the directory lists "
        f"signing key {node.signing_key_id} and the encryption key."
    )
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    """``keys rotate``."""
    pair = keys.add_encryption_key(
        args.dir, kem=args.kem, passphrase=passphrase_from_env(args.passphrase_env)
    )
    console.print(f"Added encryption key {pair.key_id} ({pair.kem}) in {args.dir}.")
    _print_public(args.dir)
    console.print(
        "Next: give public.json to the federation. Senders move to the new key once a "
        "directory lists it. Keep the old key file until no directory lists the old key "
        "and no message sealed for it can still arrive, then delete it."
    )
    return 0


def run_federation(args: argparse.Namespace) -> int:
    """``keys federation``."""
    public_path = args.public or args.out.with_suffix(".pub")
    key = keys.generate_signing_key()
    keys.write_signing_key(args.out, key, passphrase_from_env(args.passphrase_env))
    raw = keys.signing_public_raw(key)
    keys.write_public_key(public_path, raw)
    console.print(f"Wrote the federation's signing key {keys.key_id(raw)} to {args.out} (0600).")
    console.print(
        f"Wrote its public half to {public_path}: every node's trust anchor. "
        "Keep the private key offline."
    )
    return 0


def _print_public(directory: Path) -> None:
    public = keys.read_public_keys(directory)
    entries = [("signing", public["signingKey"])]
    entries += [("encryption", entry) for entry in public["encryptionKeys"]]
    table = Table(title=f"Public keys in {directory / keys.PUBLIC_FILE}")
    table.add_column("use")
    table.add_column("key id", no_wrap=True)
    table.add_column("algorithm", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    for use, entry in entries:
        created = entry.get("createdAt")
        table.add_row(
            use,
            entry["id"],
            entry["algorithm"],
            created.strftime("%Y-%m-%d %H:%M") if created else "",
        )
    console.print(table)
    for _, entry in entries:
        encoded = base64.b64encode(entry["publicKey"]).decode("ascii")
        console.print(f"{entry['id']}: {encoded}", soft_wrap=True)
