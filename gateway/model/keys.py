"""Signing and encryption keys of a CPAS node and of the federation.

Each CPAS holds one Ed25519 signing key and one or more HPKE (RFC 9180)
encryption keys: several during a rotation, when the new key is already in
the directory and messages sealed for the old one are still in flight. The
federation holds one Ed25519 key that signs the directory; every node trusts
its public half (the *trust anchor*).

Encryption uses one of two HPKE suites, named by their KEM:

- ``x25519``: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
- ``mlkem768-x25519``: the post-quantum hybrid ML-KEM-768 + X25519 KEM with the
  same KDF and AEAD. Its raw public key is the 1184-byte ML-KEM-768 public key
  followed by the 32-byte X25519 public key (1216 bytes).

Files in a node's key folder (private files are created with mode 0600 and
refused when group or others may read them):

``signing.key``
    The Ed25519 private key, PEM PKCS#8.
``encryption-<key id>.key``
    One encryption private key, PEM PKCS#8. For ``x25519`` one PEM block; for
    ``mlkem768-x25519`` two PEM blocks in this order: the ML-KEM-768 private
    key (seed form), then the X25519 private key.
``public.json``
    The public halves, to hand to the federation for the directory.

With a passphrase, every PEM block is an encrypted PKCS#8 block
(``BEGIN ENCRYPTED PRIVATE KEY``, the best encryption ``cryptography`` offers).

The federation's public key (trust anchor) is a PEM ``PUBLIC KEY`` file
(SubjectPublicKeyInfo), readable by OpenSSL:
``openssl pkey -pubin -in federation.pub -text``.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.model.codes import Fault, Refusal
from gateway.model.errors import KeyMaterialError
from gateway.private_files import write_private_file

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
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----\s*", re.DOTALL)


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
    return _generate_encryption_parts(kem)[0]


def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 signing key."""
    return Ed25519PrivateKey.generate()


