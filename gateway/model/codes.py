"""The gateway's vocabulary: every refusal code, outcome and state, typed.

Each member is a string (:class:`enum.StrEnum`), so a code is the same text
on the wire, in the store, in the journal and in logs as it always was: codes
are part of the public contract, never rename one, add a new one instead.

Members that a person may read about carry, beside the code, the words of
their report (``member.words``): an English message id whose French, Dutch
and German translations are in ``gateway/locale/<lang>/LC_MESSAGES/
gateway.po``. The report translates them; a test walks every member through
the report in each language, so a new code without words fails the tests.

- :class:`Refusal` -- why a message, a dossier or a destination was refused:
  what receipts carry, what the journal records and the person's report
  tells.
- :class:`RefusalReason` -- why a response carries no dossier.
- :class:`Outcome` -- what came of a message (in the store and the journal).
- :class:`HeldState` -- where a request held for a social worker stands.
- :class:`PolicyAction` -- what a node does with a request for a purpose.
- :class:`RefusalGround` -- why a social worker refused a held request.
- :class:`Fault` -- what went wrong with the node itself (configuration,
  keys, broker, store): for the people who run it, never in a person's report.
"""

from __future__ import annotations

from enum import StrEnum


def N_(message: str) -> str:
    """Mark a message for translation where it is defined; it is translated where shown."""
    return message


class Worded(StrEnum):
    """A code with the words a person reads beside it (an English message id)."""

    words: str

    def __new__(cls, code: str, words: str = "") -> Worded:
        member = str.__new__(cls, code)
        member._value_ = code
        member.words = words
        return member


_UNREADABLE = N_("the message could not be read")
_NOT_COMMON_FORMAT = N_("the dossier did not follow the common format")
_INCONSISTENT = N_("the dossier contained inconsistent data")
_IDENTIFIER = N_("an identification number in the dossier was not valid")
_VENDOR_FAILED = N_("the software of the CPAS could not import the dossier")
_NO_DOSSIER = N_("the CPAS holds no dossier about you")
_NOT_PROCESSED = N_("the CPAS could not process the message, even after several attempts")
_EXPIRED = N_("no answer came before the request expired")


