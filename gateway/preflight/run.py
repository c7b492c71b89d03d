"""Running the checks in order, skipping those an earlier failure makes pointless."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gateway.adapters import AdapterRegistry
from gateway.preflight.broker_checks import check_broker, check_permissions, check_tls
from gateway.preflight.node_checks import (
    check_adapter,
    check_configuration,
    check_directory,
    check_keys,
    check_listed,
    check_migrated,
    check_store,
)
from gateway.preflight.state import Check, Failed, Preflight, State, Status, Warned


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
    state = State()
    result = Preflight()
    steps: list[tuple[str, Callable[[], str], Callable[[], bool]]] = [
        ("configuration", lambda: check_configuration(state, config_path), lambda: True),
        ("node keys", lambda: check_keys(state), lambda: state.config is not None),
        # Before the directory: it reads the edition the store keeps.
        ("store migrated", lambda: check_migrated(state), lambda: state.config is not None),
        ("directory", lambda: check_directory(state), lambda: state.config is not None),
        (
            "this CPAS in the directory",
            lambda: check_listed(state),
            lambda: state.directory is not None and state.keys is not None,
        ),
        ("broker TLS", lambda: check_tls(state), lambda: state.config is not None),
        ("broker", lambda: check_broker(state), lambda: state.config is not None),
        (
            "broker permissions",
            lambda: check_permissions(state, management_url, management_ca),
            lambda: state.broker_ok,
        ),
        ("store and journal", lambda: check_store(state), lambda: state.config is not None),
        ("adapter", lambda: check_adapter(state, adapters), lambda: state.config is not None),
    ]
    for name, step, possible in steps:
        if not possible():
            result.checks.append(Check(name, Status.SKIPPED, "not checked: see above"))
            continue
        try:
            detail = step()
        except Failed as failed:
            result.checks.append(Check(name, Status.FAIL, failed.detail, failed.fix))
        except Warned as warned:
            result.checks.append(Check(name, Status.WARN, warned.detail))
        else:
            result.checks.append(Check(name, Status.OK, detail))
    return result
