"""Attacks on a running node by a CPAS with its own provisioned broker user.

Each test is one attack a member of the federation (or the broker's
operator) can mount with what it legitimately holds: its broker login, its
signing key, a copy of a message it saw. The node must refuse each with a
stable code at the first delivery, never crash, never import, and never sign
a receipt for a message whose sender it did not authenticate.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pika
import pytest
from conftest import GENT, LIEGE, NAMUR, NodeFactory
from helpers.broker_users import Broker

from gateway.broker import Names
from gateway.cli import main
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.federation.provision import ManagementApi, remove_users
from gateway.journal import Event
from gateway.model.codes import Outcome
from gateway.model.directory import InstitutionStatus
from gateway.model.dossier import Dossier, Language
from gateway.model.envelope import (
    Body,
    Envelope,
    Header,
    MessageType,
    Purpose,
    ReceiptBody,
    RefusalReason,
    RequestBody,
    ResponseBody,
    TransferBody,
    seal,
)
from gateway.model.keys import NodeKeys
from gateway.node import REFUSAL_CODE_HEADER, Node
from gateway.report import build_report
from gateway.testing.synthetic import make_beneficiary

PURPOSE = Purpose.CONTINUITY_AFTER_MOVE

# The fixtures broker, small_federation and provisioned_node (tests/helpers/
# broker_users.py): a virtual host of this module's own, one broker user per CPAS.


def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _publish_as(broker: Broker, cpas_id: str, to: str, data: bytes) -> None:
    """Publish raw bytes to ``to``'s inbox with ``cpas_id``'s own broker login."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.url_of(cpas_id)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            broker.names.route,
            to,
            data,
            pika.BasicProperties(
                user_id=broker.names.broker_user(cpas_id), message_id=str(uuid.uuid4())
            ),
            mandatory=True,
        )
    finally:
        connection.close()


def _sealed(
    sender: str,
    keys: NodeKeys,
    to: str,
    plaintext: bytes,
    federation: LocalFederation,
    *,
    type: MessageType = MessageType.TRANSFER,
    correlation: str | None = None,
) -> bytes:
    header = Header.new(
        type,
        sender=sender,
        recipient=to,
        purpose=PURPOSE,
        case_reference="ATK-1",
        correlation_id=None if correlation is None else uuid.UUID(correlation),
    )
    return seal(header, plaintext, keys=keys, directory=federation.directory).to_xml()


def _answer_from(
    federation: LocalFederation, nis_code: str, to: str, body: Body, correlation: str
) -> bytes:
    """A receipt or response signed by the member ``nis_code``, answering ``correlation``."""
    member = federation.member(nis_code)
    return _sealed(
        member.cpas_id,
        member.node_keys,
        to,
        body.to_xml(),
        federation,
        type=body.kind,
        correlation=correlation,
    )


def _dossier(source: str, seed: int) -> Dossier:
    return make_beneficiary(random.Random(seed), source).dossier


def _refused_at_once(node: Node, code: str) -> None:
    """The node refused one message with ``code``, dead-lettered it, never gave it back."""
    _until(lambda: node.stats[f"refused.{code}"] >= 1 and node.stats["dead_lettered"] >= 1)
    assert node.stats["errors"] == 0
    assert node.stats["redelivered"] == 0
    assert node.adapter.count_persons() == 0  # type: ignore[attr-defined]


def _dead_letter_codes(broker: Broker, cpas_id: str) -> list[str]:
    connection = pika.BlockingConnection(pika.URLParameters(broker.admin_url()))
    codes = []
    try:
        channel = connection.channel()
        while True:
            method, properties, _ = channel.basic_get(
                broker.names.dead_letters(cpas_id), auto_ack=True
            )
            if method is None:
                return codes
            codes.append((properties.headers or {}).get(REFUSAL_CODE_HEADER))
    finally:
        connection.close()


def _journal_events(node: Node, event: Event, correlation: str | None = None) -> list[object]:
    """The node's journal entries of ``event`` (answering ``correlation`` when given).

    The virtual host is shared by the module's tests: an inbox may still hold
    receipts of an earlier test.
    """
    assert node.journal is not None
    return [
        e
        for e in node.journal.tail(10_000)
        if e.event == event.value and correlation in (None, e.correlation_id)
    ]