class Refusal(Worded):
    """Why a message, a dossier or a destination was refused."""

    # The recipient, as the signed directory describes it (before anything leaves).
    DIRECTORY_UNKNOWN = "directory.unknown", N_("the recipient is not in the directory of CPAS")
    DIRECTORY_NOT_CPAS = "directory.not_cpas", N_("the recipient is not a CPAS")
    DIRECTORY_CLOSED = "directory.closed", N_("the recipient CPAS has closed")
    DIRECTORY_MERGED = "directory.merged", N_("the recipient CPAS has merged into another CPAS")
    DIRECTORY_NO_KEY = "directory.no_key", N_("the recipient CPAS has no valid encryption key")
    DIRECTORY_REFUSED = "directory.refused", N_("the recipient may not receive a dossier")
    PURPOSE_NOT_ALLOWED = (
        "purpose.not_allowed",
        N_("the purpose is not one of the legal missions allowed"),
    )
    SEND_UNKNOWN_PERSON = "send.unknown_person", _NO_DOSSIER

    # The envelope: who sent it, to whom, when, sealed and signed.
    ENVELOPE_REFUSED = "envelope.refused", N_("the message was refused")
    ENVELOPE_UNREADABLE = "envelope.unreadable", _UNREADABLE
    ENVELOPE_ENCODING = "envelope.encoding", _UNREADABLE
    ENVELOPE_BODY = "envelope.body", _UNREADABLE
    ENVELOPE_SIGNATURE = "envelope.signature", N_("the sender's signature could not be verified")
    ENVELOPE_EXPIRED = "envelope.expired", N_("the message had expired")
    ENVELOPE_FUTURE = "envelope.future", N_("the message was dated in the future")
    ENVELOPE_REPLAY = "envelope.replay", N_("the message had already been received")
    ENVELOPE_WRONG_RECIPIENT = (
        "envelope.wrong_recipient",
        N_("the message was addressed to another CPAS"),
    )
    ENVELOPE_UNKNOWN_SENDER = (
        "envelope.unknown_sender",
        N_("the sender is not in the directory of CPAS"),
    )
    ENVELOPE_SENDER_NOT_CPAS = "envelope.sender_not_cpas", N_("the sender is not an active CPAS")
    ENVELOPE_BROKER_USER = (
        "envelope.broker_user",
        N_("the message did not come from the CPAS it claims to come from"),
    )
    ENVELOPE_SEAL = "envelope.seal", N_("the sealed content could not be opened")
    KEYS_UNKNOWN_KEY = "keys.unknown_key", N_("the sealed content could not be opened")
    ENVELOPE_TYPE_MISMATCH = (
        "envelope.type_mismatch",
        N_("the content did not match the kind of message"),
    )
    ENVELOPE_TYPE_UNSUPPORTED = (
        "envelope.type_unsupported",
        N_("this kind of message is not handled here"),
    )
    ENVELOPE_UNSOLICITED = "envelope.unsolicited", N_("the answer matched no request")
    RESPONSE_ALREADY_ANSWERED = (
        "response.already_answered",
        N_("the request had already been answered"),
    )
    RECEIPT_ALREADY_RECORDED = (
        "receipt.already_recorded",
        N_("the outcome of the message had already been received"),
    )
    REQUEST_EXPIRED = "request.expired", _EXPIRED
    REQUEST_UNKNOWN_PERSON = "request.unknown_person", _NO_DOSSIER

    # The document: the one hardened parser and the XSD.
    XML_MALFORMED = "xml.malformed", _UNREADABLE
    XML_TOO_LARGE = "xml.too_large", _UNREADABLE
    XML_TOO_DEEP = "xml.too_deep", _UNREADABLE
    XML_ENCODING = "xml.encoding", _UNREADABLE
    XML_DOCTYPE = "xml.doctype", _UNREADABLE
    XML_XINCLUDE = "xml.xinclude", _UNREADABLE
    SCHEMA_INVALID = "schema.invalid", _NOT_COMMON_FORMAT
    SCHEMA_NAMESPACE = "schema.namespace", _NOT_COMMON_FORMAT

    # The dossier: rules the XSD cannot express.
    DOSSIER_INVALID = "dossier.invalid", _INCONSISTENT
    DOSSIER_SOURCE = (
        "dossier.source",
        N_("the dossier named another CPAS as its source than the one that sent it"),
    )
    PERSON_NAME = "person.name", _INCONSISTENT
    PERSON_NUMBER = "person.number", _INCONSISTENT
    PERSON_BIRTH_DATE = "person.birth_date", _INCONSISTENT
    PERSON_BIRTH_DATE_MISMATCH = "person.birth_date_mismatch", _INCONSISTENT
    DECISION_FUTURE = "decision.future", _INCONSISTENT
    DECISION_LEGAL_BASIS = "decision.legal_basis", _INCONSISTENT
    AMOUNT_INVALID = "amount.invalid", _INCONSISTENT
    AMOUNT_NEGATIVE = "amount.negative", _INCONSISTENT
    AMOUNT_PRECISION = "amount.precision", _INCONSISTENT
    AMOUNT_TOO_LARGE = "amount.too_large", _INCONSISTENT
    PERIOD_REVERSED = "period.reversed", _INCONSISTENT
    INQUIRY_FUTURE = "inquiry.future", _INCONSISTENT
    TIME_NAIVE = "time.naive", _INCONSISTENT

    # Identifiers, checked beyond the XSD pattern.
    IDENTIFIER_INVALID = "identifier.invalid", _IDENTIFIER
    NISS_FORMAT = "niss.format", _IDENTIFIER
    NISS_CHECKSUM = "niss.checksum", _IDENTIFIER
    BIS_FORMAT = "bis.format", _IDENTIFIER
    BIS_CHECKSUM = "bis.checksum", _IDENTIFIER
    ENTERPRISE_FORMAT = "enterprise.format", _IDENTIFIER
    ENTERPRISE_CHECKSUM = "enterprise.checksum", _IDENTIFIER

    # The vendor's software, through its adapter.
    ADAPTER_FAILED = "adapter.failed", _VENDOR_FAILED
    ADAPTER_CRASHED = "adapter.crashed", _VENDOR_FAILED
    ADAPTER_UNAVAILABLE = "adapter.unavailable", _VENDOR_FAILED
    ADAPTER_INVALID_DATA = "adapter.invalid_data", _VENDOR_FAILED
    ADAPTER_CONFIG = "adapter.config", _VENDOR_FAILED
    ADAPTER_CLOSED = "adapter.closed", _VENDOR_FAILED
    ADAPTER_NOT_WRITTEN = "adapter.not_written", _VENDOR_FAILED
    ADAPTER_UNKNOWN_PERSON = "adapter.unknown_person", _NO_DOSSIER

    # The node gave up on a message.
    NODE_ATTEMPTS_EXHAUSTED = "node.attempts_exhausted", _NOT_PROCESSED
    NODE_UNEXPECTED_ERROR = "node.unexpected_error", _NOT_PROCESSED
    BROKER_DELIVERY_LIMIT = "broker.delivery_limit", _NOT_PROCESSED


