"""Keys: HPKE suites, key ids, node key folders, rotation, federation keys."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from gateway.model import keys
from gateway.model.errors import KeyMaterialError

INFO = b"test info"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------ suites


def test_key_id_is_16_lowercase_hex_of_sha256_of_the_raw_key() -> None:
    raw = bytes(range(32))
    assert keys.key_id(raw) == hashlib.sha256(raw).hexdigest()[:16]


def test_hpke_suite_is_built_once_per_kem() -> None:
    assert keys.hpke_suite(keys.KEM_X25519) is keys.hpke_suite(keys.KEM_X25519)


def test_unknown_kem_is_refused_with_its_code() -> None:
    with pytest.raises(KeyMaterialError) as refused:
        keys.hpke_suite("rsa-2048")
    assert refused.value.code == "keys.kem_unknown"


@pytest.mark.parametrize("kem", [keys.KEM_X25519, keys.KEM_HYBRID])
def test_encryption_key_round_trips_through_its_hpke_suite(kem: str) -> None:
    pair = keys.generate_encryption_key(kem)
    suite = keys.hpke_suite(kem)
    sealed = suite.encrypt(b"dossier", keys.public_encryption_key(kem, pair.public_raw), info=INFO)
    assert suite.decrypt(sealed, pair.private, info=INFO) == b"dossier"


def test_hybrid_public_key_is_mlkem768_then_x25519() -> None:
    pair = keys.generate_encryption_key(keys.KEM_HYBRID)
    assert len(pair.public_raw) == 1184 + 32


def test_hybrid_ciphertext_does_not_open_with_other_info() -> None:
    pair = keys.generate_encryption_key(keys.KEM_HYBRID)
    suite = keys.hpke_suite(keys.KEM_HYBRID)
    sealed = suite.encrypt(b"dossier", pair.public, info=INFO)
    with pytest.raises(InvalidTag):
        suite.decrypt(sealed, pair.private, info=b"another header")


@pytest.mark.parametrize(
    ("kem", "raw"),
    [(keys.KEM_X25519, b"\x01" * 31), (keys.KEM_HYBRID, b"\x01" * 32), (keys.KEM_HYBRID, b"")],
)
def test_public_encryption_key_refuses_bytes_of_the_wrong_size(kem: str, raw: bytes) -> None:
    with pytest.raises(KeyMaterialError) as refused:
        keys.public_encryption_key(kem, raw)
    assert refused.value.code == "keys.invalid"


def test_public_signing_key_refuses_bad_bytes() -> None:
    with pytest.raises(KeyMaterialError) as refused:
        keys.public_signing_key(b"\x00" * 33)
    assert refused.value.code == "keys.invalid"


def test_public_signing_key_verifies_what_the_private_key_signed() -> None:
    key = keys.generate_signing_key()
    keys.public_signing_key(keys.signing_public_raw(key)).verify(key.sign(b"m"), b"m")


# ------------------------------------------------------------ node folder


def test_node_private_key_files_are_created_readable_by_owner_only(tmp_path: Path) -> None:
    node = keys.write_node_keys(tmp_path / "node")
    (encryption_id,) = node.encryption
    assert mode_of(tmp_path / "node" / "signing.key") == 0o600
    assert mode_of(tmp_path / "node" / f"encryption-{encryption_id}.key") == 0o600


def test_node_keys_load_back_as_written(tmp_path: Path) -> None:
    written = keys.write_node_keys(tmp_path)
    loaded = keys.load_node_keys(tmp_path)
    assert loaded.signing_key_id == written.signing_key_id
    assert loaded.signing_public_raw == written.signing_public_raw
    assert {k: v.public_raw for k, v in loaded.encryption.items()} == {
        k: v.public_raw for k, v in written.encryption.items()
    }


def test_hybrid_key_file_opens_what_was_sealed_for_its_public_key(tmp_path: Path) -> None:
    written = keys.write_node_keys(tmp_path, kem=keys.KEM_HYBRID, passphrase=b"s3cret")
    (pair,) = written.encryption.values()
    suite = keys.hpke_suite(keys.KEM_HYBRID)
    sealed = suite.encrypt(b"dossier", pair.public, info=INFO)
    loaded = keys.load_node_keys(tmp_path, passphrase=b"s3cret").decryption_key(pair.key_id)
    assert loaded.kem == keys.KEM_HYBRID
    assert suite.decrypt(sealed, loaded.private, info=INFO) == b"dossier"


def test_hybrid_key_file_holds_mlkem_then_x25519_pem_blocks(tmp_path: Path) -> None:
    (pair,) = keys.write_node_keys(tmp_path, kem=keys.KEM_HYBRID).encryption.values()
    text = (tmp_path / f"encryption-{pair.key_id}.key").read_text()
    assert text.count("-----BEGIN PRIVATE KEY-----") == 2


def test_passphrase_protects_every_private_key_file(tmp_path: Path) -> None:
    keys.write_node_keys(tmp_path, kem=keys.KEM_HYBRID, passphrase=b"s3cret")
    for path in tmp_path.glob("*.key"):
        assert "BEGIN PRIVATE KEY" not in path.read_text()
        assert "BEGIN ENCRYPTED PRIVATE KEY" in path.read_text()


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    keys.write_node_keys(tmp_path, passphrase=b"s3cret")
    with pytest.raises(KeyMaterialError) as refused:
        keys.load_node_keys(tmp_path, passphrase=b"guess")
    assert refused.value.code == "keys.passphrase"
    assert "passphrase" in refused.value.message


def test_missing_passphrase_is_refused(tmp_path: Path) -> None:
    keys.write_node_keys(tmp_path, passphrase=b"s3cret")
    with pytest.raises(KeyMaterialError) as refused:
        keys.load_node_keys(tmp_path)
    assert refused.value.code == "keys.passphrase"


def test_key_readable_by_group_is_refused(tmp_path: Path) -> None:
    keys.write_node_keys(tmp_path)
    (tmp_path / "signing.key").chmod(0o640)
    with pytest.raises(KeyMaterialError) as refused:
        keys.load_node_keys(tmp_path)
    assert refused.value.code == "keys.permissions"
    assert "chmod 600" in refused.value.message


def test_missing_key_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError) as refused:
        keys.load_node_keys(tmp_path / "absent")
    assert refused.value.code == "keys.missing"


def test_existing_keys_are_never_overwritten(tmp_path: Path) -> None:
    keys.write_node_keys(tmp_path)
    before = (tmp_path / "signing.key").read_bytes()
    with pytest.raises(KeyMaterialError) as refused:
        keys.write_node_keys(tmp_path)
    assert refused.value.code == "keys.exists"
    assert (tmp_path / "signing.key").read_bytes() == before


def test_renamed_encryption_key_file_is_refused(tmp_path: Path) -> None:
    (pair,) = keys.write_node_keys(tmp_path).encryption.values()
    (tmp_path / f"encryption-{pair.key_id}.key").rename(
        tmp_path / "encryption-0000000000000000.key"
    )
    with pytest.raises(KeyMaterialError) as refused:
        keys.load_node_keys(tmp_path)
    assert refused.value.code == "keys.invalid"


def test_public_json_lists_the_public_keys_and_nothing_private(tmp_path: Path) -> None:
    node = keys.write_node_keys(tmp_path)
    text = (tmp_path / "public.json").read_text()
    document = json.loads(text)
    assert document["signingKey"]["id"] == node.signing_key_id
    assert [entry["id"] for entry in document["encryptionKeys"]] == list(node.encryption)
    assert "PRIVATE" not in text


def test_rotation_adds_a_key_beside_the_old_one(tmp_path: Path) -> None:
    (old,) = keys.write_node_keys(tmp_path).encryption
    new = keys.add_encryption_key(tmp_path, kem=keys.KEM_HYBRID)
    loaded = keys.load_node_keys(tmp_path)
    assert set(loaded.encryption) == {old, new.key_id}
    assert loaded.decryption_key(new.key_id).kem == keys.KEM_HYBRID
    public = keys.read_public_keys(tmp_path)
    assert [entry["id"] for entry in public["encryptionKeys"]] == [old, new.key_id]


def test_decryption_key_refuses_a_key_id_the_node_does_not_hold(tmp_path: Path) -> None:
    node = keys.write_node_keys(tmp_path)
    with pytest.raises(KeyMaterialError) as refused:
        node.decryption_key("ffffffffffffffff")
    assert refused.value.code == "keys.unknown_key"


# --------------------------------------------------------- federation keys


def test_federation_key_round_trips_with_a_passphrase(tmp_path: Path) -> None:
    key = keys.generate_signing_key()
    keys.write_signing_key(tmp_path / "federation.key", key, b"s3cret")
    loaded = keys.load_signing_key(tmp_path / "federation.key", b"s3cret")
    assert keys.signing_public_raw(loaded) == keys.signing_public_raw(key)
    assert mode_of(tmp_path / "federation.key") == 0o600


def test_trust_anchor_is_a_pem_public_key_file(tmp_path: Path) -> None:
    key = keys.generate_signing_key()
    keys.write_public_key(tmp_path / "federation.pub", keys.signing_public_raw(key))
    assert (tmp_path / "federation.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    anchor = keys.load_trust_anchor(tmp_path / "federation.pub")
    anchor.verify(key.sign(b"directory"), b"directory")


def test_trust_anchor_refuses_a_key_that_is_not_ed25519(tmp_path: Path) -> None:
    other = x25519.X25519PrivateKey.generate().public_key()
    (tmp_path / "x.pub").write_bytes(
        other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(KeyMaterialError) as refused:
        keys.load_trust_anchor(tmp_path / "x.pub")
    assert refused.value.code == "keys.invalid"


def test_trust_anchor_refuses_a_file_that_is_not_pem(tmp_path: Path) -> None:
    (tmp_path / "x.pub").write_text("not a key")
    with pytest.raises(KeyMaterialError) as refused:
        keys.load_trust_anchor(tmp_path / "x.pub")
    assert refused.value.code == "keys.invalid"
