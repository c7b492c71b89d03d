"""The checks of the broker: TLS settings, login, and the node user's permissions.

Permissions are read from the management API when an administrator's URL is
given, otherwise probed over AMQP on fresh channels (see :mod:`gateway.preflight`).
"""

from __future__ import annotations

import contextlib
import functools
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from gateway.broker import Names, connect
from gateway.config import NodeConfig
from gateway.federation.provision import ManagementApi, permissions_for
from gateway.model.errors import GatewayError
from gateway.preflight.state import (
    Failed,
    State,
    Warned,
    broker_user,
    node_config,
)


def check_tls(state: State) -> str:
    config = node_config(state)
    tls_urls = [u for u in config.amqp_urls if urllib.parse.urlparse(u).scheme == "amqps"]
    if not tls_urls:
        if config.broker_tls is not None:
            raise Failed(
                "[broker_tls] is set but amqp_url is plain amqp://.",
                "write amqps:// (port 5671) in amqp_url, or remove [broker_tls]",
            )
        raise Warned("plain amqp://: the broker traffic is not encrypted (fine on loopback)")
    settings = config.tls
    if settings is None:
        return "amqps://, the system's CAs, no client certificate"
    try:
        settings.ssl_context()
    except GatewayError as exc:
        raise Failed(exc.message, "correct [broker_tls] in the configuration") from None
    mutual = "with client certificate" if settings.cert_file else "without client certificate"
    return f"amqps://, CA {settings.ca_file or 'of the system'}, {mutual}, {settings.min_version}+"


def check_broker(state: State) -> str:
    config = node_config(state)
    try:
        connection = connect(config.amqp_urls, config.tls, timeout=5)
    except GatewayError as exc:
        raise Failed(
            exc.message, "see the sentence above; `docs/operations.md` shows the broker setup"
        ) from None
    connection.close()
    state.broker_ok = True
    return f"{len(config.amqp_urls)} address(es); login {broker_user(config)} accepted"


def check_permissions(state: State, management_url: str | None, management_ca: Path | None) -> str:
    config = node_config(state)
    names = Names(config.namespace)
    if config.broker_mode == "development":
        raise Warned(
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
    user = broker_user(config)
    try:
        granted = api.permissions(vhost, user)
    except GatewayError as exc:
        raise Failed(
            exc.message, "check --management-url (an administrator of the broker)"
        ) from None
    wanted = permissions_for(config.cpas_id, names)
    fix = "run `cpas-gateway broker provision` again: it sets exactly these permissions"
    if granted is None:
        raise Failed(f"{user} has no permissions on virtual host {vhost}.", fix)
    differences = [
        f"{kind} is {granted.get(kind)!r}, should be {getattr(wanted, kind)!r}"
        for kind in ("configure", "write", "read")
        if granted.get(kind) != getattr(wanted, kind)
    ]
    if differences:
        raise Failed(f"{user} on {vhost}: " + "; ".join(differences) + ".", fix)
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
        raise Failed("; ".join(missing) + ".", fix)
    user = broker_user(config)
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
        raise Failed(f"{user}: " + "; ".join(parts) + ".", fix)
    return f"{user}: reaches its queues, publishes to {names.route}, and nothing more (AMQP probes)"


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