class RefusalReason(Worded):
    """Why a response carries no dossier."""

    UNKNOWN_PERSON = "unknown-person", _NO_DOSSIER
    PURPOSE_NOT_ALLOWED = (
        "purpose-not-allowed",
        N_("the purpose is not one for which this CPAS hands over a dossier"),
    )
    AWAITING_RELEASE = "awaiting-release", N_("a social worker has yet to decide")
    REFUSED_BY_SOCIAL_WORKER = (
        "refused-by-social-worker",
        N_("a social worker decided not to hand over the dossier"),
    )


class Outcome(Worded):
    """What came of a message: a receipt's word, a request's answer, a received message's fate."""

    IMPORTED = "imported", N_("imported")
    REJECTED = "rejected", N_("not imported")
    RECORDED = "recorded", N_("recorded")
    ANSWERED = "answered", N_("answered")
    REFUSED = "refused", N_("refused")
    HELD = "held", N_("waiting for a social worker")
    AWAITING_RELEASE = "awaiting-release", N_("a social worker has yet to decide")
    AWAITING_SECOND_RELEASE = (
        "awaiting-second-release",
        N_("a second social worker has yet to agree"),
    )
    EXPIRED = "expired", _EXPIRED


class HeldState(Worded):
    """Where a request held for a social worker stands."""

    HELD = "held", N_("waiting for a social worker")
    RELEASED = "released", N_("released by a social worker")
    REFUSED = "refused", N_("refused by a social worker")


class PolicyAction(StrEnum):
    """What a node does with a request for a given purpose (its configuration's ``[policy]``)."""

    AUTO = "auto"
    """Answer at once with the dossier (or 'unknown person')."""
    HOLD = "hold"
    """Answer 'awaiting release' and wait for a social worker's decision."""
    TWO_PERSON_HOLD = "two-person-hold"
    """As ``hold``, but two social workers (two distinct staff references) must release."""
    REFUSE = "refuse"
    """Answer 'purpose not allowed'."""

    @property
    def holds(self) -> bool:
        """Whether a social worker decides (``hold`` and ``two-person-hold``)."""
        return self in (PolicyAction.HOLD, PolicyAction.TWO_PERSON_HOLD)

    @property
    def releases_needed(self) -> int:
        """How many distinct social workers must release a held request."""
        return 2 if self is PolicyAction.TWO_PERSON_HOLD else 1


class RefusalGround(Worded):
    """Why a social worker refuses a held request: a closed list, recorded in the journal.

    The requester is told only that a social worker refused
    (``refused-by-social-worker``); the ground stays in this CPAS's journal
    and the person's report.
    """

    OUTSIDE_LEGAL_MISSION = (
        "outside-legal-mission",
        N_("the request does not fall within the requester's legal missions"),
    )
    REQUESTER_NOT_COMPETENT = (
        "requester-not-competent",
        N_("the requesting CPAS is not the one competent for you"),
    )
    IDENTITY_UNCERTAIN = (
        "identity-uncertain",
        N_("the person asked about could not be identified with certainty"),
    )


