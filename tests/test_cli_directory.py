"""``cpas-gateway keys ...`` and ``cpas-gateway directory ...`` end to end, in temporary folders."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.model import keys
from gateway.model.directory import load_directory
from gateway.model.identifiers import make_enterprise_number

BRUXELLES = make_enterprise_number(21004)
GENT = make_enterprise_number(44021)
GOOIK = make_enterprise_number(23024)
POLICE = make_enterprise_number(900002)


@pytest.fixture
def federation(tmp_path: Path) -> tuple[Path, Path]:
    """A federation key and its trust anchor, made with the command line."""
    key, public = tmp_path / "federation.key", tmp_path / "federation.pub"
    assert main(["keys", "federation", "--out", str(key)]) == 0
    return key, public


def write_input(tmp_path: Path, **changes: Any) -> Path:
    """A JSON input naming two nodes' key folders, a merged CPAS and a police service."""
    for node in ("bruxelles", "gent"):
        if not (tmp_path / node).exists():
            assert main(["keys", "generate", "--out", str(tmp_path / node)]) == 0
    spec: dict[str, Any] = {
        "issuer": "Fédération des CPAS",
        "serial": 4,
        "issuedAt": "2026-11-28T12:00:00Z",
        "institutions": [
            {
                "id": BRUXELLES,
                "kind": "cpas",
                "names": {"fr": "CPAS de Bruxelles", "nl": "OCMW Brussel"},
                "municipality": "21004",
                "publicKeys": "bruxelles/public.json",
            },
            {
                "id": GENT,
                "kind": "cpas",
                "names": {"nl": "OCMW Gent", "fr": "CPAS de Gand"},
                "municipality": "44021",
                "publicKeys": "gent",
            },
            {
                "id": GOOIK,
                "kind": "cpas",
                "names": {"nl": "OCMW Gooik"},
                "status": "merged",
                "mergedInto": GENT,
            },
            {"id": POLICE, "kind": "police", "names": {"fr": "Police fédérale"}},
        ],
    }
    spec.update(changes)
    path = tmp_path / "institutions.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def build_and_sign(tmp_path: Path, federation: tuple[Path, Path]) -> Path:
    source = write_input(tmp_path)
    unsigned, signed = tmp_path / "directory.xml", tmp_path / "signed.xml"
    assert main(["directory", "build", "--institutions", str(source), "--out", str(unsigned)]) == 0
    assert main(["directory", "sign", "--key", str(federation[0]), str(unsigned), str(signed)]) == 0
    return signed


# -------------------------------------------------------------------- keys


def test_keys_generate_writes_private_files_and_prints_the_public_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path / "node")]) == 0
    public = keys.read_public_keys(tmp_path / "node")
    out = capsys.readouterr().out
    assert public["signingKey"]["id"] in out
    assert public["encryptionKeys"][0]["id"] in out
    for path in (tmp_path / "node").glob("*.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keys_generate_makes_a_hybrid_key_on_request(tmp_path: Path) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path), "--kem", "mlkem768-x25519"]) == 0
    (pair,) = keys.load_node_keys(tmp_path).encryption.values()
    assert pair.kem == keys.KEM_HYBRID


def test_keys_generate_takes_the_passphrase_from_the_named_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODE_PASSPHRASE", "correct horse")
    argv = ["keys", "generate", "--out", str(tmp_path), "--passphrase-env", "NODE_PASSPHRASE"]
    assert main(argv) == 0
    assert keys.load_node_keys(tmp_path, b"correct horse").signing_key_id


def test_keys_generate_refuses_an_unset_passphrase_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NODE_PASSPHRASE", raising=False)
    argv = ["keys", "generate", "--out", str(tmp_path), "--passphrase-env", "NODE_PASSPHRASE"]
    assert main(argv) == 1
    assert "[keys.passphrase]" in capsys.readouterr().err
    assert not (tmp_path / "signing.key").exists()


def test_keys_generate_refuses_to_overwrite_a_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path)]) == 0
    assert main(["keys", "generate", "--out", str(tmp_path)]) == 1
    assert "[keys.exists]" in capsys.readouterr().err


def test_keys_rotate_adds_an_encryption_key(tmp_path: Path) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path)]) == 0
    assert main(["keys", "rotate", "--dir", str(tmp_path)]) == 0
    assert len(keys.load_node_keys(tmp_path).encryption) == 2


def test_keys_federation_writes_the_key_and_its_trust_anchor(
    federation: tuple[Path, Path],
) -> None:
    key, public = federation
    signing = keys.load_signing_key(key)
    anchor = keys.load_trust_anchor(public)
    anchor.verify(signing.sign(b"directory"), b"directory")


# --------------------------------------------------------------- directory


