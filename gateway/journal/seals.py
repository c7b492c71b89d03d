"""The journal's keys and what they do: seal entries and the head, tag people, wrap content.

Every key is derived from the one journal secret with HKDF, each for its own
purpose: the chain key seals, the person key tags NISS/BIS numbers, the
wrapping key encrypts each dossier's own content key, the staff key turns a
staff reference into the pseudonym an envelope header carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

GENESIS: Final = "0" * 64
"""The "previous seal" of the first entry."""

_ENTRY_CONTEXT: Final = "cpas-journal/entry/v1"
_HEAD_CONTEXT: Final = b"cpas-journal/head/v1\n"
_CONTENT_CONTEXT: Final = b"cpas-journal/content/v1\n"
_KEY_CONTEXT: Final = b"cpas-journal/key/v1\n"
_NONCE_SIZE: Final = 12

# The columns the seal covers, in the order they are sealed. The content
# itself is covered through its digest; the key never is.
SEALED: Final = (
    "seq",
    "at",
    "event",
    "direction",
    "message_id",
    "message_type",
    "peer",
    "purpose",
    "case_reference",
    "correlation_id",
    "person_tag",
    "outcome",
    "code",
    "content_digest",
    "retain_until",
    "prev_hash",
)
# Sealed only when set, after the others: entries written before the column
# existed keep their seals.
SEALED_WHEN_SET: Final = ("actor",)


@dataclass(frozen=True)
class SealedContent:
    """A dossier encrypted for one entry: the ciphertext, its digest and its wrapped key."""

    sealed: bytes
    digest: str
    wrapped: bytes


class Seals:
    """The keys derived from a journal secret, and every operation that uses them."""

    def __init__(self, secret: bytes) -> None:
        self._chain_key = _derive(secret, b"chain")
        self._person_key = _derive(secret, b"person")
        self._wrap = AESGCM(_derive(secret, b"wrap"))
        self._staff_key = _derive(secret, b"staff")

    def person_tag(self, person_number: str) -> str:
        """The keyed hash under which a person's entries are filed (never the number)."""
        digits = "".join(ch for ch in person_number if ch.isdigit())
        return hmac.new(self._person_key, digits.encode("ascii"), hashlib.sha256).hexdigest()

    def staff_pseudonym(self, staff_reference: str) -> str:
        """The pseudonym of one of this CPAS's staff references (see :class:`Journal`)."""
        digest = hmac.new(self._staff_key, staff_reference.encode("utf-8"), hashlib.sha256)
        return base64.b32encode(digest.digest()[:16]).decode("ascii").rstrip("=").lower()

    def entry(self, row: Mapping[str, Any]) -> str:
        """The seal of an entry: its sealed columns and the previous entry's seal."""
        optional = [[name, row[name]] for name in SEALED_WHEN_SET if row.get(name) is not None]
        canonical = json.dumps(
            [_ENTRY_CONTEXT, *(row[name] for name in SEALED), *optional],
            separators=(",", ":"),
            ensure_ascii=True,
        ).encode("ascii")
        return hmac.new(self._chain_key, canonical, hashlib.sha256).hexdigest()

    def head(self, seq: int, entry_hash: str) -> str:
        """The seal of the head record (and of its witness file)."""
        message = _HEAD_CONTEXT + f"{seq}\n{entry_hash}".encode("ascii")
        return hmac.new(self._chain_key, message, hashlib.sha256).hexdigest()

    def head_matches(self, seq: int, entry_hash: str, seal: str) -> bool:
        return hmac.compare_digest(seal, self.head(seq, entry_hash))

    def seal_content(self, seq: int, content: bytes) -> SealedContent:
        """Encrypt a dossier for entry ``seq`` under a fresh key, and wrap that key."""
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE_SIZE)
        sealed = nonce + AESGCM(key).encrypt(nonce, bytes(content), _content_aad(seq))
        digest = hashlib.sha256(sealed).hexdigest()
        wrap_nonce = os.urandom(_NONCE_SIZE)
        wrapped = wrap_nonce + self._wrap.encrypt(wrap_nonce, key, _key_aad(seq, digest))
        return SealedContent(sealed, digest, wrapped)

    def unwrap(self, seq: int, digest: str, wrapped: bytes) -> bytes | None:
        """The content key of entry ``seq``, or ``None`` when the wrapped key does not open."""
        wrapped = bytes(wrapped)
        try:
            return self._wrap.decrypt(
                wrapped[:_NONCE_SIZE], wrapped[_NONCE_SIZE:], _key_aad(seq, digest)
            )
        except (InvalidTag, ValueError):
            return None

    def open_content(self, values: Mapping[str, Any]) -> bytes | None:
        """The dossier of a stored entry, or ``None`` when its key or ciphertext does not open."""
        seq = int(values["seq"])
        key = self.unwrap(seq, values["content_digest"], values["wrapped"])
        sealed = None if values["content"] is None else bytes(values["content"])
        if key is None or sealed is None:
            return None
        try:
            return AESGCM(key).decrypt(
                sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], _content_aad(seq)
            )
        except (InvalidTag, ValueError):
            return None


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"cpas-journal/v1/" + purpose
    ).derive(secret)


def _content_aad(seq: int) -> bytes:
    # Binds the ciphertext to its entry: moved to another row, it does not open.
    return _CONTENT_CONTEXT + str(seq).encode("ascii")


def _key_aad(seq: int, digest: str) -> bytes:
    return _KEY_CONTEXT + f"{seq}\n{digest}".encode("ascii")
