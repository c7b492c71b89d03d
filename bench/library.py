"""What the libraries alone cost on the same messages: the floor each stage's budget rests on.

The replay (:mod:`bench.stages`) keeps the transfers and receipts it made.
Here the bare library calls are timed on exactly those bytes, with the key
objects built beforehand, so that nothing of the gateway is counted:

- HPKE seal: :meth:`hpke.Suite.encrypt` of the body with the header as ``info``;
- HPKE open: :meth:`hpke.Suite.decrypt` of the same ciphertext;
- Ed25519 sign and verify of the bytes the gateway signs;
- parse and validate: ``lxml.etree.fromstring`` and ``XMLSchema.validate`` of
  the envelope and of the body, without the hardened parser's own checks.

Per dossier is one transfer plus its receipt, as in the replay (the parse
figure counts four documents: two envelopes, two bodies). Each call is
timed in passes over the whole sample with :func:`time.process_time`, after
one warm-up pass; the figure is the median of the passes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from lxml import etree

from gateway.envelope import SEAL_CONTEXT, Envelope
from gateway.hardened_xml import load_schema
from gateway.keys import PrivateEncryptionKey, PublicEncryptionKey, hpke_suite

HPKE_SEAL = "HPKE seal"
HPKE_OPEN = "HPKE open"
ED25519_SIGN = "Ed25519 sign"
ED25519_VERIFY = "Ed25519 verify"
XML_PARSE_VALIDATE = "lxml parse + XSD validation"
PASSES = 7


@dataclass(frozen=True)
class Message:
    """One sealed message of the replay, with what the bare calls need for it."""

    wire: bytes
    """The envelope as sent."""
    plain: bytes
    """The body before sealing."""
    envelope: Envelope
    recipient_public: PublicEncryptionKey
    recipient_private: PrivateEncryptionKey
    sender_signing: Ed25519PrivateKey
    sender_public: Ed25519PublicKey


def _median_pass(messages: list[Message], call: Callable[[Message], object]) -> float:
    """Median CPU seconds of one pass of ``call`` over ``messages``."""
    for message in messages:
        call(message)  # warm-up
    passes = []
    for _ in range(PASSES):
        start = time.process_time()
        for message in messages:
            call(message)
        passes.append(time.process_time() - start)
    return statistics.median(passes)


def measure(pairs: list[tuple[Message, Message]]) -> dict[str, float]:
    """Median CPU µs per dossier (a transfer and its receipt) of each bare library call."""
    messages = [message for pair in pairs for message in pair]
    if not messages:
        return {}
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    schema = load_schema("envelope.xsd")

    # Built beforehand: the header's bytes and the signed bytes are the gateway's work.
    info = {id(m): SEAL_CONTEXT + m.envelope.header.canonical() for m in messages}
    signed = {id(m): m.envelope.signed_bytes() for m in messages}

    def seal(m: Message) -> object:
        return hpke_suite(m.envelope.kem).encrypt(m.plain, m.recipient_public, info=info[id(m)])

    def open_(m: Message) -> object:
        return hpke_suite(m.envelope.kem).decrypt(
            m.envelope.ciphertext, m.recipient_private, info=info[id(m)]
        )

    def sign(m: Message) -> object:
        return m.sender_signing.sign(signed[id(m)])

    def verify(m: Message) -> object:
        m.sender_public.verify(m.envelope.signature, signed[id(m)])
        return None

    def parse_validate(m: Message) -> object:
        for data in (m.wire, m.plain):
            if not schema.validate(etree.fromstring(data, parser)):
                raise AssertionError("a message of the replay does not validate")
        return None

    calls = {
        HPKE_SEAL: seal,
        HPKE_OPEN: open_,
        ED25519_SIGN: sign,
        ED25519_VERIFY: verify,
        XML_PARSE_VALIDATE: parse_validate,
    }
    return {
        name: round(_median_pass(messages, call) / len(pairs) * 1e6, 1)
        for name, call in calls.items()
    }
