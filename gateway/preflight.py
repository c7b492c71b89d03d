"""The preflight: everything a node needs, checked before it runs.

``cpas-gateway check --config FILE`` prints one line per check, with the fix
when it fails; ``cpas-gateway run`` runs the same checks first and refuses
to start on a failure. A wrong passphrase, an unreadable directory, a broker
user with too few (or too many) permissions or an adapter that does not load
is found here, not when the first message fails.

The checks, in order (a failure may make the later ones pointless; they are
then reported as skipped): configuration; node keys and passphrase; the
store and the journal at this release's schema (migrated, as ``run`` would,
refused when a newer release wrote them); the directory's signature and
edition (the configured file, or a newer edition the node received live);
this CPAS present, active and listed with this node's keys; the broker's
TLS settings; the broker reachable and the login accepted; the broker
permissions, exactly what the node needs; the store and the journal
writable; the adapter loadable and answering.

Broker permissions are read from the management API when an administrator's
management URL is given (compared with what ``broker provision`` grants);
otherwise they are probed over AMQP: the node's user must reach its
topology, publish to the routing exchange and read its own queues, and must
be refused configuring anything, reading another CPAS's inbox and publishing
to another exchange. On a broker in development mode (the node declares its
own topology) the permissions are not confined: that is reported as a
warning, which does not fail the preflight.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from gateway.adapters import AdapterRegistry, load_adapters
from gateway.broker import Names
from gateway.broker_connection import connect
from gateway.config import NodeConfig
from gateway.database import migrate_database
from gateway.directory_feed import current_edition
from gateway.journal import SCHEMA as journal_schema
from gateway.journal import JournalSettings
from gateway.migrations import summary as migration_summary
from gateway.model.directory import (
    Directory,
    InstitutionKind,
    InstitutionStatus,
    load_directory_file,
)
from gateway.model.errors import AdapterError, ConfigError, GatewayError
from gateway.model.identifiers import make_niss
from gateway.model.keys import NodeKeys, load_node_keys
from gateway.provision import ManagementApi, permissions_for
from gateway.store import SCHEMA as store_schema
from gateway.store import Store

PREFLIGHT_META = "preflight.last"
"""The store's meta key the store check writes (and reads back)."""

