"""The checks of what the node holds itself: configuration, keys, directory, store, adapter."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

from gateway.adapters import AdapterRegistry, load_adapters
from gateway.config import NodeConfig
from gateway.database import migrate_database
from gateway.directory_feed import current_edition
from gateway.journal import SCHEMA as journal_schema
from gateway.journal import JournalSettings
from gateway.migrations import summary as migration_summary
from gateway.model.directory import InstitutionKind, InstitutionStatus, load_directory_file
from gateway.model.errors import AdapterError, ConfigError, GatewayError
from gateway.model.identifiers import make_niss
from gateway.model.keys import load_node_keys
from gateway.preflight.state import (
    Failed,
    State,
    close,
    node_config,
    reason,
    safe_url,
)
from gateway.store import SCHEMA as store_schema
from gateway.store import Store

PREFLIGHT_META = "preflight.last"
"""The store's meta key the store check writes (and reads back)."""

PROBE_PERSON = make_niss(dt.date(1900, 1, 1), 997)
"""A valid national number nobody holds: the adapter is asked for it and must answer."""


def check_configuration(state: State, path: Path) -> str:
    try:
        state.config = NodeConfig.load(path)
    except GatewayError as exc:
        raise Failed(exc.message, f"correct {path} (see docs/operations.md)") from None
    return f"{path}: CPAS {state.config.cpas_id}, broker mode {state.config.broker_mode}"


def check_keys(state: State) -> str:
    config = node_config(state)
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
        raise Failed(exc.message, fix) from None
    return (
        f"{config.keys}: signing key {state.keys.signing_key_id}, "
        f"{len(state.keys.encryption)} encryption key(s)"
    )


def check_directory(state: State) -> str:
    config = node_config(state)
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
        raise Failed(
            exc.message,
            "install the federation's latest signed directory and its trust anchor "
            "(`cpas-gateway directory verify` shows what is wrong)",
        ) from None
    finally:
        close(store)
    directory = state.directory
    return (
        f"edition {directory.serial} of {directory.issued_at:%Y-%m-%d}, signature verified, "
        f"{len(directory.institutions)} institutions"
    )


def check_listed(state: State) -> str:
    config, directory, keys = node_config(state), state.directory, state.keys
    assert directory is not None and keys is not None
    institution = directory.get(config.cpas_id)
    ask = "ask the federation to list it (or correct cpas_id)"
    if institution is None:
        raise Failed(f"{config.cpas_id} is not in the directory.", ask)
    if institution.kind is not InstitutionKind.CPAS:
        raise Failed(f"{config.cpas_id} is listed as {institution.kind.value}, not a CPAS.", ask)
    if institution.status is not InstitutionStatus.ACTIVE:
        raise Failed(
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
        raise Failed(
            f"the directory lists no valid signing key {keys.signing_key_id} for this CPAS: "
            "its messages would be refused.",
            send_keys,
        )
    if not listed_encryption & set(keys.encryption):
        raise Failed(
            "the directory lists none of this node's encryption keys: nobody could seal "
            "a dossier for it.",
            send_keys,
        )
    return f"{institution.name('fr')}: active CPAS, this node's keys listed"


def check_migrated(state: State) -> str:
    """The store and the journal at this release's schema (migrated now if they were older)."""
    config = node_config(state)
    reports = []
    for url, schema in (
        (config.store, store_schema),
        (JournalSettings.from_config(config).url, journal_schema),
    ):
        try:
            reports.append(migrate_database(url, schema))
        except ConfigError as exc:  # written by a newer release
            raise Failed(
                exc.message,
                "run the release of cpas-gateway that wrote it, or a later one; or restore "
                "the backup taken before that upgrade",
            ) from None
        except Exception as exc:  # StoreUnavailable or any database driver's error
            raise Failed(
                f"{schema.what} could not be migrated ({reason(exc)}).",
                "see the sentence above; `cpas-gateway migrate` runs the same migrations "
                "and says which one failed",
            ) from None
    return migration_summary(reports)


def check_store(state: State) -> str:
    config = node_config(state)
    try:
        store = Store(config.store)
        try:
            stamp = dt.datetime.now(dt.UTC).isoformat()
            store.set_meta(PREFLIGHT_META, stamp)
            if store.get_meta(PREFLIGHT_META) != stamp:
                raise OSError("what was written could not be read back")
        finally:
            close(store)
    except Exception as exc:  # GatewayError, OSError or any database driver's error
        raise Failed(
            f"the store {safe_url(config.store)} is not writable ({reason(exc)}).",
            "make its folder writable by the node's user, or correct store",
        ) from None
    settings = JournalSettings.from_config(config)
    try:
        # As `run` does: a first start creates the journal's secret.
        journal = settings.open()
        close(journal)
    except Exception as exc:  # GatewayError, OSError or any database driver's error
        raise Failed(
            f"the journal cannot be opened ({reason(exc)}).",
            f"check journal, and that {settings.secret_path} is readable",
        ) from None
    return f"{safe_url(config.store)} writable; journal opened"


def check_adapter(state: State, adapters: AdapterRegistry | None) -> str:
    config = node_config(state)
    name = config.adapter.name
    not_answering = "check the vendor system is up and [adapter] options point at it"
    try:
        registry = adapters or load_adapters()
        adapter = registry.create(name, config.cpas_id, config.adapter.options)
    except AdapterError as exc:
        raise Failed(f"adapter {name} does not answer: {exc.message}", not_answering) from None
    except GatewayError as exc:
        raise Failed(
            exc.message, "install the vendor's adapter package, or correct [adapter]"
        ) from None
    try:
        adapter.export_dossier(PROBE_PERSON)
    except Exception as exc:  # an adapter is third-party code: any failure is its answer
        raise Failed(f"adapter {name} does not answer: {reason(exc)}", not_answering) from None
    finally:
        adapter.close()
    info = adapter.info
    return f"{info.name} {info.version} ({info.vendor}) loaded and answering"
