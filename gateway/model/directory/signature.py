"""The federation's signature over an edition, and the one way a node reads a directory."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from lxml import etree

from gateway.model import hardened_xml, keys
from gateway.model.codes import Fault
from gateway.model.directory.edition import NS, Directory, sub
from gateway.model.errors import DirectoryError

log = logging.getLogger(__name__)


def signed_form(root: etree._Element) -> bytes:
    """The bytes the federation signs: C14N 2.0 (trimmed text, no comments) without the signature.

    ``root`` must not hold a ``signature`` element; :func:`load_directory`
    removes it before calling this.
    """
    return etree.tostring(root, method="c14n2", with_comments=False, strip_text=True)


def sign_directory(directory: Directory, federation_key: Ed25519PrivateKey) -> bytes:
    """Sign ``directory`` with the federation's key; return the signed XML document."""
    root = directory.to_element()
    signature = federation_key.sign(signed_form(root))
    el = sub(root, "signature", base64.b64encode(signature).decode("ascii"))
    el.set("keyId", keys.key_id(keys.signing_public_raw(federation_key)))
    el.set("algorithm", keys.SIGNING_ALGORITHM)
    log.info(
        "signed directory edition %s (%d institutions) with key %s",
        directory.serial,
        len(directory.institutions),
        el.get("keyId"),
    )
    return hardened_xml.to_bytes(root)


def load_directory(
    data: bytes, trust_anchor: Ed25519PublicKey, *, min_serial: int | None = None
) -> Directory:
    """Parse, validate and verify a signed directory; the only way a node should read one.

    Raises :class:`~gateway.model.errors.XmlRefused` or :class:`~gateway.model.errors.SchemaInvalid`
    for bad XML, :class:`DirectoryError` ``directory.unsigned`` when there is no
    signature, ``directory.signature`` when it was not made by the trust
    anchor over exactly this content, ``directory.rollback`` when its serial
    is lower than ``min_serial`` (an older edition replayed), and the model's
    own codes for inconsistent content.
    """
    root = hardened_xml.parse(data)
    hardened_xml.validate(root, "directory.xsd")
    signature = root.find(NS + "signature")
    if signature is None:
        raise DirectoryError(
            "The directory is not signed; a node accepts only a directory signed by "
            "its federation.",
            code=Fault.DIRECTORY_UNSIGNED,
        )
    anchor_id = keys.key_id(trust_anchor.public_bytes_raw())
    signer_id = signature.get("keyId")
    if signer_id != anchor_id:
        raise DirectoryError(
            f"The directory is signed with key {signer_id}, but this node trusts only "
            f"the federation key {anchor_id}.",
            code=Fault.DIRECTORY_SIGNATURE,
        )
    value = hardened_xml.canonical_base64((signature.text or "").strip())
    if value is None:
        raise DirectoryError(
            "The directory's signature is not canonical base64.", code=Fault.DIRECTORY_SIGNATURE
        )
    root.remove(signature)
    try:
        trust_anchor.verify(value, signed_form(root))
    except InvalidSignature:
        raise DirectoryError(
            "The directory's signature does not match its content: "
            "it was changed after the federation signed it.",
            code=Fault.DIRECTORY_SIGNATURE,
        ) from None
    directory = Directory.from_element(root)
    check_not_older(directory, min_serial)
    log.info(
        "loaded directory edition %s of %s (%d institutions)",
        directory.serial,
        directory.issuer,
        len(directory.institutions),
    )
    return directory


def check_not_older(directory: Directory, min_serial: int | None) -> None:
    """Refuse (``directory.rollback``) an edition older than ``min_serial``.

    An old edition is genuinely signed: replayed, it could list a key or a
    CPAS the federation has since removed.
    """
    if min_serial is not None and directory.serial < min_serial:
        raise DirectoryError(
            f"This is edition {directory.serial} of the directory, older than edition "
            f"{min_serial} already in use; an older edition is never taken back.",
            code=Fault.DIRECTORY_ROLLBACK,
        )


class SeenEdition:
    """The newest directory edition a tool accepted, kept in a small file.

    ``run`` keeps it in the node's store; ``directory verify`` in a file per
    trust anchor under the user's state folder (``$XDG_STATE_HOME``,
    default ``~/.local/state``), so that an older edition presented later is
    refused as ``run`` would refuse it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_anchor(cls, trust_anchor: Path) -> SeenEdition:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        anchor_id = keys.key_id(keys.load_trust_anchor(trust_anchor).public_bytes_raw())
        return cls(Path(state) / "cpas-gateway" / f"directory-{anchor_id}.serial")

    @property
    def serial(self) -> int:
        """The newest serial seen; 0 when none was."""
        try:
            return int(self.path.read_text(encoding="ascii").strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise DirectoryError(
                f"The record of the last directory edition seen ({self.path}) is unreadable: "
                f"{exc}.",
                code=Fault.DIRECTORY_SEEN,
            ) from None

    def remember(self, serial: int) -> None:
        """Record ``serial`` if it is newer than the one kept."""
        if serial <= self.serial:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(f"{serial}\n", encoding="ascii")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise DirectoryError(
                f"The last directory edition seen cannot be recorded in {self.path}: {exc}.",
                code=Fault.DIRECTORY_SEEN,
            ) from None


def load_directory_file(
    path: Path, trust_anchor: Path, *, min_serial: int | None = None
) -> Directory:
    """:func:`load_directory` for a file, verified against the trust anchor in a file."""
    anchor = keys.load_trust_anchor(trust_anchor)
    return load_directory(hardened_xml.read_file(Path(path)), anchor, min_serial=min_serial)


def read_unsigned(data: bytes) -> Directory:
    """Parse and validate a directory *without* checking any signature, to build or re-sign it.

    Never use this to decide where a dossier may go: use :func:`load_directory`.
    """
    root = hardened_xml.parse(data)
    hardened_xml.validate(root, "directory.xsd")
    return Directory.from_element(root)
