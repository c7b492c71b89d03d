"""Thousands of mutated envelopes at a running node: it refuses each at once and stays up.

Every base message is itself an attack that must be refused (a body whose
root is not ``<body>``, a dossier claiming another source, a body sealed to
another CPAS's key, a signature by another CPAS's key, a message addressed to
another CPAS, expired or from the future, a response answering nothing);
each published message is a base or a mutation of one: bit flips,
truncations, swapped and duplicated elements, foreign characters in the
base64, or the replay of an earlier mutant. The node must refuse every one
with a code at its first delivery, import nothing, log no traceback, sign
no more receipts than there are authenticated bases, and still import a
genuine dossier afterwards.

``CPAS_FUZZ_MESSAGES`` sets how many are published (default 3000; the
long run in docs/security.md used 100,000); ``CPAS_FUZZ_SEED`` the seed.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pika
import pytest
from conftest import GENT, LIEGE, NAMUR, NodeFactory
from lxml import etree

from gateway.federation.localnet import LocalFederation
from gateway.model.envelope import Header, MessageType, Purpose, ResponseBody, TransferBody, seal
from gateway.model.hardened_xml import NS_ENVELOPE
from gateway.node import REFUSAL_CODE_HEADER, Node
from gateway.testing.synthetic import make_beneficiary

MESSAGES = int(os.environ.get("CPAS_FUZZ_MESSAGES", "3000"))
SEED = int(os.environ.get("CPAS_FUZZ_SEED", "20261130"))
AHEAD = 2000
"""At most this many published messages wait in the inbox: the broker is shared."""
PURPOSE = Purpose.CONTINUITY_AFTER_MOVE
FOREIGN = ["é", "\u00a0", "\u2028", "ß", "\u200b", "Ω", "\ufeff", "٣"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Base:
    """A message that must be refused as it is; ``authenticated`` when its signature holds."""

    name: str
    data: bytes
    authenticated: bool


def _header(
    sender: str, to: str, *, type: MessageType = MessageType.TRANSFER, **kw: object
) -> Header:
    return Header.new(
        type,
        sender=sender,
        recipient=to,
        purpose=PURPOSE,
        case_reference="FZ-1",
        **kw,  # type: ignore[arg-type]
    )


def _bases(federation: LocalFederation, to: str) -> list[Base]:
    directory = federation.directory
    gent, namur = federation.member(GENT), federation.member(NAMUR)
    dossier = make_beneficiary(random.Random(SEED), gent.cpas_id).dossier
    transfer = TransferBody(dossier).to_xml()

    def signed(body: bytes, header: Header | None = None) -> bytes:
        header = header or _header(gent.cpas_id, to)
        return seal(header, body, keys=gent.node_keys, directory=directory).to_xml()

    # Sealed to Namur's key, then readdressed to the receiver and validly signed.
    to_namur = seal(
        _header(gent.cpas_id, namur.cpas_id), transfer, keys=gent.node_keys, directory=directory
    )
    readdressed = to_namur.model_copy(
        update={"header": to_namur.header.model_copy(update={"recipient": to})}
    )
    readdressed = readdressed.model_copy(
        update={"signature": gent.node_keys.signing.sign(readdressed.signed_bytes())}
    )
    # Signed with Namur's key under Gent's name.
    by_namur = seal(_header(gent.cpas_id, to), transfer, keys=namur.node_keys, directory=directory)
    elsewhere = seal(
        _header(gent.cpas_id, namur.cpas_id), transfer, keys=gent.node_keys, directory=directory
    )
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=12)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    foreign_source = make_beneficiary(random.Random(SEED + 1), namur.cpas_id).dossier
    answer = ResponseBody(dossier).to_xml()
    return [
        Base("body-root-dossier", signed(dossier.to_xml()), True),
        Base("body-root-envelope", signed(signed(transfer)), True),
        Base(
            "foreign-source",
            signed(TransferBody(foreign_source).to_xml()),
            True,
        ),
        Base("sealed-to-another-cpas", readdressed.to_xml(), True),
        Base(
            "unsolicited-response",
            signed(
                answer,
                _header(gent.cpas_id, to, type=MessageType.RESPONSE, correlation_id=uuid.uuid4()),
            ),
            True,
        ),
        Base("signed-by-another-cpas", by_namur.to_xml(), False),
        Base("addressed-to-another-cpas", elsewhere.to_xml(), False),
        Base(
            "expired",
            signed(transfer, _header(gent.cpas_id, to, now=past, ttl=dt.timedelta(hours=1))),
            False,
        ),
        Base("future", signed(transfer, _header(gent.cpas_id, to, now=future)), False),
    ]


# ------------------------------------------------------------------ mutations


def _flip_bits(rng: random.Random, data: bytes) -> bytes:
    mutable = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        mutable[rng.randrange(len(mutable))] ^= 1 << rng.randrange(8)
    return bytes(mutable)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def _tree(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def _swap(rng: random.Random, data: bytes) -> bytes:
    root = _tree(data)
    parent = rng.choice([root, root[0]])
    if len(parent) >= 2:
        i, j = rng.sample(range(len(parent)), 2)
        a, b = parent[i], parent[j]
        a_copy, b_copy = copy.deepcopy(a), copy.deepcopy(b)
        parent.replace(a, b_copy)
        parent.replace(b, a_copy)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _duplicate(rng: random.Random, data: bytes) -> bytes:
    root = _tree(data)
    parent = rng.choice([root, root[0]])
    element = rng.choice(list(parent))
    element.addnext(copy.deepcopy(element))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _foreign_base64(rng: random.Random, data: bytes) -> bytes:
    root = _tree(data)
    element = root.find(f"{{{NS_ENVELOPE}}}{rng.choice(['sealed', 'signature'])}")
    assert element is not None and element.text is not None
    at = rng.randrange(len(element.text))
    element.text = element.text[:at] + rng.choice(FOREIGN) + element.text[at:]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "bit-flip": _flip_bits,
    "truncation": _truncate,
    "swapped-elements": _swap,
    "duplicated-element": _duplicate,
    "foreign-base64": _foreign_base64,
}


def _mutants(bases: list[Base], count: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(SEED)
    published: list[bytes] = []
    for n in range(count):
        base = bases[n % len(bases)]
        roll = rng.random()
        if roll < 0.05:
            name, data = f"as-is:{base.name}", base.data
        elif roll < 0.10 and published:
            name, data = "replay", rng.choice(published)
        else:
            mutation = rng.choice(list(MUTATIONS))
            name, data = mutation, MUTATIONS[mutation](rng, base.data)
        if len(published) < 500:
            published.append(data)
        yield name, data


# ------------------------------------------------------------------- the run


class _LogWatch(logging.Handler):
    """Counts what the node logs at error level or with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.bad.append(f"{record.name}: {record.getMessage()}")


