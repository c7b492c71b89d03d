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

The replay runs in :data:`ROUNDS` rounds of equal size after the warm-up;
each stage's figure is the median of its rounds' CPU per dossier, so that a
round slowed by other work on the machine does not move it.

Each budgeted stage gets a verdict: parse and validate within
:data:`PARSE_BUDGET_US`, and sealing, opening, signing and verifying within
:data:`LIBRARY_FACTOR` times what the bare library call costs on the same
messages in the same run (:mod:`bench.library`). The bare calls are timed
inside the replay, after each dossier, under the same conditions as the
stages: that figure is the budget's base. They are also timed in a tight
loop, the best case, and the verdict against that stricter budget is given
beside.

Sender and receiver share this process, and the gateway remembers the
identifiers it has checked: before the receiver parses a dossier, the
checks of people's numbers are forgotten, as a receiving node has never
seen the person (the CPAS enterprise numbers stay remembered, as on a
running node).

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

import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any, TypeVar

from bench import library
from bench.harness import FICHESOCIALE, GENT, LIEGE, OCMWDATA, Bench
from gateway.adapters import Adapter, BatchImporter
from gateway.broker import BrokerClient, Delivery, Queue, Topology, wait_all
from gateway.model.codes import Outcome
from gateway.model.dossier import Dossier
from gateway.model.envelope import (
    Envelope,
    Header,
    MessageType,
    Purpose,
    ReceiptBody,
    TransferBody,
    body_from_xml,
    decrypt,
    seal,
    verify,
)
from gateway.model.identifiers import encoded_birth, validate_bis, validate_niss
from gateway.model.keys import public_encryption_key, public_signing_key

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
ROUNDS = 5
"""Rounds of the replay after the warm-up: each stage's figure is the median of them."""
LIBRARY_SAMPLE = 200
"""Dossiers of the replay whose messages the bare library calls are timed on."""
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

PARSE_BUDGET_US = 200.0
"""CPU per dossier for parsing and validating its two envelopes and two bodies."""
LIBRARY_FACTOR = 1.5
"""How much a cryptographic stage may cost over the bare library call it wraps."""
LIBRARY_CALL = {
    SEAL: library.HPKE_SEAL,
    SIGN: library.ED25519_SIGN,
    VERIFY: library.ED25519_VERIFY,
    OPEN: library.HPKE_OPEN,
}
"""The bare library call each cryptographic stage is budgeted against."""


class _Clock:
    """CPU seconds per stage, accumulated."""

    def __init__(self) -> None:
        self.spent: defaultdict[str, float] = defaultdict(float)

    def time(self, stage: str, action: Callable[[], T]) -> T:
        start = time.process_time()
        result = action()
        self.spent[stage] += time.process_time() - start
        return result


Pair = tuple[library.Message, library.Message]


