"""Building an edition: from institutions, or from the JSON input of ``directory build``."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from gateway.model import keys
from gateway.model.base import build
from gateway.model.codes import Fault
from gateway.model.directory.edition import Directory
from gateway.model.directory.institutions import (
    Institution,
    InstitutionStatus,
    institution_place,
    moment,
)
from gateway.model.errors import DirectoryError

DEFAULT_KEY_VALIDITY: Final = dt.timedelta(days=730)
"""How long a key listed from a node's ``public.json`` stays valid, unless the input says."""


def build_directory(
    *,
    issuer: str,
    serial: int,
    institutions: Iterable[Institution | Mapping[str, Any]],
    issued_at: dt.datetime | None = None,
) -> Directory:
    """A directory from institutions (models or plain mappings), checked like a loaded one."""
    data = {
        "issuer": issuer,
        "serial": serial,
        "issued_at": issued_at or dt.datetime.now(dt.UTC),
        "institutions": list(institutions),
    }
    return build(Directory, data, error=DirectoryError, where=institution_place(data))


def directory_from_spec(
    spec: Mapping[str, Any], base_dir: Path | None = None, *, now: dt.datetime | None = None
) -> Directory:
    """Build a directory from the JSON input of ``cpas-gateway directory build``.

    The format is described in ``docs/directory.md``. ``publicKeys`` paths are
    relative to ``base_dir``. Raises :class:`DirectoryError` ``directory.input``
    for input that is not in that format.
    """
    base_dir = base_dir or Path()
    try:
        issued_at = _parse_time(spec["issuedAt"]) if spec.get("issuedAt") else moment(now)
        lifetime = dt.timedelta(days=int(spec.get("keyValidityDays", DEFAULT_KEY_VALIDITY.days)))
        institutions = [
            _institution_from_spec(item, base_dir, issued_at, lifetime)
            for item in spec["institutions"]
        ]
        issuer, serial = spec["issuer"], spec["serial"]
    except KeyError as exc:
        raise DirectoryError(
            f"The directory input lacks the field {exc.args[0]!r}.", code=Fault.DIRECTORY_INPUT
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise DirectoryError(
            f"The directory input is not in the expected format: {exc}.", code=Fault.DIRECTORY_INPUT
        ) from None
    return build_directory(
        issuer=issuer, serial=serial, institutions=institutions, issued_at=issued_at
    )


def _institution_from_spec(
    item: Mapping[str, Any], base_dir: Path, issued_at: dt.datetime, lifetime: dt.timedelta
) -> dict[str, Any]:
    validity = item.get("keyValidity", {})
    signing = [_key_from_spec(k, issued_at, lifetime) for k in item.get("signingKeys", [])]
    encryption = [_key_from_spec(k, issued_at, lifetime) for k in item.get("encryptionKeys", [])]
    if item.get("publicKeys"):
        public = keys.read_public_keys(base_dir / item["publicKeys"])
        signing.append(_key_from_spec(public["signingKey"] | validity, issued_at, lifetime))
        encryption.extend(
            _key_from_spec(entry | validity, issued_at, lifetime)
            for entry in public["encryptionKeys"]
        )
    return {
        "id": item["id"],
        # No default kind: a police service listed without one must never become a CPAS.
        "kind": item["kind"],
        "names": item["names"],
        "municipality": item.get("municipality"),
        "status": item.get("status", InstitutionStatus.ACTIVE.value),
        "merged_into": item.get("mergedInto"),
        "contact": item.get("contact"),
        "signing_keys": signing,
        "encryption_keys": encryption,
    }


def _key_from_spec(
    entry: Mapping[str, Any], issued_at: dt.datetime, lifetime: dt.timedelta
) -> dict[str, Any]:
    raw = entry["publicKey"]
    if isinstance(raw, str):
        raw = base64.b64decode(raw, validate=True)
    valid_from = entry.get("validFrom") or entry.get("createdAt") or issued_at
    valid_from = _parse_time(valid_from) if isinstance(valid_from, str) else valid_from
    valid_until = entry.get("validUntil") or valid_from + lifetime
    valid_until = _parse_time(valid_until) if isinstance(valid_until, str) else valid_until
    return {
        "key_id": entry.get("id") or keys.key_id(raw),
        "algorithm": entry["algorithm"],
        "public_key": raw,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def _parse_time(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"the time {value!r} has no time zone (add Z for UTC)")
    return moment


def read_spec(path: Path) -> dict[str, Any]:
    """Read the JSON input of ``directory build`` from a file."""
    try:
        return dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DirectoryError(f"{path} does not exist.", code=Fault.DIRECTORY_INPUT) from None
    except (ValueError, TypeError) as exc:
        raise DirectoryError(f"{path} is not JSON: {exc}.", code=Fault.DIRECTORY_INPUT) from None