PROBE_PERSON = make_niss(dt.date(1900, 1, 1), 997)
"""A valid national number nobody holds: the adapter is asked for it and must answer."""


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """The result of one check: what was checked, how it went, and the fix when it failed."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass
class Preflight:
    """All the checks of one node, in the order they ran."""

    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.status in (Status.OK, Status.WARN) for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.FAIL]


class _Failed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


class _Warned(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class _State:
    """What the earlier checks found, for the later ones."""

    config: NodeConfig | None = None
    keys: NodeKeys | None = None
    directory: Directory | None = None
    broker_ok: bool = False


def run_preflight(
    config_path: Path,
    *,
    management_url: str | None = None,
    management_ca: Path | None = None,
    adapters: AdapterRegistry | None = None,
) -> Preflight:
    """Run every check for the node configured in ``config_path``.

    :param management_url: an administrator's management API URL, to read the
        node user's permissions exactly; without it they are probed over AMQP.
    """
    state = _State()
    result = Preflight()
    steps: list[tuple[str, Callable[[], str], Callable[[], bool]]] = [
        ("configuration", lambda: _configuration(state, config_path), lambda: True),
        ("node keys", lambda: _keys(state), lambda: state.config is not None),
        # Before the directory: it reads the edition the store keeps.
        ("store migrated", lambda: _migrated(state), lambda: state.config is not None),
        ("directory", lambda: _directory(state), lambda: state.config is not None),
        (
            "this CPAS in the directory",
            lambda: _listed(state),
            lambda: state.directory is not None and state.keys is not None,
        ),
        ("broker TLS", lambda: _tls(state), lambda: state.config is not None),
        ("broker", lambda: _broker(state), lambda: state.config is not None),
        (
            "broker permissions",
            lambda: _permissions(state, management_url, management_ca),
            lambda: state.broker_ok,
        ),
        ("store and journal", lambda: _store(state), lambda: state.config is not None),
        ("adapter", lambda: _adapter(state, adapters), lambda: state.config is not None),
    ]
    for name, step, possible in steps:
        if not possible():
            result.checks.append(Check(name, Status.SKIPPED, "not checked: see above"))
            continue
        try:
            detail = step()
        except _Failed as failed:
            result.checks.append(Check(name, Status.FAIL, failed.detail, failed.fix))
        except _Warned as warned:
            result.checks.append(Check(name, Status.WARN, warned.detail))
        else:
            result.checks.append(Check(name, Status.OK, detail))
    return result


# --------------------------------------------------------------------- checks


def _configuration(state: _State, path: Path) -> str:
    try:
        state.config = NodeConfig.load(path)
    except GatewayError as exc:
        raise _Failed(exc.message, f"correct {path} (see docs/operations.md)") from None
    return f"{path}: CPAS {state.config.cpas_id}, broker mode {state.config.broker_mode}"


def _keys(state: _State) -> str:
    config = _config(state)
    passphrase = (
        None if config.key_passphrase is None else config.key_passphrase.get_secret_value().encode()
    )
    try:
        state.keys = load_node_keys(config.keys, passphrase)
    except GatewayError as exc:
        fix = (
            "set CPAS_GATEWAY_KEY_PASSPHRASE to the passphrase the keys were made with"
            if "passphrase" in exc.message.lower()
            else f"make the node's keys with `cpas-gateway keys generate --out {config.keys}`"
        )
        raise _Failed(exc.message, fix) from None
    return (
        f"{config.keys}: signing key {state.keys.signing_key_id}, "
        f"{len(state.keys.encryption)} encryption key(s)"
    )


def _directory(state: _State) -> str:
    config = _config(state)
    store = None
    with contextlib.suppress(GatewayError, OSError, ValueError):
        store = Store(config.store)
    try:
        if store is None:  # the store check says why
            state.directory = load_directory_file(config.directory, config.trust_anchor)
        else:
            # As `run` does: the edition received live, when newer than the file.
            state.directory = current_edition(
                store, config.directory, config.trust_anchor, remember=False
            )
    except GatewayError as exc:
        raise _Failed(
            exc.message,
            "install the federation's latest signed directory and its trust anchor "
            "(`cpas-gateway directory verify` shows what is wrong)",
        ) from None
    finally:
        _close(store)
    directory = state.directory
    return (
        f"edition {directory.serial} of {directory.issued_at:%Y-%m-%d}, signature verified, "
        f"{len(directory.institutions)} institutions"
    )


def _listed(state: _State) -> str:
    config, directory, keys = _config(state), state.directory, state.keys
    assert directory is not None and keys is not None
    institution = directory.get(config.cpas_id)
    ask = "ask the federation to list it (or correct cpas_id)"
    if institution is None:
        raise _Failed(f"{config.cpas_id} is not in the directory.", ask)
    if institution.kind is not InstitutionKind.CPAS:
        raise _Failed(f"{config.cpas_id} is listed as {institution.kind.value}, not a CPAS.", ask)
    if institution.status is not InstitutionStatus.ACTIVE:
        raise _Failed(
            f"{config.cpas_id} is {institution.status.value} in the directory: it may not "
            "send or receive.",
            "use the configuration of the CPAS that succeeds it",
        )
    now = dt.datetime.now(dt.UTC)
    listed_signing = {
        k.key_id for k in institution.signing_keys if k.valid_from <= now < k.valid_until
    }
    listed_encryption = {
        k.key_id for k in institution.encryption_keys if k.valid_from <= now < k.valid_until
    }
    send_keys = "send this node's public keys (keys/public.json) to the federation"
    if keys.signing_key_id not in listed_signing:
        raise _Failed(
            f"the directory lists no valid signing key {keys.signing_key_id} for this CPAS: "
            "its messages would be refused.",
            send_keys,
        )
    if not listed_encryption & set(keys.encryption):
        raise _Failed(
            "the directory lists none of this node's encryption keys: nobody could seal "
            "a dossier for it.",
            send_keys,
        )
    return f"{institution.name('fr')}: active CPAS, this node's keys listed"


def _tls(state: _State) -> str:
    config = _config(state)
    tls_urls = [u for u in config.amqp_urls if urllib.parse.urlparse(u).scheme == "amqps"]
    if not tls_urls:
        if config.broker_tls is not None:
            raise _Failed(
                "[broker_tls] is set but amqp_url is plain amqp://.",
                "write amqps:// (port 5671) in amqp_url, or remove [broker_tls]",
            )
        raise _Warned("plain amqp://: the broker traffic is not encrypted (fine on loopback)")
    settings = config.tls
    if settings is None:
        return "amqps://, the system's CAs, no client certificate"
    try:
        settings.ssl_context()
    except GatewayError as exc:
        raise _Failed(exc.message, "correct [broker_tls] in the configuration") from None
    mutual = "with client certificate" if settings.cert_file else "without client certificate"
    return f"amqps://, CA {settings.ca_file or 'of the system'}, {mutual}, {settings.min_version}+"


def _broker(state: _State) -> str:
    config = _config(state)
    try:
        connection = connect(config.amqp_urls, config.tls, timeout=5)
    except GatewayError as exc:
        raise _Failed(
            exc.message, "see the sentence above; `docs/operations.md` shows the broker setup"
        ) from None
    connection.close()
    state.broker_ok = True
    return f"{len(config.amqp_urls)} address(es); login {_user(config)} accepted"


def _permissions(state: _State, management_url: str | None, management_ca: Path | None) -> str:
    config = _config(state)
    names = Names(config.namespace)
    if config.broker_mode == "development":
        raise _Warned(
            "development mode: the node declares its own topology, so its broker user "
            'is not confined (set broker_mode = "provisioned" after `cpas-gateway broker '
            "provision` for production)"
        )
    if management_url:
        return _permissions_from_api(config, names, management_url, management_ca)
    return _permissions_over_amqp(config, names)


def _permissions_from_api(
    config: NodeConfig, names: Names, management_url: str, ca_file: Path | None
) -> str:
    api = ManagementApi(management_url, ca_file=ca_file)
    vhost = urllib.parse.unquote(urllib.parse.urlparse(config.amqp_urls[0]).path[1:] or "/")
    user = _user(config)
    try:
        granted = api.permissions(vhost, user)
    except GatewayError as exc:
        raise _Failed(
            exc.message, "check --management-url (an administrator of the broker)"
        ) from None
    wanted = permissions_for(config.cpas_id, names)
    fix = "run `cpas-gateway broker provision` again: it sets exactly these permissions"
    if granted is None:
        raise _Failed(f"{user} has no permissions on virtual host {vhost}.", fix)
    differences = [
        f"{kind} is {granted.get(kind)!r}, should be {getattr(wanted, kind)!r}"
        for kind in ("configure", "write", "read")
        if granted.get(kind) != getattr(wanted, kind)
    ]
    if differences:
        raise _Failed(f"{user} on {vhost}: " + "; ".join(differences) + ".", fix)
    return f"{user} on {vhost}: exactly what a node needs (management API)"


def _permissions_over_amqp(config: NodeConfig, names: Names) -> str:
    cpas_id = config.cpas_id
    fix = "run `cpas-gateway broker provision`: it sets exactly the permissions a node needs"
    missing: list[str] = []
    excess: list[str] = []
    # What the node must be able to do.
    for what, queue in (
        ("inbox", names.inbox(cpas_id)),
        ("dead letters", names.dead_letters(cpas_id)),
        ("queue of directory editions", names.directory_feed(cpas_id)),
    ):
        if _refusal(config, functools.partial(_exists, queue=queue)) is not None:
            missing.append(f"its {what} {queue} does not exist")
    if missing:
        raise _Failed("; ".join(missing) + ".", fix)
    user = _user(config)
    if _refusal(config, lambda ch: _publish(ch, names.route, user)) is not None:
        missing.append(f"publish to {names.route}")
    if _refusal(config, lambda ch: _read_if_empty(ch, names.inbox(cpas_id))) is not None:
        missing.append(f"read {names.inbox(cpas_id)}")
    # What it must not be able to do.
    probe = f"{names.namespace}.preflight.{uuid.uuid4().hex[:8]}"
    if _refusal(config, lambda ch: _declare_and_delete(ch, probe)) is None:
        excess.append("configure (it could declare a queue)")
    other_inbox = names.inbox("preflight-other-cpas")
    if _refusal(config, lambda ch: ch.basic_get(other_inbox)) != "ACCESS_REFUSED":
        excess.append("read other CPAS's inboxes")
    if _refusal(config, lambda ch: _publish(ch, "amq.topic", user)) is None:
        excess.append("publish to exchanges other than its own")
    if missing or excess:
        parts = []
        if missing:
            parts.append("may not " + ", ".join(missing))
        if excess:
            parts.append("may " + ", ".join(excess) + ": more than a node needs")
        raise _Failed(f"{user}: " + "; ".join(parts) + ".", fix)
    return f"{user}: reaches its queues, publishes to {names.route}, and nothing more (AMQP probes)"


def _migrated(state: _State) -> str:
    """The store and the journal at this release's schema (migrated now if they were older)."""
    config = _config(state)
    reports = []
    for url, schema in (
        (config.store, store_schema),
        (JournalSettings.from_config(config).url, journal_schema),
    ):
        try:
            reports.append(migrate_database(url, schema))
        except ConfigError as exc:  # written by a newer release
            raise _Failed(
                exc.message,
                "run the release of cpas-gateway that wrote it, or a later one; or restore "
                "the backup taken before that upgrade",
            ) from None
        except Exception as exc:  # StoreUnavailable or any database driver's error
            raise _Failed(
                f"{schema.what} could not be migrated ({_reason(exc)}).",
                "see the sentence above; `cpas-gateway migrate` runs the same migrations "
                "and says which one failed",
            ) from None
    return migration_summary(reports)