def _drain(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> Counter[str]:
    codes: Counter[str] = Counter()
    while True:
        method, properties, _ = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return codes
        codes[str((properties.headers or {}).get(REFUSAL_CODE_HEADER))] += 1


def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def watch() -> Iterator[_LogWatch]:
    handler = _LogWatch()
    logger = logging.getLogger("gateway")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_thousands_of_mutated_envelopes_are_each_refused_at_once_and_none_imported(
    make_node: NodeFactory,
    federation: LocalFederation,
    amqp_url: str,
    watch: _LogWatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver = make_node(LIEGE, "fichesociale")
    bases = _bases(federation, receiver.cpas_id)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    publisher, reader = connection.channel(), connection.channel()
    dead_letters = receiver.names.dead_letters(receiver.cpas_id)
    codes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    started = time.monotonic()
    try:
        for n, (kind, data) in enumerate(_mutants(bases, MESSAGES), 1):
            kinds[kind] += 1
            publisher.basic_publish(
                receiver.names.route,
                receiver.cpas_id,
                data,
                pika.BasicProperties(message_id=f"fuzz-{n}"),
            )
            if n % 500 == 0:
                # Keep the shared broker's queues small on a long run.
                _until(lambda n=n: receiver.stats["received"] >= n - AHEAD, 600)  # type: ignore[misc]
                codes += _drain(reader, dead_letters)
        _until(lambda: receiver.stats["dead_lettered"] >= MESSAGES, 120 + MESSAGES / 20)
        elapsed = time.monotonic() - started
        codes += _drain(reader, dead_letters)
    finally:
        connection.close()
    with capsys.disabled():
        print(
            f"\n{MESSAGES} mutants in {elapsed:.1f} s ({elapsed / MESSAGES * 1000:.2f} ms each);"
            f" kinds {dict(kinds)}; codes {dict(codes.most_common())}"
        )
    _assert_refused_at_once(receiver, codes)
    assert watch.bad == []
    authenticated = sum(base.authenticated for base in bases)
    assert receiver.stats["receipts_sent"] <= authenticated
    _assert_still_imports(make_node, receiver)


def _assert_refused_at_once(receiver: Node, codes: Counter[str]) -> None:
    assert receiver.stats["received"] == MESSAGES
    assert receiver.stats["refused"] == MESSAGES
    assert receiver.stats["dead_lettered"] == MESSAGES
    assert receiver.stats["redelivered"] == 0
    assert receiver.stats["errors"] == 0
    assert sum(codes.values()) == MESSAGES
    assert "None" not in codes  # every dead letter carries its refusal code
    assert receiver.adapter.count_persons() == 0  # type: ignore[attr-defined]


def _assert_still_imports(make_node: NodeFactory, receiver: Node) -> None:
    assert receiver.worker.is_alive()
    sender = make_node(GENT, "ocmwdata")
    (number,) = sender.adapter.seed(1, seed=SEED)  # type: ignore[attr-defined]
    sent = sender.send_transfer(number, receiver.cpas_id, PURPOSE)
    assert sender.wait_for_outcomes([sent.message_id], 30)[sent.message_id].outcome == "imported"
