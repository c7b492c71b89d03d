"""Files only their owner may read: keys, secrets, broker credentials, witnesses.

One writer for all of them: the file is created with its final mode in the
same system call that creates it, so its content is never readable by anyone
else, not even for a moment (``write_text`` then ``chmod`` leaves a window).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

OWNER_ONLY = 0o600


def write_private_file(
    path: Path,
    data: bytes,
    *,
    exclusive: bool = False,
    durable: bool = True,
    mode: int = OWNER_ONLY,
) -> None:
    """Write ``data`` to ``path``, readable by its owner only.

    :param exclusive: never overwrite: :class:`FileExistsError` when ``path``
        exists (a key overwritten would lose every message sealed for it).
        Otherwise the file is replaced atomically: a reader sees the old
        content or the new one, never a part.
    :param durable: flush to disk before returning.
    :param mode: ``0o600`` unless a program wants less (an Erlang cookie: ``0o400``).
    """
    path = Path(path)
    target = path if exclusive else path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        if not exclusive:
            os.replace(target, path)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
