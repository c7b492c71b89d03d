"""The head witness: the journal's last entry, sealed, in a file outside its database.

A database rolled back as a whole to an earlier copy holds a valid chain and
a valid head; the witness, kept beside the secret on the node's host, has
seen a later entry and gives the rollback away.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from gateway.journal.seals import Seals
from gateway.private_files import write_private_file

log = logging.getLogger(__name__)


class HeadWitness:
    """The witness file at ``path``, sealed with the journal's chain key."""

    def __init__(self, path: Path, seals: Seals) -> None:
        self.path = Path(path)
        self._seals = seals

    def write(self, seq: int, entry_hash: str, holds: Callable[[int, str], bool]) -> None:
        """Write the head to the witness file, after the commit, still under the lock.

        After the commit: a witness may lag the database (a crash between
        the two leaves it one entry behind until the next append), but it
        never claims an entry the database does not hold, so ``verify``
        raises no false alarm.

        Several processes of one node append to one journal (``run --workers
        N``), and each writes the witness after its own commit: under a lock
        file beside it, a later head already witnessed is kept -- one that
        ``holds(seq, entry_hash)``, the journal, says it holds -- so the
        witness never moves back. A witness of another journal (a journal
        started afresh beside an old witness) is replaced, as before.
        """
        document = {"seq": seq, "entry_hash": entry_hash, "seal": self._seals.head(seq, entry_hash)}
        try:
            with self._exclusive():
                current, _ = self.read()
                if current is not None and current[0] > seq and holds(*current):
                    return
                # Written at every commit: replaced atomically, not flushed to disk each time.
                write_private_file(self.path, json.dumps(document).encode("ascii"), durable=False)
        except OSError as exc:
            log.error("the journal head witness %s cannot be written: %s", self.path, exc)

    def _exclusive(self) -> contextlib.AbstractContextManager[None]:
        return _locked(self.path.with_name(self.path.name + ".lock"))

    def read(self) -> tuple[tuple[int, str] | None, list[str]]:
        """The witness file's head, or ``None`` with the reason as a warning."""
        try:
            document = json.loads(self.path.read_text(encoding="ascii"))
            seq, entry_hash, seal = int(document["seq"]), document["entry_hash"], document["seal"]
        except FileNotFoundError:
            return None, [f"There is no head witness at {self.path} (yet)."]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return None, [f"The head witness {self.path} cannot be read: {exc}."]
        if not self._seals.head_matches(seq, str(entry_hash), str(seal)):
            return None, [f"The head witness {self.path} does not carry a valid seal."]
        return (seq, str(entry_hash)), []


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created, owner only), between processes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
