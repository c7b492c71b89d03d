"""A broker provisioned from a small federation: one confined user per CPAS.

Fixtures (registered in conftest.py): ``small_federation``, ``broker`` (a
virtual host of the test module's own, removed afterwards) and
``provisioned_node`` (nodes that log in as their own broker user).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from conftest import GENT, LIEGE, NAMUR, NodeFactory

from gateway.broker import Names
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.federation.provision import ManagementApi, node_url, provision, remove_users
from gateway.node import Node


class Broker:
    """A provisioned virtual host of the test's own, and how to log in as each CPAS."""

    def __init__(
        self, api: ManagementApi, amqp_url: str, vhost: str, names: Names, credentials: Path
    ) -> None:
        self.api, self.amqp_url, self.vhost, self.names, self.credentials = (
            api,
            amqp_url,
            vhost,
            names,
            credentials,
        )

    def url_of(self, cpas_id: str) -> str:
        return (self.credentials / f"{cpas_id}.amqp-url").read_text().strip()

    def admin_url(self) -> str:
        parsed = pika.URLParameters(self.amqp_url)
        return node_url(
            parsed.credentials.username, parsed.credentials.password, self.amqp_url, self.vhost
        )

    def channel_as(self, cpas_id: str) -> pika.adapters.blocking_connection.BlockingChannel:
        return pika.BlockingConnection(pika.URLParameters(self.url_of(cpas_id))).channel()


@pytest.fixture(scope="module")
def small_federation(tmp_path_factory: pytest.TempPathFactory) -> LocalFederation:
    return make_local_federation(tmp_path_factory.mktemp("small"), [GENT, LIEGE, NAMUR], small=True)


@pytest.fixture(scope="module")
def broker(
    management_url: str,
    amqp_url: str,
    small_federation: LocalFederation,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Broker]:
    api = ManagementApi(management_url)
    tag = uuid.uuid4().hex[:8]
    vhost, names = f"dse-test-{tag}", Names(f"t{tag}")
    credentials = tmp_path_factory.mktemp("credentials")
    provision(
        small_federation.directory,
        api=api,
        amqp_admin_url=amqp_url,
        vhost=vhost,
        names=names,
        credentials_dir=credentials,
    )
    yield Broker(api, amqp_url, vhost, names, credentials)
    api.delete_vhost(vhost)
    remove_users(api, names)


@pytest.fixture
def provisioned_node(
    make_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> NodeFactory:
    def factory(nis_code: str, adapter: str, **kwargs: object) -> Node:
        cpas_id = small_federation.member(nis_code).cpas_id
        settings = {
            "amqp_urls": [broker.url_of(cpas_id)],
            "names": broker.names,
            "provisioned": True,
            "directory": small_federation.directory,
            "keys": small_federation.member(nis_code).node_keys,
        } | kwargs
        return make_node(nis_code, adapter, **settings)

    return factory