# ------------------------------------------------ the body is not what it claims


@pytest.mark.parametrize("root", ["dossier", "envelope"])
def test_a_sealed_body_whose_root_is_not_body_is_refused_at_the_first_delivery(
    provisioned_node: NodeFactory,
    broker: Broker,
    small_federation: LocalFederation,
    root: str,
) -> None:
    receiver = provisioned_node(LIEGE, "fichesociale")
    gent = small_federation.member(GENT)
    dossier = _dossier(gent.cpas_id, 31)
    inner = (
        dossier.to_xml()
        if root == "dossier"
        else _sealed(gent.cpas_id, gent.node_keys, receiver.cpas_id, b"<x/>", small_federation)
    )
    data = _sealed(gent.cpas_id, gent.node_keys, receiver.cpas_id, inner, small_federation)
    _publish_as(broker, gent.cpas_id, receiver.cpas_id, data)
    _refused_at_once(receiver, "envelope.body")
    assert _dead_letter_codes(broker, receiver.cpas_id) == ["envelope.body"]


@pytest.mark.parametrize("where", ["sealed", "signature"])
@pytest.mark.parametrize("character", ["é", "\u00a0", "\u2028"])
def test_a_foreign_character_in_base64_is_refused_before_authentication(
    provisioned_node: NodeFactory,
    broker: Broker,
    small_federation: LocalFederation,
    where: str,
    character: str,
) -> None:
    receiver = provisioned_node(LIEGE, "fichesociale")
    gent = small_federation.member(GENT)
    data = _sealed(
        gent.cpas_id,
        gent.node_keys,
        receiver.cpas_id,
        TransferBody(_dossier(gent.cpas_id, 32)).to_xml(),
        small_federation,
    )
    start = data.index(f"<{where} ".encode())
    text = data.index(b">", start) + 1
    data = data[: text + 8] + character.encode() + data[text + 8 :]
    _publish_as(broker, gent.cpas_id, receiver.cpas_id, data)
    _refused_at_once(receiver, "envelope.encoding")


# ---------------------------------------------------- receipts and responses


def _transfer_imported(sender: Node, receiver: Node, seed: int) -> str:
    (number,) = sender.adapter.seed(1, seed=seed)  # type: ignore[attr-defined]
    sent = sender.send_transfer(number, receiver.cpas_id, PURPOSE)
    assert sender.wait_for_outcomes([sent.message_id], 20)[sent.message_id].outcome == "imported"
    return sent.message_id


