"""A federation's signature on a conformance report.

The federation signs the exact bytes of ``report.json`` with its Ed25519 key
(the same kind of key that signs the directory). The signature sits beside
the report in ``report.json.sig``, a small JSON document::

    {"algorithm": "ed25519", "keyId": "1a2b3c4d5e6f7a8b",
     "file": "report.json", "sha256": "…", "signature": "<base64>"}

``keyId`` is the project's key id of the public key (16 hex digits of the
SHA-256 of its raw bytes). Anyone holding the federation's public key (its
trust anchor, a PEM file) can check that the published report is the one the
federation signed, byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import keys
from gateway.errors import GatewayError

ALGORITHM: Final = "ed25519"
SUFFIX: Final = ".sig"


class ReportSignatureError(GatewayError):
    """A report's signature is missing, malformed, by another key, or does not match."""

    code = "report.signature"


@dataclass(frozen=True)
class Signature:
    """What ``report.json.sig`` says."""

    key_id: str
    file: str
    sha256: str
    signature: bytes


def signature_path(report: Path) -> Path:
    """Where the signature of ``report`` lives: beside it, with ``.sig`` added."""
    return report.with_name(report.name + SUFFIX)


def sign_report(report: Path, key: Ed25519PrivateKey) -> Path:
    """Sign the bytes of ``report`` and write the signature beside it; return its path."""
    data = report.read_bytes()
    document = {
        "algorithm": ALGORITHM,
        "keyId": keys.key_id(keys.signing_public_raw(key)),
        "file": report.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "signature": base64.b64encode(key.sign(data)).decode("ascii"),
    }
    path = signature_path(report)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def read_signature(path: Path) -> Signature:
    """Read a signature file; :class:`ReportSignatureError` when absent or malformed."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportSignatureError(
            f"{path} does not exist: the report is not signed.", code="report.unsigned"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportSignatureError(f"{path} is not a signature file ({exc}).") from None
    try:
        if document["algorithm"] != ALGORITHM:
            raise ReportSignatureError(
                f"{path} uses {document['algorithm']!r}; only {ALGORITHM} is accepted."
            )
        return Signature(
            key_id=str(document["keyId"]),
            file=str(document["file"]),
            sha256=str(document["sha256"]),
            signature=base64.b64decode(document["signature"], validate=True),
        )
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ReportSignatureError(f"{path} is not a signature file ({exc}).") from None


def verify_report(report: Path, trust_anchor: Path, signature: Path | None = None) -> Signature:
    """Check that ``report`` is, byte for byte, what the trusted federation key signed.

    :raises ReportSignatureError: unsigned, signed by another key, or changed since.
    :raises gateway.errors.KeyMaterialError: the trust anchor cannot be read.
    """
    anchor = keys.load_trust_anchor(trust_anchor)
    anchor_id = keys.key_id(anchor.public_bytes_raw())
    signed = read_signature(signature or signature_path(report))
    if signed.key_id != anchor_id:
        raise ReportSignatureError(
            f"The report is signed by key {signed.key_id}, not by the trusted key {anchor_id}.",
            code="report.untrusted_key",
        )
    try:
        data = report.read_bytes()
    except OSError as exc:
        raise ReportSignatureError(
            f"{report} cannot be read: {exc.strerror or exc}.", code="report.unreadable"
        ) from None
    try:
        anchor.verify(signed.signature, data)
    except InvalidSignature:
        raise ReportSignatureError(
            f"The signature does not match {report}: the report was changed after it was "
            "signed, or the signature belongs to another report."
        ) from None
    return signed
