"""One CPAS's gateway node: the send and receive pipelines.

Send: the destination is checked against the signed directory *first* -- a
non-CPAS, unknown, closed or merged destination is refused before anything is
published -- then the message is sealed to the recipient and signed, recorded
in the outbox, and published with publisher confirms kept in flight.

Receive (one worker thread, fed by the broker's I/O thread): parse the
envelope (hardened parser and XSD), check the broker identity and recognise a
duplicate by message id, verify the signature, decrypt, validate the body,
then act by type:

- ``transfer``: import the dossier through the adapter, answer with a receipt;
- ``request``: apply this node's policy for the purpose -- answer
  automatically, hold for a social worker, or refuse -- and answer with a
  response (the dossier, or a typed refusal);
- ``response``: import the dossier (or record the refusal) against the
  request it answers, and answer a dossier with a receipt;
- ``receipt``: record the fate of a message this node sent.

The outcome is stored durably, the reply published, and only then is the
delivery acked. Anything invalid goes to this node's dead-letter queue with a
refusal code at its first delivery -- nothing a publisher sends raises out of
the handler -- the sender gets a signed rejection only when its signature
verified, and the node keeps running. Receipts and responses count only from
the CPAS the message they answer went to.

What is not about a message never costs it a delivery attempt. When the
store, the journal or the vendor system is away (a database restarting, a
full disk), the worker keeps the deliveries in hand unacknowledged, pauses
consumption, tries again with a growing back-off and resumes on its own;
:meth:`Node.health` says what it waits for. A message whose processing fails
while everything else works counts one failed attempt in the store, and the
node refuses it (dead letter, with a code) after ``delivery_limit`` of them.
A thread of the node that dies of an unexpected error stops the node
(:attr:`Node.failed`): it never idles while holding deliveries.

The modules, one job each:

- :mod:`~gateway.node.node`: the :class:`Node` façade (parts wired, threads,
  lifecycle, health) and :func:`build_node`;
- :mod:`~gateway.node.worker`: the worker thread, deliveries in batches and
  the expiry sweep;
- :mod:`~gateway.node.send`: destination check, header, seal, outbox, publish;
- :mod:`~gateway.node.outbox`: confirms recorded, the unconfirmed republished,
  outcomes waited for;
- :mod:`~gateway.node.receive`: batches of deliveries, parsing, dedupe,
  imports, on a :mod:`~gateway.node.unit_of_work` per batch;
- :mod:`~gateway.node.handlers`: one handler per message type, with policy;
- :mod:`~gateway.node.replies`: receipts, replies, declines, refusals, failed
  attempts;
- :mod:`~gateway.node.desk`: held requests (release, refusal, previews, the
  two-person rule);
- :mod:`~gateway.node.expiry`: unanswered requests recorded expired;
- :mod:`~gateway.node.availability`, :mod:`~gateway.node.vendor`,
  :mod:`~gateway.node.journaling`, :mod:`~gateway.node.stats`: waiting for the
  store and vendor system, adapter calls, journal entries, counters.

The broker client is given to the node behind :class:`gateway.broker.Broker`;
:class:`gateway.testing.MemoryBroker` runs nodes without RabbitMQ.
"""

from __future__ import annotations

# What the node module offered before it became a package, offered still.
from gateway.broker import REFUSAL_CODE_HEADER, REFUSAL_REASON_HEADER
from gateway.node.availability import PAUSE_MAX_SECONDS
from gateway.node.desk import HeldView
from gateway.node.node import DEFAULT_NAMES, DEFAULT_REQUEST_TTL, Action, Node, build_node
from gateway.node.replies import Reply
from gateway.node.send import BROKER_WAIT_SECONDS, SEND_BATCH, STORE_WAIT_SECONDS, Sent
from gateway.node.stats import LATENCY_BUCKETS, Health, NodeStats
from gateway.node.worker import RECEIVE_BATCH, SWEEP_SECONDS

__all__ = [
    "BROKER_WAIT_SECONDS",
    "DEFAULT_NAMES",
    "DEFAULT_REQUEST_TTL",
    "LATENCY_BUCKETS",
    "PAUSE_MAX_SECONDS",
    "RECEIVE_BATCH",
    "REFUSAL_CODE_HEADER",
    "REFUSAL_REASON_HEADER",
    "SEND_BATCH",
    "STORE_WAIT_SECONDS",
    "SWEEP_SECONDS",
    "Action",
    "Health",
    "HeldView",
    "Node",
    "NodeStats",
    "Reply",
    "Sent",
    "build_node",
]
