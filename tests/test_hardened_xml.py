"""The hardened parser: every refusal has its code, and nothing is ever fetched.

The public :func:`gateway.model.hardened_xml.parse` refuses a DOCTYPE before libxml2
sees it. Some tests also hand hostile documents to the underlying lxml parser
directly, to show that its options alone (second line of defence) never load
an entity, a DTD or an include from disk or network.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.model import hardened_xml
from gateway.model.errors import GatewayError, SchemaInvalid, XmlRefused
from gateway.model.hardened_xml import MAX_DEPTH, NS_DOSSIER, XINCLUDE_NS, canonical_base64

SECRET = "tr3s-secret-do-not-leak"


def nested(depth: int) -> bytes:
    """A document whose deepest element is ``depth`` levels down (the root is level 1)."""
    return ("<a>" * depth + "</a>" * depth).encode()


def refusal(data: bytes) -> XmlRefused:
    with pytest.raises(XmlRefused) as refused:
        hardened_xml.parse(data)
    return refused.value


class RecordingResolver(etree.Resolver):
    """Records every resource libxml2 asks for, and serves the secret if it gets the chance."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    def resolve(self, system_url: str, public_id: str, context: object) -> object:
        self.requests.append(system_url)
        return self.resolve_string(f"<!ENTITY leak '{SECRET}'>{SECRET}", context)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local TCP port that records whether anything connects to it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def no_connection(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


def url(server: socket.socket, path: str = "x") -> str:
    host, port = server.getsockname()
    return f"http://{host}:{port}/{path}"


# ------------------------------------------------------------------ refusal codes


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', id="internal-entity"),
        pytest.param(b'<!DOCTYPE a SYSTEM "http://example.org/a.dtd"><a/>', id="external-dtd"),
        pytest.param(
            b'<!DOCTYPE a PUBLIC "-//X//Y//EN" "http://example.org/a.dtd"><a/>', id="public-dtd"
        ),
        pytest.param(b"<!DOCTYPE a><a/>", id="bare-doctype"),
        pytest.param(b"<!doctype a><a/>", id="lower-case-keyword"),
    ],
)
def test_any_doctype_is_refused(data: bytes) -> None:
    assert refusal(data).code == "xml.doctype"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16"),
            id="utf-16",
        ),
        pytest.param(
            '<?xml version="1.0" encoding="UTF-32"?><!DOCTYPE a><a/>'.encode("utf-32"),
            id="utf-32",
        ),
        pytest.param(b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>', id="latin-1"),
    ],
)
def test_a_document_not_in_utf8_is_refused(data: bytes) -> None:
    # Another encoding could hide a DOCTYPE from the byte-level check.
    assert refusal(data).code == "xml.encoding"


def test_billion_laughs_is_refused_before_any_expansion() -> None:
    entities = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10))
    data = f'<!DOCTYPE a [<!ENTITY l0 "lol">{entities}]><a>&l9;</a>'.encode()
    assert refusal(data).code == "xml.doctype"


def test_document_over_the_size_cap_is_refused() -> None:
    data = b"<a>" + b"x" * 100 + b"</a>"
    with pytest.raises(XmlRefused) as refused:
        hardened_xml.parse(data, max_bytes=len(data) - 1)
    assert refused.value.code == "xml.too_large"


def test_document_of_exactly_the_size_cap_is_accepted() -> None:
    data = b"<a>" + b"x" * 100 + b"</a>"
    assert hardened_xml.parse(data, max_bytes=len(data)).tag == "a"


def test_default_size_cap_is_max_bytes() -> None:
    data = b"<a>" + b" " * (hardened_xml.MAX_BYTES - 7) + b"</a>"
    assert len(data) == hardened_xml.MAX_BYTES
    hardened_xml.parse(data)
    assert refusal(data + b" ").code == "xml.too_large"


def test_nesting_at_the_depth_cap_is_accepted() -> None:
    assert hardened_xml.parse(nested(MAX_DEPTH)).tag == "a"


def test_nesting_one_level_past_the_depth_cap_is_refused() -> None:
    assert refusal(nested(MAX_DEPTH + 1)).code == "xml.too_deep"