class Fault(StrEnum):
    """What went wrong with the node itself: for the people who run it."""

    GATEWAY_ERROR = "gateway.error"
    USAGE_INVALID = "usage.invalid"
    NODE_FAILED = "node.failed"
    CONFIG_INVALID = "config.invalid"
    FILE_UNREADABLE = "file.unreadable"
    SCHEMA_UNAVAILABLE = "schema.unavailable"
    PENDING_UNKNOWN = "pending.unknown"
    PREFLIGHT_FAILED = "preflight.failed"
    KEYS_INVALID = "keys.invalid"
    KEYS_MISSING = "keys.missing"
    KEYS_EXISTS = "keys.exists"
    KEYS_PERMISSIONS = "keys.permissions"
    KEYS_PASSPHRASE = "keys.passphrase"
    KEYS_KEM_UNKNOWN = "keys.kem_unknown"
    DIRECTORY_INVALID = "directory.invalid"
    DIRECTORY_INPUT = "directory.input"
    DIRECTORY_UNSIGNED = "directory.unsigned"
    DIRECTORY_SIGNATURE = "directory.signature"
    DIRECTORY_ROLLBACK = "directory.rollback"
    DIRECTORY_SEEN = "directory.seen"
    DIRECTORY_KEY_ALGORITHM = "directory.key_algorithm"
    DIRECTORY_KEY_ID = "directory.key_id"
    DIRECTORY_KEY_VALIDITY = "directory.key_validity"
    DIRECTORY_MERGED_INTO = "directory.merged_into"
    DIRECTORY_DUPLICATE_ID = "directory.duplicate_id"
    DIRECTORY_DUPLICATE_KEY = "directory.duplicate_key"
    BROKER_UNAVAILABLE = "broker.unavailable"
    BROKER_CONFIG = "broker.config"
    BROKER_CLOSED = "broker.closed"
    BROKER_CONNECTION_LOST = "broker.connection_lost"
    BROKER_CHANNEL = "broker.channel"
    BROKER_ACCESS_REFUSED = "broker.access_refused"
    BROKER_NOT_PROVISIONED = "broker.not_provisioned"
    BROKER_UNROUTABLE = "broker.unroutable"
    BROKER_NACK = "broker.nack"
    BROKER_MANAGEMENT = "broker.management"
    BROKER_TLS_UNTRUSTED = "broker.tls_untrusted"
    STORE_UNAVAILABLE = "store.unavailable"
    STORE_OTHER_NODE = "store.other_node"
    JOURNAL_UNAVAILABLE = "journal.unavailable"
    JOURNAL_OTHER_NODE = "journal.other_node"
    JOURNAL_HEAD_INVALID = "journal.head_invalid"
    ADAPTER_UNKNOWN = "adapter.unknown"
    ADAPTER_DUPLICATE = "adapter.duplicate"
    ADAPTER_START = "adapter.start"
    ADAPTER_HOOK_UNKNOWN = "adapter.hook_unknown"
    ADAPTER_NAME = "adapter.name"
    ADAPTER_FOLDER = "adapter.folder"
    REPORT_LANGUAGE = "report.language"
    REPORT_FORMAT = "report.format"
    REPORT_UNREADABLE = "report.unreadable"
    REPORT_UNSIGNED = "report.unsigned"
    REPORT_UNTRUSTED_KEY = "report.untrusted_key"
    REPORT_UNCOVERED = "report.uncovered"
    REPORT_SIGNATURE = "report.signature"
    STORE_TOO_NEW = "store.too_new"
    JOURNAL_TOO_NEW = "journal.too_new"
    API_TOO_NEW = "api.too_new"
    CONFIG_DIRECTORY_URL = "config.directory_url"
    CONFIG_TENANTS = "config.tenants"
    CONFIG_TENANTS_ENV = "config.tenants_env"
    CONFIG_TENANTS_SHARE = "config.tenants_share"
    CONFIG_TENANTS_DIFFER = "config.tenants_differ"
    DIRECTORY_FETCH = "directory.fetch"
    DIRECTORY_FETCH_UNTRUSTED = "directory.fetch_untrusted"
    BROKER_REFUSED = "broker.refused"
    BACKUP_EXISTS = "backup.exists"
    BACKUP_FAILED = "backup.failed"
    BACKUP_INVALID = "backup.invalid"
    BACKUP_RESTORE_OVER = "backup.restore_over"
    STAFF_MISSING = "staff.missing"
    STAFF_INVALID = "staff.invalid"
    STAFF_LOOKS_PERSONAL = "staff.looks_personal"
    HOLD_OWN_REQUEST = "hold.own_request"
    HOLD_SAME_STAFF = "hold.same_staff"
    MESSAGE_UNKNOWN = "message.unknown"
    API_LISTEN = "api.listen"
    API_UNAUTHENTICATED = "api.unauthenticated"
    API_TOKEN_INVALID = "api.token_invalid"
    API_TOKEN_REVOKED = "api.token_revoked"
    API_TOKEN_OTHER_NODE = "api.token_other_node"
    API_CLIENT_NAME = "api.client_name"
    API_UNKNOWN_SCOPE = "api.unknown_scope"
    API_NO_CLIENT = "api.no_client"
    API_FORBIDDEN = "api.forbidden"
    API_MALFORMED = "api.malformed"
    API_INVALID = "api.invalid"
    API_NOT_FOUND = "api.not_found"
    API_METHOD = "api.method"
    API_BODY_TOO_LARGE = "api.body_too_large"
    API_ERROR = "api.error"
    API_INTERNAL = "api.internal"
    DESK_CSRF = "desk.csrf"
    DESK_SIGNED_OUT = "desk.signed_out"
