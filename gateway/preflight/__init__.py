"""The preflight: everything a node needs, checked before it runs.

``cpas-gateway check --config FILE`` prints one line per check, with the fix
when it fails; ``cpas-gateway run`` runs the same checks first and refuses
to start on a failure. A wrong passphrase, an unreadable directory, a broker
user with too few (or too many) permissions or an adapter that does not load
is found here, not when the first message fails.

The checks, in order (a failure may make the later ones pointless; they are
then reported as skipped): configuration; node keys and passphrase; the
store and the journal at this release's schema (migrated, as ``run`` would,
refused when a newer release wrote them); the directory's signature and
edition (the configured file, or a newer edition the node received live);
this CPAS present, active and listed with this node's keys; the broker's
TLS settings; the broker reachable and the login accepted; the broker
permissions, exactly what the node needs; the store and the journal
writable; the adapter loadable and answering.

Broker permissions are read from the management API when an administrator's
management URL is given (compared with what ``broker provision`` grants);
otherwise they are probed over AMQP: the node's user must reach its
topology, publish to the routing exchange and read its own queues, and must
be refused configuring anything, reading another CPAS's inbox and publishing
to another exchange. On a broker in development mode (the node declares its
own topology) the permissions are not confined: that is reported as a
warning, which does not fail the preflight.

The package: :mod:`~gateway.preflight.run` runs the checks of
:mod:`~gateway.preflight.node_checks` (what the node holds itself) and
:mod:`~gateway.preflight.broker_checks` (the broker), which share
:mod:`~gateway.preflight.state`.
"""

from gateway.preflight.node_checks import PREFLIGHT_META, PROBE_PERSON
from gateway.preflight.run import run_preflight
from gateway.preflight.state import Check, Preflight, Status

__all__ = ["PREFLIGHT_META", "PROBE_PERSON", "Check", "Preflight", "Status", "run_preflight"]
