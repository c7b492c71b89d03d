"""What the libraries alone cost on the same messages: the floor each stage's budget rests on.

For every transfer and receipt of the replay (:mod:`bench.stages`), the bare
library calls are timed on exactly its bytes, with the key objects, the
header's bytes and the signed bytes built beforehand, so that nothing of the
gateway is counted:

- HPKE seal: :meth:`hpke.Suite.encrypt` of the body with the header as ``info``;
- HPKE open: :meth:`hpke.Suite.decrypt` of the same ciphertext;
- Ed25519 sign and verify of the bytes the gateway signs;
- parse and validate: ``lxml.etree.fromstring`` and ``XMLSchema.validate`` of
  the envelope and of the body, without the hardened parser's own checks.

Per dossier is one transfer plus its receipt, as in the replay (the parse
figure counts four documents: two envelopes, two bodies).

They are timed twice. Inside the replay, right after each dossier, under
the same conditions as the stages (the processor's caches hold what the
adapters, SQLite and the rest of the dossier's handling left there), in an
order that turns from one dossier to the next: the budgets rest on this
figure. And in a tight loop over a sample of the same
messages (:func:`measure`: passes over the sample after one warm-up pass,
the median pass), where everything stays in the caches: the best case.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from lxml import etree

from gateway.model.envelope import SEAL_CONTEXT, Envelope
from gateway.model.hardened_xml import load_schema
from gateway.model.keys import PrivateEncryptionKey, PublicEncryptionKey, hpke_suite

HPKE_SEAL = "HPKE seal"
HPKE_OPEN = "HPKE open"
ED25519_SIGN = "Ed25519 sign"
ED25519_VERIFY = "Ed25519 verify"
XML_PARSE_VALIDATE = "lxml parse + XSD validation"
CALLS = (HPKE_SEAL, HPKE_OPEN, ED25519_SIGN, ED25519_VERIFY, XML_PARSE_VALIDATE)
PASSES = 7
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


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


def calls(m: Message) -> dict[str, Callable[[], object]]:
    """The bare library calls for one message, ready to time."""
    suite = hpke_suite(m.envelope.kem)
    # Built beforehand: the header's bytes and the signed bytes are the gateway's work.
    info = SEAL_CONTEXT + m.envelope.header.canonical()
    signed = m.envelope.signed_bytes()
    schema = load_schema("envelope.xsd")

    def parse_validate() -> object:
        for data in (m.wire, m.plain):
            if not schema.validate(etree.fromstring(data, _PARSER)):
                raise AssertionError("a message of the replay does not validate")
        return None

    return {
        HPKE_SEAL: partial(suite.encrypt, m.plain, m.recipient_public, info=info),
        HPKE_OPEN: partial(suite.decrypt, m.envelope.ciphertext, m.recipient_private, info=info),
        ED25519_SIGN: partial(m.sender_signing.sign, signed),
        ED25519_VERIFY: partial(m.sender_public.verify, m.envelope.signature, signed),
        XML_PARSE_VALIDATE: parse_validate,
    }


def measure(pairs: list[tuple[Message, Message]]) -> dict[str, float]:
    """Median CPU µs per dossier (a transfer and its receipt) of each bare call, in a tight loop."""
    prepared = [calls(message) for pair in pairs for message in pair]
    if not prepared:
        return {}
    out: dict[str, float] = {}
    for name in CALLS:
        actions = [each[name] for each in prepared]
        for action in actions:
            action()  # warm-up
        passes = []
        for _ in range(PASSES):
            start = time.process_time()
            for action in actions:
                action()
            passes.append(time.process_time() - start)
        out[name] = round(statistics.median(passes) / len(pairs) * 1e6, 1)
    return out
