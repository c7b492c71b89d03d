"""The spine, against the real broker: two nodes with two different vendors."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pika
import pytest
from conftest import GENT, LIEGE, NAMUR, NodeFactory

from gateway.broker import wait_all
from gateway.dead_letters import list_dead_letters, requeue_dead_letters
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.model.codes import Outcome, Refusal
from gateway.model.directory import InstitutionKind, InstitutionStatus
from gateway.model.dossier import Dossier
from gateway.model.envelope import Envelope, Header, MessageType, Purpose, TransferBody, seal
from gateway.model.errors import AdapterError, BrokerError, DestinationRefused
from gateway.model.identifiers import person_number_kind
from gateway.node import REFUSAL_CODE_HEADER, Node
from gateway.store import Outgoing

PURPOSE = Purpose.CONTINUITY_AFTER_MOVE


def _canonical(dossier: Dossier) -> dict[str, object]:
    """What must survive a move unchanged (the source, ids and times are the sender's own)."""
    return dossier.model_dump(include={"person", "household", "aid_history", "last_social_inquiry"})


def _move(sender: Node, receiver: Node, count: int, seed: int) -> list[str]:
    numbers = sender.adapter.seed(count, seed=seed)  # type: ignore[attr-defined]
    sent = [sender.send_transfer(n, receiver.cpas_id, PURPOSE) for n in numbers]
    outcomes = sender.wait_for_outcomes([s.message_id for s in sent], timeout=30)
    assert [outcomes[s.message_id].outcome for s in sent] == ["imported"] * count
    return numbers


@pytest.mark.parametrize(
    ("source", "target"), [("ocmwdata", "fichesociale"), ("fichesociale", "ocmwdata")]
)
def test_dossiers_move_between_vendors_with_canonical_content_intact(
    make_node: NodeFactory, source: str, target: str
) -> None:
    sender, receiver = make_node(GENT, source), make_node(LIEGE, target)
    numbers = _move(sender, receiver, 12, seed=7)
    for number in numbers:
        sent = sender.adapter.export_dossier(number)
        arrived = receiver.adapter.export_dossier(number)
        assert sent is not None and arrived is not None
        assert _canonical(arrived) == _canonical(sent)
        assert arrived.source.cpas_id == receiver.cpas_id


@pytest.mark.parametrize("kind", [k for k in InstitutionKind if k is not InstitutionKind.CPAS])
def test_non_cpas_destination_is_refused_before_anything_is_published(
    make_node: NodeFactory, federation: LocalFederation, kind: InstitutionKind
) -> None:
    sender = make_node(GENT, "ocmwdata")
    (number,) = sender.adapter.seed(1, seed=1)  # type: ignore[attr-defined]
    target = next(i for i in federation.directory.institutions if i.kind is kind)
    with pytest.raises(DestinationRefused) as refused:
        sender.send_transfer(number, target.id, PURPOSE)
    assert refused.value.code == "directory.not_cpas"
    assert sender.store.outgoing_all() == []


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (InstitutionStatus.CLOSED, "directory.closed"),
        (InstitutionStatus.MERGED, "directory.merged"),
    ],
)
def test_closed_or_merged_cpas_is_refused_with_the_directory_reason(
    make_node: NodeFactory, federation: LocalFederation, status: InstitutionStatus, code: str
) -> None:
    sender = make_node(GENT, "ocmwdata")
    (number,) = sender.adapter.seed(1, seed=2)  # type: ignore[attr-defined]
    target = next(i for i in federation.directory.institutions if i.status is status)
    with pytest.raises(DestinationRefused) as refused:
        sender.send_transfer(number, target.id, PURPOSE)
    assert refused.value.code == code
    assert sender.store.outgoing_all() == []


def test_unknown_destination_is_refused(make_node: NodeFactory) -> None:
    sender = make_node(GENT, "ocmwdata")
    (number,) = sender.adapter.seed(1, seed=3)  # type: ignore[attr-defined]
    with pytest.raises(DestinationRefused) as refused:
        sender.send_transfer(number, "0999999980", PURPOSE)
    assert refused.value.code == "directory.unknown"


