"""The journal secret: 32 random bytes from which every key of the journal is derived."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

from gateway.model.codes import Fault
from gateway.model.errors import KeyMaterialError
from gateway.private_files import write_private_file

log = logging.getLogger(__name__)

SECRET_SIZE: Final = 32

SECRET_FILE: Final = "journal.secret"


def load_or_create_secret(path: Path, *, create: bool = True) -> bytes:
    """The journal secret in ``path``: 32 random bytes, created (mode 0600) when absent.

    With ``create=False`` (commands that only read a journal) a missing file
    is an error rather than a new secret that would not match the journal.
    Raises :class:`~gateway.model.errors.KeyMaterialError` when the file is missing
    (and not to be created) or does not hold exactly 32 bytes. Losing the file
    makes the journal unverifiable and its content unreadable: back it up with
    the node's keys.
    """
    path = Path(path)
    if not create and not path.exists():
        raise KeyMaterialError(
            f"The journal secret {path} does not exist: the node has recorded nothing yet, "
            "or the secret was lost.",
            code=Fault.KEYS_MISSING,
        )
    try:
        # Exclusive: two processes starting together never overwrite each other's secret.
        write_private_file(path, os.urandom(SECRET_SIZE), exclusive=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise KeyMaterialError(
            f"The journal secret {path} cannot be created: {exc.strerror}.", code=Fault.KEYS_MISSING
        ) from None
    else:
        log.info("created the journal secret %s", path)
    try:
        secret = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeyMaterialError(
            f"The journal secret {path} cannot be read: {exc.strerror}.", code=Fault.KEYS_MISSING
        ) from None
    if len(secret) != SECRET_SIZE:
        raise KeyMaterialError(
            f"The journal secret {path} holds {len(secret)} bytes, not {SECRET_SIZE}.",
            code=Fault.KEYS_INVALID,
        )
    if mode & 0o077:
        log.warning("the journal secret %s is readable by others than its owner", path)
    return secret
