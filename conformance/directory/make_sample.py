"""Regenerate the sample directory of the conformance suite.

Writes, beside this file (or into ``--out``):

- ``sample-directory.xml``: the signed sample directory of
  :func:`gateway.testing.sample_directory.sample_directory` (every municipality's CPAS with a
  synthetic enterprise number, the 2025 Pajottegem merger, a closed CPAS and
  one institution of each other kind), with X25519 keys only so that the file
  stays small;
- ``sample-federation.pub``: the public key of the federation key that signed
  it, the trust anchor to load it with.

Every run makes a fresh federation key and throws its private half away: the
sample can be verified, never re-signed. The CPAS keys are fresh too and their
private halves are not kept either, so the sample serves to check verdicts and
signatures, not to open messages.

Usage: ``python conformance/directory/make_sample.py [--out DIR]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from gateway.model import keys
from gateway.model.directory import load_directory, sign_directory
from gateway.testing.sample_directory import sample_directory

DIRECTORY_FILE = "sample-directory.xml"
TRUST_ANCHOR_FILE = "sample-federation.pub"


def make_sample(out: Path, now: dt.datetime | None = None) -> tuple[Path, Path]:
    """Write the signed sample directory and its trust anchor into ``out``; return both paths."""
    now = now or dt.datetime.now(dt.UTC)
    federation = keys.generate_signing_key()
    signed = sign_directory(sample_directory(now), federation)
    anchor = keys.signing_public_raw(federation)
    # Check what was written the way a node reads it, before anyone relies on it.
    load_directory(signed, keys.public_signing_key(anchor))
    out.mkdir(parents=True, exist_ok=True)
    directory_path, anchor_path = out / DIRECTORY_FILE, out / TRUST_ANCHOR_FILE
    directory_path.write_bytes(signed)
    anchor_path.unlink(missing_ok=True)
    keys.write_public_key(anchor_path, anchor)
    return directory_path, anchor_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent, help="folder to write into"
    )
    args = parser.parse_args(argv)
    directory_path, anchor_path = make_sample(args.out)
    print(f"wrote {directory_path} and {anchor_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
