"""The signed directory: signature, verdicts, key rotation, model checks, XSD, sample."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lxml import etree

from gateway.model import hardened_xml, keys, municipalities
from gateway.model.directory import (
    Directory,
    InstitutionKind,
    InstitutionStatus,
    KeyEntry,
    build_directory,
    directory_from_spec,
    load_directory,
    read_unsigned,
    sign_directory,
)
from gateway.model.errors import (
    DestinationRefused,
    DirectoryError,
    SchemaInvalid,
    XmlRefused,
)
from gateway.model.identifiers import make_enterprise_number
from gateway.testing.sample_directory import sample_directory

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
NS = "{urn:be:cpas:dse:directory:1}"
XS = "{http://www.w3.org/2001/XMLSchema}"
ROOT = Path(__file__).resolve().parent.parent

BRUXELLES = make_enterprise_number(21004)
GOOIK = make_enterprise_number(23024)
PAJOTTEGEM = make_enterprise_number(23106)
BORSBEEK = make_enterprise_number(11007)
POLICE = make_enterprise_number(900002)


@pytest.fixture(scope="module")
def federation() -> Ed25519PrivateKey:
    return keys.generate_signing_key()


@pytest.fixture(scope="module")
def sample() -> Directory:
    return sample_directory(NOW)


@pytest.fixture(scope="module")
def signed(sample: Directory, federation: Ed25519PrivateKey) -> bytes:
    return sign_directory(sample, federation)


def small_directory(**changes: Any) -> Directory:
    """Three institutions: two CPAS with keys and a police service."""
    start, end = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=365)
    institutions: list[dict[str, Any]] = [
        {
            "id": BRUXELLES,
            "kind": "cpas",
            "names": {"fr": "CPAS de Bruxelles", "nl": "OCMW Brussel"},
            "municipality": "21004",
            "signing_keys": [signing_entry(start, end)],
            "encryption_keys": [encryption_entry(start, end)],
        },
        {
            "id": PAJOTTEGEM,
            "kind": "cpas",
            "names": {"nl": "OCMW Pajottegem", "fr": "CPAS de Pajottegem"},
            "municipality": "23106",
            "signing_keys": [signing_entry(start, end)],
            "encryption_keys": [encryption_entry(start, end)],
        },
        {"id": POLICE, "kind": "police", "names": {"fr": "Police fédérale"}},
    ]
    spec: dict[str, Any] = {
        "issuer": "Fédération des CPAS",
        "serial": 7,
        "issued_at": NOW,
        "institutions": institutions,
    }
    spec.update(changes)
    return build_directory(**spec)


def signing_entry(start: dt.datetime, end: dt.datetime) -> KeyEntry:
    raw = keys.signing_public_raw(keys.generate_signing_key())
    return KeyEntry.for_key(keys.SIGNING_ALGORITHM, raw, start, end)


def encryption_entry(start: dt.datetime, end: dt.datetime, kem: str = keys.KEM_X25519) -> KeyEntry:
    return KeyEntry.for_key(kem, keys.generate_encryption_key(kem).public_raw, start, end)


def tampered(signed: bytes, change: Any) -> bytes:
    root = hardened_xml.parse(signed)
    change(root)
    return hardened_xml.to_bytes(root)


def institution_el(root: etree._Element, institution_id: str) -> etree._Element:
    (el,) = root.xpath("//d:institution[d:id=$id]", namespaces={"d": NS[1:-1]}, id=institution_id)
    return el


# --------------------------------------------------------------- signature


def test_signed_directory_loads_with_the_federation_trust_anchor(
    signed: bytes, sample: Directory, federation: Ed25519PrivateKey
) -> None:
    assert load_directory(signed, federation.public_key()) == sample


def test_signed_directory_validates_against_the_xsd(signed: bytes) -> None:
    assert hardened_xml.validate(hardened_xml.parse(signed)) == "directory"


def test_unsigned_directory_validates_against_the_xsd(sample: Directory) -> None:
    assert hardened_xml.validate(sample.to_element()) == "directory"


def test_committed_conformance_sample_verifies_with_its_trust_anchor() -> None:
    folder = ROOT / "conformance" / "directory"
    anchor = keys.load_trust_anchor(folder / "sample-federation.pub")
    directory = load_directory((folder / "sample-directory.xml").read_bytes(), anchor)
    assert len(directory.cpas_ids()) > 570


def _rename(root: etree._Element) -> None:
    institution_el(root, BRUXELLES).find(NS + "name").text = "CPAS de Bruxelles-Ville"


def _close(root: etree._Element) -> None:
    institution_el(root, BRUXELLES).find(NS + "status").text = "closed"


def _reopen(root: etree._Element) -> None:
    el = institution_el(root, BORSBEEK)
    el.find(NS + "status").text = "active"


def _swap_key(root: etree._Element) -> None:
    raw = keys.generate_encryption_key().public_raw
    key_el = institution_el(root, BRUXELLES).find(NS + "encryptionKey")
    key_el.text = base64.b64encode(raw).decode()
    key_el.set("id", keys.key_id(raw))


def _extend_key(root: etree._Element) -> None:
    institution_el(root, BRUXELLES).find(NS + "encryptionKey").set(
        "validUntil", "2099-01-01T00:00:00Z"
    )


def _remove(root: etree._Element) -> None:
    el = institution_el(root, BRUXELLES)
    el.getparent().remove(el)


def _add(root: etree._Element) -> None:
    el = copy.deepcopy(institution_el(root, BRUXELLES))
    el.find(NS + "id").text = make_enterprise_number(999999)
    for key_el in el.iterfind(NS + "signingKey"):
        el.remove(key_el)
    for key_el in el.iterfind(NS + "encryptionKey"):
        el.remove(key_el)
    institution_el(root, BRUXELLES).addnext(el)


def _police_becomes_cpas(root: etree._Element) -> None:
    institution_el(root, POLICE).find(NS + "kind").text = "cpas"


def _bump_serial(root: etree._Element) -> None:
    root.find(NS + "serial").text = "2"


@pytest.mark.parametrize(
    "change",
    [
        _rename,
        _close,
        _reopen,
        _swap_key,
        _extend_key,
        _remove,
        _add,
        _police_becomes_cpas,
        _bump_serial,
    ],
    ids=lambda change: change.__name__.strip("_"),
)
def test_any_change_after_signing_is_detected(
    signed: bytes, federation: Ed25519PrivateKey, change: Any
) -> None:
    with pytest.raises(DirectoryError) as refused:
        load_directory(tampered(signed, change), federation.public_key())
    assert refused.value.code == "directory.signature"


def other_value(value: str) -> str:
    """``value`` with its first letter or digit replaced by another of the same class."""
    for index, char in enumerate(value):
        if char.isdigit():
            return value[:index] + str((int(char) + 1) % 10) + value[index + 1 :]
        if char.isascii() and char.isalpha():
            return value[:index] + ("b" if char != "b" else "c") + value[index + 1 :]
    return value + "x"


def test_changing_any_value_anywhere_is_detected() -> None:
    federation = keys.generate_signing_key()
    signed = sign_directory(small_directory(), federation)
    count = len(list(hardened_xml.parse(signed).iter()))
    changed = 0
    for index in range(count):
        for attribute in [None, *hardened_xml.parse(signed).xpath("(//*)[$i]/@*", i=index + 1)]:
            root = hardened_xml.parse(signed)
            el = list(root.iter())[index]
            if el.tag == NS + "signature":
                continue  # the signature itself: the other tests cover it
            if attribute is None:
                if not (el.text or "").strip():
                    continue
                el.text = other_value(el.text or "")
            else:
                name = attribute.attrname
                el.set(name, other_value(el.get(name) or ""))
            with pytest.raises((DirectoryError, SchemaInvalid)) as refused:
                load_directory(hardened_xml.to_bytes(root), federation.public_key())
            assert refused.value.code in {"directory.signature", "schema.invalid"}
            changed += 1
    assert changed > 30


def test_indentation_is_not_part_of_what_is_signed(
    signed: bytes, sample: Directory, federation: Ed25519PrivateKey
) -> None:
    compact = etree.tostring(
        etree.fromstring(signed, etree.XMLParser(remove_blank_text=True)), encoding="UTF-8"
    )
    assert load_directory(compact, federation.public_key()) == sample


def test_unsigned_directory_is_refused(sample: Directory, federation: Ed25519PrivateKey) -> None:
    with pytest.raises(DirectoryError) as refused:
        load_directory(sample.to_xml(), federation.public_key())
    assert refused.value.code == "directory.unsigned"


def test_stripped_signature_is_refused(signed: bytes, federation: Ed25519PrivateKey) -> None:
    def strip(root: etree._Element) -> None:
        root.remove(root.find(NS + "signature"))

    with pytest.raises(DirectoryError) as refused:
        load_directory(tampered(signed, strip), federation.public_key())
    assert refused.value.code == "directory.unsigned"


def test_directory_signed_with_another_key_is_refused(
    sample: Directory, federation: Ed25519PrivateKey
) -> None:
    forged = sign_directory(sample, keys.generate_signing_key())
    with pytest.raises(DirectoryError) as refused:
        load_directory(forged, federation.public_key())
    assert refused.value.code == "directory.signature"
    assert "trusts only" in refused.value.message


def test_another_key_claiming_the_federation_key_id_is_refused(
    sample: Directory, federation: Ed25519PrivateKey
) -> None:
    forged = sign_directory(sample, keys.generate_signing_key())
    anchor_id = keys.key_id(keys.signing_public_raw(federation))

    def claim(root: etree._Element) -> None:
        root.find(NS + "signature").set("keyId", anchor_id)

    with pytest.raises(DirectoryError) as refused:
        load_directory(tampered(forged, claim), federation.public_key())
    assert refused.value.code == "directory.signature"


def test_older_edition_is_refused_once_a_newer_one_is_in_use(
    signed: bytes, federation: Ed25519PrivateKey
) -> None:
    with pytest.raises(DirectoryError) as refused:
        load_directory(signed, federation.public_key(), min_serial=2)
    assert refused.value.code == "directory.rollback"


def test_hostile_xml_is_refused_before_any_signature_check(
    federation: Ed25519PrivateKey,
) -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><directory/>'
    with pytest.raises(XmlRefused) as refused:
        load_directory(hostile, federation.public_key())
    assert refused.value.code == "xml.doctype"


def test_read_unsigned_gives_back_the_directory_that_was_written(sample: Directory) -> None:
    assert read_unsigned(sample.to_xml()) == sample


# ---------------------------------------------------------------- verdicts


def test_active_cpas_with_a_valid_key_may_receive(sample: Directory) -> None:
    verdict = sample.may_receive(BRUXELLES, NOW)
    assert verdict.allowed
    assert verdict.code == "directory.ok"


OTHER_KINDS = [
    (900001, "judicial authority", "Parquet du procureur du Roi de Bruxelles"),
    (900002, "police service", "Police fédérale"),
    (900003, "social-security institution", "(ONSS)"),
    (900004, "social-security institution", "(INAMI)"),
    (900005, "employment service", "(ONEM)"),
    (900006, "tax administration", "SPF Finances"),
    (900007, "institution of another kind", "SPP Intégration sociale"),
]


@pytest.mark.parametrize(("seed", "what", "name"), OTHER_KINDS)
def test_every_institution_that_is_not_a_cpas_is_refused_saying_what_it_is(
    sample: Directory, seed: int, what: str, name: str
) -> None:
    verdict = sample.may_receive(make_enterprise_number(seed), NOW)
    assert not verdict.allowed
    assert verdict.code == "directory.not_cpas"
    assert what in verdict.reason
    assert name in verdict.reason
    assert verdict.reason.endswith("not a CPAS.")


def test_sample_lists_every_kind_of_institution(sample: Directory) -> None:
    assert {institution.kind for institution in sample.institutions} == set(InstitutionKind)


def test_police_refusal_reads_as_a_sentence(sample: Directory) -> None:
    assert (
        sample.may_receive(POLICE, NOW).reason
        == f"{POLICE} is a police service (Police fédérale), not a CPAS."
    )


def test_institution_that_is_not_a_cpas_is_refused_even_with_keys() -> None:
    start, end = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1)
    directory = small_directory()
    police = directory.get(POLICE)
    assert police is not None
    keyed = police.model_copy(update={"encryption_keys": [encryption_entry(start, end)]})
    directory = small_directory(
        institutions=[*[i for i in directory.institutions if i.id != POLICE], keyed]
    )
    assert directory.may_receive(POLICE, NOW).code == "directory.not_cpas"
    with pytest.raises(DestinationRefused):
        directory.encryption_key_for(POLICE, NOW)


def test_a_copy_without_an_institution_does_not_find_it() -> None:
    directory = small_directory()
    without = directory.model_copy(
        update={"institutions": [i for i in directory.institutions if i.id != PAJOTTEGEM]}
    )
    assert without.get(PAJOTTEGEM) is None
    assert without.may_receive(PAJOTTEGEM, NOW).code == "directory.unknown"
    assert directory.get(PAJOTTEGEM) is not None


def test_a_copy_with_a_changed_institution_finds_the_changed_one() -> None:
    directory = small_directory()
    pajottegem = directory.get(PAJOTTEGEM)
    assert pajottegem is not None
    closed = pajottegem.model_copy(update={"status": InstitutionStatus.CLOSED})
    others = [i for i in directory.institutions if i.id != PAJOTTEGEM]
    edition = directory.model_copy(update={"institutions": [*others, closed]})
    assert edition.may_receive(PAJOTTEGEM, NOW).code == "directory.closed"
    assert directory.may_receive(PAJOTTEGEM, NOW).allowed


def test_unknown_institution_is_refused(sample: Directory) -> None:
    verdict = sample.may_receive("0123456749", NOW)
    assert (verdict.allowed, verdict.code) == (False, "directory.unknown")
    assert "0123456749" in verdict.reason


def test_closed_cpas_is_refused(sample: Directory) -> None:
    verdict = sample.may_receive(BORSBEEK, NOW)
    assert (verdict.allowed, verdict.code) == (False, "directory.closed")
    assert "closed" in verdict.reason


def test_merged_cpas_refusal_names_its_successor(sample: Directory) -> None:
    verdict = sample.may_receive(GOOIK, NOW)
    assert (verdict.allowed, verdict.code) == (False, "directory.merged")
    assert f"merged into {PAJOTTEGEM} (CPAS de Pajottegem)" in verdict.reason


def test_successor_of_a_merger_may_receive(sample: Directory) -> None:
    assert sample.may_receive(PAJOTTEGEM, NOW).allowed


def test_cpas_whose_only_key_has_expired_is_refused() -> None:
    directory = small_directory()
    verdict = directory.may_receive(BRUXELLES, NOW + dt.timedelta(days=400))
    assert (verdict.allowed, verdict.code) == (False, "directory.no_key")


def test_cpas_whose_key_is_not_valid_yet_is_refused() -> None:
    assert small_directory().may_receive(BRUXELLES, NOW - dt.timedelta(days=2)).code == (
        "directory.no_key"
    )


def test_check_destination_refuses_with_the_verdict_code_and_reason(sample: Directory) -> None:
    with pytest.raises(DestinationRefused) as refused:
        sample.check_destination(GOOIK, NOW)
    assert refused.value.code == "directory.merged"
    assert refused.value.message == sample.may_receive(GOOIK, NOW).reason


def test_check_destination_returns_an_allowed_institution(sample: Directory) -> None:
    assert sample.check_destination(BRUXELLES, NOW).name("nl") == "OCMW Brussel"


def test_may_receive_refuses_a_naive_moment(sample: Directory) -> None:
    with pytest.raises(ValueError):
        sample.may_receive(BRUXELLES, dt.datetime(2026, 11, 28, 12))


def test_cpas_ids_lists_only_active_cpas(sample: Directory) -> None:
    ids = sample.cpas_ids()
    assert BRUXELLES in ids and PAJOTTEGEM in ids
    assert not {GOOIK, BORSBEEK, POLICE} & set(ids)
    # 581 municipalities, 3 merged, 1 closed, plus Pajottegem.
    assert len(ids) == 581 - 3 - 1 + 1


# ---------------------------------------------------------------- rotation


def rotated_directory() -> tuple[Directory, KeyEntry, KeyEntry, KeyEntry, KeyEntry]:
    old_start, overlap, old_end = (
        NOW - dt.timedelta(days=300),
        NOW - dt.timedelta(days=10),
        NOW + dt.timedelta(days=20),
    )
    new_end = NOW + dt.timedelta(days=700)
    old_enc, new_enc = encryption_entry(old_start, old_end), encryption_entry(overlap, new_end)
    old_sig, new_sig = signing_entry(old_start, old_end), signing_entry(overlap, new_end)
    institution = {
        "id": BRUXELLES,
        "kind": "cpas",
        "names": {"fr": "CPAS de Bruxelles"},
        "signing_keys": [old_sig, new_sig],
        "encryption_keys": [old_enc, new_enc],
    }
    return small_directory(institutions=[institution]), old_enc, new_enc, old_sig, new_sig


def test_senders_seal_for_the_newest_key_during_a_rotation() -> None:
    directory, _, new_enc, _, _ = rotated_directory()
    assert directory.encryption_key_for(BRUXELLES, NOW) == new_enc


def test_senders_seal_for_the_old_key_before_the_new_one_is_valid() -> None:
    directory, old_enc, _, _, _ = rotated_directory()
    assert directory.encryption_key_for(BRUXELLES, NOW - dt.timedelta(days=30)) == old_enc


def test_both_signing_keys_verify_during_a_rotation_newest_first() -> None:
    directory, _, _, old_sig, new_sig = rotated_directory()
    assert directory.signing_keys_for(BRUXELLES, NOW) == [new_sig, old_sig]


def test_old_signing_key_stops_verifying_when_it_expires() -> None:
    directory, _, _, _, new_sig = rotated_directory()
    assert directory.signing_keys_for(BRUXELLES, NOW + dt.timedelta(days=30)) == [new_sig]


def test_signing_keys_of_an_unknown_institution_are_none() -> None:
    assert small_directory().signing_keys_for("0123456749", NOW) == []


def test_hybrid_encryption_keys_are_listed_and_chosen() -> None:
    start, end = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1)
    hybrid = encryption_entry(start, end, keys.KEM_HYBRID)
    directory = small_directory(
        institutions=[
            {"id": BRUXELLES, "kind": "cpas", "names": {"fr": "CPAS"}, "encryption_keys": [hybrid]}
        ]
    )
    federation = keys.generate_signing_key()
    loaded = load_directory(sign_directory(directory, federation), federation.public_key())
    assert loaded.encryption_key_for(BRUXELLES, NOW) == hybrid


# ------------------------------------------------------------ model checks


def refusal_code(**changes: Any) -> str:
    with pytest.raises(DirectoryError) as refused:
        small_directory(**changes)
    return refused.value.code


def with_institution(**fields: Any) -> list[dict[str, Any]]:
    base = {"id": GOOIK, "kind": "cpas", "names": {"nl": "OCMW Gooik"}}
    return [base | fields, {"id": PAJOTTEGEM, "kind": "cpas", "names": {"nl": "OCMW Pajottegem"}}]


def test_an_id_listed_twice_is_refused() -> None:
    twice = [{"id": GOOIK, "kind": "cpas", "names": {"nl": "OCMW Gooik"}}] * 2
    assert refusal_code(institutions=twice) == "directory.duplicate_id"


def test_an_id_with_wrong_check_digits_is_refused() -> None:
    assert refusal_code(institutions=with_institution(id="0202302409")) == "enterprise.checksum"


def test_a_merged_institution_must_name_its_successor() -> None:
    assert refusal_code(institutions=with_institution(status="merged")) == "directory.merged_into"


def test_a_successor_must_be_in_the_directory() -> None:
    absent = make_enterprise_number(99999)
    institutions = with_institution(status="merged", merged_into=absent)
    assert refusal_code(institutions=institutions) == "directory.merged_into"


def test_only_a_merged_institution_names_a_successor() -> None:
    institutions = with_institution(merged_into=PAJOTTEGEM)
    assert refusal_code(institutions=institutions) == "directory.merged_into"


def test_a_key_id_that_does_not_match_its_key_is_refused() -> None:
    entry = encryption_entry(NOW, NOW + dt.timedelta(days=1))
    forged = entry.model_dump() | {"key_id": "0123456789abcdef"}
    assert refusal_code(institutions=with_institution(encryption_keys=[forged])) == (
        "directory.key_id"
    )


def test_a_key_valid_until_before_it_starts_is_refused() -> None:
    raw = keys.generate_encryption_key().public_raw
    with pytest.raises(DirectoryError) as refused:
        KeyEntry.for_key(keys.KEM_X25519, raw, NOW, NOW - dt.timedelta(seconds=1))
    assert refused.value.code == "directory.key_validity"


def test_an_encryption_key_listed_as_a_signing_key_is_refused() -> None:
    entry = encryption_entry(NOW, NOW + dt.timedelta(days=1))
    assert refusal_code(institutions=with_institution(signing_keys=[entry])) == (
        "directory.key_algorithm"
    )


def test_one_key_listed_for_two_institutions_is_refused() -> None:
    entry = encryption_entry(NOW, NOW + dt.timedelta(days=1))
    institutions = [
        {"id": GOOIK, "kind": "cpas", "names": {"nl": "A"}, "encryption_keys": [entry]},
        {"id": PAJOTTEGEM, "kind": "cpas", "names": {"nl": "B"}, "encryption_keys": [entry]},
    ]
    assert refusal_code(institutions=institutions) == "directory.duplicate_key"


def test_refusal_names_the_institution_rather_than_its_position() -> None:
    with pytest.raises(DirectoryError) as refused:
        small_directory(institutions=with_institution(status="merged"))
    assert f"institution {GOOIK}" in refused.value.message


def test_name_falls_back_to_french_then_dutch() -> None:
    directory = small_directory()
    pajottegem = directory.get(PAJOTTEGEM)
    assert pajottegem is not None
    assert pajottegem.name("nl") == "OCMW Pajottegem"
    assert pajottegem.name("de") == "CPAS de Pajottegem"
    assert pajottegem.name() == "CPAS de Pajottegem"


# --------------------------------------------------------------------- XSD


def schema_tree() -> etree._ElementTree:
    return etree.parse(str(ROOT / "schemas" / "xsd" / "directory.xsd"))


def test_directory_xsd_has_no_wildcard_or_mixed_content() -> None:
    tree = schema_tree()
    assert not tree.findall(f".//{XS}any")
    assert not tree.findall(f".//{XS}anyAttribute")
    assert not tree.xpath("//*[@mixed='true']")
    assert not tree.xpath("//*[@type='xs:anyType']")


def test_every_declaration_of_the_directory_xsd_is_documented_in_three_languages() -> None:
    tree = schema_tree()
    declarations = tree.xpath(
        "//xs:element | //xs:attribute | //xs:simpleType[@name] | //xs:complexType[@name]",
        namespaces={"xs": XS[1:-1]},
    )
    assert len(declarations) > 30
    for declaration in declarations:
        languages = declaration.xpath(
            "xs:annotation/xs:documentation/@xml:lang", namespaces={"xs": XS[1:-1]}
        )
        assert sorted(languages) == ["en", "fr", "nl"], declaration.get("name")


def test_xsd_refuses_two_names_in_one_language(sample: Directory) -> None:
    root = sample.to_element()
    name = institution_el(root, BRUXELLES).find(NS + "name")
    name.addnext(copy.deepcopy(name))
    with pytest.raises(SchemaInvalid):
        hardened_xml.validate(root)


def test_xsd_refuses_a_successor_that_is_not_listed(sample: Directory) -> None:
    root = sample.to_element()
    institution_el(root, GOOIK).find(NS + "mergedInto").text = make_enterprise_number(99999)
    with pytest.raises(SchemaInvalid):
        hardened_xml.validate(root)


def test_xsd_refuses_a_name_with_surrounding_spaces(sample: Directory) -> None:
    root = sample.to_element()
    institution_el(root, BRUXELLES).find(NS + "name").text = " CPAS de Bruxelles"
    with pytest.raises(SchemaInvalid):
        hardened_xml.validate(root)


# ------------------------------------------------------------------ sample


def test_every_municipality_has_a_cpas_in_the_sample(sample: Directory) -> None:
    listed = {institution.municipality for institution in sample.institutions}
    towns = municipalities.municipalities()
    assert len(towns) == 581
    assert {town.nis_code for town in towns} <= listed


def test_german_speaking_cpas_have_german_names(sample: Directory) -> None:
    eupen = sample.get(make_enterprise_number(63023))
    assert eupen is not None
    assert eupen.name("de") == "ÖSHZ Eupen"
    assert eupen.name("fr") == "CPAS d’Eupen"
    assert len(municipalities.GERMAN_NAMES) == 9


def test_sample_cpas_names_follow_each_language(sample: Directory) -> None:
    antwerp = sample.get(make_enterprise_number(11002))
    assert antwerp is not None
    assert (antwerp.name("fr"), antwerp.name("nl")) == ("CPAS d’Anvers", "OCMW Antwerpen")
    roeulx = sample.get(make_enterprise_number(55035))
    assert roeulx is not None
    assert roeulx.name("fr") == "CPAS du Roeulx"


def test_sample_can_take_the_keys_of_real_nodes() -> None:
    signing = keys.generate_signing_key()
    encryption = keys.generate_encryption_key()

    def keys_for(institution_id: str) -> tuple[bytes, bytes]:
        if institution_id == BRUXELLES:
            return keys.signing_public_raw(signing), encryption.public_raw
        return (
            keys.signing_public_raw(keys.generate_signing_key()),
            keys.generate_encryption_key().public_raw,
        )

    directory = sample_directory(NOW, keys_for)
    assert directory.encryption_key_for(BRUXELLES, NOW).key_id == encryption.key_id
    (signing_entry_,) = directory.signing_keys_for(BRUXELLES, NOW)
    assert signing_entry_.public_key == keys.signing_public_raw(signing)


# ------------------------------------------------------------- JSON input


def node_spec(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    keys.write_node_keys(tmp_path / "node")
    institution = {"id": BRUXELLES, "kind": "cpas", "names": {"fr": "CPAS de Bruxelles"}}
    return {
        "issuer": "Fédération des CPAS",
        "serial": 1,
        "issuedAt": "2026-11-28T12:00:00Z",
        "institutions": [institution | {"publicKeys": "node"} | fields],
    }


def test_keys_from_a_node_are_valid_from_their_creation(tmp_path: Path) -> None:
    directory = directory_from_spec(node_spec(tmp_path), tmp_path)
    created = keys.read_public_keys(tmp_path / "node")["encryptionKeys"][0]["createdAt"]
    entry = directory.encryption_key_for(BRUXELLES, created)
    assert entry.valid_from == created.replace(microsecond=0)
    assert entry.valid_until == entry.valid_from + dt.timedelta(days=730)


def test_key_validity_given_in_the_input_applies_to_a_nodes_keys(tmp_path: Path) -> None:
    validity = {"validFrom": "2027-01-01T00:00:00Z", "validUntil": "2028-01-01T00:00:00Z"}
    directory = directory_from_spec(node_spec(tmp_path, keyValidity=validity), tmp_path)
    institution = directory.get(BRUXELLES)
    assert institution is not None
    for entry in [*institution.signing_keys, *institution.encryption_keys]:
        assert entry.valid_from == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert directory.may_receive(BRUXELLES, NOW).code == "directory.no_key"
