"""The broker enforces isolation: real broker users, provisioned from the directory.

Each CPAS's broker user may configure nothing, write only to the routing
exchange and its own dead-letter exchange, and read only its own inbox; the
broker checks the ``user_id`` property against the login, and the receiving
node checks it against the signed sender.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from pathlib import Path

import pika
import pytest
from conftest import GENT, LIEGE, NAMUR, NodeFactory
from helpers.broker_users import Broker
from pika.exceptions import ChannelClosedByBroker

from gateway.broker import Names
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.federation.provision import ManagementApi, provision, remove_users
from gateway.model.directory import InstitutionKind, InstitutionStatus
from gateway.model.envelope import Header, MessageType, Purpose, TransferBody, seal
from gateway.model.errors import BrokerError
from gateway.testing.synthetic import make_beneficiary

PURPOSE = Purpose.CONTINUITY_AFTER_MOVE


def _refused_by_broker(action: object) -> int:
    with pytest.raises(ChannelClosedByBroker) as closed:
        action()  # type: ignore[operator]
    return closed.value.reply_code


# ----------------------------------------------------------------- provisioning


def test_provisioning_again_changes_nothing(
    broker: Broker, small_federation: LocalFederation
) -> None:
    report = provision(
        small_federation.directory,
        api=broker.api,
        amqp_admin_url=broker.amqp_url,
        vhost=broker.vhost,
        names=broker.names,
    )
    assert report.created_users == [] and report.removed_users == []
    assert sorted(report.kept_users) == sorted(
        broker.names.broker_user(i) for i in small_federation.directory.cpas_ids()
    )


def test_provisioning_removes_the_user_of_a_cpas_that_left_the_directory(
    management_url: str, amqp_url: str, tmp_path: Path
) -> None:
    world = make_local_federation(tmp_path / "world", [GENT, LIEGE], small=True)
    api, tag = ManagementApi(management_url), uuid.uuid4().hex[:8]
    vhost, names = f"dse-test-{tag}", Names(f"t{tag}")
    try:
        provision(world.directory, api=api, amqp_admin_url=amqp_url, vhost=vhost, names=names)
        liege = world.directory.get(world.member(LIEGE).cpas_id)
        assert liege is not None
        world.reissue(
            liege.model_copy(update={"status": InstitutionStatus.CLOSED, "encryption_keys": []})
        )
        report = provision(
            world.directory, api=api, amqp_admin_url=amqp_url, vhost=vhost, names=names
        )
        assert report.removed_users == [names.broker_user(liege.id)]
        assert api.user(names.broker_user(liege.id)) is None
    finally:
        api.delete_vhost(vhost)
        remove_users(api, names)


# ------------------------------------------------------------ what a CPAS cannot do


def test_a_cpas_cannot_consume_another_cpas_inbox(
    broker: Broker, small_federation: LocalFederation
) -> None:
    gent, liege = small_federation.member(GENT).cpas_id, small_federation.member(LIEGE).cpas_id
    channel = broker.channel_as(gent)
    assert _refused_by_broker(lambda: channel.basic_get(broker.names.inbox(liege))) == 403


def test_a_cpas_cannot_declare_a_queue(broker: Broker, small_federation: LocalFederation) -> None:
    channel = broker.channel_as(small_federation.member(GENT).cpas_id)
    assert _refused_by_broker(lambda: channel.queue_declare("eavesdrop", durable=True)) == 403


def test_a_cpas_cannot_bind_another_inbox_to_read_it(
    broker: Broker, small_federation: LocalFederation
) -> None:
    channel = broker.channel_as(small_federation.member(GENT).cpas_id)
    liege = small_federation.member(LIEGE).cpas_id

    def bind() -> None:
        channel.queue_bind(broker.names.inbox(liege), broker.names.route, routing_key="x")

    assert _refused_by_broker(bind) == 403


def test_a_cpas_cannot_publish_straight_into_an_inbox(
    broker: Broker, small_federation: LocalFederation
) -> None:
    channel = broker.channel_as(small_federation.member(GENT).cpas_id)
    liege = small_federation.member(LIEGE).cpas_id
    channel.basic_publish("", broker.names.inbox(liege), b"<x/>")
    assert _refused_by_broker(lambda: channel.basic_get(broker.names.inbox(liege))) in {403, 404}


def test_a_cpas_cannot_publish_under_another_cpas_user_id(
    broker: Broker, small_federation: LocalFederation
) -> None:
    gent, liege = small_federation.member(GENT).cpas_id, small_federation.member(LIEGE).cpas_id
    channel = broker.channel_as(gent)
    channel.confirm_delivery()
    props = pika.BasicProperties(user_id=broker.names.broker_user(liege))
    assert (
        _refused_by_broker(lambda: channel.basic_publish(broker.names.route, liege, b"<x/>", props))
        == 406
    )


def test_a_cpas_cannot_write_to_another_cpas_dead_letters(
    broker: Broker, small_federation: LocalFederation
) -> None:
    gent, liege = small_federation.member(GENT).cpas_id, small_federation.member(LIEGE).cpas_id
    channel = broker.channel_as(gent)
    channel.confirm_delivery()

    def publish() -> None:
        channel.basic_publish(broker.names.dead_exchange(liege), liege, b"<x/>")

    assert _refused_by_broker(publish) == 403


# ------------------------------------------------------------ nodes on the real thing


def test_nodes_exchange_dossiers_on_a_provisioned_broker(provisioned_node: NodeFactory) -> None:
    sender, receiver = provisioned_node(GENT, "ocmwdata"), provisioned_node(LIEGE, "fichesociale")
    numbers = sender.adapter.seed(3, seed=21)  # type: ignore[attr-defined]
    sent = [sender.send_transfer(n, receiver.cpas_id, PURPOSE) for n in numbers]
    outcomes = sender.wait_for_outcomes([s.message_id for s in sent], 20)
    assert {e.outcome for e in outcomes.values()} == {"imported"}


def test_a_genuine_envelope_republished_under_another_user_is_refused(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    # Namur signs a transfer; Gent's broker user publishes it. The broker lets
    # Gent publish as itself, the receiver sees the mismatch.
    receiver = provisioned_node(LIEGE, "fichesociale")
    namur = small_federation.member(NAMUR)
    dossier = make_beneficiary(random.Random(3), namur.cpas_id).dossier
    header = Header.new(
        MessageType.TRANSFER,
        sender=namur.cpas_id,
        recipient=receiver.cpas_id,
        purpose=PURPOSE,
        case_reference="N-9",
    )
    data = seal(
        header,
        TransferBody(dossier).to_xml(),
        keys=namur.node_keys,
        directory=small_federation.directory,
    ).to_xml()
    gent = small_federation.member(GENT).cpas_id
    channel = broker.channel_as(gent)
    channel.basic_publish(
        broker.names.route,
        receiver.cpas_id,
        data,
        pika.BasicProperties(user_id=broker.names.broker_user(gent)),
    )
    _until(lambda: receiver.stats["refused.envelope.broker_user"] == 1)
    assert receiver.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_a_message_for_a_non_cpas_forced_onto_the_wire_is_refused(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    # A rogue client skips the directory check. The broker has no inbox for
    # the police: the message comes back unroutable.
    sender = provisioned_node(GENT, "ocmwdata")
    receiver = provisioned_node(LIEGE, "fichesociale")
    (number,) = sender.adapter.seed(1, seed=22)  # type: ignore[attr-defined]
    police = next(
        i for i in small_federation.directory.institutions if i.kind is InstitutionKind.POLICE
    )
    dossier = sender.adapter.export_dossier(number)
    body = TransferBody(dossier).to_xml()
    header = Header.new(
        MessageType.TRANSFER,
        sender=sender.cpas_id,
        recipient=receiver.cpas_id,
        purpose=PURPOSE,
        case_reference="R-1",
    )
    data = seal(header, body, keys=sender.keys, directory=small_federation.directory).to_xml()
    with pytest.raises(BrokerError) as error:
        sender.broker.publish(
            broker.names.route,
            police.id,
            data,
            message_id="rogue-1",
            user_id=broker.names.broker_user(sender.cpas_id),
        ).result(10)
    assert error.value.code == "broker.unroutable"
    # Addressed in its header to the police but routed to Liège: Liège refuses it.
    police_header = header.model_copy(update={"recipient": police.id, "message_id": uuid.uuid4()})
    forged = seal(header, body, keys=sender.keys, directory=small_federation.directory)
    forged = forged.model_copy(update={"header": police_header})
    forged = forged.model_copy(
        update={"signature": sender.keys.signing.sign(forged.signed_bytes())}
    )
    sender.broker.publish(
        broker.names.route,
        receiver.cpas_id,
        forged.to_xml(),
        message_id="rogue-2",
        user_id=broker.names.broker_user(sender.cpas_id),
    ).result(10)
    _until(lambda: receiver.stats["refused.envelope.wrong_recipient"] == 1)
    assert receiver.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_a_replayed_message_is_not_imported_again(
    provisioned_node: NodeFactory, broker: Broker
) -> None:
    sender, receiver = provisioned_node(GENT, "ocmwdata"), provisioned_node(LIEGE, "fichesociale")
    (number,) = sender.adapter.seed(1, seed=23)  # type: ignore[attr-defined]
    sent = sender.send_transfer(number, receiver.cpas_id, PURPOSE)
    assert sender.wait_for_outcomes([sent.message_id], 15)[sent.message_id].outcome == "imported"
    captured = sender.store.outgoing(sent.message_id)
    assert captured is not None
    for _ in range(3):
        sender.broker.publish(
            broker.names.route,
            receiver.cpas_id,
            captured.envelope,
            message_id=sent.message_id,
            user_id=broker.names.broker_user(sender.cpas_id),
        ).result(10)
    _until(lambda: receiver.stats["duplicates"] == 3)
    assert receiver.stats["imported"] == 1
    assert receiver.adapter.count_persons() == 1  # type: ignore[attr-defined]


def test_an_expired_message_is_refused_and_dead_lettered(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    sender, receiver = provisioned_node(GENT, "ocmwdata"), provisioned_node(LIEGE, "fichesociale")
    (number,) = sender.adapter.seed(1, seed=24)  # type: ignore[attr-defined]
    body = TransferBody(sender.adapter.export_dossier(number)).to_xml()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=12)
    header = Header.new(
        MessageType.TRANSFER,
        sender=sender.cpas_id,
        recipient=receiver.cpas_id,
        purpose=PURPOSE,
        case_reference="E-1",
        now=old,
        ttl=dt.timedelta(hours=1),
    )
    data = seal(header, body, keys=sender.keys, directory=small_federation.directory).to_xml()
    sender.broker.publish(
        broker.names.route,
        receiver.cpas_id,
        data,
        message_id=str(header.message_id),
        user_id=broker.names.broker_user(sender.cpas_id),
    ).result(10)
    _until(lambda: receiver.stats["dead_lettered"] == 1)
    assert receiver.stats["refused.envelope.expired"] == 1
    assert receiver.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_the_broker_never_sees_a_number_or_a_name_in_clear(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    sender = provisioned_node(GENT, "ocmwdata")
    liege = small_federation.member(LIEGE).cpas_id  # no node reads Liège's inbox yet
    numbers = sender.adapter.seed(5, seed=25)  # type: ignore[attr-defined]
    secrets = []
    for number in numbers:
        dossier = sender.adapter.export_dossier(number)
        assert dossier is not None
        secrets += [number, dossier.person.family_name, *dossier.person.given_names]
        sender.send_transfer(number, liege, PURPOSE).confirmed.result(10)
    admin = pika.BlockingConnection(pika.URLParameters(broker.admin_url()))
    channel, seen = admin.channel(), []
    try:
        while True:
            method, properties, body = channel.basic_get(broker.names.inbox(liege), auto_ack=False)
            if method is None:
                break
            seen.append(body + repr(properties).encode())
    finally:
        admin.close()  # unacked: the messages go back to the inbox
    assert len(seen) == 5
    for secret in secrets:
        assert not any(secret.encode() in raw for raw in seen), secret
    receiver = provisioned_node(LIEGE, "fichesociale")
    _until(lambda: receiver.stats["imported"] == 5)


def _until(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
