"""What ``cpas-gateway`` and ``cpas-conformance`` share: one way to be told, one way to answer.

- ``--config FILE`` comes from one parent parser, :data:`CONFIG` (or
  :data:`CONFIG_OR_TENANTS` where a hosted node's ``--tenants DIR`` is its alternative).
- A problem is one line on stderr, ``PROG: error: [code] message``, never a
  traceback (:func:`print_error`).
- The exit statuses mean the same in both commands (the README lists them):
  :data:`EXIT_OK` done, and the answer is yes; :data:`EXIT_NO` the answer is
  no, or what was asked failed; :data:`EXIT_USAGE` what was asked cannot be
  run (a wrong command line, an unknown adapter, an unreadable file);
  :data:`EXIT_INTERRUPTED` stopped with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from gateway.model.codes import Fault
from gateway.model.errors import GatewayError

EXIT_OK: Final = 0
EXIT_NO: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


class UsageError(GatewayError):
    """What was asked cannot be run as it stands: a wrong option, an unknown adapter..."""

    code = Fault.USAGE_INVALID


def _config_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="the node's configuration (TOML)"
    )
    return parent


CONFIG: Final = _config_parent()
"""Give it as ``parents=[CONFIG]`` to every sub-command that works on one node."""


def _config_or_tenants_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    where = parent.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--config", type=Path, metavar="FILE", help="the node's configuration (TOML)"
    )
    where.add_argument(
        "--tenants",
        type=Path,
        metavar="DIR",
        help="serve several CPAS in one process: every *.toml in DIR, one per CPAS",
    )
    return parent


CONFIG_OR_TENANTS: Final = _config_or_tenants_parent()
"""``--config FILE`` or ``--tenants DIR``: for the sub-commands a hosted node runs too."""


def print_error(prog: str, error: GatewayError | str) -> None:
    """``PROG: error: [code] message`` on stderr, as one line."""
    # print, not rich: one line must stay one line, whatever the terminal's width.
    print(f"{prog}: error: {error}", file=sys.stderr)
