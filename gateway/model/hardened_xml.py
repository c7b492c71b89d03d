"""The one XML parser of the project, and the XSDs it validates against.

Every byte of XML that enters the gateway (dossiers, envelopes, directories,
vendor files) goes through :func:`parse`. It refuses, with a stable code and
before doing any real work: documents over a size cap (``xml.too_large``), any
DOCTYPE (``xml.doctype``) -- so no DTD, no entity expansion and no external
entity can ever be loaded -- nesting deeper than a cap (``xml.too_deep``),
XInclude elements (``xml.xinclude``), and anything not well-formed
(``xml.malformed``). The parser never touches the network or the file system.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import threading
from importlib import resources
from pathlib import Path
from typing import Final

from lxml import etree

from gateway.model.codes import Fault, Refusal
from gateway.model.errors import GatewayError, SchemaInvalid, XmlRefused

MAX_BYTES: Final = 8 * 1024 * 1024
"""Largest document accepted: a 200-decision dossier is about 60 KiB."""

MAX_DEPTH: Final = 24
"""Deepest element nesting accepted: our schemas need fewer than 8 levels."""

XINCLUDE_NS: Final = "http://www.w3.org/2001/XInclude"

NS_DOSSIER: Final = "urn:be:cpas:dse:dossier:1"
NS_ENVELOPE: Final = "urn:be:cpas:dse:envelope:1"
NS_DIRECTORY: Final = "urn:be:cpas:dse:directory:1"

# Root element -> (schema file, human name). The root decides which XSD applies.
DOCUMENT_KINDS: Final = {
    f"{{{NS_DOSSIER}}}dossier": ("dossier.xsd", "dossier"),
    f"{{{NS_ENVELOPE}}}envelope": ("envelope.xsd", "envelope"),
    f"{{{NS_ENVELOPE}}}body": ("envelope.xsd", "message body"),
    f"{{{NS_DIRECTORY}}}directory": ("directory.xsd", "directory"),
}

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_ACCEPTED_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


class _NothingExternal(etree.Resolver):
    """Answers every request for an external resource (DTD, entity) with nothing."""

    def resolve(self, url: str, pubid: str, context: object) -> object:
        return self.resolve_string("", context)


_TOO_DEEP_XPATH = etree.XPath("boolean(/" + "/".join(["*"] * (MAX_DEPTH + 1)) + ")")
_XINCLUDE_ELEMENTS: Final = f"{{{XINCLUDE_NS}}}*"
"""Every element of the XInclude namespace, as a tag filter of ``iter`` (the root included)."""


def _parser() -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    # Belt and braces: even if a DOCTYPE slipped past the checks, libxml2
    # gets nothing from outside.
    parser.resolvers.add(_NothingExternal())
    return parser


# lxml parsers are not thread-safe; the node parses on one thread per parser.
_PARSER = _parser()


def parse(data: bytes, *, max_bytes: int = MAX_BYTES) -> etree._Element:
    """Parse untrusted XML bytes and return the root element, or raise :class:`XmlRefused`."""
    if len(data) > max_bytes:
        raise XmlRefused(
            f"The document is {len(data):,} bytes, more than the {max_bytes:,} bytes accepted.",
            code=Refusal.XML_TOO_LARGE,
        )
    # Only UTF-8 (or plain ASCII) is accepted: another encoding (UTF-7,
    # UTF-16...) could hide a DOCTYPE from the byte-level check below.
    declared = _DECLARED_ENCODING.match(data)
    if (
        data.startswith((b"\xff\xfe", b"\xfe\xff"))
        or b"\x00" in data[:2]
        or (declared and declared.group(1).decode().lower() not in _ACCEPTED_ENCODINGS)
    ):
        raise XmlRefused("The document is not encoded in UTF-8.", code=Refusal.XML_ENCODING)
    # A DOCTYPE is never legitimate here. Refusing it before libxml2 sees it
    # means no entity of any kind is ever declared, let alone expanded.
    if _DOCTYPE.search(data):
        raise XmlRefused(
            "The document declares a DOCTYPE; DTDs and entities are not accepted.",
            code=Refusal.XML_DOCTYPE,
        )
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        if exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT and "depth" in (exc.msg or ""):
            raise XmlRefused(
                f"The document nests elements deeper than {MAX_DEPTH} levels.",
                code=Refusal.XML_TOO_DEEP,
            ) from None
        raise XmlRefused(f"The document is not well-formed XML: {exc.msg}.") from None
    if root is None:
        raise XmlRefused("The document is empty.")
    tree = root.getroottree()
    if tree.docinfo.doctype:
        raise XmlRefused(
            "The document declares a DOCTYPE; DTDs and entities are not accepted.",
            code=Refusal.XML_DOCTYPE,
        )
    if _TOO_DEEP_XPATH(tree):
        raise XmlRefused(
            f"The document nests elements deeper than {MAX_DEPTH} levels.",
            code=Refusal.XML_TOO_DEEP,
        )
    # A walk in C filtered by namespace: a tenth of what an XPath over every element costs.
    if next(root.iter(_XINCLUDE_ELEMENTS), None) is not None:
        raise XmlRefused(
            "The document uses XInclude, which is not accepted.", code=Refusal.XML_XINCLUDE
        )
    return root


def read_file(path: Path, *, max_bytes: int = MAX_BYTES) -> bytes:
    """Read an XML file for :func:`parse`, never more than ``max_bytes + 1`` bytes of it.

    A regular file larger than the cap is refused from its size alone, without
    reading it. Anything else (a pipe, a device) is read up to one byte past
    the cap, so that :func:`parse` refuses it as too large rather than this
    process reading without end.

    :raises XmlRefused: ``xml.too_large`` for a regular file over the cap.
    :raises GatewayError: ``file.unreadable`` when the file is missing or unreadable.
    """
    try:
        if path.is_file():
            size = path.stat().st_size
            if size > max_bytes:
                raise XmlRefused(
                    f"The document is {size:,} bytes, more than the {max_bytes:,} bytes accepted.",
                    code=Refusal.XML_TOO_LARGE,
                )
        with path.open("rb") as stream:
            return stream.read(max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise GatewayError(
            f"{path} cannot be read: {reason}.", code=Fault.FILE_UNREADABLE
        ) from None


def schema_dir() -> Path:
    """The folder holding the XSDs, whether installed from a wheel or run from the source tree."""
    # gateway/xsd is a data folder (no __init__.py): ask for the package above it.
    installed = Path(str(resources.files("gateway"))) / "xsd"
    if (installed / "dossier.xsd").is_file():
        return installed
    return Path(__file__).resolve().parents[2] / "schemas" / "xsd"


# libxml2 sets up its table of XSD built-in types on the first compilation in
# a process, and not safely from two threads at once: a node hosting several
# CPAS checks them side by side, and two first compilations at the same moment
# fail ("not a built-in type") or corrupt memory. Compile one schema at a time.
_COMPILING: Final = threading.Lock()
# A compiled schema keeps one error log, which every thread validating with it
# fills: read without a lock, a refusal could report the problem found in
# another thread's document (another CPAS's, on a hosted node).
_VALIDATING: Final = threading.Lock()


@functools.cache
def load_schema(filename: str) -> etree.XMLSchema:
    """Compile one of the project's XSDs (once per process)."""
    path = schema_dir() / filename
    # The XSDs are ours, but they import one another by relative path: allow
    # local file access for them, never the network.
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    try:
        with _COMPILING:
            return etree.XMLSchema(etree.parse(str(path), parser))
    except (OSError, etree.XMLSchemaParseError) as exc:
        raise SchemaInvalid(
            f"The schema {filename} is not installed or unreadable ({exc}); reinstall the gateway.",
            code=Fault.SCHEMA_UNAVAILABLE,
        ) from None