def _store(state: _State) -> str:
    config = _config(state)
    try:
        store = Store(config.store)
        try:
            stamp = dt.datetime.now(dt.UTC).isoformat()
            store.set_meta(PREFLIGHT_META, stamp)
            if store.get_meta(PREFLIGHT_META) != stamp:
                raise OSError("what was written could not be read back")
        finally:
            _close(store)
    except Exception as exc:  # GatewayError, OSError or any database driver's error
        raise _Failed(
            f"the store {_safe(config.store)} is not writable ({_reason(exc)}).",
            "make its folder writable by the node's user, or correct store",
        ) from None
    settings = JournalSettings.from_config(config)
    try:
        # As `run` does: a first start creates the journal's secret.
        journal = settings.open()
        _close(journal)
    except Exception as exc:  # GatewayError, OSError or any database driver's error
        raise _Failed(
            f"the journal cannot be opened ({_reason(exc)}).",
            f"check journal, and that {settings.secret_path} is readable",
        ) from None
    return f"{_safe(config.store)} writable; journal opened"


def _adapter(state: _State, adapters: AdapterRegistry | None) -> str:
    config = _config(state)
    name = config.adapter.name
    not_answering = "check the vendor system is up and [adapter] options point at it"
    try:
        registry = adapters or load_adapters()
        adapter = registry.create(name, config.cpas_id, config.adapter.options)
    except AdapterError as exc:
        raise _Failed(f"adapter {name} does not answer: {exc.message}", not_answering) from None
    except GatewayError as exc:
        raise _Failed(
            exc.message, "install the vendor's adapter package, or correct [adapter]"
        ) from None
    try:
        adapter.export_dossier(PROBE_PERSON)
    except Exception as exc:  # an adapter is third-party code: any failure is its answer
        raise _Failed(f"adapter {name} does not answer: {_reason(exc)}", not_answering) from None
    finally:
        adapter.close()
    info = adapter.info
    return f"{info.name} {info.version} ({info.vendor}) loaded and answering"


