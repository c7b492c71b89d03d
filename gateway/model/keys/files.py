"""Key files: a node's key folder, the federation's keys, private key files."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.model.codes import Fault
from gateway.model.errors import KeyMaterialError
from gateway.model.keys.material import (
    ENCRYPTION_PREFIX,
    KEM_X25519,
    KEY_SUFFIX,
    PEM_BLOCK,
    PUBLIC_FILE,
    SIGNING_ALGORITHM,
    SIGNING_FILE,
    EncryptionKeyPair,
    NodeKeys,
    generate_encryption_parts,
    generate_signing_key,
    hybrid_pair,
    key_id,
    public_encryption_key,
    public_signing_key,
    signing_public_raw,
)
from gateway.private_files import write_private_file

log = logging.getLogger(__name__)

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
    pair, parts = generate_encryption_parts(kem)
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
    blocks = [match.group(0) for match in PEM_BLOCK.finditer(_read_private(path))]
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
        return hybrid_pair(keys[0], keys[1])
    raise KeyMaterialError(
        f"{path} holds neither an X25519 key nor an ML-KEM-768 key followed by an X25519 key.",
        code=Fault.KEYS_INVALID,
    )
