"""The directory's institutions: their kinds and statuses, their keys, and the checks on them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import (
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.model import keys
from gateway.model.base import FrozenModel, Location, build, format_timestamp, utc_seconds
from gateway.model.codes import N_, Fault, Worded
from gateway.model.dossier import ContactPoint, Language
from gateway.model.errors import DirectoryError, GatewayError
from gateway.model.identifiers import validate_enterprise_number

LABEL = r"^\S(.*\S)?$"
Label = Annotated[str, Field(pattern=LABEL, max_length=120)]


class InstitutionKind(Worded):
    """Kind of institution; only ``cpas`` can ever receive a dossier.

    Beside each kind, the phrase a refusal and the person's report use (an
    English message id, translated in the report's catalogues).
    """

    CPAS = "cpas", N_("a CPAS")
    JUDICIAL = "judicial", N_("a judicial authority")
    POLICE = "police", N_("a police service")
    SOCIAL_SECURITY = "social-security", N_("a social-security institution")
    EMPLOYMENT = "employment", N_("an employment service")
    TAX = "tax", N_("a tax administration")
    OTHER = "other", N_("an institution of another kind")

    @property
    def description(self) -> str:
        """What the kind is, as a phrase for a refusal ("a police service")."""
        return self.words


class InstitutionStatus(StrEnum):
    """Whether an institution still exists on its own."""

    ACTIVE = "active"
    MERGED = "merged"
    CLOSED = "closed"


ENCRYPTION_ALGORITHMS: Final = frozenset(keys.KEMS)
SIGNING_ALGORITHMS: Final = frozenset({keys.SIGNING_ALGORITHM})


def moment(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        raise ValueError("a moment must carry its time zone")
    return at


class KeyEntry(FrozenModel):
    """A public key listed for an institution, with its validity period.

    A key is valid from ``valid_from`` (included) to ``valid_until`` (excluded).
    """

    key_id: str
    algorithm: str
    public_key: bytes
    valid_from: dt.datetime
    valid_until: dt.datetime

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return utc_seconds(value)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.algorithm not in ENCRYPTION_ALGORITHMS | SIGNING_ALGORITHMS:
            raise PydanticCustomError(
                Fault.DIRECTORY_KEY_ALGORITHM,
                "Key {id}: {algorithm} is not a supported algorithm.",
                {"id": self.key_id, "algorithm": self.algorithm},
            )
        try:
            if self.algorithm == keys.SIGNING_ALGORITHM:
                keys.public_signing_key(self.public_key)
            else:
                keys.public_encryption_key(self.algorithm, self.public_key)
        except GatewayError as exc:
            raise PydanticCustomError(
                exc.code, "Key {id}: {message}", {"id": self.key_id, "message": exc.message}
            ) from None
        if self.key_id != keys.key_id(self.public_key):
            raise PydanticCustomError(
                Fault.DIRECTORY_KEY_ID,
                "Key {id} does not match its public key, whose id is {actual}.",
                {"id": self.key_id, "actual": keys.key_id(self.public_key)},
            )
        if self.valid_from >= self.valid_until:
            raise PydanticCustomError(
                Fault.DIRECTORY_KEY_VALIDITY,
                "Key {id} is valid until {until}, which is not after its start {start}.",
                {
                    "id": self.key_id,
                    "until": format_timestamp(self.valid_until),
                    "start": format_timestamp(self.valid_from),
                },
            )
        return self

    @classmethod
    def for_key(
        cls,
        algorithm: str,
        public_key: bytes,
        valid_from: dt.datetime,
        valid_until: dt.datetime,
    ) -> KeyEntry:
        """A key entry whose id is computed from the key."""
        return build(
            cls,
            {
                "key_id": keys.key_id(public_key),
                "algorithm": algorithm,
                "public_key": public_key,
                "valid_from": valid_from,
                "valid_until": valid_until,
            },
            error=DirectoryError,
        )

    def valid_at(self, at: dt.datetime) -> bool:
        """Whether the key may be used at ``at`` (an aware datetime)."""
        return self.valid_from <= at < self.valid_until


class Institution(FrozenModel):
    """One institution of the directory."""

    id: str
    kind: InstitutionKind
    names: Annotated[dict[Language, Label], Field(min_length=1)]
    municipality: Annotated[str, Field(pattern=r"^[0-9]{5}$")] | None = None
    status: InstitutionStatus = InstitutionStatus.ACTIVE
    merged_into: str | None = None
    contact: ContactPoint | None = None
    """A CPAS's social service, as the person's report shows it (never a dossier's own)."""
    signing_keys: list[KeyEntry] = Field(default_factory=list, max_length=8)
    encryption_keys: list[KeyEntry] = Field(default_factory=list, max_length=8)

    @field_validator("id", "merged_into")
    @classmethod
    def _enterprise_number(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_enterprise_number(value)
        except GatewayError as exc:
            raise PydanticCustomError(exc.code, exc.message) from None

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        merged = self.status is InstitutionStatus.MERGED
        if merged and self.merged_into is None:
            raise PydanticCustomError(
                Fault.DIRECTORY_MERGED_INTO,
                "{id} is merged but does not say into which institution.",
                {"id": self.id},
            )
        if not merged and self.merged_into is not None:
            raise PydanticCustomError(
                Fault.DIRECTORY_MERGED_INTO,
                "{id} names a successor but its status is {status}, not merged.",
                {"id": self.id, "status": self.status.value},
            )
        if self.merged_into == self.id:
            raise PydanticCustomError(
                Fault.DIRECTORY_MERGED_INTO, "{id} cannot be merged into itself.", {"id": self.id}
            )
        for entry in self.signing_keys:
            if entry.algorithm not in SIGNING_ALGORITHMS:
                raise PydanticCustomError(
                    Fault.DIRECTORY_KEY_ALGORITHM,
                    "{id}: signing key {key} is a {algorithm} key.",
                    {"id": self.id, "key": entry.key_id, "algorithm": entry.algorithm},
                )
        for entry in self.encryption_keys:
            if entry.algorithm not in ENCRYPTION_ALGORITHMS:
                raise PydanticCustomError(
                    Fault.DIRECTORY_KEY_ALGORITHM,
                    "{id}: encryption key {key} is a {algorithm} key.",
                    {"id": self.id, "key": entry.key_id, "algorithm": entry.algorithm},
                )
        return self

    def name(self, lang: str | None = None) -> str:
        """The name in ``lang``; failing that in French, Dutch, then German, whichever exists."""
        for candidate in (lang, Language.FR, Language.NL, Language.DE):
            if candidate is not None and candidate in self.names:
                return self.names[Language(candidate)]
        return next(iter(self.names.values()))

    @property
    def label(self) -> str:
        """``id (name)``, as refusals and logs show an institution."""
        return f"{self.id} ({self.name()})"


@dataclass(frozen=True)
class Verdict:
    """The directory's answer to "may this id receive a dossier?"."""

    allowed: bool
    code: str
    reason: str


def institution_place(data: Any) -> Callable[[Location], str]:
    """Names the place of a problem in a directory's ``data`` by the institution's id.

    ``institutions.412.encryption_keys.0`` means little to a person; the
    enterprise number of institution 412 does. For :func:`build`'s ``where``.
    """

    def where(loc: Location) -> str:
        parts = [str(part) for part in loc]
        if len(loc) >= 2 and loc[0] == "institutions" and isinstance(loc[1], int):
            try:
                item = data["institutions"][loc[1]]
                institution_id = item.id if isinstance(item, Institution) else item["id"]
                parts[:2] = [f"institution {institution_id}"]
            except (KeyError, IndexError, TypeError):
                pass
        return ".".join(parts)

    return where