def _replay(bench: Bench, count: int) -> tuple[list[dict[str, float]], list[bytes], list[Pair]]:
    """CPU seconds per dossier and stage in each round, the transfers sealed, a sample of messages.

    ``count`` dossiers are replayed after the warm-up, in :data:`ROUNDS`
    rounds; the sample holds the first :data:`LIBRARY_SAMPLE` transfers with
    their receipts, for :func:`bench.library.measure`.
    """
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
    pairs: list[Pair] = []
    pending: list[tuple[Dossier, str]] = []

    def message(data: bytes, plain: bytes, frm: Any, to: Any) -> library.Message:
        envelope = Envelope.from_xml(data)
        entry = directory.encryption_key_for(envelope.header.recipient, envelope.header.created_at)
        return library.Message(
            wire=data,
            plain=plain,
            envelope=envelope,
            recipient_public=public_encryption_key(entry.algorithm, entry.public_key),
            recipient_private=to.node_keys.decryption_key(envelope.key_id).private,
            sender_signing=frm.node_keys.signing,
            sender_public=public_signing_key(frm.node_keys.signing_public_raw),
        )

    def one(number: str, clock: _Clock, keep: bool) -> None:
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
        body = clock.time(SERIALISE, lambda: TransferBody(dossier).to_xml())
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
        # The receiving node has not seen this person yet: the sender's checks
        # of the person's number, remembered in this process, must not serve it.
        _forget_people()
        received = clock.time(PARSE, lambda: body_from_xml(plain, MessageType.TRANSFER)).dossier
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
        receipt_body = clock.time(SERIALISE, lambda: ReceiptBody(Outcome.IMPORTED).to_xml())
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
        clock.time(PARSE, lambda: body_from_xml(opened, MessageType.RECEIPT))

        # The bare library calls on the same two messages, under the same conditions.
        pair = (
            message(data, body, sender, receiver),
            message(receipt_data, receipt_body, receiver, sender),
        )
        # Their order turns from one dossier to the next, so that no call is
        # always timed just after another that warmed the caches for it.
        bare = [item for each in pair for item in library.calls(each).items()]
        turn = len(wire) % len(bare)
        for name, call in bare[turn:] + bare[:turn]:
            clock.time(name, call)
        if keep and len(pairs) < LIBRARY_SAMPLE:
            pairs.append(pair)

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

    def replay(batch: list[str], clock: _Clock, keep: bool = True) -> None:
        for start in range(0, len(batch), IMPORT_BATCH):
            for number in batch[start : start + IMPORT_BATCH]:
                one(number, clock, keep)
            imports(clock)

    rounds: list[dict[str, float]] = []
    try:
        # The first dossiers load schemas and fill caches: not what a dossier costs.
        replay(numbers[:WARM_UP], _Clock(), keep=False)
        wire.clear()
        measured = numbers[WARM_UP:]
        for index in range(ROUNDS):
            batch = measured[index * count // ROUNDS : (index + 1) * count // ROUNDS]
            if not batch:
                continue
            clock = _Clock()
            replay(batch, clock)
            spent = {stage: seconds / len(batch) for stage, seconds in clock.spent.items()}
            # seal() signed too: the signature, timed again alone, moves to its own stage.
            spent[SEAL] -= spent[SIGN]
            rounds.append(spent)
    finally:
        for adapter in (source, target, back):
            adapter.close()
    return rounds, wire, pairs


def _forget_people() -> None:
    for check in (validate_niss, validate_bis, encoded_birth):
        check.cache_clear()


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


def budgets(library_us: dict[str, float]) -> dict[str, float]:
    """CPU microseconds per dossier each budgeted stage may cost, given the libraries' own cost."""
    out = {PARSE: PARSE_BUDGET_US}
    for stage, call in LIBRARY_CALL.items():
        if call in library_us:
            out[stage] = round(library_us[call] * LIBRARY_FACTOR, 1)
    return out


def run_stages(bench: Bench, count: int) -> dict[str, Any]:
    """CPU microseconds per dossier for each stage, its budget and verdict, and the sum."""
    rounds, wire, pairs = _replay(bench, count)
    medians = {
        stage: statistics.median(spent[stage] for spent in rounds) * 1e6 for stage in rounds[0]
    }
    library_us = {call: round(medians.pop(call), 1) for call in library.CALLS}
    per_dossier = medians
    per_dossier[BROKER] = _broker_relay(bench, wire) * 2 * 1e6
    pipeline_total = sum(per_dossier[stage] for stage in PIPELINE_STAGES)
    budget = budgets(library_us)
    tight = library.measure(pairs)
    tight_budget = budgets(tight)
    return {
        "dossiers": count,
        "rounds": len(rounds),
        "method": "time.process_time() around each stage, single-threaded replay in "
        f"{len(rounds)} rounds, median of the rounds; broker client from a relay through "
        "two BrokerClient",
        "cpu_us_per_dossier": {stage: round(value, 1) for stage, value in per_dossier.items()},
        "cpu_us_per_dossier_by_round": {
            stage: [round(spent[stage] * 1e6, 1) for spent in rounds] for stage in rounds[0]
        },
        "library_us_per_dossier": library_us,
        "library_tight_loop_us_per_dossier": tight,
        "library_sample_dossiers": len(pairs),
        "budget_us_per_dossier": budget,
        "budget_basis": {PARSE: "fixed"}
        | {
            stage: f"{LIBRARY_FACTOR} x {call} (library, same run)"
            for stage, call in LIBRARY_CALL.items()
            if stage in budget
        },
        "verdict": {
            stage: "met" if per_dossier[stage] <= limit else "not met"
            for stage, limit in budget.items()
        },
        "budget_tight_loop_us_per_dossier": tight_budget,
        "verdict_tight_loop": {
            stage: "met" if per_dossier[stage] <= limit else "not met"
            for stage, limit in tight_budget.items()
        },
        "pipeline_stages": list(PIPELINE_STAGES),
        "pipeline_total_us": round(pipeline_total, 1),
        "share_of_pipeline": {
            stage: round(per_dossier[stage] / pipeline_total, 3) for stage in PIPELINE_STAGES
        },
    }
