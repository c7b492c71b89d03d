"""What every model of the gateway shares: the base class and the way errors are told.

- :class:`FrozenModel` -- closed (unknown fields refused) and immutable;
- :func:`build` -- validate data into a model, pydantic's first problem
  turned into a project error with a stable code (:func:`refusal_from`, the
  one place that maps a pydantic error to a project error);
- :func:`checked_identifier` -- an identifier check inside a pydantic
  validator, keeping its code;
- :func:`format_timestamp` -- a moment as the schemas write it.

The dossier's vendors import ``build`` and ``refusal_from`` from
:mod:`gateway.model.dossier`, which re-exports them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from gateway.model.codes import Refusal
from gateway.model.errors import DossierInvalid, GatewayError

M = TypeVar("M", bound=BaseModel)

Location = tuple[int | str, ...]
"""Where pydantic found a problem: the path of field names and list indexes."""


class FrozenModel(BaseModel):
    """Base of the project's models: closed (unknown fields refused) and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def build(
    model: type[M],
    data: Any,
    *,
    error: type[GatewayError] = DossierInvalid,
    where: Callable[[Location], str] | None = None,
) -> M:
    """Validate ``data`` into ``model``; turn pydantic's error into a coded project error.

    :param error: the project error raised (:class:`DossierInvalid` unless told).
    :param where: names the place of the problem for a person (by default
        the dotted field path).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refusal_from(exc, error=error, where=where) from None


def refusal_from(
    exc: ValidationError,
    *,
    error: type[GatewayError] = DossierInvalid,
    where: Callable[[Location], str] | None = None,
) -> GatewayError:
    """The first problem of a pydantic error, as a project error with a stable code.

    A problem our validators raise keeps its code (``niss.checksum``...);
    any other (a pattern, a missing field) takes the code of ``error``.
    """
    first = exc.errors(include_url=False)[0]
    place = where(first["loc"]) if where else ".".join(str(part) for part in first["loc"])
    code = first["type"] if "." in first["type"] else error.code
    message = first["msg"].rstrip(".")
    return error(f"{place}: {message}." if place else f"{message}.", code=code)


def checked_identifier(validator: Any, value: str) -> str:
    """Run an identifier check inside a pydantic validator, keeping its stable code."""
    try:
        return str(validator(value))
    except GatewayError as exc:
        raise PydanticCustomError(exc.code, exc.message) from None


def utc_seconds(value: dt.datetime) -> dt.datetime:
    """A timestamp as every signed document carries it: in UTC, to the second.

    A naive one is refused (``time.naive``): nobody can tell which moment it means.
    """
    if value.tzinfo is None:
        raise PydanticCustomError(Refusal.TIME_NAIVE, "A timestamp must carry its time zone.")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def format_timestamp(value: dt.datetime) -> str:
    """UTC to the second with a ``Z``, as the schemas want it."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
