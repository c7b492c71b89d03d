"""``python -m bench``: see :mod:`bench.cli`."""

from __future__ import annotations

from bench.cli import main

# Guarded: the baseline's consumer process is spawned and imports this module again.
if __name__ == "__main__":
    raise SystemExit(main())
