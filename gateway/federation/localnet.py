"""A whole federation in one folder, for the demo, the tests and the benchmark.

:func:`make_local_federation` makes a federation signing key and its trust
anchor, node keys for the chosen CPAS, and the signed sample directory (every
Belgian CPAS, the non-CPAS institutions a sender might wrongly name, a merged
and a closed CPAS), with the chosen CPAS holding the real keys. Each chosen
CPAS then gets a ready node configuration file.

Nothing here is for production: a real federation keeps its signing key
offline and builds its directory with ``cpas-gateway directory build``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import NodeConfig
from gateway.model import keys, municipalities
from gateway.model.directory import (
    Directory,
    Institution,
    InstitutionKind,
    InstitutionStatus,
    KeyEntry,
    load_directory,
    sign_directory,
)
from gateway.model.errors import ConfigError
from gateway.model.identifiers import make_enterprise_number
from gateway.testing.sample_directory import sample_directory

FEDERATION_KEY = "federation.key"
TRUST_ANCHOR = "federation.pub"
DIRECTORY = "directory.xml"


@dataclass(frozen=True)
class LocalCpas:
    """One CPAS of the local federation that runs a node."""

    cpas_id: str
    nis_code: str
    name: str
    folder: Path
    node_keys: keys.NodeKeys = field(repr=False)


@dataclass
class LocalFederation:
    """The files of a local federation and the verified directory they make."""

    root: Path
    directory: Directory
    members: dict[str, LocalCpas]

    @property
    def trust_anchor(self) -> Path:
        return self.root / TRUST_ANCHOR

    @property
    def directory_path(self) -> Path:
        return self.root / DIRECTORY

    def reissue(self, *changed: Institution) -> Directory:
        """Sign a new edition with ``changed`` institutions replacing theirs; return it verified.

        What a federation does when a CPAS rotates a key or merges.
        """
        by_id = {i.id: i for i in self.directory.institutions} | {i.id: i for i in changed}
        edition = self.directory.model_copy(
            update={"institutions": list(by_id.values()), "serial": self.directory.serial + 1}
        )
        federation_key = keys.load_signing_key(self.root / FEDERATION_KEY)
        signed = sign_directory(edition, federation_key)
        self.directory_path.write_bytes(signed)
        self.directory = load_directory(signed, keys.load_trust_anchor(self.trust_anchor))
        return self.directory

    def rotate_encryption_key(self, nis_code: str, kem: str = keys.KEM_X25519) -> keys.NodeKeys:
        """A member adds a new encryption key; the federation lists it beside the old one.

        Returns the member's keys as its node now loads them (old and new).
        """
        member = self.member(nis_code)
        pair = keys.add_encryption_key(member.folder / "keys", kem=kem)
        now = dt.datetime.now(dt.UTC)
        entry = KeyEntry.for_key(
            kem, pair.public_raw, now - dt.timedelta(minutes=5), now + dt.timedelta(days=730)
        )
        institution = self.directory.get(member.cpas_id)
        assert institution is not None
        self.reissue(
            institution.model_copy(
                update={"encryption_keys": [*institution.encryption_keys, entry]}
            )
        )
        return keys.load_node_keys(member.folder / "keys")

    def member(self, nis_code: str) -> LocalCpas:
        for cpas in self.members.values():
            if cpas.nis_code == nis_code:
                return cpas
        raise KeyError(nis_code)

    def node_config(
        self,
        cpas_id: str,
        adapter: str,
        options: dict[str, str],
        *,
        amqp_url: str,
        namespace: str = "dse",
        **settings: object,
    ) -> NodeConfig:
        """Write ``<member>/node.toml`` for one member and return it loaded."""
        cpas = self.members[cpas_id]
        scalars: dict[str, object] = {
            "cpas_id": cpas_id,
            "store": "state/node.sqlite3",
            "keys": "keys",
            "directory": str(self.directory_path),
            "trust_anchor": str(self.trust_anchor),
            "amqp_url": amqp_url,
            "namespace": namespace,
        }
        tables: dict[str, dict[str, object]] = {}
        for key, value in settings.items():
            if isinstance(value, dict):
                tables[key] = value
            else:
                scalars[key] = value
        tables["adapter"] = {"name": adapter}
        tables["adapter.options"] = dict(options)
        lines = [f"{key} = {_toml(value)}" for key, value in scalars.items()]
        for table, values in tables.items():
            lines += ["", f"[{table}]", *(f"{_toml(k)} = {_toml(v)}" for k, v in values.items())]
        path = cpas.folder / "node.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return NodeConfig.load(path)


def _toml(value: object) -> str:
    """A TOML value (or quoted key) for the few types node configurations hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def cpas_id_of(nis_code: str) -> str:
    """The (synthetic) enterprise number the sample directory gives a municipality's CPAS."""
    return make_enterprise_number(int(nis_code))


def make_local_federation(
    root: Path, nis_codes: list[str], *, now: dt.datetime | None = None, small: bool = False
) -> LocalFederation:
    """Create keys and a signed sample directory in ``root`` for the CPAS of ``nis_codes``.

    ``small`` keeps only the members, the institutions that are not CPAS and
    the merged and closed CPAS (with the successors of the merged ones): a
    directory for provisioning a broker in tests without 580 inboxes.
    """
    root.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.UTC)
    members: dict[str, LocalCpas] = {}
    for nis_code in nis_codes:
        town = municipalities.by_nis_code(nis_code)
        if town is None:
            raise ConfigError(f"{nis_code} is not the NIS code of a Belgian municipality.")
        cpas_id = cpas_id_of(nis_code)
        folder = root / f"cpas-{cpas_id}"
        node_keys = keys.write_node_keys(folder / "keys")
        members[cpas_id] = LocalCpas(cpas_id, nis_code, town.name_fr, folder, node_keys)

    def keys_for(institution_id: str) -> tuple[bytes, bytes]:
        member = members.get(institution_id)
        if member is None:
            return (
                keys.signing_public_raw(keys.generate_signing_key()),
                keys.generate_encryption_key().public_raw,
            )
        pair = next(iter(member.node_keys.encryption.values()))
        return keys.signing_public_raw(member.node_keys.signing), pair.public_raw

    federation_key = keys.generate_signing_key()
    keys.write_signing_key(root / FEDERATION_KEY, federation_key)
    keys.write_public_key(root / TRUST_ANCHOR, keys.signing_public_raw(federation_key))
    directory = sample_directory(now, keys_for)
    if small:
        directory = _only_what_tests_need(directory, set(members))
    signed = sign_directory(directory, federation_key)
    (root / DIRECTORY).write_bytes(signed)
    directory = load_directory(signed, keys.load_trust_anchor(root / TRUST_ANCHOR))
    return LocalFederation(root, directory, members)


def _only_what_tests_need(directory: Directory, members: set[str]) -> Directory:
    successors = {i.merged_into for i in directory.institutions if i.merged_into}
    kept = [
        i
        for i in directory.institutions
        if i.id in members
        or i.id in successors
        or i.kind is not InstitutionKind.CPAS
        or i.status is not InstitutionStatus.ACTIVE
    ]
    return directory.model_copy(update={"institutions": kept})