def test_cpas_without_an_inbox_is_reported_unroutable(
    make_node: NodeFactory, federation: LocalFederation
) -> None:
    sender = make_node(GENT, "ocmwdata")
    (number,) = sender.adapter.seed(1, seed=4)  # type: ignore[attr-defined]
    namur = federation.member(NAMUR).cpas_id  # in the directory, but runs no node here
    sent = sender.send_transfer(number, namur, PURPOSE)
    with pytest.raises(BrokerError) as error:
        sent.confirmed.result(timeout=10)
    assert error.value.code == "broker.unroutable"


def test_the_same_message_delivered_twice_is_imported_once(make_node: NodeFactory) -> None:
    sender, receiver = make_node(GENT, "ocmwdata"), make_node(LIEGE, "fichesociale")
    (number,) = sender.adapter.seed(1, seed=5)  # type: ignore[attr-defined]
    sent = sender.send_transfer(number, receiver.cpas_id, PURPOSE)
    sent.confirmed.result(timeout=10)
    entry = sender.store.outgoing(sent.message_id)
    assert entry is not None
    sender.broker.publish(
        sender.names.route, receiver.cpas_id, entry.envelope, message_id=sent.message_id
    ).result(10)
    _wait(lambda: receiver.stats["duplicates"] == 1)
    assert receiver.stats["imported"] == 1
    assert receiver.adapter.count_persons() == 1  # type: ignore[attr-defined]
    assert sender.wait_for_outcomes([sent.message_id], 10)[sent.message_id].outcome == "imported"


def test_a_corrupt_dossier_is_dead_lettered_and_the_sender_gets_a_rejected_receipt(
    make_node: NodeFactory, federation: LocalFederation, amqp_url: str
) -> None:
    sender, receiver = make_node(GENT, "ocmwdata"), make_node(LIEGE, "fichesociale")
    (number,) = sender.adapter.seed(1, seed=6)  # type: ignore[attr-defined]
    dossier = sender.adapter.export_dossier(number)
    assert dossier is not None
    # A signed, well-sealed message whose dossier breaks a check digit.
    good = dossier.person.number
    bad = good[:-2] + f"{(int(good[-2:]) + 1) % 100:02d}"
    body = TransferBody(dossier).to_xml().replace(good.encode(), bad.encode())
    header = Header.new(
        MessageType.TRANSFER,
        sender=sender.cpas_id,
        recipient=receiver.cpas_id,
        purpose=PURPOSE,
        case_reference="X-1",
    )
    envelope = seal(header, body, keys=sender.keys, directory=federation.directory)
    sender.store.add_outgoing(
        [
            Outgoing(
                message_id=str(header.message_id),
                type="transfer",
                recipient=receiver.cpas_id,
                purpose=PURPOSE.value,
                case_reference="X-1",
                correlation_id=None,
                envelope=envelope.to_xml(),
            )
        ]
    )
    sender.broker.publish(
        sender.names.route, receiver.cpas_id, envelope.to_xml(), message_id=str(header.message_id)
    ).result(10)

    outcome = sender.wait_for_outcomes([str(header.message_id)], 15)[str(header.message_id)]
    checksum = Refusal.BIS_CHECKSUM if person_number_kind(good) == "bis" else Refusal.NISS_CHECKSUM
    assert (outcome.outcome, outcome.outcome_code) == (Outcome.REJECTED, checksum)
    dead = _get_one(amqp_url, sender.names.dead_letters(receiver.cpas_id))
    assert dead.headers[REFUSAL_CODE_HEADER] == outcome.outcome_code
    assert receiver.adapter.count_persons() == 0  # type: ignore[attr-defined]


