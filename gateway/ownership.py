"""Which node a store or a journal belongs to: recorded at creation, checked at every opening.

Two nodes that share a journal break its chain for each other (each seals
with its own secret), and two nodes that share a store deduplicate each
other's messages. Each database therefore records the CPAS whose node created
it, and a node refuses at start a database recorded for another CPAS, saying
so and how to fix it, before reading or writing anything else.
"""

from __future__ import annotations

import re
from typing import Final

from gateway.database import Database
from gateway.model.errors import ConfigError

_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS node_owner ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), cpas_id TEXT NOT NULL)"
)


def claim(db: Database, owner: str, *, what: str, setting: str, code: str) -> None:
    """Record ``owner`` in ``db`` if it is new; refuse a database recorded for another CPAS.

    :param what: what the database is, for the message ("journal", "store").
    :param setting: the configuration setting that names it ("journal", "store").
    :param code: the refusal's code (``journal.other_node``, ``store.other_node``).
    :raises ConfigError: the database belongs to another CPAS's node (``db`` is closed).
    """
    with db.transaction() as cur:
        cur.execute(_TABLE)
        cur.execute(
            db.sql(
                "INSERT INTO node_owner (id, cpas_id) VALUES (1, ?) ON CONFLICT (id) DO NOTHING"
            ),
            (owner,),
        )
        cur.execute("SELECT cpas_id FROM node_owner WHERE id = 1")
        recorded = str(cur.fetchone()[0])
    if recorded == owner:
        return
    db.close()
    raise ConfigError(
        f"The {what} {printable(db.url)} belongs to the node of CPAS {recorded}, not to this "
        f"node (CPAS {owner}): two nodes must never share a {what}. Give this node a {what} "
        f"of its own: leave '{setting}' out of its configuration to keep its state under "
        f"state/{owner}/, or set '{setting}' to one no other node uses.",
        code=code,
    )


def printable(url: str) -> str:
    """A database URL fit for a message: the path of a SQLite file, no password."""
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1@", url.removeprefix("sqlite:///"))
