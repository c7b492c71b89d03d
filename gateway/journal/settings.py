"""Where a node keeps its journal, secret and head witness, read from its configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from gateway.journal.journal import Journal
from gateway.journal.secret import SECRET_FILE, load_or_create_secret

HEAD_FILE: Final = "journal.head"
JOURNAL_FILE: Final = "journal.sqlite3"


class JournalConfig(Protocol):
    """What the journal reads of a node's configuration (:class:`gateway.config.NodeConfig`).

    The journal sits below the configuration: it names the fields it reads
    instead of importing the node's configuration model.
    """

    @property
    def cpas_id(self) -> str: ...
    @property
    def store(self) -> str: ...
    @property
    def keys(self) -> Path: ...
    @property
    def journal(self) -> str | None: ...
    @property
    def journal_secret(self) -> Path | None: ...
    @property
    def journal_head(self) -> Path | None: ...
    @property
    def journal_retention_days(self) -> int: ...


@dataclass(frozen=True)
class JournalSettings:
    """Where a node's journal, secret and head witness are, and how long content is kept."""

    url: str
    secret_path: Path
    head_path: Path | None
    retention_days: int
    owner: str | None = None

    @classmethod
    def from_config(cls, config: JournalConfig) -> JournalSettings:
        """Read the journal settings of a node configuration, with defaults for those absent.

        Defaults: the journal beside the store (``journal.sqlite3`` in the
        store's folder; the store's own database for PostgreSQL), the secret
        ``journal.secret`` and the witness ``journal.head`` in the keys folder,
        and :data:`DEFAULT_RETENTION_DAYS`.
        """
        secret = config.journal_secret or Path(config.keys) / SECRET_FILE
        return cls(
            url=config.journal or _beside_store(config.store),
            secret_path=secret,
            head_path=config.journal_head or secret.with_name(HEAD_FILE),
            retention_days=config.journal_retention_days,
            owner=config.cpas_id,
        )

    def open(self, *, create_secret: bool = True) -> Journal:
        """Open the journal; the secret is created when absent unless ``create_secret`` is off."""
        return Journal(
            self.url,
            load_or_create_secret(self.secret_path, create=create_secret),
            retention_days=self.retention_days,
            head_path=self.head_path,
            owner=self.owner,
        )


def open_journal(config: JournalConfig) -> Journal:
    """The journal of the node configured by ``config``."""
    return JournalSettings.from_config(config).open()


def _beside_store(store_url: str) -> str:
    if store_url.startswith(("postgresql://", "postgres://")):
        return store_url
    path = Path(store_url.removeprefix("sqlite:///"))
    return "sqlite:///" + str(path.with_name(JOURNAL_FILE))
