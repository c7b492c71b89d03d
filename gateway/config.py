"""A node's configuration: one TOML file, with environment overrides.

Example (relative paths are relative to the file)::

    cpas_id = "0201234517"
    store = "state/node.sqlite3"           # or postgresql://... (default: state/<cpas_id>/...)
    journal_retention_days = 730           # the journal sits beside the store by default
    keys = "keys"                          # folder made by `cpas-gateway keys generate`
    directory = "directory.xml"            # the federation's signed directory
    trust_anchor = "federation.pub"        # the federation's public key
    amqp_url = "amqp://cpas-0201234517:secret@mq1:5672/dse,amqp://...@mq2:5672/dse"
    namespace = "dse"

    broker_mode = "provisioned"            # see `cpas-gateway broker provision`
    log_format = "json"                    # or "text"

    [policy]                               # per purpose: auto | hold | two-person-hold | refuse
    new-application-inquiry = "hold"

    [api]                                  # the local API (off without this table)
    listen = "127.0.0.1:8470"              # or: unix_socket = "state/api.sock"

    [adapter]
    name = "ocmwdata"
    options = { url = "postgresql://gateway@vendor-db/ocmw" }

    [broker_tls]                           # for amqps:// addresses
    ca_file = "tls/federation-ca.pem"      # default: the system's CAs
    cert_file = "tls/node.pem"             # mutual TLS: this node's certificate
    key_file = "tls/node.key"              # and its key (passphrase below, or in the env)
    verify_hostname = true
    min_version = "TLSv1.2"

    [log_levels]                           # per component
    "gateway.broker" = "DEBUG"

Without ``store``, a node keeps its state (store and journal) in
``state/<cpas_id>/`` beside the file, so that several nodes configured in one
folder never share a database. A store or journal is recorded as its node's
at creation, and refused to any other node (:mod:`gateway.ownership`).

Every top-level setting can be overridden by an environment variable
``CPAS_GATEWAY_<NAME>``; in particular ``CPAS_GATEWAY_AMQP_URL`` (a
comma-separated list of cluster members) and ``CPAS_GATEWAY_KEY_PASSPHRASE``.
Settings inside a table take a double underscore:
``CPAS_GATEWAY_BROKER_TLS__KEY_PASSPHRASE``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.broker import BrokerTLS, TlsVersion
from gateway.journal import DEFAULT_RETENTION_DAYS
from gateway.model.base import refusal_from
from gateway.model.codes import PolicyAction
from gateway.model.envelope import Purpose
from gateway.model.errors import ConfigError

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
STATE_FOLDER = "state"
"""The folder, beside the configuration file, holding one folder of state per CPAS."""
STORE_FILE = "node.sqlite3"


def amqp_url_from_env() -> str:
    """The broker address(es) from ``CPAS_GATEWAY_AMQP_URL``, or the local default."""
    return os.environ.get("CPAS_GATEWAY_AMQP_URL") or DEFAULT_AMQP_URL


def split_urls(value: str) -> list[str]:
    return [url.strip() for url in value.split(",") if url.strip()]


def default_store(base: Path, cpas_id: object) -> str:
    """A node's default store: ``state/<cpas_id>/node.sqlite3`` in ``base``.

    The folder is named by the CPAS's enterprise number (its ten digits), so
    two nodes configured in one folder never share a store, nor the journal
    beside it.
    """
    digits = "".join(ch for ch in str(cpas_id or "") if "0" <= ch <= "9")
    if len(digits) != 10:
        raise ConfigError(
            f"cpas_id {cpas_id!r} is not an enterprise number of ten digits, so the node "
            "has no default store: set cpas_id (or store)."
        )
    return "sqlite:///" + str(base / STATE_FOLDER / digits / STORE_FILE)


class AdapterConfig(BaseModel):
    """Which vendor adapter this node uses, and its own options."""

    name: str
    options: dict[str, str] = Field(default_factory=dict)


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class BrokerTLSConfig(BaseModel):
    """``[broker_tls]``: how this node verifies the broker and proves who it is (mutual TLS)."""

    model_config = ConfigDict(extra="forbid")

    ca_file: Path | None = None
    """The CA that signed the broker's certificate (PEM); default: the system's CAs."""
    cert_file: Path | None = None
    """This node's client certificate (PEM), when the broker requires one."""
    key_file: Path | None = None
    """Its private key (PEM); default: inside ``cert_file``."""
    key_passphrase: SecretStr | None = None
    """The key's passphrase; better in ``CPAS_GATEWAY_BROKER_TLS__KEY_PASSPHRASE``."""
    verify_hostname: bool = True
    server_name: str | None = None
    """The name the broker's certificate must carry, when not the host of ``amqp_url``."""
    min_version: TlsVersion = "TLSv1.2"

    def settings(self) -> BrokerTLS:
        return BrokerTLS(
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
            key_passphrase=(
                None if self.key_passphrase is None else self.key_passphrase.get_secret_value()
            ),
            verify_hostname=self.verify_hostname,
            server_name=self.server_name,
            min_version=self.min_version,
        )