def validate(root: etree._Element, filename: str | None = None) -> str:
    """Validate ``root`` against its XSD and return the kind of document.

    The XSD is chosen by the root element unless ``filename`` names it.
    Raises :class:`SchemaInvalid` with the first problem found.
    """
    kind = DOCUMENT_KINDS.get(root.tag)
    if filename is None:
        if kind is None:
            raise SchemaInvalid(
                f"The root element {root.tag} is not a dossier, envelope or directory "
                "of a supported schema version (check its namespace).",
                code=Refusal.SCHEMA_NAMESPACE,
            )
        filename = kind[0]
    schema = load_schema(filename)
    with _VALIDATING:
        valid = schema.validate(root)
        error = schema.error_log.last_error
    if not valid:
        raise SchemaInvalid(_explain(error))
    return kind[1] if kind else filename


def _explain(error: etree._LogEntry) -> str:
    message = error.message
    # libxml2 prefixes element names with their namespace in braces; a person
    # reading the refusal does not need the namespace.
    message = re.sub(r"\{[^}]*\}", "", message)
    return f"line {error.line}: {message.rstrip('.')}."


def parse_and_validate(data: bytes) -> tuple[str, etree._Element]:
    """Parse untrusted bytes with :func:`parse`, then validate against the matching XSD."""
    root = parse(data)
    return validate(root), root


def canonical_base64(text: str) -> bytes | None:
    """The bytes of ``text`` when it is base64 spelled exactly as Python writes it, else ``None``.

    The XSD's ``base64Binary`` lets through characters Python's decoder
    refuses (a non-ASCII letter, a no-break space) and spellings it would read
    as the same bytes (other padding bits): accepting only the one canonical
    spelling gives a signed value exactly one form.
    """
    try:
        decoded = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    return decoded if base64.b64encode(decoded).decode("ascii") == text else None


def to_bytes(root: etree._Element) -> bytes:
    """Serialise a document the way the project writes every XML file."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@functools.cache
def _simple_type_schema(namespace: str, filename: str, type_name: str) -> etree.XMLSchema:
    xs = "http://www.w3.org/2001/XMLSchema"
    text = (
        f'<xs:schema xmlns:xs="{xs}" xmlns:t="{namespace}" targetNamespace="urn:check"'
        ' elementFormDefault="qualified">'
        f'<xs:import namespace="{namespace}" schemaLocation="{filename}"/>'
        f'<xs:element name="v" type="t:{type_name}"/></xs:schema>'
    )
    base = (schema_dir() / "check.xsd").as_uri()
    with _COMPILING:
        return etree.XMLSchema(etree.fromstring(text, base_url=base))


@functools.lru_cache(maxsize=65536)
def simple_type_accepts(namespace: str, filename: str, type_name: str, value: str) -> bool:
    """Whether the XSD's own engine accepts ``value`` for a named simple type.

    For the rare rule the models cannot mirror exactly: libxml2's Unicode
    tables are older than Python's, so "is this a letter" can differ.
    Cached: the same names come back again and again.
    """
    element = etree.Element("{urn:check}v")
    element.text = value
    return bool(_simple_type_schema(namespace, filename, type_name).validate(element))
