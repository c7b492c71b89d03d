"""Where the time goes: CPU per dossier, stage by stage.

Method: an instrumented, single-threaded replay of both ends of the
pipeline, with the gateway's own functions, keys and directory and the two
reference adapters on their real storage. ``time.process_time()`` is read
around each stage (nothing else runs in the process meanwhile, so process
CPU time is the stage's CPU time). Per dossier, the replay does what the
two nodes do for a transfer and its receipt:

- sender: export from OCMWdata, build and serialise the body and the
  envelope, seal (HPKE) and sign;
- receiver: parse and validate the envelope (hardened parser, XSD,
  pydantic), verify the signature and the header, open the sealed body,
  parse and validate it, import into FicheSociale -- in batches of 64, as a
  node with the default prefetch imports the deliveries it holds when the
  adapter imports in batches; then build, seal and sign the receipt;
- sender again: parse, verify and open the receipt.

Sealing and signing happen in one call (:func:`~gateway.model.envelope.seal`):
the signature is timed again on its own over the same bytes and taken out
of the seal's time. The reverse adapters (export from FicheSociale, import
into OCMWdata) are timed in the same loop.

The broker client is timed apart, as it works on its own I/O thread: the
same envelopes are relayed through two :class:`~gateway.broker.BrokerClient`
(one publishing with confirms, one consuming with acks) in this process,
and the process's CPU time is divided by the messages relayed; a dossier
costs two messages (the transfer and its receipt).

What the replay leaves out -- the node's store (outbox, inbox, SQLite
commits), its threads and queues -- is the difference between the CPU the
nodes really used per dossier in the pipeline run and the sum of the stages.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any, TypeVar

from bench.harness import FICHESOCIALE, GENT, LIEGE, OCMWDATA, Bench
from gateway.adapters import Adapter, BatchImporter
from gateway.broker import BrokerClient, Delivery, Queue, Topology, wait_all
from gateway.model.dossier import Dossier
from gateway.model.envelope import (
    Body,
    Envelope,
    Header,
    MessageType,
    Purpose,
    decrypt,
    seal,
    verify,
)

T = TypeVar("T")

EXPORT_OCMWDATA = "adapter export (ocmwdata)"
IMPORT_FICHESOCIALE = "adapter import (fichesociale)"
EXPORT_FICHESOCIALE = "adapter export (fichesociale)"
IMPORT_OCMWDATA = "adapter import (ocmwdata)"
SERIALISE = "build and serialise"
SEAL = "seal (HPKE)"
SIGN = "sign (Ed25519)"
PARSE = "parse and validate"
VERIFY = "verify"
OPEN = "open (HPKE)"
BROKER = "broker client (2 messages)"
WARM_UP = 20
IMPORT_BATCH = 64
"""Dossiers imported together: what a node holds at once with its default prefetch."""

PIPELINE_STAGES = (
    EXPORT_OCMWDATA,
    SERIALISE,
    SEAL,
    SIGN,
    PARSE,
    VERIFY,
    OPEN,
    IMPORT_FICHESOCIALE,
    BROKER,
)
"""The stages of one dossier OCMWdata -> FicheSociale with its receipt, in order."""


class _Clock:
    """CPU seconds per stage, accumulated."""

    def __init__(self) -> None:
        self.spent: defaultdict[str, float] = defaultdict(float)

    def time(self, stage: str, action: Callable[[], T]) -> T:
        start = time.process_time()
        result = action()
        self.spent[stage] += time.process_time() - start
        return result


def _replay(bench: Bench, count: int) -> tuple[dict[str, float], list[bytes]]:
    """CPU seconds per stage over ``count`` dossiers, and the envelopes the replay sealed."""
    sender, receiver = bench.federation.member(GENT), bench.federation.member(LIEGE)
    directory = bench.federation.directory
    folder = bench.root / "stages"
    registry = bench.registry
    numbers = _seeded(bench, count + WARM_UP)
    source = registry.create(OCMWDATA, sender.cpas_id, {"url": _ocmwdata_url(bench, "source")})
    target = registry.create(FICHESOCIALE, receiver.cpas_id, {"folder": str(folder / "fiches")})
    back = registry.create(
        OCMWDATA, sender.cpas_id, {"url": f"sqlite:///{folder / 'back.sqlite3'}"}
    )
    wire: list[bytes] = []
    pending: list[tuple[Dossier, str]] = []

    def one(number: str, clock: _Clock) -> None:
        dossier = clock.time(EXPORT_OCMWDATA, lambda: source.export_dossier(number))
        assert dossier is not None
        header = clock.time(
            SERIALISE,
            lambda: Header.new(
                MessageType.TRANSFER,
                sender=sender.cpas_id,
                recipient=receiver.cpas_id,
                purpose=Purpose.CONTINUITY_AFTER_MOVE,
                case_reference=dossier.source.case_reference,
            ),
        )
        message_id = str(header.message_id)
        body = clock.time(SERIALISE, lambda: Body(MessageType.TRANSFER, dossier=dossier).to_xml())
        sealed = clock.time(
            SEAL, lambda: seal(header, body, keys=sender.node_keys, directory=directory)
        )
        clock.time(SIGN, lambda: sender.node_keys.signing.sign(sealed.signed_bytes()))
        data = clock.time(SERIALISE, sealed.to_xml)
        wire.append(data)

        # The receiving node.
        envelope = clock.time(PARSE, lambda: Envelope.from_xml(data))
        clock.time(VERIFY, lambda: verify(envelope, me=receiver.cpas_id, directory=directory))
        plain = clock.time(OPEN, lambda: decrypt(envelope, keys=receiver.node_keys))
        received = clock.time(PARSE, lambda: Body.from_xml(plain, MessageType.TRANSFER)).dossier
        assert received is not None
        pending.append((received, message_id))
        receipt_header = clock.time(
            SERIALISE,
            lambda: Header.new(
                MessageType.RECEIPT,
                sender=receiver.cpas_id,
                recipient=sender.cpas_id,
                purpose=header.purpose,
                case_reference=header.case_reference,
                correlation_id=header.message_id,
            ),
        )
        receipt_body = clock.time(
            SERIALISE, lambda: Body(MessageType.RECEIPT, outcome="imported").to_xml()
        )
        receipt = clock.time(
            SEAL,
            lambda: seal(
                receipt_header, receipt_body, keys=receiver.node_keys, directory=directory
            ),
        )
        clock.time(SIGN, lambda: receiver.node_keys.signing.sign(receipt.signed_bytes()))
        receipt_data = clock.time(SERIALISE, receipt.to_xml)

        # The sender reads the receipt.
        answer = clock.time(PARSE, lambda: Envelope.from_xml(receipt_data))
        clock.time(VERIFY, lambda: verify(answer, me=sender.cpas_id, directory=directory))
        opened = clock.time(OPEN, lambda: decrypt(answer, keys=sender.node_keys))
        clock.time(PARSE, lambda: Body.from_xml(opened, MessageType.RECEIPT))

    def imports(clock: _Clock) -> None:
        # As a node does: the dossiers in hand are imported together when the
        # adapter can, then the other direction's adapters on the same dossiers.
        clock.time(IMPORT_FICHESOCIALE, lambda: _import(target, pending))
        again: list[tuple[Dossier, str]] = []
        for dossier, message_id in pending:
            number = dossier.person.number
            exported = clock.time(EXPORT_FICHESOCIALE, partial(target.export_dossier, number))
            assert exported is not None
            again.append((exported, message_id))
        clock.time(IMPORT_OCMWDATA, lambda: _import(back, again))
        pending.clear()

    def replay(batch: list[str], clock: _Clock) -> None:
        for start in range(0, len(batch), IMPORT_BATCH):
            for number in batch[start : start + IMPORT_BATCH]:
                one(number, clock)
            imports(clock)

    clock = _Clock()
    try:
        # The first dossiers load schemas and fill caches: not what a dossier costs.
        replay(numbers[:WARM_UP], _Clock())
        wire.clear()
        replay(numbers[WARM_UP:], clock)
    finally:
        for adapter in (source, target, back):
            adapter.close()
    spent = dict(clock.spent)
    # seal() signed too: the signature, timed again alone, moves to its own stage.
    spent[SEAL] -= spent[SIGN]
    return spent, wire


def _import(adapter: Adapter, items: list[tuple[Dossier, str]]) -> None:
    if isinstance(adapter, BatchImporter):
        adapter.import_batch(items)
    else:
        for dossier, message_id in items:
            adapter.import_dossier(dossier, message_id=message_id)


def _ocmwdata_url(bench: Bench, name: str) -> str:
    return f"sqlite:///{bench.root / 'stages' / f'{name}.sqlite3'}"


def _seeded(bench: Bench, count: int) -> list[str]:
    folder = bench.root / "stages"
    folder.mkdir(parents=True, exist_ok=True)
    vendor = bench.registry.create(
        OCMWDATA, bench.cpas_id(GENT), {"url": _ocmwdata_url(bench, "source")}
    )
    try:
        return vendor.seed(count, seed=5)  # type: ignore[attr-defined]
    finally:
        vendor.close()


def _broker_relay(bench: Bench, bodies: list[bytes]) -> float:
    """CPU seconds of this process per message relayed through two broker clients."""
    queue = f"{bench.names.namespace}.stages"
    topology = Topology(queues=(Queue(queue, {"x-queue-type": "quorum"}),))
    bench.extra_topologies.append(topology)
    received = threading.Semaphore(0)
    consumer: BrokerClient

    def on_delivery(delivery: Delivery) -> None:
        consumer.ack(delivery)
        received.release()

    consumer = BrokerClient(
        [bench.amqp_url], topology, consume=queue, on_delivery=on_delivery, name="bench-consumer"
    )
    publisher = BrokerClient([bench.amqp_url], topology, name="bench-publisher")
    consumer.start(wait=30)
    publisher.start(wait=30)
    try:
        start = time.process_time()
        futures: list[Future[None]] = [
            publisher.publish("", queue, body, message_id=f"stage-{i}", message_type="transfer")
            for i, body in enumerate(bodies)
        ]
        errors = [e for e in wait_all(futures, timeout=300) if e is not None]
        for _ in bodies:
            if not received.acquire(timeout=60):
                break
        spent = time.process_time() - start
    finally:
        publisher.stop()
        consumer.stop()
    if errors:
        raise RuntimeError(f"the broker refused {len(errors)} of the relayed messages")
    return spent / len(bodies)


def run_stages(bench: Bench, count: int) -> dict[str, Any]:
    """CPU microseconds per dossier for each stage, and what they add up to."""
    spent, wire = _replay(bench, count)
    per_dossier = {stage: seconds / count * 1e6 for stage, seconds in spent.items()}
    per_dossier[BROKER] = _broker_relay(bench, wire) * 2 * 1e6
    pipeline_total = sum(per_dossier[stage] for stage in PIPELINE_STAGES)
    return {
        "dossiers": count,
        "method": "time.process_time() around each stage, single-threaded replay; "
        "broker client from a relay through two BrokerClient",
        "cpu_us_per_dossier": {stage: round(value, 1) for stage, value in per_dossier.items()},
        "pipeline_stages": list(PIPELINE_STAGES),
        "pipeline_total_us": round(pipeline_total, 1),
        "share_of_pipeline": {
            stage: round(per_dossier[stage] / pipeline_total, 3) for stage in PIPELINE_STAGES
        },
    }