def test_a_forged_copy_of_a_delivered_message_does_not_flip_the_senders_record(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    sender, receiver = provisioned_node(GENT, "ocmwdata"), provisioned_node(LIEGE, "fichesociale")
    message_id = _transfer_imported(sender, receiver, 33)
    captured = sender.store.outgoing(message_id)
    assert captured is not None
    forged = Envelope.from_xml(captured.envelope).model_copy(update={"signature": bytes(64)})
    namur = small_federation.member(NAMUR).cpas_id
    for _ in range(5):
        _publish_as(broker, namur, receiver.cpas_id, forged.to_xml())
    _until(lambda: receiver.stats["refused.envelope.broker_user"] == 5)
    _until(lambda: receiver.stats["dead_lettered"] == 5)
    time.sleep(1.0)  # a receipt, if one were sent, would arrive meanwhile
    entry = sender.store.outgoing(message_id)
    assert entry is not None and (entry.outcome, entry.outcome_code) == ("imported", None)
    assert len(_journal_events(sender, Event.RECEIPT_RECEIVED, message_id)) == 1
    assert len(_journal_events(receiver, Event.RECEIPT_SENT, message_id)) == 1


def test_a_receipt_from_a_cpas_the_message_did_not_go_to_is_refused(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    sender, receiver = provisioned_node(GENT, "ocmwdata"), provisioned_node(LIEGE, "fichesociale")
    message_id = _transfer_imported(sender, receiver, 34)
    receipt = ReceiptBody(Outcome.REJECTED, "envelope.seal")
    data = _answer_from(small_federation, NAMUR, sender.cpas_id, receipt, message_id)
    _publish_as(broker, small_federation.member(NAMUR).cpas_id, sender.cpas_id, data)
    _until(lambda: sender.stats["refused.envelope.unsolicited"] == 1)
    entry = sender.store.outgoing(message_id)
    assert entry is not None and entry.outcome == "imported"


def test_a_second_receipt_never_changes_an_outcome_already_recorded(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    sender, receiver = provisioned_node(GENT, "ocmwdata"), provisioned_node(LIEGE, "fichesociale")
    message_id = _transfer_imported(sender, receiver, 35)
    receipt = ReceiptBody(Outcome.REJECTED, "envelope.seal")
    data = _answer_from(small_federation, LIEGE, sender.cpas_id, receipt, message_id)
    _publish_as(broker, receiver.cpas_id, sender.cpas_id, data)
    _until(lambda: sender.stats["refused.receipt.already_recorded"] == 1)
    entry = sender.store.outgoing(message_id)
    assert entry is not None and (entry.outcome, entry.outcome_code) == ("imported", None)


def test_a_second_receipt_repeating_the_recorded_outcome_is_taken_without_a_dead_letter(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    # After a broker restart the sender republishes what it did not see
    # confirmed, and the receiver answers the copy again: the same outcome,
    # told twice, is no attack and must not end as a dead letter.
    sender, receiver = provisioned_node(GENT, "ocmwdata"), provisioned_node(LIEGE, "fichesociale")
    message_id = _transfer_imported(sender, receiver, 36)
    receipt = ReceiptBody(Outcome.IMPORTED)
    data = _answer_from(small_federation, LIEGE, sender.cpas_id, receipt, message_id)
    _publish_as(broker, receiver.cpas_id, sender.cpas_id, data)
    _until(lambda: sender.stats["receipts.repeated"] == 1)
    assert sender.stats["dead_lettered"] == 0
    entry = sender.store.outgoing(message_id)
    assert entry is not None and (entry.outcome, entry.outcome_code) == ("imported", None)
    assert len(_journal_events(sender, Event.RECEIPT_RECEIVED, message_id)) == 1


def test_a_second_response_never_changes_a_final_answer(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    requester, holder = provisioned_node(GENT, "ocmwdata"), provisioned_node(LIEGE, "fichesociale")
    (number,) = holder.adapter.seed(1, seed=41)  # type: ignore[attr-defined]
    sent = requester.send_request(number, holder.cpas_id, PURPOSE, "RQ-1")
    answer = requester.wait_for_outcomes([sent.message_id], 20)[sent.message_id]
    assert answer.outcome == "answered"
    refusal = ResponseBody(RefusalReason.UNKNOWN_PERSON)
    data = _answer_from(small_federation, LIEGE, requester.cpas_id, refusal, sent.message_id)
    _publish_as(broker, holder.cpas_id, requester.cpas_id, data)
    _until(lambda: requester.stats["refused.response.already_answered"] == 1)
    entry = requester.store.outgoing(sent.message_id)
    assert entry is not None and entry.outcome == "answered"


# ------------------------------------------------------------ the dossier's source


@pytest.mark.parametrize("claimed", [NAMUR, LIEGE, "police"])
def test_a_dossier_whose_source_is_not_its_signed_sender_is_refused(
    provisioned_node: NodeFactory,
    broker: Broker,
    small_federation: LocalFederation,
    claimed: str,
) -> None:
    receiver = provisioned_node(LIEGE, "fichesociale")
    gent = small_federation.member(GENT)
    source = (
        next(i.id for i in small_federation.directory.institutions if i.kind.value == "police")
        if claimed == "police"
        else small_federation.member(claimed).cpas_id
    )
    body = TransferBody(_dossier(source, 36)).to_xml()
    data = _sealed(gent.cpas_id, gent.node_keys, receiver.cpas_id, body, small_federation)
    _publish_as(broker, gent.cpas_id, receiver.cpas_id, data)
    _refused_at_once(receiver, "dossier.source")


# ----------------------------------------------------- a requester with no key


def test_a_request_from_a_cpas_without_an_encryption_key_is_refused_not_crashed(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    gent = small_federation.member(GENT)
    institution = small_federation.directory.get(gent.cpas_id)
    assert institution is not None
    # Liège's directory lists Gent as an active CPAS whose encryption key expired.
    without_key = small_federation.reissue(institution.model_copy(update={"encryption_keys": []}))
    try:
        receiver = provisioned_node(LIEGE, "fichesociale", directory=without_key)
        receiver.adapter.seed(1, seed=37)  # type: ignore[attr-defined]
        (number,) = receiver.adapter.list_person_numbers()  # type: ignore[attr-defined]
        body = RequestBody(number).to_xml()
        data = _sealed(
            gent.cpas_id,
            gent.node_keys,
            receiver.cpas_id,
            body,
            small_federation,
            type=MessageType.REQUEST,
        )
        _publish_as(broker, gent.cpas_id, receiver.cpas_id, data)
        _until(lambda: receiver.stats["refused.directory.no_key"] == 1)
        _until(lambda: receiver.stats["dead_lettered"] == 1)
        assert receiver.stats["errors"] == 0 and receiver.stats["redelivered"] == 0
    finally:
        small_federation.reissue(institution)


def test_a_signature_with_another_cpas_key_gets_no_receipt(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    receiver = provisioned_node(LIEGE, "fichesociale")
    gent, namur = small_federation.member(GENT), small_federation.member(NAMUR)
    body = TransferBody(_dossier(gent.cpas_id, 38)).to_xml()
    data = _sealed(gent.cpas_id, namur.node_keys, receiver.cpas_id, body, small_federation)
    envelope = Envelope.from_xml(data)
    assert base64.b64encode(envelope.signature)  # signed, but by Namur's key
    _publish_as(broker, gent.cpas_id, receiver.cpas_id, data)
    _refused_at_once(receiver, "envelope.signature")
    assert _journal_events(receiver, Event.RECEIPT_SENT) == []


# ------------------------------------------------- an older directory edition


def _two_editions(tmp_path: Path) -> tuple[LocalFederation, bytes]:
    """A federation whose current edition is 2, and the bytes of its edition 1."""
    world = make_local_federation(tmp_path / "world", [GENT, LIEGE], small=True)
    first = world.directory_path.read_bytes()
    liege = world.directory.get(world.member(LIEGE).cpas_id)
    assert liege is not None
    # Liège merged into Gent: edition 2 no longer lists it as an active CPAS.
    world.reissue(
        liege.model_copy(
            update={
                "status": InstitutionStatus.MERGED,
                "merged_into": world.member(GENT).cpas_id,
                "encryption_keys": [],
            }
        )
    )
    return world, first


def test_directory_verify_refuses_an_edition_older_than_one_it_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world, first = _two_editions(tmp_path)
    old = tmp_path / "old.xml"
    old.write_bytes(first)
    trust = ["--trust", str(world.trust_anchor)]
    assert main(["directory", "verify", *trust, str(world.directory_path)]) == 0
    assert main(["directory", "verify", *trust, str(old)]) == 1
    assert "[directory.rollback]" in capsys.readouterr().err


def test_directory_verify_refuses_an_edition_older_than_min_serial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world, first = _two_editions(tmp_path)
    old = tmp_path / "old.xml"
    old.write_bytes(first)
    argv = ["directory", "verify", "--trust", str(world.trust_anchor), "--min-serial", "2"]
    assert main([*argv, str(old)]) == 1
    assert "[directory.rollback]" in capsys.readouterr().err


def test_broker_provision_refuses_an_edition_older_than_the_one_it_provisioned(
    management_url: str, amqp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world, first = _two_editions(tmp_path)
    old = tmp_path / "old.xml"
    old.write_bytes(first)
    api, tag = ManagementApi(management_url), uuid.uuid4().hex[:8]
    vhost, namespace = f"dse-test-{tag}", f"t{tag}"
    argv = [
        "broker",
        "provision",
        "--trust",
        str(world.trust_anchor),
        "--vhost",
        vhost,
        "--namespace",
        namespace,
        "--admin-url",
        amqp_url,
        "--management-url",
        management_url,
    ]
    liege_user = Names(namespace).broker_user(world.member(LIEGE).cpas_id)
    try:
        assert main([*argv, "--directory", str(world.directory_path)]) == 0
        assert main([*argv, "--directory", str(old)]) == 1
        assert "[directory.rollback]" in capsys.readouterr().err
        assert api.user(liege_user) is None  # the merged CPAS did not get its user back
        assert main([*argv, "--directory", str(world.directory_path), "--min-serial", "3"]) == 1
    finally:
        api.delete_vhost(vhost)
        remove_users(api, Names(namespace))


# ------------------------------------------------- no national number echoed


@pytest.mark.parametrize(
    "mistyped",
    ["85073003329", "8507300332", "85.07.30-033.2x", "85133003328"],
    ids=["checksum", "too-short", "letter", "no-birth-date"],
)
@pytest.mark.parametrize("command", ["request", "send", "report"])
def test_a_mistyped_national_number_is_never_printed_back(
    configs: dict[str, Path],
    world: LocalFederation,
    capsys: pytest.CaptureFixture[str],
    command: str,
    mistyped: str,
) -> None:
    liege = world.member(LIEGE).cpas_id
    argv = {
        "request": ["--from", liege, "--purpose", PURPOSE.value, "--case", "C-1", "--wait", "1"],
        "send": ["--to", liege, "--purpose", PURPOSE.value, "--wait", "1"],
        "report": ["--lang", "fr"],
    }[command]
    code = main([command, "--config", str(configs[GENT]), "--niss", mistyped, *argv])
    out = capsys.readouterr()
    printed = out.out + out.err
    assert code != 0
    if command == "request":
        assert "[niss." in printed or "[bis." in printed
    digits = "".join(ch for ch in mistyped if ch.isdigit())
    assert mistyped not in printed and digits not in printed.replace(".", "").replace("-", "")


def test_a_passive_declare_shows_another_inbox_depth_and_nothing_more(
    provisioned_node: NodeFactory, broker: Broker, small_federation: LocalFederation
) -> None:
    # Accepted (docs/security.md): RabbitMQ checks no permission on a passive
    # declare, so a CPAS can read how many messages wait in another CPAS's
    # inbox -- traffic volume the broker operator sees anyway -- but never a
    # message, a header or a message id.
    sender = provisioned_node(GENT, "ocmwdata")
    liege, namur = small_federation.member(LIEGE).cpas_id, small_federation.member(NAMUR).cpas_id
    (number,) = sender.adapter.seed(1, seed=39)  # type: ignore[attr-defined]
    sender.send_transfer(number, liege, PURPOSE).confirmed.result(10)
    connection = pika.BlockingConnection(pika.URLParameters(broker.url_of(namur)))
    try:
        channel = connection.channel()
        declared = channel.queue_declare(broker.names.inbox(liege), passive=True)
        assert declared.method.message_count >= 1
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_get(broker.names.inbox(liege))
        assert refused.value.reply_code == 403
    finally:
        if connection.is_open:
            connection.close()


def test_the_person_reads_the_contact_the_directory_lists_for_the_signed_sender(
    make_node: NodeFactory, federation: LocalFederation
) -> None:
    sender, receiver = make_node(GENT, "ocmwdata"), make_node(LIEGE, "fichesociale")
    dossier = _dossier(sender.cpas_id, 40)
    # Gent itself signs a dossier whose contact sends the person elsewhere.
    lure = dossier.source.contact.model_copy(update={"mailbox": "help@elsewhere.example.com"})
    dossier = dossier.model_copy(
        update={"source": dossier.source.model_copy(update={"contact": lure})}
    )
    body = TransferBody(dossier).to_xml()
    data = _sealed(sender.cpas_id, sender.keys, receiver.cpas_id, body, federation)
    sender.broker.publish(sender.names.route, receiver.cpas_id, data).result(10)
    _until(lambda: receiver.stats["imported"] == 1)
    assert receiver.journal is not None
    report = build_report(
        receiver.journal,
        federation.directory,
        cpas_id=receiver.cpas_id,
        person_number=dossier.person.number,
        lang="fr",
    )
    (view,) = [d for exchange in report.exchanges for d in exchange.dossiers]
    listed = federation.directory.get(sender.cpas_id)
    assert listed is not None and listed.contact is not None
    assert view.contact is not None and listed.contact.mailbox in view.contact
    assert "elsewhere" not in view.contact
    assert view.source == listed.name(Language.FR)
