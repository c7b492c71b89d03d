"""How the gateway reaches the broker: one place builds every AMQP connection's parameters.

An ``amqps://`` address is reached over TLS. :class:`BrokerTLS` says how: the
CA that signed the broker's certificate (default: the system's CAs), the
node's own client certificate and key for mutual TLS (the key optionally
protected by a passphrase), whether the broker's host name must match its
certificate, and the oldest TLS version accepted. The node's long-running
client, the command-line tools (dead letters, provisioning) and the demo all
take their parameters from :func:`connection_parameters`, so TLS is set up
once, the same way everywhere.

Failures to connect are translated into :class:`~gateway.model.errors.BrokerError`
with a sentence that says what went wrong and what to check
(:func:`explain_connection_error`), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import ssl
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pika
import pika.exceptions
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from gateway.model.codes import Fault
from gateway.model.errors import BrokerError, ConfigError

TlsVersion = Literal["TLSv1.2", "TLSv1.3"]

_TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True)
class BrokerTLS:
    """How to reach an ``amqps://`` broker.

    :param ca_file: PEM file of the CA(s) that signed the broker's
        certificate; ``None`` trusts the system's CAs.
    :param cert_file: this node's client certificate (PEM), for mutual TLS.
    :param key_file: its private key (PEM); default: inside ``cert_file``.
    :param key_passphrase: the key's passphrase, when it has one.
    :param verify_hostname: the broker's certificate must name the host
        dialled (or ``server_name``); turn off only for a broker reached by an
        address its certificate does not list, and never on an open network.
    :param server_name: the name to expect in the broker's certificate (and
        to send as SNI) instead of the host of the URL.
    :param min_version: the oldest TLS version accepted.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_passphrase: str | None = None
    verify_hostname: bool = True
    server_name: str | None = None
    min_version: TlsVersion = "TLSv1.2"

    def __repr__(self) -> str:
        # The passphrase must never reach a log line or a traceback.
        hidden = "'**********'" if self.key_passphrase else "None"
        return (
            f"BrokerTLS(ca_file={self.ca_file!r}, cert_file={self.cert_file!r}, "
            f"key_file={self.key_file!r}, key_passphrase={hidden}, "
            f"verify_hostname={self.verify_hostname}, server_name={self.server_name!r}, "
            f"min_version={self.min_version!r})"
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the broker and, with a certificate, presents ours.

        :raises ConfigError: a file is missing or unreadable, or the key does
            not open with the passphrase.
        """
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
        except FileNotFoundError:
            raise ConfigError(f"The broker CA file {self.ca_file} does not exist.") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"The broker CA file {self.ca_file} is not a PEM certificate file ({exc})."
            ) from None
        context.minimum_version = _TLS_VERSIONS[self.min_version]
        context.check_hostname = self.verify_hostname
        context.verify_mode = ssl.CERT_REQUIRED
        if self.cert_file is not None:
            self._load_client_certificate(context)
        elif self.key_file is not None:
            raise ConfigError("A broker TLS key_file is configured without its cert_file.")
        return context

    def _load_client_certificate(self, context: ssl.SSLContext) -> None:
        for what, path in (("certificate", self.cert_file), ("key", self.key_file)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"The broker TLS client {what} {path} does not exist.")
        self._check_key_opens()
        try:
            context.load_cert_chain(
                str(self.cert_file),
                str(self.key_file) if self.key_file is not None else None,
                # A callable, so a protected key without a passphrase fails
                # here instead of prompting on the terminal.
                password=lambda: (self.key_passphrase or "").encode(),
            )
        except ssl.SSLError as exc:
            if "key values mismatch" in str(exc).lower():
                reason = "the key does not belong to the certificate"
            else:
                reason = f"it is not a PEM certificate and key ({exc.reason or exc})"
            raise ConfigError(
                f"The broker TLS client key {self.key_file or self.cert_file} cannot be "
                f"used: {reason}."
            ) from None

    def _check_key_opens(self) -> None:
        """Open the key with the passphrase first: OpenSSL's own errors do not say which failed."""
        path = Path(self.key_file or self.cert_file or "")
        password = None if self.key_passphrase is None else self.key_passphrase.encode()
        try:
            serialization.load_pem_private_key(path.read_bytes(), password)
        except TypeError:
            reason = (
                "it is protected by a passphrase and none is configured "
                "(CPAS_GATEWAY_BROKER_TLS__KEY_PASSPHRASE)"
                if password is None
                else "it has no passphrase, but one is configured"
            )
        except ValueError as exc:
            reason = (
                "the passphrase is wrong"
                if password is not None and "password" in str(exc).lower()
                else "it is not a PEM private key"
            )
        except OSError as exc:
            reason = f"it cannot be read ({exc.strerror})"
        else:
            return
        raise ConfigError(f"The broker TLS client key {path} cannot be used: {reason}.")

    def client_certificate_problem(self) -> str:
        """Why a broker that requires client certificates would refuse ours (best guess)."""
        if self.cert_file is None:
            return (
                "it requires a client certificate: set cert_file and key_file under [broker_tls]."
            )
        try:
            certificate = x509.load_pem_x509_certificate(Path(self.cert_file).read_bytes())
        except (OSError, ValueError):
            return f"check the client certificate {self.cert_file}."
        now = dt.datetime.now(dt.UTC)
        if certificate.not_valid_after_utc < now:
            return (
                f"this node's client certificate has expired "
                f"({certificate.not_valid_after_utc:%Y-%m-%d}): renew cert_file under [broker_tls]."
            )
        if certificate.not_valid_before_utc > now:
            return "this node's client certificate is not valid yet: check the clocks."
        if self.ca_file is not None and not _issued_by_any(certificate, Path(self.ca_file)):
            return (
                "this node's client certificate is not signed by a CA the broker trusts; "
                "use the certificate issued for this node by the broker's CA."
            )
        return (
            "it probably refused this node's client certificate (revoked, or not signed by a "
            "CA it trusts); see the broker's log."
        )


def _issued_by_any(certificate: x509.Certificate, ca_file: Path) -> bool:
    try:
        authorities = x509.load_pem_x509_certificates(ca_file.read_bytes())
    except (OSError, ValueError):
        return True  # nothing to compare with: do not accuse the certificate
    for authority in authorities:
        try:
            certificate.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def connection_parameters(
    url: str,
    tls: BrokerTLS | None = None,
    *,
    name: str | None = None,
    heartbeat: int | None = None,
    timeout: float | None = None,
) -> pika.URLParameters:
    """The pika parameters for one broker address, with TLS set up for ``amqps://``.

    :param name: the connection's name in the broker's management UI.
    :param timeout: seconds to wait for the socket, the TLS handshake and the
        AMQP handshake (one attempt); ``None`` keeps pika's defaults.
    :raises ConfigError: TLS is configured for a plain ``amqp://`` address,
        or the TLS files cannot be used.
    """
    params = pika.URLParameters(url)
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "amqps":
        settings = tls or BrokerTLS()
        params.ssl_options = pika.SSLOptions(
            settings.ssl_context(), server_hostname=settings.server_name or params.host
        )
    elif tls is not None:
        raise ConfigError(
            f"TLS settings are configured but the broker address {where(url)} is plain "
            "amqp://; write amqps:// (port 5671) to use them."
        )
    if name is not None:
        params.client_properties = {"connection_name": name}
    if heartbeat is not None:
        params.heartbeat = heartbeat
    if timeout is not None:
        params.connection_attempts = 1
        params.socket_timeout = timeout
        params.stack_timeout = timeout * 2
        params.blocked_connection_timeout = timeout * 4
    return params


def connect(
    urls: Iterable[str], tls: BrokerTLS | None = None, *, timeout: float = 10.0
) -> pika.BlockingConnection:
    """A blocking connection to the first address that answers (tools, not the node's hot path).

    :raises BrokerError: no address answered; the message says why for each.
    """
    reasons = []
    for url in urls:
        params = connection_parameters(url, tls, timeout=timeout)
        try:
            return pika.BlockingConnection(params)
        except (pika.exceptions.AMQPError, OSError) as exc:
            reasons.append(explain_connection_error(url, exc, tls))
    if not reasons:
        raise BrokerError("No broker address is configured.", code=Fault.BROKER_CONFIG)
    error = reasons[-1] if len(reasons) == 1 else _combined(reasons)
    raise error


def _combined(reasons: list[BrokerError]) -> BrokerError:
    return BrokerError(
        "No broker answered: " + " ".join(r.message for r in reasons), code=reasons[-1].code
    )


def where(url: str) -> str:
    """``host:port`` of an address, without its credentials."""
    parsed = urllib.parse.urlparse(url)
    default = 5671 if parsed.scheme == "amqps" else 5672
    return f"{parsed.hostname}:{parsed.port or default}"


def _causes(error: BaseException) -> list[BaseException]:
    """The error and everything it wraps (pika nests the real cause in ``args``)."""
    seen: list[BaseException] = []
    todo = [error]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        nested = getattr(current, "exceptions", None) or ()
        todo += [e for e in nested if isinstance(e, BaseException)]
        inner = getattr(current, "exception", None)
        if isinstance(inner, BaseException):
            todo.append(inner)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return seen


def explain_connection_error(
    url: str, error: BaseException, settings: BrokerTLS | None = None
) -> BrokerError:
    """One sentence for a failed connection attempt: what happened, and what to check.

    :param settings: the TLS settings used, to say which of them the broker refused.
    """
    address = where(url)
    tls = urllib.parse.urlparse(url).scheme == "amqps"
    causes = _causes(error)
    text = " ".join(f"{type(c).__name__}: {c}" for c in causes).lower()

    def refused(message: str, code: str) -> BrokerError:
        return BrokerError(f"The broker at {address} {message}", code=code)

    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            if (
                "hostname mismatch" in str(cause).lower()
                or "ip address mismatch" in str(cause).lower()
            ):
                return refused(
                    "presented a certificate for another host name: connect by the name its "
                    "certificate lists, or set server_name under [broker_tls].",
                    "broker.tls_hostname",
                )
            if "expired" in str(cause).lower():
                return refused(
                    "presented an expired certificate: the broker's operator must renew it.",
                    "broker.tls_server_certificate",
                )
            return refused(
                "presented a certificate this node does not trust: check ca_file under "
                "[broker_tls] (it must be the CA that signed the broker's certificate).",
                "broker.tls_untrusted",
            )
    if tls and "certificate expired" in text:
        return refused(
            "refused this node's client certificate because it has expired: renew "
            "cert_file under [broker_tls].",
            "broker.tls_client_certificate",
        )
    if tls and any(
        alert in text for alert in ("unknown ca", "bad certificate", "unsupported certificate")
    ):
        return refused(
            "refused this node's client certificate: it is not signed by a CA the broker "
            "trusts; use the certificate issued for this node by the broker's CA.",
            "broker.tls_client_certificate",
        )
    if tls and "certificate required" in text:
        return refused(
            "requires a client certificate: set cert_file and key_file under [broker_tls].",
            "broker.tls_client_certificate",
        )
    if tls and ("wrong version number" in text or "record layer failure" in text):
        return refused(
            "does not speak TLS on this port: use the broker's TLS port (usually 5671) or "
            "an amqp:// address.",
            "broker.tls_handshake",
        )
    if tls and ("protocol version" in text or "no protocols available" in text):
        return refused(
            "and this node have no TLS version in common: check min_version under "
            "[broker_tls] against the broker's ssl_options.versions.",
            "broker.tls_handshake",
        )
    if tls and any(isinstance(c, ssl.SSLError) for c in causes):
        return refused(f"refused the TLS handshake ({_first_ssl(causes)}).", "broker.tls_handshake")
    if any(isinstance(c, pika.exceptions.ProbableAuthenticationError) for c in causes) or (
        "access_refused" in text and "login" in text
    ):
        return refused(
            "refused the login: check the user name and password in amqp_url.",
            "broker.access_refused",
        )
    if any(isinstance(c, pika.exceptions.ProbableAccessDeniedError) for c in causes) or (
        "not_allowed" in text and "vhost" in text
    ):
        return refused(
            "refused access to the virtual host in amqp_url: check it exists and the user "
            "has permissions on it.",
            "broker.access_refused",
        )
    closed_early = any(
        isinstance(c, pika.exceptions.IncompatibleProtocolError | pika.exceptions.StreamLostError)
        for c in causes
    )
    if tls and closed_early:
        # With TLS 1.3 the broker checks the client certificate after the
        # handshake and may close before its alert is read: say what is
        # wrong with our certificate, as far as this side can tell.
        problem = (settings or BrokerTLS()).client_certificate_problem()
        return refused(
            f"closed the connection right after the TLS handshake: {problem}",
            "broker.tls_client_certificate",
        )
    if closed_early:
        return refused(
            "closed the connection before the AMQP handshake: if it expects TLS on this "
            "port, write amqps:// in amqp_url.",
            "broker.handshake",
        )
    if "connection refused" in text or "connectionrefused" in text:
        return refused(
            "refuses connections: is RabbitMQ running and listening on this port?",
            "broker.unavailable",
        )
    if "timed out" in text or "timeout" in text:
        return refused(
            "did not answer in time: check the address, the firewall and that the broker runs.",
            "broker.unavailable",
        )
    if "name or service not known" in text or "gaierror" in text:
        return refused("has a host name that does not resolve.", "broker.unavailable")
    last = causes[-1] if causes else error
    return refused(f"is unreachable ({type(last).__name__}: {last}).", "broker.unavailable")


def _first_ssl(causes: list[BaseException]) -> str:
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            return str(cause.reason or cause)
    return "unknown reason"
