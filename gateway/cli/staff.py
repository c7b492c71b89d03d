"""``--staff REF``: the acting social worker, for the commands that act on an exchange."""

from __future__ import annotations

import argparse

from gateway.model.staff import StaffReference, staff_reference


def add_staff_argument(parser: argparse.ArgumentParser, required: str = "") -> None:
    """Add ``--staff REF`` (journaled; a pseudonym in the envelope) to ``parser``."""
    parser.add_argument(
        "--staff",
        metavar="REF",
        help="the acting social worker's opaque staff reference (never a name or national "
        "number): journaled, and carried as a pseudonym" + required,
    )


def staff_from(args: argparse.Namespace) -> StaffReference | None:
    """The checked ``--staff`` reference, or ``None`` when not given."""
    return None if args.staff is None else staff_reference(args.staff)