def test_nesting_far_past_libxml2s_own_limit_is_refused_as_too_deep() -> None:
    assert refusal(nested(100_000)).code == "xml.too_deep"


def test_deep_nesting_is_refused_without_a_crash_whatever_the_depth() -> None:
    # Whatever the code, a very deep document is a clean refusal.
    assert refusal(nested(100_000)).code in {"xml.too_deep", "xml.malformed"}


def test_xinclude_is_refused() -> None:
    data = f'<a xmlns:xi="{XINCLUDE_NS}"><xi:include href="/etc/passwd" parse="text"/></a>'
    assert refusal(data.encode()).code == "xml.xinclude"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(f'<xi:include xmlns:xi="{XINCLUDE_NS}" href="/etc/passwd"/>', id="root"),
        pytest.param(
            f'<a><b><c><xi:fallback xmlns:xi="{XINCLUDE_NS}"/></c></b></a>', id="deep-fallback"
        ),
        pytest.param(f'<a><b/><c xmlns="{XINCLUDE_NS}"/></a>', id="default-namespace"),
    ],
)
def test_any_element_of_the_xinclude_namespace_is_refused_wherever_it_is(data: str) -> None:
    assert refusal(data.encode()).code == "xml.xinclude"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"   \n", id="whitespace"),
        pytest.param(b"<a>", id="unclosed"),
        pytest.param(b"<a></b>", id="mismatched"),
        pytest.param(b"<a/><b/>", id="two-roots"),
        pytest.param(b"plain text", id="not-xml"),
        pytest.param(b"<a>\xff\xfe</a>", id="invalid-utf-8"),
        pytest.param(b"<a>&undeclared;</a>", id="undeclared-entity"),
        pytest.param(b"<a>\x00</a>", id="nul-byte"),
    ],
)
def test_malformed_document_is_refused(data: bytes) -> None:
    refused = refusal(data)
    assert refused.code == "xml.malformed"
    assert refused.message.startswith("The document")


def test_refusals_are_gateway_errors_with_a_sentence() -> None:
    refused = refusal(b"<!DOCTYPE a><a/>")
    assert isinstance(refused, GatewayError)
    assert str(refused) == f"[xml.doctype] {refused.message}"


# ------------------------------------------------------------------ nothing is read


def test_external_entity_pointing_to_a_file_is_refused_and_never_read(secret_file: Path) -> None:
    data = f'<!DOCTYPE a [<!ENTITY e SYSTEM "{secret_file.as_uri()}">]><a>&e;</a>'.encode()
    refused = refusal(data)
    assert refused.code == "xml.doctype"
    assert SECRET not in str(refused)


def test_parser_options_alone_never_load_an_external_entity(secret_file: Path) -> None:
    parser = hardened_xml._parser()
    resolver = RecordingResolver()
    parser.resolvers.add(resolver)
    data = f'<!DOCTYPE a [<!ENTITY e SYSTEM "{secret_file.as_uri()}">]><a>&e;</a>'.encode()
    root = etree.fromstring(data, parser)
    assert resolver.requests == []
    assert SECRET not in etree.tostring(root, encoding="unicode")


def _opened_while(path: Path, action: Callable[[], object], window: float = 1.0) -> bool:
    """Whether anyone opened the named pipe ``path`` for reading while ``action`` ran."""
    opened = threading.Event()
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + window
        while time.monotonic() < deadline and not done.is_set():
            try:
                # Succeeds only once a reader has the pipe open; closing it
                # at once gives that reader an empty file instead of a hang.
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                time.sleep(0.005)
                continue
            opened.set()
            return

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with contextlib.suppress(etree.XMLSyntaxError):
            action()
        time.sleep(0.05)
    finally:
        done.set()
        watcher.join()
    return opened.is_set()


@pytest.mark.parametrize(
    "doctype",
    [
        pytest.param('<!DOCTYPE a SYSTEM "{uri}">', id="external-dtd"),
        pytest.param('<!DOCTYPE a [<!ENTITY % p SYSTEM "{uri}"> %p;]>', id="parameter-entity"),
    ],
)
def test_the_parser_itself_never_opens_an_external_dtd(tmp_path: Path, doctype: str) -> None:
    # What keeps external DTDs away past the DOCTYPE pre-check: the parser's
    # options, and a resolver that answers every request with nothing.
    pipe = tmp_path / "external.dtd"
    os.mkfifo(pipe)
    data = (doctype.format(uri=pipe.as_uri()) + "<a>text</a>").encode()
    assert not _opened_while(pipe, lambda: etree.fromstring(data, hardened_xml._parser()))