def test_directory_build_sign_verify_round_trip(
    tmp_path: Path, federation: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    signed = build_and_sign(tmp_path, federation)
    capsys.readouterr()
    assert main(["directory", "verify", "--trust", str(federation[1]), str(signed)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"OK  {signed}: edition 4 of Fédération des CPAS")
    assert "4 institutions, 2 active CPAS" in line


def test_directory_build_takes_every_key_of_a_node(
    tmp_path: Path, federation: tuple[Path, Path]
) -> None:
    write_input(tmp_path)
    assert main(["keys", "rotate", "--dir", str(tmp_path / "bruxelles")]) == 0
    signed = build_and_sign(tmp_path, federation)
    directory = load_directory(signed.read_bytes(), keys.load_trust_anchor(federation[1]))
    bruxelles = directory.get(BRUXELLES)
    assert bruxelles is not None
    assert {entry.key_id for entry in bruxelles.encryption_keys} == set(
        keys.load_node_keys(tmp_path / "bruxelles").encryption
    )


def test_directory_verify_refuses_a_changed_file_with_one_line(
    tmp_path: Path, federation: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    signed = build_and_sign(tmp_path, federation)
    signed.write_text(signed.read_text().replace("Police fédérale", "OCMW Police"))
    capsys.readouterr()
    assert main(["directory", "verify", "--trust", str(federation[1]), str(signed)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"INVALID  {signed}: [directory.signature]")
    assert "\n" not in err


def test_directory_verify_refuses_an_unsigned_file(
    tmp_path: Path, federation: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    build_and_sign(tmp_path, federation)
    unsigned = tmp_path / "directory.xml"
    assert main(["directory", "verify", "--trust", str(federation[1]), str(unsigned)]) == 1
    assert "[directory.unsigned]" in capsys.readouterr().err


def test_directory_show_lists_the_institutions(
    tmp_path: Path, federation: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    signed = build_and_sign(tmp_path, federation)
    capsys.readouterr()
    argv = ["directory", "show", str(signed), "--trust", str(federation[1]), "--lang", "nl"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert BRUXELLES in out and GENT in out and GOOIK in out and POLICE in out
    assert "OCMW Brussel" in out
    assert "4 of 4 institutions shown." in out


def test_directory_show_filters_by_kind(
    tmp_path: Path, federation: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    signed = build_and_sign(tmp_path, federation)
    capsys.readouterr()
    argv = ["directory", "show", str(signed), "--trust", str(federation[1]), "--kind", "police"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert POLICE in out and BRUXELLES not in out


def test_directory_check_allows_an_active_cpas(
    tmp_path: Path, federation: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    signed = build_and_sign(tmp_path, federation)
    capsys.readouterr()
    argv = ["directory", "check", str(signed), "--trust", str(federation[1]), BRUXELLES]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("allowed  [directory.ok]")


@pytest.mark.parametrize(
    ("institution", "code"),
    [
        (POLICE, "directory.not_cpas"),
        (GOOIK, "directory.merged"),
        ("0123456749", "directory.unknown"),
    ],
)
def test_directory_check_refuses_with_the_verdict(
    tmp_path: Path,
    federation: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    institution: str,
    code: str,
) -> None:
    signed = build_and_sign(tmp_path, federation)
    capsys.readouterr()
    argv = ["directory", "check", str(signed), "--trust", str(federation[1]), institution]
    assert main(argv) == 1
    assert capsys.readouterr().out.startswith(f"refused  [{code}]")


def test_directory_check_judges_at_the_moment_given(
    tmp_path: Path, federation: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    signed = build_and_sign(tmp_path, federation)
    capsys.readouterr()
    argv = ["directory", "check", str(signed), "--trust", str(federation[1]), BRUXELLES]
    assert main([*argv, "--at", "2099-01-01T00:00:00Z"]) == 1
    assert "[directory.no_key]" in capsys.readouterr().out


def test_directory_build_refuses_an_institution_without_a_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_input(
        tmp_path, institutions=[{"id": POLICE, "names": {"fr": "Police fédérale"}}]
    )
    argv = ["directory", "build", "--institutions", str(source), "--out", str(tmp_path / "d.xml")]
    assert main(argv) == 1
    assert "[directory.input]" in capsys.readouterr().err


def test_directory_build_refuses_a_file_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "institutions.json"
    source.write_text("{not json")
    argv = ["directory", "build", "--institutions", str(source), "--out", str(tmp_path / "d.xml")]
    assert main(argv) == 1
    assert "[directory.input]" in capsys.readouterr().err


def test_directory_sign_refuses_the_wrong_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEDERATION_PASSPHRASE", "right")
    key = tmp_path / "federation.key"
    argv = ["keys", "federation", "--out", str(key), "--passphrase-env", "FEDERATION_PASSPHRASE"]
    assert main(argv) == 0
    source = write_input(tmp_path)
    unsigned = tmp_path / "directory.xml"
    assert main(["directory", "build", "--institutions", str(source), "--out", str(unsigned)]) == 0
    monkeypatch.setenv("FEDERATION_PASSPHRASE", "wrong")
    sign = ["directory", "sign", "--key", str(key), "--passphrase-env", "FEDERATION_PASSPHRASE"]
    assert main([*sign, str(unsigned), str(tmp_path / "signed.xml")]) == 1
    assert "[keys.passphrase]" in capsys.readouterr().err


def test_signed_directory_passes_cpas_gateway_validate(
    tmp_path: Path, federation: tuple[Path, Path]
) -> None:
    signed = build_and_sign(tmp_path, federation)
    assert main(["validate", str(signed)]) == 0