class ApiConfig(BaseModel):
    """``[api]``: the node's local API for the vendor's software (see docs/api.md).

    Loopback or a unix socket by default; any other address needs TLS
    (``tls_cert_file`` and ``tls_key_file``).
    """

    model_config = ConfigDict(extra="forbid")

    listen: str = "127.0.0.1:8470"
    """``host:port``; port 0 picks a free one."""
    unix_socket: Path | None = None
    """Serve on this unix socket instead of ``listen``."""
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_body_bytes: int = Field(default=65_536, ge=1_024, le=10_485_760)
    """Larger request bodies are refused (``api.body_too_large``) before they are read."""

    @property
    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ConfigError(f"[api] listen {self.listen!r} is not host:port.")
        return host.strip("[]"), int(port)

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    def check(self) -> None:
        """Refuse a listener reachable from the network without TLS."""
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError("[api] needs both tls_cert_file and tls_key_file, or neither.")
        if self.unix_socket is not None or self.tls:
            return
        host, _ = self.host_port
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(
                f"[api] listen {self.listen!r} is reachable from the network: use 127.0.0.1, "
                "a unix socket, or TLS (tls_cert_file, tls_key_file)."
            )


class NodeConfig(BaseSettings):
    """Everything one node needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="CPAS_GATEWAY_", extra="forbid", env_nested_delimiter="__"
    )

    cpas_id: str
    store: str
    keys: Path
    directory: Path
    trust_anchor: Path
    adapter: AdapterConfig
    amqp_url: SecretStr = SecretStr(DEFAULT_AMQP_URL)
    """The broker (a comma-separated list of cluster members); it holds the password."""
    namespace: str = "dse"
    key_passphrase: SecretStr | None = None
    """The passphrase of the node's private keys; better in ``CPAS_GATEWAY_KEY_PASSPHRASE``."""
    delivery_limit: int = Field(default=5, ge=1, le=100)
    """Failed attempts at one message, while the node is healthy, before the node refuses it."""
    prefetch: int = Field(default=64, ge=1, le=10_000)
    import_retry_seconds: float = Field(default=120.0, ge=0)
    request_ttl_seconds: float = Field(default=86_400.0, gt=0)
    broker_mode: Literal["development", "provisioned"] = "development"
    policy: dict[Purpose, PolicyAction] = Field(default_factory=dict)
    """What the node does with a request, by purpose (``auto`` when not named)."""
    journal: str | None = None
    """Where the journal is (URL or path); default: ``journal.sqlite3`` beside the store."""
    journal_secret: Path | None = None
    """The journal's 32-byte secret; default: ``journal.secret`` in the keys folder."""
    journal_head: Path | None = None
    """The journal head's witness file; default: beside the secret."""
    journal_retention_days: int = Field(default=DEFAULT_RETENTION_DAYS, ge=1)
    """How long the content of a dossier sent or received stays readable in the journal."""
    broker_tls: BrokerTLSConfig | None = None
    """TLS to ``amqps://`` brokers; ``None``: the system's CAs and no client certificate."""
    directory_url: str | None = None
    """An ``https://`` address where the federation serves the current signed edition:
    ``run`` polls it besides following the broker's feed."""
    directory_url_ca: Path | None = None
    """The CA that signed that address's certificate; default: the system's CAs."""
    directory_poll_seconds: float = Field(default=300.0, ge=1)
    """How often ``run`` polls ``directory_url``."""
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per line, for a log collector (``run --log-format``)."""
    log_level: LogLevel = "INFO"
    log_levels: dict[str, LogLevel] = Field(default_factory=dict)
    """Per component (logger name), e.g. ``{"gateway.broker" = "DEBUG"}``."""
    api: ApiConfig | None = None
    """The local API for the vendor's software; ``None``: not served."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file: operators override a packaged
        # configuration (broker address, passphrase) without editing it.
        return env_settings, init_settings

    @property
    def amqp_urls(self) -> list[str]:
        return split_urls(self.amqp_url.get_secret_value())

    @property
    def tls(self) -> BrokerTLS | None:
        """The TLS settings for :func:`gateway.broker.connection_parameters`."""
        return None if self.broker_tls is None else self.broker_tls.settings()

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        """Read a TOML file; resolve paths against its folder; raise :class:`ConfigError`."""
        try:
            raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"The configuration file {path} does not exist.") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"The configuration file {path} cannot be read: {exc}.") from None
        base = path.resolve().parent
        for key in (
            "keys",
            "directory",
            "trust_anchor",
            "journal_secret",
            "journal_head",
            "directory_url_ca",
        ):
            if key in raw:
                raw[key] = str(base / raw[key])
        cpas_id = os.environ.get("CPAS_GATEWAY_CPAS_ID") or raw.get("cpas_id")
        if "store" not in raw and not os.environ.get("CPAS_GATEWAY_STORE") and cpas_id:
            raw["store"] = default_store(base, cpas_id)
        api = raw.get("api")
        if isinstance(api, dict):
            for key in ("unix_socket", "tls_cert_file", "tls_key_file"):
                if isinstance(api.get(key), str):
                    api[key] = str(base / api[key])
        tls = raw.get("broker_tls")
        if isinstance(tls, dict):
            for key in ("ca_file", "cert_file", "key_file"):
                if isinstance(tls.get(key), str):
                    tls[key] = str(base / tls[key])
        for key in ("store", "journal"):
            value = raw.get(key)
            if isinstance(value, str) and "://" not in value:
                raw[key] = "sqlite:///" + str(base / value)
        try:
            return cls(**raw)
        except ValidationError as exc:

            def where(loc: tuple[int | str, ...]) -> str:
                return f"{path}: " + ".".join(str(part) for part in loc)

            raise refusal_from(exc, error=ConfigError, where=where) from None