def test_a_parser_that_loads_dtds_is_seen_opening_one(tmp_path: Path) -> None:
    # The control for the test above: the detection works.
    pipe = tmp_path / "external.dtd"
    os.mkfifo(pipe)
    data = f'<!DOCTYPE a SYSTEM "{pipe.as_uri()}"><a>text</a>'.encode()
    plain = etree.XMLParser(load_dtd=True, no_network=True)
    assert _opened_while(pipe, lambda: etree.fromstring(data, plain))


def test_parser_options_alone_never_fetch_a_dtd_from_the_network(
    listener: socket.socket,
) -> None:
    for data in (
        f'<!DOCTYPE a SYSTEM "{url(listener)}"><a>text</a>',
        f'<!DOCTYPE a [<!ENTITY % p SYSTEM "{url(listener)}"> %p;]><a>text</a>',
    ):
        with contextlib.suppress(etree.XMLSyntaxError):
            etree.fromstring(data.encode(), hardened_xml._parser())
    assert no_connection(listener)


def test_doctype_hidden_by_utf7_is_refused_without_reading_the_dtd(tmp_path: Path) -> None:
    # Not a valid DTD: if libxml2 reads it, the refusal becomes a content error.
    dtd = tmp_path / "external.dtd"
    dtd.write_text("<!ENTITY leak 'x'> not a declaration")
    data = (
        f'<?xml version="1.0" encoding="UTF-7"?><+ACE-DOCTYPE a SYSTEM "{dtd.as_uri()}"><a>text</a>'
    ).encode()
    refused = refusal(data)
    assert refused.code == "xml.encoding", refused.message


def test_parser_options_alone_never_expand_internal_entities() -> None:
    data = b'<!DOCTYPE a [<!ENTITY e "expanded">]><a>&e;</a>'
    root = etree.fromstring(data, hardened_xml._parser())
    assert "expanded" not in etree.tostring(root, encoding="unicode")


def test_xinclude_is_never_processed(secret_file: Path) -> None:
    data = (
        f'<a xmlns:xi="{XINCLUDE_NS}"><xi:include href="{secret_file.as_uri()}" parse="text"/></a>'
    ).encode()
    refused = refusal(data)
    assert refused.code == "xml.xinclude"
    assert SECRET not in str(refused)
    # The parser itself leaves the include element as it is.
    root = etree.fromstring(data, hardened_xml._parser())
    assert root[0].tag == f"{{{XINCLUDE_NS}}}include"
    assert SECRET not in etree.tostring(root, encoding="unicode")


def test_network_entity_is_never_fetched(listener: socket.socket) -> None:
    data = f'<!DOCTYPE a [<!ENTITY e SYSTEM "{url(listener)}">]><a>&e;</a>'.encode()
    assert refusal(data).code == "xml.doctype"
    etree.fromstring(data, hardened_xml._parser())
    assert no_connection(listener)


def test_schema_location_hint_is_never_followed(listener: socket.socket) -> None:
    data = (
        f'<dossier xmlns="{NS_DOSSIER}" schemaVersion="1" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{NS_DOSSIER} {url(listener, "dossier.xsd")}"/>'
    ).encode()
    with pytest.raises(SchemaInvalid):
        hardened_xml.validate(hardened_xml.parse(data))
    assert no_connection(listener)


# ------------------------------------------------------------------ what comes out


def test_comments_and_processing_instructions_are_dropped() -> None:
    root = hardened_xml.parse(b"<a><!-- note --><?pi data?><b/></a>")
    assert [child.tag for child in root] == ["b"]


def test_validate_names_an_unknown_root_by_its_namespace() -> None:
    root = hardened_xml.parse(b'<dossier xmlns="urn:be:cpas:dse:dossier:9"/>')
    with pytest.raises(SchemaInvalid) as refused:
        hardened_xml.validate(root)
    assert refused.value.code == "schema.namespace"


