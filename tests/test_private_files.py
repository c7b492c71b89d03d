"""One writer for files only their owner may read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.private_files import write_private_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_private_file_is_readable_by_its_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        write_private_file(tmp_path / "secret", b"x")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "secret") == 0o600


def test_an_exclusive_write_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    write_private_file(path, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_private_file(path, b"second", exclusive=True)
    assert path.read_bytes() == b"first"


def test_a_replacing_write_makes_a_world_readable_file_private_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cpas.amqp-url"
    path.write_text("old\n")
    path.chmod(0o644)
    write_private_file(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["cpas.amqp-url"]


def test_a_mode_stricter_than_owner_read_write_is_kept(tmp_path: Path) -> None:
    write_private_file(tmp_path / ".erlang.cookie", b"cookie", mode=0o400)
    assert _mode(tmp_path / ".erlang.cookie") == 0o400
