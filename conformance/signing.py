"""A federation's signature on a conformance report: the whole published set.

The federation signs, with its Ed25519 key (the same kind of key that signs
the directory), a manifest of the SHA-256 of every file it publishes:
``report.json``, ``report.html`` and ``junit.xml``. The signature sits beside
the report in ``report.json.sig``, a small JSON document::

    {"algorithm": "ed25519", "keyId": "1a2b3c4d5e6f7a8b",
     "files": {"junit.xml": "…", "report.html": "…", "report.json": "…"},
     "signature": "<base64>"}

The signed bytes are the manifest itself, ``{"files": …, "keyId": …}`` as
JSON with sorted keys and no spaces. ``keyId`` is the project's key id of the
public key (16 hex digits of the SHA-256 of its raw bytes). Anyone holding the
federation's public key (its trust anchor, a PEM file) can check that every
published file is the one the federation signed, byte for byte: a page edited
to say "Conformant" is refused as surely as an edited ``report.json``.
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

from gateway.model import keys
from gateway.model.codes import Fault
from gateway.model.errors import GatewayError

ALGORITHM: Final = "ed25519"
SUFFIX: Final = ".sig"
PUBLISHED: Final = ("report.json", "report.html", "junit.xml")
"""The files a signature covers, all in the report's folder."""


class ReportSignatureError(GatewayError):
    """A report's signature is missing, malformed, by another key, or does not match."""

    code = Fault.REPORT_SIGNATURE


@dataclass(frozen=True)
class Signature:
    """What ``report.json.sig`` says: the key, the files and their digests, the signature."""

    key_id: str
    files: dict[str, str]
    signature: bytes

    def signed_bytes(self) -> bytes:
        """The manifest's bytes, as signed."""
        return manifest_bytes(self.key_id, self.files)


def manifest_bytes(key_id: str, files: dict[str, str]) -> bytes:
    """The bytes a federation signs: the key id and every file's SHA-256, canonical JSON."""
    return json.dumps(
        {"files": files, "keyId": key_id}, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in PUBLISHED}


def signature_path(report: Path) -> Path:
    """Where the signature of ``report`` lives: beside it, with ``.sig`` added."""
    return report.with_name(report.name + SUFFIX)


def sign_report(report: Path, key: Ed25519PrivateKey) -> Path:
    """Sign ``report`` and the other published files beside it; return the signature's path."""
    key_id = keys.key_id(keys.signing_public_raw(key))
    files = _digests(report.parent)
    document = {
        "algorithm": ALGORITHM,
        "keyId": key_id,
        "files": files,
        "signature": base64.b64encode(key.sign(manifest_bytes(key_id, files))).decode("ascii"),
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
            f"{path} does not exist: the report is not signed.", code=Fault.REPORT_UNSIGNED
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportSignatureError(f"{path} is not a signature file ({exc}).") from None
    try:
        if document["algorithm"] != ALGORITHM:
            raise ReportSignatureError(
                f"{path} uses {document['algorithm']!r}; only {ALGORITHM} is accepted."
            )
        files = document["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
        return Signature(
            key_id=str(document["keyId"]),
            files={str(name): str(digest) for name, digest in files.items()},
            signature=base64.b64decode(document["signature"], validate=True),
        )
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ReportSignatureError(
            f"{path} is not a signature of this suite's reports ({exc}): it must cover "
            f"{', '.join(PUBLISHED)}."
        ) from None


def verify_report(report: Path, trust_anchor: Path, signature: Path | None = None) -> Signature:
    """Check that ``report`` and the files published with it are what the federation signed.

    :raises ReportSignatureError: unsigned, signed by another key, a published file
        missing from the signature, or any of them changed since.
    :raises gateway.model.errors.KeyMaterialError: the trust anchor cannot be read.
    """
    anchor = keys.load_trust_anchor(trust_anchor)
    anchor_id = keys.key_id(anchor.public_bytes_raw())
    signed = read_signature(signature or signature_path(report))
    if signed.key_id != anchor_id:
        raise ReportSignatureError(
            f"The report is signed by key {signed.key_id}, not by the trusted key {anchor_id}.",
            code=Fault.REPORT_UNTRUSTED_KEY,
        )
    try:
        anchor.verify(signed.signature, signed.signed_bytes())
    except InvalidSignature:
        raise ReportSignatureError(
            "The signature does not match its list of files: it was altered, or it belongs "
            "to another report."
        ) from None
    uncovered = [name for name in PUBLISHED if name not in signed.files]
    if uncovered:
        raise ReportSignatureError(
            f"The signature does not cover {', '.join(uncovered)}.", code=Fault.REPORT_UNCOVERED
        )
    # report.json first: the record itself, then the files published beside it.
    for name, digest in sorted(signed.files.items(), key=lambda item: item[0] != report.name):
        path = report if name == report.name else report.parent / name
        try:
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise ReportSignatureError(
                f"{path} cannot be read: {exc.strerror or exc}.", code=Fault.REPORT_UNREADABLE
            ) from None
        if actual != digest:
            raise ReportSignatureError(
                f"{path} was changed after the report was signed: it is not what the "
                "federation published."
            )
    return signed
