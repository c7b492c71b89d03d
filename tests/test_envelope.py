"""Envelopes under attack, without a broker: every forgery is refused before decryption."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.model import keys
from gateway.model.codes import Outcome
from gateway.model.directory import InstitutionKind
from gateway.model.dossier import Dossier
from gateway.model.envelope import (
    CLOCK_SKEW,
    Envelope,
    Header,
    MessageType,
    Purpose,
    ReceiptBody,
    RefusalReason,
    RequestBody,
    ResponseBody,
    TransferBody,
    body_from_xml,
    open_envelope,
    seal,
)
from gateway.model.errors import EnvelopeRefused, GatewayError
from gateway.testing.synthetic import make_beneficiary

GENT, LIEGE, NAMUR = "44021", "62063", "92094"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> LocalFederation:
    return make_local_federation(tmp_path_factory.mktemp("world"), [GENT, LIEGE, NAMUR])


def _transfer(
    world: LocalFederation, sender: str = GENT, recipient: str = LIEGE, **header: object
) -> tuple[Envelope, bytes]:
    a, b = world.member(sender), world.member(recipient)
    dossier = make_beneficiary(random.Random(1), a.cpas_id).dossier
    fields = {
        "sender": a.cpas_id,
        "recipient": b.cpas_id,
        "purpose": Purpose.CONTINUITY_AFTER_MOVE,
        "case_reference": "G-1",
    } | header
    body = TransferBody(dossier).to_xml()
    envelope = seal(
        Header.new(MessageType.TRANSFER, **fields),
        body,
        keys=a.node_keys,
        directory=world.directory,
    )  # type: ignore[arg-type]
    return envelope, body


def _open(
    world: LocalFederation,
    envelope: Envelope,
    recipient: str = LIEGE,
    now: dt.datetime | None = None,
) -> bytes:
    me = world.member(recipient)
    return open_envelope(
        Envelope.from_xml(envelope.to_xml()),
        me=me.cpas_id,
        keys=me.node_keys,
        directory=world.directory,
        now=now,
    )


def _refusal(world: LocalFederation, envelope: Envelope, **kwargs: object) -> str:
    with pytest.raises(EnvelopeRefused) as refused:
        _open(world, envelope, **kwargs)  # type: ignore[arg-type]
    return refused.value.code


def test_a_sealed_transfer_opens_for_its_recipient(world: LocalFederation) -> None:
    envelope, body = _transfer(world)
    assert _open(world, envelope) == body


def test_the_wire_carries_no_name_and_no_number_in_clear(world: LocalFederation) -> None:
    envelope, body = _transfer(world)
    dossier = body_from_xml(body, MessageType.TRANSFER).dossier
    wire = envelope.to_xml()
    for secret in (dossier.person.number, dossier.person.family_name, *dossier.person.given_names):
        assert secret.encode() not in wire


def test_a_message_signed_with_a_key_not_in_the_directory_is_refused(
    world: LocalFederation,
) -> None:
    envelope, _ = _transfer(world)
    impostor = keys.generate_signing_key()
    forged = envelope.model_copy(update={"signature": impostor.sign(envelope.signed_bytes())})
    assert _refusal(world, forged) == "envelope.signature"


def test_a_tampered_ciphertext_is_refused(world: LocalFederation) -> None:
    envelope, _ = _transfer(world)
    flipped = bytearray(envelope.ciphertext)
    flipped[len(flipped) // 2] ^= 0x01
    assert (
        _refusal(world, envelope.model_copy(update={"ciphertext": bytes(flipped)}))
        == "envelope.signature"
    )


def test_a_header_s_canonical_bytes_follow_its_fields_whatever_was_computed_before(
    world: LocalFederation,
) -> None:
    header = _transfer(world)[0].header
    first = header.canonical()
    changed = header.model_copy(update={"purpose": Purpose.NEW_APPLICATION_INQUIRY})
    assert b"purpose=new-application-inquiry\n" in changed.canonical()
    assert changed.canonical() != first
    assert Header.model_validate(header.model_dump()).canonical() == first == header.canonical()


def test_a_changed_header_field_breaks_the_signature(world: LocalFederation) -> None:
    envelope, _ = _transfer(world)
    header = envelope.header.model_copy(update={"purpose": Purpose.NEW_APPLICATION_INQUIRY})
    assert _refusal(world, envelope.model_copy(update={"header": header})) == "envelope.signature"


def test_a_body_moved_under_another_header_does_not_open_even_when_re_signed(
    world: LocalFederation,
) -> None:
    # Namur is a CPAS with valid keys. It takes Gent's sealed body and sends it
    # to the same recipient under its own, correctly signed header.
    envelope, _ = _transfer(world)
    namur = world.member(NAMUR)
    header = Header.new(
        MessageType.TRANSFER,
        sender=namur.cpas_id,
        recipient=envelope.header.recipient,
        purpose=envelope.header.purpose,
        case_reference="N-1",
    )
    moved = envelope.model_copy(
        update={"header": header, "signature_key_id": namur.node_keys.signing_key_id}
    )
    moved = moved.model_copy(
        update={"signature": namur.node_keys.signing.sign(moved.signed_bytes())}
    )
    assert _refusal(world, moved) == "envelope.seal"


def test_a_message_for_another_cpas_is_refused(world: LocalFederation) -> None:
    envelope, _ = _transfer(world)
    assert _refusal(world, envelope, recipient=NAMUR) == "envelope.wrong_recipient"


def test_an_expired_message_is_refused(world: LocalFederation) -> None:
    envelope, _ = _transfer(world, now=_now() - dt.timedelta(hours=12), ttl=dt.timedelta(hours=1))
    assert _refusal(world, envelope) == "envelope.expired"


def test_a_message_from_beyond_the_clock_skew_is_refused(world: LocalFederation) -> None:
    later = _now() + CLOCK_SKEW + dt.timedelta(minutes=1)
    envelope, _ = _transfer(world, now=later)
    assert _refusal(world, envelope) == "envelope.future"


def test_a_message_within_the_clock_skew_is_accepted(world: LocalFederation) -> None:
    soon = _now() + CLOCK_SKEW - dt.timedelta(minutes=1)
    envelope, body = _transfer(world, now=soon)
    assert _open(world, envelope) == body


def test_a_sender_that_is_not_a_cpas_is_refused(world: LocalFederation) -> None:
    envelope, _ = _transfer(world)
    police = next(i for i in world.directory.institutions if i.kind is InstitutionKind.POLICE)
    header = envelope.header.model_copy(update={"sender": police.id})
    assert (
        _refusal(world, envelope.model_copy(update={"header": header}))
        == "envelope.sender_not_cpas"
    )


def test_a_body_of_another_type_than_the_header_announces_is_refused(
    world: LocalFederation,
) -> None:
    _, body = _transfer(world)
    with pytest.raises(EnvelopeRefused) as refused:
        body_from_xml(body, MessageType.REQUEST)
    assert refused.value.code == "envelope.type_mismatch"


def _dossier(world: LocalFederation) -> Dossier:
    return make_beneficiary(random.Random(1), world.member(GENT).cpas_id).dossier


def test_a_transfer_body_reads_back_as_written(world: LocalFederation) -> None:
    body = TransferBody(_dossier(world))
    assert body_from_xml(body.to_xml(), MessageType.TRANSFER) == body


def test_a_request_body_reads_back_as_written(world: LocalFederation) -> None:
    body = RequestBody(_dossier(world).person.number)
    assert body_from_xml(body.to_xml(), MessageType.REQUEST) == body


def test_a_response_body_with_a_dossier_reads_back_as_written(world: LocalFederation) -> None:
    body = ResponseBody(_dossier(world))
    assert body_from_xml(body.to_xml(), MessageType.RESPONSE) == body


def test_a_response_body_with_a_refusal_reads_back_as_written() -> None:
    body = ResponseBody(RefusalReason.AWAITING_RELEASE)
    parsed = body_from_xml(body.to_xml(), MessageType.RESPONSE)
    assert parsed == body
    assert parsed.answer is RefusalReason.AWAITING_RELEASE


def test_a_receipt_body_reads_back_as_written_with_the_vocabulary_s_outcome() -> None:
    body = ReceiptBody(Outcome.REJECTED, "envelope.seal")
    parsed = body_from_xml(body.to_xml(), MessageType.RECEIPT)
    assert parsed == body
    assert parsed.outcome is Outcome.REJECTED


def test_a_receipt_body_without_a_code_reads_back_without_one() -> None:
    parsed = body_from_xml(ReceiptBody(Outcome.IMPORTED).to_xml(), MessageType.RECEIPT)
    assert parsed == ReceiptBody(Outcome.IMPORTED, None)


def test_a_receipt_body_under_a_response_header_is_refused() -> None:
    with pytest.raises(EnvelopeRefused) as refused:
        body_from_xml(ReceiptBody(Outcome.IMPORTED).to_xml(), MessageType.RESPONSE)
    assert refused.value.code == "envelope.type_mismatch"


def test_a_bare_dossier_is_not_a_body(world: LocalFederation) -> None:
    with pytest.raises(EnvelopeRefused) as refused:
        body_from_xml(_dossier(world).to_xml(), MessageType.TRANSFER)
    assert refused.value.code == "envelope.body"


def test_the_post_quantum_hybrid_kem_seals_and_opens(tmp_path: Path) -> None:
    world = make_local_federation(tmp_path, [GENT, LIEGE], small=True)
    node_keys = world.rotate_encryption_key(LIEGE, keys.KEM_HYBRID)
    envelope, body = _transfer(world)
    assert envelope.kem == keys.KEM_HYBRID
    liege = world.member(LIEGE)
    opened = open_envelope(envelope, me=liege.cpas_id, keys=node_keys, directory=world.directory)
    assert opened == body


def test_during_a_rotation_new_messages_use_the_new_key_and_old_ones_still_open(
    tmp_path: Path,
) -> None:
    world = make_local_federation(tmp_path, [GENT, LIEGE], small=True)
    in_flight, old_body = _transfer(world)
    node_keys = world.rotate_encryption_key(LIEGE)
    fresh, new_body = _transfer(world)
    assert fresh.key_id != in_flight.key_id
    liege = world.member(LIEGE)
    for envelope, body in ((in_flight, old_body), (fresh, new_body)):
        assert (
            open_envelope(envelope, me=liege.cpas_id, keys=node_keys, directory=world.directory)
            == body
        )


def test_a_header_made_with_a_time_without_its_zone_is_refused_as_naive(
    world: LocalFederation,
) -> None:
    with pytest.raises(GatewayError) as refused:
        Header.new(
            MessageType.TRANSFER,
            sender=world.member(GENT).cpas_id,
            recipient=world.member(LIEGE).cpas_id,
            purpose=Purpose.CONTINUITY_AFTER_MOVE,
            case_reference="G-1",
            now=dt.datetime(2026, 10, 1, 12, 0),
        )
    assert refused.value.code == "time.naive"
