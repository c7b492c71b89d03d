"""``cpas-gateway validate FILE...``: is each file a valid dossier, envelope or directory?

Every file goes through the same checks a node applies to what it receives:
the hardened parser, the XSD chosen by the root element, then the rules the
XSD cannot express (check digits, dates, legal bases...) for the kinds of
document that have them. Good files get ``OK  path (kind)`` on stdout; every
problem gets exactly one line ``path: [code] sentence`` on stderr. The exit
status is 0 when every file is valid and 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import sys
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.model import hardened_xml
from gateway.model.codes import Fault
from gateway.model.dossier import Dossier
from gateway.model.errors import GatewayError, SchemaInvalid

log = logging.getLogger(__name__)

UNREADABLE = "file.unreadable"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``validate`` sub-command."""
    parser = subparsers.add_parser(
        "validate",
        help="check dossiers, envelopes and directories against the schemas and rules",
        description=(
            "Check each FILE as a node checks what it receives: hardened parser, XSD, "
            "then identifiers, dates and legal bases. Exit 0 when every file is valid, "
            "1 otherwise, with one line per problem on stderr."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="XML file to check")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check every file named on the command line; 0 when all are valid, else 1."""
    status = 0
    for path in args.files:
        try:
            kind = check_document(hardened_xml.read_file(path))
        except GatewayError as exc:
            status = 1
            # One line per problem, whatever the message carries.
            sentence = " ".join(exc.message.split())
            print(f"{path}: [{exc.code}] {sentence}", file=sys.stderr)
        else:
            print(f"OK  {path} ({kind})")
    return status


def check_document(data: bytes) -> str:
    """Parse, validate and check one document; return its kind (``dossier``, ``envelope``...).

    The root element decides which schema applies. A dossier is then built
    into the model, which checks what the XSD cannot; a directory likewise
    when the directory model is available.

    :raises GatewayError: the first problem found, with its stable code.
    """
    root = hardened_xml.parse(data)
    _require_schema(root)
    kind = hardened_xml.validate(root)
    if kind == "dossier":
        Dossier.from_element(root)
    elif kind == "directory":
        _check_directory(root)
    return kind


def _require_schema(root: etree._Element) -> None:
    # A release may know a kind of document before shipping its schema; say so
    # instead of failing on a missing file.
    known = hardened_xml.DOCUMENT_KINDS.get(root.tag)
    if known is None:
        return  # hardened_xml.validate explains an unknown root
    filename, name = known
    if not (hardened_xml.schema_dir() / filename).is_file():
        raise SchemaInvalid(
            f"This installation has no schema for a {name} ({filename}).",
            code=Fault.SCHEMA_UNAVAILABLE,
        )


def _check_directory(root: etree._Element) -> None:
    """Apply the directory model's own checks when that model is installed."""
    try:
        module = importlib.import_module("gateway.model.directory")
    except ModuleNotFoundError as exc:
        if exc.name != "gateway.model.directory":
            raise
        log.debug("no directory model installed: the directory is checked against its XSD only")
        return
    from_element = getattr(getattr(module, "Directory", None), "from_element", None)
    if not callable(from_element):
        log.debug("the directory model has no Directory.from_element: XSD only")
        return
    try:
        inspect.signature(from_element).bind(root)
    except TypeError:
        # It needs more than the element (a trust anchor, for instance):
        # signatures are checked by `cpas-gateway directory verify`, not here.
        log.debug("Directory.from_element needs more than the element: XSD only")
        return
    from_element(root)
