"""Key material: the HPKE suites, public keys by their raw bytes, key pairs, a node's keys."""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.model.codes import Fault, Refusal
from gateway.model.errors import KeyMaterialError

log = logging.getLogger(__name__)

KEM_X25519: Final = "x25519"
KEM_HYBRID: Final = "mlkem768-x25519"
KEMS: Final = (KEM_X25519, KEM_HYBRID)
SIGNING_ALGORITHM: Final = "ed25519"

SIGNING_FILE: Final = "signing.key"
PUBLIC_FILE: Final = "public.json"
ENCRYPTION_PREFIX: Final = "encryption-"
KEY_SUFFIX: Final = ".key"

PrivateEncryptionKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey
"""What :meth:`hpke.Suite.decrypt` takes for our two KEMs."""
PublicEncryptionKey = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
"""What :meth:`hpke.Suite.encrypt` takes for our two KEMs."""

_MLKEM768_PUBLIC_BYTES: Final = 1184
_X25519_PUBLIC_BYTES: Final = 32
PEM_BLOCK: Final = re.compile(rb"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----\s*", re.DOTALL)


# ------------------------------------------------------------------ suites


@functools.cache
def hpke_suite(kem: str) -> hpke.Suite:
    """The HPKE suite for a KEM name (``x25519`` or ``mlkem768-x25519``).

    Raises :class:`KeyMaterialError` ``keys.kem_unknown`` for any other name.
    """
    if kem == KEM_X25519:
        kem_id = hpke.KEM.X25519
    elif kem == KEM_HYBRID:
        kem_id = hpke.KEM.MLKEM768_X25519
    else:
        raise KeyMaterialError(
            f"{kem!r} is not a supported key encapsulation; use one of {', '.join(KEMS)}.",
            code=Fault.KEYS_KEM_UNKNOWN,
        )
    return hpke.Suite(kem_id, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)


def key_id(public_raw: bytes) -> str:
    """The key id used everywhere: 16 lowercase hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


# ------------------------------------------------------------ public keys


@functools.lru_cache(maxsize=4096)
def public_encryption_key(kem: str, raw: bytes) -> PublicEncryptionKey:
    """The public key object :meth:`hpke.Suite.encrypt` accepts, from its raw bytes.

    Raises :class:`KeyMaterialError` ``keys.invalid`` when the bytes are not a
    public key of that KEM, ``keys.kem_unknown`` for an unknown KEM.
    """
    hpke_suite(kem)  # refuse an unknown KEM with its own code
    try:
        if kem == KEM_X25519:
            _expect_length(raw, _X25519_PUBLIC_BYTES, kem)
            return x25519.X25519PublicKey.from_public_bytes(raw)
        _expect_length(raw, _MLKEM768_PUBLIC_BYTES + _X25519_PUBLIC_BYTES, kem)
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC_BYTES]),
            x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM768_PUBLIC_BYTES:]),
        )
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyMaterialError(
            f"These bytes are not a {kem} public key: {exc}.", code=Fault.KEYS_INVALID
        ) from None


@functools.lru_cache(maxsize=4096)
def public_signing_key(raw: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its 32 raw bytes; ``keys.invalid`` otherwise.

    Cached, like :func:`public_encryption_key`: every message to or from a
    CPAS uses the same few keys.
    """
    try:
        _expect_length(raw, 32, SIGNING_ALGORITHM)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise KeyMaterialError(
            f"These bytes are not an Ed25519 public key: {exc}.", code=Fault.KEYS_INVALID
        ) from None


def _expect_length(raw: bytes, length: int, what: str) -> None:
    if len(raw) != length:
        raise ValueError(f"a {what} public key has {length} bytes, not {len(raw)}")


# --------------------------------------------------------------- key pairs


@dataclass(frozen=True)
class EncryptionKeyPair:
    """One HPKE key pair; ``private`` is what :meth:`hpke.Suite.decrypt` accepts."""

    kem: str
    private: PrivateEncryptionKey = field(repr=False)
    public_raw: bytes

    @property
    def key_id(self) -> str:
        """The id under which the directory lists the public half."""
        return key_id(self.public_raw)

    @property
    def public(self) -> PublicEncryptionKey:
        """The public key object, for :meth:`hpke.Suite.encrypt`."""
        return public_encryption_key(self.kem, self.public_raw)


def generate_encryption_key(kem: str = KEM_X25519) -> EncryptionKeyPair:
    """A fresh encryption key pair for ``kem``."""
    return generate_encryption_parts(kem)[0]


def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 signing key."""
    return Ed25519PrivateKey.generate()


def signing_public_raw(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of the public half of a signing key."""
    return key.public_key().public_bytes_raw()


# The hybrid private key object does not give its parts back, and the files
# store the parts: generation therefore keeps them beside the pair.
KeyPart = x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey


def generate_encryption_parts(kem: str) -> tuple[EncryptionKeyPair, list[KeyPart]]:
    """A fresh key pair for ``kem``, and the private parts its key file stores."""
    hpke_suite(kem)
    x_key = x25519.X25519PrivateKey.generate()
    if kem == KEM_X25519:
        return EncryptionKeyPair(kem, x_key, x_key.public_key().public_bytes_raw()), [x_key]
    m_key = mlkem.MLKEM768PrivateKey.generate()
    return hybrid_pair(m_key, x_key), [m_key, x_key]


def hybrid_pair(
    m_key: mlkem.MLKEM768PrivateKey, x_key: x25519.X25519PrivateKey
) -> EncryptionKeyPair:
    """The hybrid key pair made of its two private parts (as read back from a key file)."""
    raw = m_key.public_key().public_bytes_raw() + x_key.public_key().public_bytes_raw()
    return EncryptionKeyPair(KEM_HYBRID, hpke.MLKEM768X25519PrivateKey(m_key, x_key), raw)


@dataclass(frozen=True)
class NodeKeys:
    """Everything secret a node holds: its signing key and its encryption keys by key id."""

    signing: Ed25519PrivateKey = field(repr=False)
    signing_key_id: str
    encryption: dict[str, EncryptionKeyPair]

    def decryption_key(self, key_id: str) -> EncryptionKeyPair:
        """The key pair a sender sealed for, by its key id.

        Raises :class:`KeyMaterialError` ``keys.unknown_key`` when this node
        does not hold it (retired, or sealed for another node).
        """
        try:
            return self.encryption[key_id]
        except KeyError:
            raise KeyMaterialError(
                f"This node holds no encryption key {key_id!r} "
                f"(it holds {', '.join(sorted(self.encryption)) or 'none'}).",
                code=Refusal.KEYS_UNKNOWN_KEY,
            ) from None

    @property
    def signing_public_raw(self) -> bytes:
        """The raw public half of the signing key."""
        return signing_public_raw(self.signing)
