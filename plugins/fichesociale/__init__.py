"""FicheSociale: a reference vendor adapter over an exchange folder of JSON fiches.

The fictional vendor FicheSociale keeps one JSON document per beneficiary in
its own French dialect (see ``README.md`` beside this file). The adapter
translates those fiches to and from the canonical dossier, and leaves out
everything the canonical dossier must never carry.

Configuration (the ``[adapter]`` table of a node's configuration file)::

    [adapter]
    name = "fichesociale"
    options = { folder = "/srv/fichesociale", mailbox = "social@cpas.example.be" }

``folder`` defaults to ``./fichesociale-data``; ``mailbox`` to one built from
the CPAS id; ``phone`` (``+`` and 8 to 15 digits) is optional.

Fill a folder with synthetic beneficiaries::

    python -m fichesociale seed --folder DIR --cpas 0200000142 --count 1000
"""

from __future__ import annotations

from fichesociale.adapter import ADAPTER_VERSION as __version__
from fichesociale.adapter import FicheSocialeAdapter

__all__ = ["FicheSocialeAdapter", "__version__"]
