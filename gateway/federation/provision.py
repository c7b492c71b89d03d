"""Provisioning a broker from the directory: one isolated broker user per CPAS.

``provision`` makes, idempotently, on a RabbitMQ virtual host:

- the topology of every active CPAS in the verified directory (routing
  exchange, quorum inboxes with their dead-letter exchanges and queues), and
  the directory's fanout exchange with one queue of editions per CPAS;
- one broker user ``<namespace>.cpas.<id>`` per active CPAS, tagged ``cpas-gateway``,
  with permissions that confine it: configure nothing, write only to the
  routing exchange and its own dead-letter exchange, read only its own inbox,
  its own dead letters and its own queue of directory editions;
- one broker user ``<namespace>.federation`` for the federation, which may
  write to the directory exchange and do nothing else: no node can publish an
  edition, even a genuinely signed old one;
- and it removes the managed users of the namespace whose institutions are no
  longer active CPAS in the directory (left, closed, merged).

Users are managed through the RabbitMQ management HTTP API; queues and
exchanges through AMQP. Passwords of new users are generated and written,
with the node's AMQP URL, to one 0600 file per CPAS for its operators;
existing users keep theirs.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.broker import BrokerTLS, Names, Topology, connect, cpas_topology, directory_topology
from gateway.model.codes import Fault
from gateway.model.directory import Directory, check_not_older
from gateway.model.errors import BrokerError
from gateway.private_files import write_private_file

log = logging.getLogger(__name__)

MANAGED_TAG = "cpas-gateway"


class ManagementApi:
    """The few calls of RabbitMQ's management HTTP API that provisioning needs.

    :param url: ``http(s)://user:password@host:port/``.
    :param ca_file: for ``https://``, the CA that signed the API's certificate
        (default: the system's CAs); the host name is always verified.
    """

    def __init__(self, url: str, timeout: float = 15.0, *, ca_file: Path | None = None) -> None:
        parsed = urllib.parse.urlparse(url)
        if not parsed.hostname:
            raise BrokerError(f"{url!r} is not a management API URL.", code=Fault.BROKER_CONFIG)
        self._base = f"{parsed.scheme}://{parsed.hostname}:{parsed.port or 15672}/api"
        self._context = None
        if parsed.scheme == "https":
            self._context = BrokerTLS(ca_file=ca_file).ssl_context()
        user = urllib.parse.unquote(parsed.username or "guest")
        password = urllib.parse.unquote(parsed.password or "guest")
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self._base + path,
            data=data,
            method=method,
            headers={"Authorization": self._auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self._timeout, context=self._context
            ) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method in ("GET", "DELETE"):
                return None
            raise BrokerError(
                f"The management API refused {method} {path}: HTTP {exc.code}.",
                code=Fault.BROKER_MANAGEMENT,
            ) from None
        except OSError as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise BrokerError(
                    f"The management API at {self._base} presented a certificate this "
                    f"machine does not trust ({reason.verify_message}): pass the CA that "
                    "signed it with --ca-file.",
                    code=Fault.BROKER_TLS_UNTRUSTED,
                ) from None
            raise BrokerError(
                f"The management API at {self._base} is unreachable ({reason}); is the "
                "rabbitmq_management plugin enabled?",
                code=Fault.BROKER_MANAGEMENT,
            ) from None
        return json.loads(payload) if payload else None

    @staticmethod
    def _q(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    def put_vhost(self, vhost: str) -> None:
        self._call("PUT", f"/vhosts/{self._q(vhost)}", {})

    def delete_vhost(self, vhost: str) -> None:
        self._call("DELETE", f"/vhosts/{self._q(vhost)}")

    def user(self, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._call("GET", f"/users/{self._q(name)}")
        return result

    def users(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/users") or [])

    def put_user(self, name: str, password: str, tags: str) -> None:
        self._call("PUT", f"/users/{self._q(name)}", {"password": password, "tags": tags})

    def delete_user(self, name: str) -> None:
        self._call("DELETE", f"/users/{self._q(name)}")

    def global_parameter(self, name: str) -> Any:
        """The value of a global runtime parameter, or ``None`` when it is not set."""
        result = self._call("GET", f"/global-parameters/{self._q(name)}")
        return None if result is None else result.get("value")

    def put_global_parameter(self, name: str, value: Any) -> None:
        self._call("PUT", f"/global-parameters/{self._q(name)}", {"name": name, "value": value})

    def permissions(self, vhost: str, user: str) -> dict[str, Any] | None:
        """The user's permissions on the virtual host, or ``None`` when it has none."""
        result: dict[str, Any] | None = self._call(
            "GET", f"/permissions/{self._q(vhost)}/{self._q(user)}"
        )
        return result

    def put_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        self._call(
            "PUT",
            f"/permissions/{self._q(vhost)}/{self._q(user)}",
            {"configure": configure, "write": write, "read": read},
        )


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str


def permissions_for(cpas_id: str, names: Names) -> Permissions:
    """What a CPAS's broker user may do: send to the route, read its own inbox and dead letters."""
    write = f"^({re.escape(names.route)}|{re.escape(names.dead_exchange(cpas_id))})$"
    queues = (names.inbox(cpas_id), names.dead_letters(cpas_id), names.directory_feed(cpas_id))
    read = "^(" + "|".join(re.escape(q) for q in queues) + ")$"
    return Permissions(configure="^$", write=write, read=read)


def federation_permissions(names: Names) -> Permissions:
    """What the federation's broker user may do: publish directory editions, nothing else."""
    return Permissions(configure="^$", write=f"^{re.escape(names.directory_exchange)}$", read="^$")


@dataclass
class ProvisionReport:
    """What a provisioning run did."""

    created_users: list[str] = field(default_factory=list)
    kept_users: list[str] = field(default_factory=list)
    removed_users: list[str] = field(default_factory=list)
    queues: int = 0
    credential_files: list[Path] = field(default_factory=list)
    federation_created: bool = False
    """The federation's user was made by this run (its URL is in ``federation.amqp-url``)."""


def provision(
    directory: Directory,
    *,
    api: ManagementApi,
    amqp_admin_url: str,
    vhost: str,
    names: Names,
    credentials_dir: Path | None = None,
    node_amqp_host: str | None = None,
    min_serial: int | None = None,
    tls: BrokerTLS | None = None,
) -> ProvisionReport:
    """Make the broker match the directory (see the module docstring); safe to run again.

    The broker remembers the edition it was last provisioned from (a global
    parameter per virtual host): an older edition, or one older than
    ``min_serial``, is refused with ``directory.rollback`` before anything
    changes -- provisioning from it could give back a broker user to a CPAS
    that has since merged or closed.

    :param tls: how to reach an ``amqps://`` ``amqp_admin_url``.
    """

    seen_parameter = f"{MANAGED_TAG}.directory-serial.{vhost}"
    seen = api.global_parameter(seen_parameter)
    check_not_older(directory, max(int(seen or 0), min_serial or 0))
    report = ProvisionReport()
    api.put_vhost(vhost)
    cpas_ids = directory.cpas_ids()
    topologies = (cpas_topology(cpas_ids, names=names), directory_topology(cpas_ids, names=names))
    for topology in topologies:
        _declare(_with_vhost(amqp_admin_url, vhost), topology, tls)
    report.queues = sum(len(topology.queues) for topology in topologies)

    wanted = {names.broker_user(cpas_id): cpas_id for cpas_id in cpas_ids}
    for user, cpas_id in wanted.items():
        if api.user(user) is None:
            password = secrets.token_urlsafe(24)
            api.put_user(user, password, MANAGED_TAG)
            report.created_users.append(user)
            if credentials_dir is not None:
                url = node_url(user, password, amqp_admin_url, vhost, node_amqp_host)
                report.credential_files.append(_write_credentials(credentials_dir, cpas_id, url))
        else:
            report.kept_users.append(user)
        p = permissions_for(cpas_id, names)
        api.put_permissions(vhost, user, p.configure, p.write, p.read)

    federation = names.federation_user
    if api.user(federation) is None:
        password = secrets.token_urlsafe(24)
        api.put_user(federation, password, MANAGED_TAG)
        report.federation_created = True
        if credentials_dir is not None:
            url = node_url(federation, password, amqp_admin_url, vhost, node_amqp_host)
            report.credential_files.append(_write_credentials(credentials_dir, "federation", url))
    p = federation_permissions(names)
    api.put_permissions(vhost, federation, p.configure, p.write, p.read)

    for existing in api.users():
        tags = existing.get("tags")
        tag_list = tags if isinstance(tags, list) else str(tags or "").split(",")
        name = existing["name"]
        ours = MANAGED_TAG in tag_list and name.startswith(names.broker_user_prefix)
        if ours and name not in wanted:
            api.delete_user(name)
            report.removed_users.append(name)
    if directory.serial > int(seen or 0):
        api.put_global_parameter(seen_parameter, directory.serial)
    log.info(
        "provisioned %s: %d users created, %d kept, %d removed",
        vhost,
        len(report.created_users),
        len(report.kept_users),
        len(report.removed_users),
    )
    return report


def remove_users(api: ManagementApi, names: Names) -> list[str]:
    """Delete every broker user ``provision`` made under ``names`` (decommissioning, tests)."""
    removed = []
    for existing in api.users():
        name = existing["name"]
        if name == names.federation_user or name.startswith(names.broker_user_prefix):
            api.delete_user(name)
            removed.append(name)
    return removed


def _with_vhost(url: str, vhost: str) -> str:
    parsed = urllib.parse.urlparse(url)
    return urllib.parse.urlunparse(parsed._replace(path="/" + urllib.parse.quote(vhost, safe="")))


def node_url(user: str, password: str, admin_url: str, vhost: str, host: str | None = None) -> str:
    """The AMQP URL a CPAS node uses on the provisioned virtual host."""
    parsed = urllib.parse.urlparse(admin_url)
    credentials = f"{urllib.parse.quote(user)}:{urllib.parse.quote(password, safe='')}"
    port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
    netloc = f"{credentials}@{host or parsed.hostname}:{port}"
    return urllib.parse.urlunparse(
        (parsed.scheme, netloc, "/" + urllib.parse.quote(vhost, safe=""), "", "", "")
    )


def _write_credentials(folder: Path, cpas_id: str, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{cpas_id}.amqp-url"
    write_private_file(path, (url + "\n").encode("utf-8"))
    return path


def _declare(url: str, topology: Topology, tls: BrokerTLS | None) -> None:
    connection = connect([url], tls)
    try:
        channel = connection.channel()
        for exchange in topology.exchanges:
            channel.exchange_declare(exchange.name, exchange_type=exchange.type, durable=True)
        for queue in topology.queues:
            channel.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))
        for binding in topology.bindings:
            channel.queue_bind(binding.queue, binding.exchange, routing_key=binding.routing_key)
    finally:
        connection.close()