def test_garbage_is_dead_lettered_and_the_node_keeps_importing(
    make_node: NodeFactory, amqp_url: str
) -> None:
    sender, receiver = make_node(GENT, "ocmwdata"), make_node(LIEGE, "fichesociale")
    sender.broker.publish(
        sender.names.route, receiver.cpas_id, b"<not xml", message_id="poison-1"
    ).result(10)
    _move(sender, receiver, 3, seed=8)
    dead = _get_one(amqp_url, sender.names.dead_letters(receiver.cpas_id))
    assert dead.headers[REFUSAL_CODE_HEADER] == "xml.malformed"
    assert receiver.stats["imported"] == 3


def _wait(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _get_one(amqp_url: str, queue: str, timeout: float = 15.0) -> pika.BasicProperties:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, properties, _ = channel.basic_get(queue, auto_ack=True)
            if method is not None:
                return properties
            time.sleep(0.1)
        raise AssertionError(f"nothing arrived in {queue}")
    finally:
        connection.close()


def test_a_key_rotation_loses_no_message_in_flight(make_node: NodeFactory, tmp_path: Path) -> None:
    world = make_local_federation(tmp_path / "rotation", [GENT, LIEGE], small=True)
    liege_keys = world.member(LIEGE).node_keys
    sender = make_node(
        GENT, "ocmwdata", directory=world.directory, keys=world.member(GENT).node_keys
    )
    make_node(LIEGE, "fichesociale", directory=world.directory, keys=liege_keys).stop()
    numbers = sender.adapter.seed(10, seed=9)  # type: ignore[attr-defined]
    before = [sender.send_transfer(n, world.member(LIEGE).cpas_id, PURPOSE) for n in numbers[:5]]
    wait_all([s.confirmed for s in before], 10)

    rotated = world.rotate_encryption_key(LIEGE)
    sender.directory = world.directory  # the new edition reaches the sender
    after = [sender.send_transfer(n, world.member(LIEGE).cpas_id, PURPOSE) for n in numbers[5:]]
    wait_all([s.confirmed for s in after], 10)

    receiver = make_node(LIEGE, "fichesociale", directory=world.directory, keys=rotated)
    outcomes = sender.wait_for_outcomes([s.message_id for s in before + after], 20)
    assert [e.outcome for e in outcomes.values()] == ["imported"] * 10
    assert receiver.stats["imported"] == 10
    key_ids = {Envelope.from_xml(e.envelope).key_id for e in outcomes.values()}
    assert len(key_ids) == 2  # sealed to the old key, then to the new one


def test_a_bulk_transfer_sent_again_sends_only_what_is_missing(make_node: NodeFactory) -> None:
    sender, receiver = make_node(GENT, "ocmwdata"), make_node(LIEGE, "fichesociale")
    sender.adapter.seed(30, seed=31)  # type: ignore[attr-defined]
    first = sender.send_all(receiver.cpas_id, PURPOSE)
    assert len(first) == 30
    assert sender.store.unconfirmed() == []
    assert sender.send_all(receiver.cpas_id, PURPOSE) == []
    outcomes = sender.wait_for_outcomes(first, 30)
    assert {e.outcome for e in outcomes.values()} == {"imported"}


def test_a_dead_letter_can_be_requeued_once_its_cause_is_fixed(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, receiver = make_node(GENT, "ocmwdata"), make_node(LIEGE, "fichesociale")
    (number,) = sender.adapter.seed(1, seed=32)  # type: ignore[attr-defined]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AdapterError("The vendor refuses this record.", code="adapter.invalid_data")

    with monkeypatch.context() as patch:
        patch.setattr(receiver.adapter, "import_dossier", refuse)
        sent = sender.send_transfer(number, receiver.cpas_id, PURPOSE)
        rejected = sender.wait_for_outcomes([sent.message_id], 15)[sent.message_id]
        assert (rejected.outcome, rejected.outcome_code) == ("rejected", "adapter.invalid_data")
        _wait(lambda: [d.code for d in list_dead_letters(receiver)] == ["adapter.invalid_data"])

    assert requeue_dead_letters(receiver) == [sent.message_id]
    _wait(lambda: receiver.stats["imported"] == 1)
    assert list_dead_letters(receiver) == []
    _wait(lambda: sender.store.outgoing(sent.message_id).outcome == "imported")  # type: ignore[union-attr]