# -------------------------------------------------------------------- helpers


def _config(state: _State) -> NodeConfig:
    assert state.config is not None
    return state.config


def _user(config: NodeConfig) -> str:
    return urllib.parse.unquote(urllib.parse.urlparse(config.amqp_urls[0]).username or "guest")


def _safe(url: str) -> str:
    """A store URL without its password."""
    parsed = urllib.parse.urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def _reason(exc: BaseException) -> str:
    if isinstance(exc, GatewayError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _close(thing: object) -> None:
    close = getattr(thing, "close", None)
    if callable(close):
        close()


@contextlib.contextmanager
def _channel(config: NodeConfig) -> Iterator[BlockingChannel]:
    connection = connect(config.amqp_urls, config.tls, timeout=5)
    try:
        yield connection.channel()
    finally:
        with contextlib.suppress(pika.exceptions.AMQPError):
            connection.close()


def _refusal(config: NodeConfig, action: Callable[[BlockingChannel], object]) -> str | None:
    """Run ``action`` on a fresh channel; the broker's refusal (``ACCESS_REFUSED``...), or None."""
    with _channel(config) as channel:
        try:
            action(channel)
        except pika.exceptions.ChannelClosedByBroker as closed:
            return _REPLY_CODES.get(closed.reply_code, str(closed.reply_code))
    return None


_REPLY_CODES = {
    403: "ACCESS_REFUSED",
    404: "NOT_FOUND",
    405: "RESOURCE_LOCKED",
    406: "PRECONDITION_FAILED",
}


def _publish(channel: BlockingChannel, exchange: str, user: str) -> None:
    """Publish a message that routes nowhere: it needs write permission and reaches no one."""
    channel.confirm_delivery()
    with contextlib.suppress(pika.exceptions.UnroutableError):
        channel.basic_publish(
            exchange,
            f"preflight-{uuid.uuid4().hex}",
            b"",
            pika.BasicProperties(user_id=user),
            mandatory=True,
        )


def _read_if_empty(channel: BlockingChannel, queue: str) -> None:
    """Check read permission with ``basic.get`` -- only on an empty queue, so nothing is taken."""
    if channel.queue_declare(queue, passive=True).method.message_count == 0:
        method, _properties, _body = channel.basic_get(queue)
        if method is not None:  # arrived in between: hand it back untouched
            channel.basic_nack(method.delivery_tag, requeue=True)


def _exists(channel: BlockingChannel, queue: str) -> None:
    channel.queue_declare(queue, passive=True)


def _declare_and_delete(channel: BlockingChannel, queue: str) -> None:
    channel.queue_declare(queue, auto_delete=True, exclusive=True)
    channel.queue_delete(queue)