def signing_public_raw(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of the public half of a signing key."""
    return key.public_key().public_bytes_raw()


# The hybrid private key object does not give its parts back, and the files
# store the parts: generation therefore keeps them beside the pair.
_Part = x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey


def _generate_encryption_parts(kem: str) -> tuple[EncryptionKeyPair, list[_Part]]:
    hpke_suite(kem)
    x_key = x25519.X25519PrivateKey.generate()
    if kem == KEM_X25519:
        return EncryptionKeyPair(kem, x_key, x_key.public_key().public_bytes_raw()), [x_key]
    m_key = mlkem.MLKEM768PrivateKey.generate()
    return _hybrid_pair(m_key, x_key), [m_key, x_key]


def _hybrid_pair(
    m_key: mlkem.MLKEM768PrivateKey, x_key: x25519.X25519PrivateKey
) -> EncryptionKeyPair:
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


# ------------------------------------------------------------ node folder


def write_node_keys(
    directory: Path, *, kem: str = KEM_X25519, passphrase: bytes | None = None
) -> NodeKeys:
    """Create a node's keys in ``directory``: ``signing.key``, one encryption key, ``public.json``.

    Refuses (``keys.exists``) to overwrite a signing key already there.
    """
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    signing = generate_signing_key()
    _write_private(directory / SIGNING_FILE, [signing], passphrase)
    signing_raw = signing_public_raw(signing)
    _write_public(
        directory,
        {
            "signingKey": _public_entry(key_id(signing_raw), SIGNING_ALGORITHM, signing_raw),
            "encryptionKeys": [],
        },
    )
    pair = add_encryption_key(directory, kem=kem, passphrase=passphrase)
    log.info("wrote node keys in %s (signing %s)", directory, key_id(signing_raw))
    return NodeKeys(signing, key_id(signing_raw), {pair.key_id: pair})


def add_encryption_key(
    directory: Path, *, kem: str = KEM_X25519, passphrase: bytes | None = None
) -> EncryptionKeyPair:
    """Add a new encryption key beside the existing ones (a rotation) and update ``public.json``.

    The old keys stay: messages sealed for them can still be opened until the
    operator removes their files, after the directory no longer lists them.
    """
    directory = Path(directory)
    document = _load_public_document(directory / PUBLIC_FILE)
    pair, parts = _generate_encryption_parts(kem)
    _write_private(_encryption_path(directory, pair.key_id), parts, passphrase)
    document["encryptionKeys"].append(_public_entry(pair.key_id, pair.kem, pair.public_raw))
    _write_public(directory, document)
    log.info("added encryption key %s (%s) in %s", pair.key_id, kem, directory)
    return pair


def load_node_keys(directory: Path, passphrase: bytes | None = None) -> NodeKeys:
    """Load the signing key and every encryption key of a node's key folder.

    Raises :class:`KeyMaterialError`: ``keys.missing`` (no such file),
    ``keys.permissions`` (group or others may read a private key),
    ``keys.passphrase`` (wrong or missing passphrase), ``keys.invalid``.
    """
    directory = Path(directory)
    signing = _load_signing_file(directory / SIGNING_FILE, passphrase)
    encryption: dict[str, EncryptionKeyPair] = {}
    for path in sorted(directory.glob(f"{ENCRYPTION_PREFIX}*{KEY_SUFFIX}")):
        pair = _load_encryption_file(path, passphrase)
        expected = path.name[len(ENCRYPTION_PREFIX) : -len(KEY_SUFFIX)]
        if pair.key_id != expected:
            raise KeyMaterialError(
                f"{path} holds key {pair.key_id}, not the {expected} its name says; "
                "was it renamed or replaced?",
                code=Fault.KEYS_INVALID,
            )
        encryption[pair.key_id] = pair
    if not encryption:
        raise KeyMaterialError(
            f"{directory} holds no {ENCRYPTION_PREFIX}*{KEY_SUFFIX} file; "
            "run 'cpas-gateway keys generate' or 'keys rotate'.",
            code=Fault.KEYS_MISSING,
        )
    return NodeKeys(signing, key_id(signing_public_raw(signing)), encryption)


def read_public_keys(directory_or_file: Path) -> dict[str, Any]:
    """Read a node's ``public.json`` (given the folder or the file) and decode its keys.

    Returns ``{"signingKey": {...}, "encryptionKeys": [{...}, ...]}`` where each
    key has ``id``, ``algorithm``, ``publicKey`` (raw bytes) and, when known,
    ``createdAt`` (an aware :class:`datetime.datetime`).
    """
    path = Path(directory_or_file)
    if path.is_dir():
        path = path / PUBLIC_FILE
    document = _load_public_document(path)
    return {
        "signingKey": _decode_entry(document["signingKey"]),
        "encryptionKeys": [_decode_entry(entry) for entry in document["encryptionKeys"]],
    }


def _encryption_path(directory: Path, kid: str) -> Path:
    return directory / f"{ENCRYPTION_PREFIX}{kid}{KEY_SUFFIX}"


def _public_entry(kid: str, algorithm: str, raw: bytes) -> dict[str, str]:
    # createdAt lets the directory give each key a validity that starts when
    # the key was made and stays the same from one directory edition to the next.
    return {
        "id": kid,
        "algorithm": algorithm,
        "publicKey": base64.b64encode(raw).decode("ascii"),
        "createdAt": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _write_public(directory: Path, document: dict[str, Any]) -> None:
    path = directory / PUBLIC_FILE
    # Write beside, then rename: a reader never sees half a file.
    tmp = path.with_name(f".{PUBLIC_FILE}.tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _load_public_document(path: Path) -> dict[str, Any]:
    """The JSON of a ``public.json``, checked to decode, or a coded refusal."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        _decode_entry(document["signingKey"])
        for entry in document["encryptionKeys"]:
            _decode_entry(entry)
    except FileNotFoundError:
        raise KeyMaterialError(f"{path} does not exist.", code=Fault.KEYS_MISSING) from None
    except KeyMaterialError as exc:
        raise KeyMaterialError(f"{path}: {exc.message}", code=exc.code) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyMaterialError(
            f"{path} is not a public key file of this gateway ({exc}).", code=Fault.KEYS_INVALID
        ) from None
    return dict(document)


def _decode_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    raw = base64.b64decode(entry["publicKey"], validate=True)
    algorithm = entry["algorithm"]
    if algorithm == SIGNING_ALGORITHM:
        public_signing_key(raw)
    else:
        public_encryption_key(algorithm, raw)
    decoded: dict[str, Any] = {
        "id": entry.get("id") or key_id(raw),
        "algorithm": algorithm,
        "publicKey": raw,
    }
    if decoded["id"] != key_id(raw):
        raise ValueError(f"key id {decoded['id']} does not match its public key")
    if entry.get("createdAt"):
        created = dt.datetime.fromisoformat(entry["createdAt"])
        if created.tzinfo is None:
            raise ValueError(f"createdAt {entry['createdAt']} has no time zone")
        decoded["createdAt"] = created.astimezone(dt.UTC)
    return decoded


# --------------------------------------------------------- federation keys


def write_signing_key(path: Path, key: Ed25519PrivateKey, passphrase: bytes | None = None) -> None:
    """Write an Ed25519 private key (the federation's): PEM PKCS#8, mode 0600, never overwriting."""
    _write_private(Path(path), [key], passphrase)


def load_signing_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Load an Ed25519 private key written by :func:`write_signing_key`."""
    return _load_signing_file(Path(path), passphrase)


def write_public_key(path: Path, public_raw: bytes) -> None:
    """Write an Ed25519 public key (a trust anchor) as a PEM ``PUBLIC KEY`` file."""
    pem = public_signing_key(public_raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    Path(path).write_bytes(pem)


def load_trust_anchor(path: Path) -> Ed25519PublicKey:
    """Load the federation's public key from a PEM ``PUBLIC KEY`` file.

    Raises :class:`KeyMaterialError` ``keys.missing`` or ``keys.invalid`` (not
    PEM, or not an Ed25519 key).
    """
    path = Path(path)
    data = _read(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyMaterialError(
            f"{path} is not a PEM public key file.", code=Fault.KEYS_INVALID
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyMaterialError(
            f"{path} holds a {type(key).__name__}, not the Ed25519 key a federation signs with.",
            code=Fault.KEYS_INVALID,
        )
    return key


# ------------------------------------------------------------ private files


def _write_private(path: Path, keys: list[Any], passphrase: bytes | None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = b"".join(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        for key in keys
    )
    # Never overwrite a key, which would lose every message sealed for it.
    try:
        write_private_file(path, pem, exclusive=True)
    except FileExistsError:
        raise KeyMaterialError(
            f"{path} already exists; a key is never overwritten.", code=Fault.KEYS_EXISTS
        ) from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyMaterialError(f"{path} does not exist.", code=Fault.KEYS_MISSING) from None
    except OSError as exc:
        raise KeyMaterialError(
            f"{path} cannot be read: {exc.strerror}.", code=Fault.KEYS_MISSING
        ) from None


def _read_private(path: Path) -> bytes:
    try:
        with path.open("rb") as stream:
            # The mode of the file actually opened, not of whatever the name
            # points to a moment later.
            mode = os.fstat(stream.fileno()).st_mode & 0o777
            if os.name == "posix" and mode & 0o077:
                raise KeyMaterialError(
                    f"{path} may be read by other users (mode {mode:04o}); "
                    f"refusing to use it. Run: chmod 600 {path}",
                    code=Fault.KEYS_PERMISSIONS,
                )
            return stream.read()
    except FileNotFoundError:
        raise KeyMaterialError(f"{path} does not exist.", code=Fault.KEYS_MISSING) from None
    except OSError as exc:
        raise KeyMaterialError(
            f"{path} cannot be read: {exc.strerror}.", code=Fault.KEYS_MISSING
        ) from None


def _load_pem_blocks(path: Path, passphrase: bytes | None) -> list[Any]:
    blocks = [match.group(0) for match in _PEM_BLOCK.finditer(_read_private(path))]
    if not blocks:
        raise KeyMaterialError(f"{path} holds no PEM private key.", code=Fault.KEYS_INVALID)
    keys = []
    for block in blocks:
        encrypted = b"BEGIN ENCRYPTED PRIVATE KEY" in block
        if encrypted and not passphrase:
            raise KeyMaterialError(
                f"{path} is protected by a passphrase, and none was given.",
                code=Fault.KEYS_PASSPHRASE,
            )
        if passphrase and not encrypted:
            log.warning("%s is not protected by a passphrase; loading it anyway", path)
        try:
            keys.append(
                serialization.load_pem_private_key(block, passphrase if encrypted else None)
            )
        except ValueError:
            if encrypted:
                raise KeyMaterialError(
                    f"The passphrase does not open {path}.", code=Fault.KEYS_PASSPHRASE
                ) from None
            raise KeyMaterialError(
                f"{path} is not a readable private key.", code=Fault.KEYS_INVALID
            ) from None
        except UnsupportedAlgorithm:
            raise KeyMaterialError(
                f"{path} holds a key of an unsupported kind.", code=Fault.KEYS_INVALID
            ) from None
    return keys


def _load_signing_file(path: Path, passphrase: bytes | None) -> Ed25519PrivateKey:
    keys = _load_pem_blocks(path, passphrase)
    if len(keys) != 1 or not isinstance(keys[0], Ed25519PrivateKey):
        raise KeyMaterialError(
            f"{path} does not hold one Ed25519 private key.", code=Fault.KEYS_INVALID
        )
    return keys[0]


def _load_encryption_file(path: Path, passphrase: bytes | None) -> EncryptionKeyPair:
    keys = _load_pem_blocks(path, passphrase)
    if len(keys) == 1 and isinstance(keys[0], x25519.X25519PrivateKey):
        key = keys[0]
        return EncryptionKeyPair(KEM_X25519, key, key.public_key().public_bytes_raw())
    if (
        len(keys) == 2
        and isinstance(keys[0], mlkem.MLKEM768PrivateKey)
        and isinstance(keys[1], x25519.X25519PrivateKey)
    ):
        return _hybrid_pair(keys[0], keys[1])
    raise KeyMaterialError(
        f"{path} holds neither an X25519 key nor an ML-KEM-768 key followed by an X25519 key.",
        code=Fault.KEYS_INVALID,
    )
