"""A node's backup, and putting it back.

What a node cannot be rebuilt without: its private keys, its store (the
outbox of messages not yet confirmed, what it received, held requests, the
directory edition it received live), its journal, the journal's secret and
head witness, its configuration, the directory file and trust anchor.
:func:`backup_node` copies all of it into one folder (mode 0700) with a
``manifest.json`` saying where each piece came from; :func:`restore_node`
puts each piece back where the manifest says, refusing to overwrite.

Databases are copied consistently while the node runs: SQLite through its
online backup API (a snapshot, never a half-written page), PostgreSQL with
``pg_dump`` (custom format; restored with ``pg_restore``). The head witness
is copied *before* the journal, so the copy of the journal is never behind
its witness (a witness may lag its journal, never lead it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from gateway.config import NodeConfig
from gateway.database import is_postgres
from gateway.journal import JournalSettings
from gateway.model.codes import Fault
from gateway.model.errors import ConfigError
from gateway.ownership import printable

log = logging.getLogger(__name__)

MANIFEST: Final = "manifest.json"


@dataclass
class BackupReport:
    """What a backup holds: name in the backup folder -> where it came from."""

    folder: Path
    pieces: dict[str, str] = field(default_factory=dict)


def backup_node(config_path: Path, dest: Path) -> BackupReport:
    """Copy everything the node of ``config_path`` needs into the new folder ``dest``.

    :raises ConfigError: ``backup.exists`` when ``dest`` exists and is not
        empty, ``backup.failed`` when a piece cannot be copied.
    """
    config = NodeConfig.load(config_path)
    journal = JournalSettings.from_config(config)
    if dest.exists() and any(dest.iterdir()):
        raise ConfigError(
            f"{dest} is not empty: a backup goes into a new folder.", code=Fault.BACKUP_EXISTS
        )
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    report = BackupReport(dest)

    def file(name: str, source: Path) -> None:
        if source.exists():
            shutil.copy2(source, dest / name)
            report.pieces[name] = str(source.resolve())

    file("node.toml", Path(config_path))
    file("directory.xml", Path(config.directory))
    file("trust-anchor.pub", Path(config.trust_anchor))
    shutil.copytree(config.keys, dest / "keys", copy_function=shutil.copy2)
    report.pieces["keys"] = str(Path(config.keys).resolve())
    # Beside the keys by default (then already copied); elsewhere when configured so.
    for name, path in (
        ("journal.secret", journal.secret_path),
        ("journal.head", journal.head_path),
    ):
        if path is not None and Path(path).resolve().parent != Path(config.keys).resolve():
            file(name, Path(path))
    _database(report, "store", config.store)
    if journal.url != config.store:
        _database(report, "journal", journal.url)
    (dest / MANIFEST).write_text(
        json.dumps(
            {
                "cpas_id": config.cpas_id,
                "taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "pieces": report.pieces,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    log.info("backup of node %s written to %s", config.cpas_id, dest)
    return report


def _database(report: BackupReport, name: str, url: str) -> None:
    if is_postgres(url):
        target = report.folder / f"{name}.pgdump"
        _run(["pg_dump", "--format=custom", f"--file={target}", f"--dbname={url}"], name)
        report.pieces[target.name] = url_without_password(url)
        return
    source = Path(url.removeprefix("sqlite:///"))
    if not source.exists():
        return
    target = report.folder / f"{name}.sqlite3"
    try:
        with (
            contextlib.closing(sqlite3.connect(source)) as live,
            contextlib.closing(sqlite3.connect(target)) as copy,
        ):
            live.backup(copy)
    except sqlite3.Error as exc:
        raise ConfigError(
            f"The {name} {source} cannot be copied: {exc}.", code=Fault.BACKUP_FAILED
        ) from None
    report.pieces[target.name] = str(source.resolve())


def restore_node(source: Path) -> dict[str, str]:
    """Put every piece of the backup in ``source`` back where it came from; return them.

    Nothing is overwritten (``backup.restore_over``): restore onto a machine,
    or folders, where the node's files are absent, e.g. after a disk was lost
    (a file still there with the same content is left as it is).
    A PostgreSQL database is restored with ``pg_restore --clean`` into the
    database it was taken from, which must exist.
    """
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{source} is not a node backup ({MANIFEST} cannot be read: {exc}).",
            code=Fault.BACKUP_INVALID,
        ) from None
    pieces: dict[str, str] = manifest["pieces"]
    present = set()
    for name, origin in pieces.items():
        if name.endswith(".pgdump") or not Path(origin).exists():
            continue
        if Path(origin).is_file() and Path(origin).read_bytes() == (source / name).read_bytes():
            present.add(name)  # survived as it was (a directory file, a trust anchor...)
            continue
        raise ConfigError(
            f"{origin} exists and differs from the backup: a restore never overwrites a "
            "node's files. Move it aside first if it is to be replaced.",
            code=Fault.BACKUP_RESTORE_OVER,
        )
    for name, origin in pieces.items():
        if name in present:
            continue
        if name.endswith(".pgdump"):
            _run(
                ["pg_restore", "--clean", "--if-exists", f"--dbname={origin}", str(source / name)],
                name,
            )
            continue
        target = Path(origin)
        target.parent.mkdir(parents=True, exist_ok=True)
        if (source / name).is_dir():
            shutil.copytree(source / name, target, copy_function=shutil.copy2)
        else:
            shutil.copy2(source / name, target)
    log.info("node %s restored from %s", manifest.get("cpas_id"), source)
    return pieces


def _run(command: list[str], what: str) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, env=os.environ.copy())
    except FileNotFoundError:
        raise ConfigError(
            f"{command[0]} is not installed: the PostgreSQL {what} cannot be copied.",
            code=Fault.BACKUP_FAILED,
        ) from None
    except subprocess.CalledProcessError as exc:
        first = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[:1]
        raise ConfigError(
            f"{command[0]} failed for the {what}: {' '.join(first) or exc.returncode}.",
            code=Fault.BACKUP_FAILED,
        ) from None


def url_without_password(url: str) -> str:
    """What the manifest records of a database URL: never its password (``~/.pgpass`` has it)."""
    return printable(url)