def test_validate_reports_the_line_without_namespaces() -> None:
    root = hardened_xml.parse(f'<dossier xmlns="{NS_DOSSIER}" schemaVersion="1"/>'.encode())
    with pytest.raises(SchemaInvalid) as refused:
        hardened_xml.validate(root)
    assert refused.value.code == "schema.invalid"
    assert refused.value.message.startswith("line 1: ")
    assert NS_DOSSIER not in refused.value.message


def test_to_bytes_writes_utf8_with_a_declaration() -> None:
    root = etree.Element("a")
    root.text = "Lefèvre"
    data = hardened_xml.to_bytes(root)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "Lefèvre".encode() in data
    assert hardened_xml.parse(data).text == "Lefèvre"


FIRST_COMPILATIONS_AT_ONCE = """
import os, sys, threading
from gateway.model import hardened_xml

def race() -> int:
    barrier = threading.Barrier(2)
    failed = []
    def compile_directory_schema() -> None:
        barrier.wait()
        try:
            hardened_xml.load_schema("directory.xsd")
        except Exception as exc:
            failed.append(exc)
    threads = [threading.Thread(target=compile_directory_schema) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 1 if failed else 0

broken = 0
for _ in range(int(sys.argv[1])):
    child = os.fork()
    if child == 0:
        os._exit(race())
    broken += os.waitpid(child, 0)[1] != 0
print(broken)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fresh processes made by fork")
def test_two_threads_compiling_the_first_schema_of_a_process_at_once_both_succeed() -> None:
    # A hosted node checks its CPAS side by side: the first schema compilation
    # of the process can happen in two threads at the same moment. Each forked
    # child is a process whose libxml2 has compiled nothing yet.
    result = subprocess.run(
        [sys.executable, "-c", FIRST_COMPILATIONS_AT_ONCE, "200"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "0", "children whose compilation failed or crashed"


def test_a_refusal_names_the_problem_of_its_own_document_while_other_threads_validate() -> None:
    # A compiled schema is shared by every thread of a node (and by every CPAS
    # of a hosted node); one thread's refusal must never carry what was found
    # in another thread's document.
    def refusals(element: str) -> list[str]:
        document = etree.fromstring(f'<d:dossier xmlns:d="{NS_DOSSIER}"><d:{element}/></d:dossier>')
        messages = []
        for _ in range(2000):
            with pytest.raises(SchemaInvalid) as refused:
                hardened_xml.validate(document)
            messages.append(str(refused.value))
        return messages

    found: dict[str, list[str]] = {}
    threads = [
        threading.Thread(target=lambda name=name: found.setdefault(name, refusals(name)))
        for name in ("leftElement", "rightElement")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(found) == ["leftElement", "rightElement"], "a thread stopped early"
    for name, messages in found.items():
        assert [m for m in messages if name not in m] == []


# ---------------------------------------------------------- canonical base64


@pytest.mark.parametrize("data", [b"", b"A", b"\x00\xff", bytes(range(256)), b"x" * 3000])
def test_base64_as_python_writes_it_is_read_back(data: bytes) -> None:
    assert canonical_base64(base64.b64encode(data).decode("ascii")) == data


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("QR==", id="other-padding-bits-2"),
        pytest.param("QUJ=", id="other-padding-bits-1"),
        pytest.param("QQ", id="padding-missing"),
        pytest.param("QQ===", id="padding-too-long"),
        pytest.param("QUJD\nREVG", id="newline"),
        pytest.param("QUJD REVG", id="space"),
        pytest.param("QUJD\u00a0REVG", id="no-break-space"),
        pytest.param("QUJDé", id="non-ascii-letter"),
        pytest.param("QUJD-_8=", id="url-safe-alphabet"),
        pytest.param("QQ==QQ==", id="data-after-padding"),
        pytest.param("=QUJD", id="padding-first"),
        pytest.param("QUJD*REVG", id="foreign-character"),
    ],
)
def test_any_other_spelling_of_base64_is_refused(text: str) -> None:
    assert canonical_base64(text) is None
