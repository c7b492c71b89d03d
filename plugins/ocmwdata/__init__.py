"""OCMWdata: the reference adapter for a vendor that keeps its data in a relational database.

OCMWdata's product stores cases in its own Dutch layout (``clienten``,
``beslissingen``, ...), with its own codes, integer cents and text dates, and
also holds what the canonical dossier must never carry: social workers' notes,
activation measures, sanctions, refused applications and family members. The
adapter translates the first to and from the canonical dossier and never reads
the second. ``README.md`` beside this file documents the vendor's dialect.

Configure a node with adapter ``ocmwdata`` and options ``url`` (SQLite path or
``sqlite:///`` URL, or ``postgresql://`` URL), ``schema`` (PostgreSQL),
``mailbox`` and ``phone``. Fill a database with synthetic people with
``python -m ocmwdata seed --url URL --cpas ID --count N``.
"""

from __future__ import annotations

from ocmwdata.adapter import VERSION as __version__
from ocmwdata.adapter import OcmwdataAdapter

__all__ = ["OcmwdataAdapter", "__version__"]
