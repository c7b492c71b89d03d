"""A throw-away certificate authority for a TLS broker on this machine (demo and tests).

:func:`make_local_pki` writes, into one folder, a CA, a server certificate for
the loopback broker (``localhost`` and ``127.0.0.1``) and a client
certificate for a node. :class:`CertificateAuthority` issues more (an expired
one, one for another host) when a test needs it.

Nothing here is for production: a federation's broker uses certificates from
its own PKI (see ``docs/operations.md``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.private_files import write_private_file

LOOPBACK_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class CertificateFiles:
    """A PEM certificate and its PEM private key."""

    cert: Path
    key: Path


class CertificateAuthority:
    """A self-signed CA that issues server and client certificates."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def write_ca(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(
        self,
        folder: Path,
        common_name: str,
        *,
        hosts: tuple[str, ...] = (),
        client: bool = False,
        valid_from: dt.datetime | None = None,
        valid_until: dt.datetime | None = None,
        passphrase: str | None = None,
    ) -> CertificateFiles:
        """Write ``<common_name>.pem`` and ``<common_name>.key`` into ``folder``.

        :param hosts: DNS names and IP addresses a server certificate is for.
        :param client: a client certificate (for mutual TLS) instead of a server one.
        :param passphrase: encrypt the key with it.
        """
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid_from or now - dt.timedelta(hours=1))
            .not_valid_after(valid_until or now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        folder.mkdir(parents=True, exist_ok=True)
        files = CertificateFiles(folder / f"{common_name}.pem", folder / f"{common_name}.key")
        files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase.encode())
            if passphrase
            else serialization.NoEncryption()
        )
        write_private_file(
            files.key,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            ),
        )
        return files


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@dataclass(frozen=True)
class LocalPki:
    """The files of a loopback TLS broker and one node that talks to it."""

    ca: CertificateAuthority
    ca_file: Path
    server: CertificateFiles
    client: CertificateFiles


def make_local_pki(folder: Path, *, client_name: str = "cpas-node") -> LocalPki:
    """A CA, a loopback server certificate and a client certificate, written into ``folder``."""
    ca = CertificateAuthority("CPAS Gateway local CA")
    return LocalPki(
        ca=ca,
        ca_file=ca.write_ca(folder / "ca.pem"),
        server=ca.issue(folder, "broker", hosts=LOOPBACK_NAMES),
        client=ca.issue(folder, client_name, client=True),
    )
