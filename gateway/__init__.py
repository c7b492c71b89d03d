"""CPAS Dossier Gateway: a minimal electronic social dossier, moved only between CPAS.

The model (dossier, directory, envelope, keys, hardened XML, identifiers) never
imports the broker, the node or the command line, so vendors and the
conformance suite can use it without a broker.
"""

from __future__ import annotations

__version__ = "0.1.0"
