"""The project's exceptions.

Every refusal carries a stable, dotted ``code`` (``xml.doctype``,
``niss.checksum``, ``directory.not_cpas`` ...) that logs, receipts and the
person's report can rely on, and a sentence a person understands. The codes
are the members of :mod:`gateway.model.codes` (strings, with the words a person
reads beside them). Codes are part of the public contract: never rename one,
add a new one instead.
"""

from __future__ import annotations

from gateway.model.codes import Fault, Refusal


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose.

    :param code: stable machine-readable code, e.g. ``schema.invalid``.
    :param message: one sentence for a person, without a traceback.
    """

    code: str = Fault.GATEWAY_ERROR

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class XmlRefused(GatewayError):
    """The bytes are not XML we are willing to parse (DOCTYPE, too big, too deep...)."""

    code = Refusal.XML_MALFORMED


class SchemaInvalid(GatewayError):
    """The document is well-formed XML but does not satisfy its XSD."""

    code = Refusal.SCHEMA_INVALID


class DossierInvalid(GatewayError):
    """The document satisfies the XSD but breaks a rule the XSD cannot express."""

    code = Refusal.DOSSIER_INVALID


class IdentifierInvalid(DossierInvalid):
    """A NISS, BIS or enterprise number with a wrong format or check digits."""

    code = Refusal.IDENTIFIER_INVALID


class DirectoryError(GatewayError):
    """The directory is unsigned, badly signed, unknown to us or inconsistent."""

    code = Fault.DIRECTORY_INVALID


class DestinationRefused(GatewayError):
    """The directory says this institution may not receive a dossier."""

    code = Refusal.DIRECTORY_REFUSED


class KeyMaterialError(GatewayError):
    """A key file is missing, unreadable, of the wrong kind or expired."""

    code = Fault.KEYS_INVALID


class EnvelopeRefused(GatewayError):
    """An envelope failed a check: signature, seal, expiry, replay, recipient..."""

    code = Refusal.ENVELOPE_REFUSED


class AdapterError(GatewayError):
    """A vendor adapter failed; ``transient`` tells whether a retry may help."""

    code = Refusal.ADAPTER_FAILED

    def __init__(self, message: str, *, code: str | None = None, transient: bool = False) -> None:
        super().__init__(message, code=code)
        self.transient = transient


class BrokerError(GatewayError):
    """The broker is unreachable, refused a message or returned it."""

    code = Fault.BROKER_UNAVAILABLE


class ConfigError(GatewayError):
    """A node's configuration file is missing or wrong."""

    code = Fault.CONFIG_INVALID


class StoreUnavailable(GatewayError):
    """The node's store or journal cannot be read or written right now.

    The database is unreachable, restarting or locked by another process, or
    its disk is full: nothing about any message. The node waits and tries
    again; it never spends a delivery attempt on it.
    """

    code = Fault.STORE_UNAVAILABLE
