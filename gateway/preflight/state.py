"""What the checks share: their outcome, how one fails or warns, and what earlier ones found."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.config import NodeConfig
from gateway.model.directory import Directory
from gateway.model.errors import GatewayError
from gateway.model.keys import NodeKeys


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """The result of one check: what was checked, how it went, and the fix when it failed."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass
class Preflight:
    """All the checks of one node, in the order they ran."""

    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.status in (Status.OK, Status.WARN) for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.FAIL]


class Failed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


class Warned(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class State:
    """What the earlier checks found, for the later ones."""

    config: NodeConfig | None = None
    keys: NodeKeys | None = None
    directory: Directory | None = None
    broker_ok: bool = False


def node_config(state: State) -> NodeConfig:
    assert state.config is not None
    return state.config


def broker_user(config: NodeConfig) -> str:
    return urllib.parse.unquote(urllib.parse.urlparse(config.amqp_urls[0]).username or "guest")


def safe_url(url: str) -> str:
    """A store URL without its password."""
    parsed = urllib.parse.urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def reason(exc: BaseException) -> str:
    if isinstance(exc, GatewayError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def close(thing: object) -> None:
    close = getattr(thing, "close", None)
    if callable(close):
        close()
