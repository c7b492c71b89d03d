"""The typed objects an adapter plugin registers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from gateway.model.dossier import Dossier
from gateway.model.sensitive import SensitiveData


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter says about itself.

    :param name: the name it registers under (the entry-point name).
    :param vendor: the software vendor.
    :param product: the vendor's product.
    :param version: the adapter's version.
    :param schema_versions: canonical schema versions it reads and writes.
    :param capabilities: ``export`` and/or ``import``; an adapter may do only one.
    """

    name: str
    vendor: str
    product: str
    version: str
    schema_versions: tuple[str, ...] = ("1",)
    capabilities: frozenset[str] = field(default_factory=lambda: frozenset({"export", "import"}))


@dataclass(frozen=True)
class ImportResult:
    """What happened to an imported dossier.

    :param local_reference: the vendor system's own reference for the record.
    :param created: ``True`` when this message id had not been imported before
        and the dossier was stored now -- as a new person, or as an update of a
        person the system already held; ``False`` only when this message id
        had been imported before (nothing changed, same ``local_reference``).
    """

    local_reference: str
    created: bool


@runtime_checkable
class Adapter(Protocol):
    """One vendor system, seen through the canonical dossier."""

    info: AdapterInfo

    def export_dossier(self, person_number: str) -> Dossier | None:
        """The canonical dossier of the person (NISS or BIS), or ``None`` if unknown."""
        ...

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        """Store a received dossier; the same ``message_id`` twice stores it once.

        A person already held (same NISS/BIS) is updated; see
        :class:`ImportResult` for ``created``.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class Seedable(Protocol):
    """Optional: an adapter that can fill its vendor system with synthetic people."""

    def seed(self, count: int, *, seed: int = 0) -> list[str]:
        """Add ``count`` synthetic beneficiaries; return their person numbers."""
        ...


@runtime_checkable
class BatchImporter(Protocol):
    """Optional: an adapter that imports several dossiers at once (one transaction, one flush).

    Same rules as :meth:`Adapter.import_dossier`, item by item, results in
    order; the node uses it for every batch of deliveries when offered.
    """

    def import_batch(self, items: Sequence[tuple[Dossier, str]]) -> list[ImportResult]:
        """Import ``(dossier, message_id)`` pairs; all or nothing is durable when it returns."""
        ...


@runtime_checkable
class Inspectable(Protocol):
    """Optional: an adapter that can say whom its vendor system holds (demo, tests)."""

    def list_person_numbers(self) -> list[str]:
        """NISS/BIS numbers of every person the vendor system holds."""
        ...

    def count_persons(self) -> int:
        """How many people the vendor system holds."""
        ...


@runtime_checkable
class PlantsSensitiveData(Protocol):
    """Optional test hook: put non-minimal data on a person, to prove it never leaves.

    The conformance suite plants unique markers through this hook and searches
    every export for them. Never called by a running node.
    """

    def add_sensitive(self, person_number: str, sensitive: SensitiveData) -> None:
        """Store notes, activation measures, sanctions, refusals and family members."""
        ...


@runtime_checkable
class SimulatesOutage(Protocol):
    """Optional test hook: make the vendor's store unavailable, as a real outage would.

    While the context is open, the store cannot be reached (its server down,
    its folder gone); every call must raise
    :class:`~gateway.model.errors.AdapterError` with ``transient=True``, and once
    the context has closed the adapter must work again without being rebuilt.
    The conformance suite uses it to prove that an outage is retried, not
    dead-lettered. Never called by a running node.
    """

    def store_unavailable(self) -> AbstractContextManager[None]:
        """The store is unreachable until the returned context closes."""
        ...


AdapterFactory = Callable[[str, Mapping[str, str]], Adapter]
"""Builds an adapter for one CPAS: ``factory(cpas_id, options)``."""


class VendorEventKind(StrEnum):
    """What the node tells the vendor system, for it to show a social worker."""

    REQUEST_HELD = "request-held"
    """Another CPAS's request waits here for a social worker's decision."""
    DOSSIER_IMPORTED = "dossier-imported"
    """A dossier received (a transfer, or the answer to a request) was imported."""
    TRANSFER_IMPORTED = "transfer-imported"
    """A transfer this CPAS sent was imported by the receiver."""
    TRANSFER_REJECTED = "transfer-rejected"
    """A transfer this CPAS sent was rejected by the receiver (``code`` says why)."""
    REQUEST_ANSWERED = "request-answered"
    """A request this CPAS sent was answered with the dossier (imported)."""
    REQUEST_REFUSED = "request-refused"
    """A request this CPAS sent was refused (``code``: unknown person, purpose, social worker)."""
    REQUEST_EXPIRED = "request-expired"
    """A request this CPAS sent got no answer before it expired."""


@dataclass(frozen=True)
class VendorEvent:
    """One event for the vendor system; ``event_id`` is stable, so a repeat changes nothing."""

    kind: VendorEventKind
    message_id: str
    """The message the event is about (the one the vendor's software started, where it did)."""
    peer: str
    """Enterprise number of the other CPAS."""
    at: str
    purpose: str | None = None
    case_reference: str | None = None
    person_number: str | None = None
    """Set where the node knows it: a held request, a dossier imported."""
    code: str | None = None
    local_reference: str | None = None
    """The vendor system's own reference of an imported dossier."""

    @property
    def event_id(self) -> str:
        return f"{self.message_id}:{self.kind.value}"

    def to_json(self) -> dict[str, str | None]:
        return {"event_id": self.event_id, **asdict(self), "kind": self.kind.value}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> VendorEvent:
        values = {f: data.get(f) for f in cls.__dataclass_fields__}
        values["kind"] = VendorEventKind(str(data["kind"]))
        return cls(**values)  # type: ignore[arg-type]


@runtime_checkable
class ReceivesEvents(Protocol):
    """Optional: an adapter through which the node tells the vendor system what happened.

    The vendor's software shows a social worker what needs them (a request
    held for a decision) and what became of their exchanges. The node calls
    :meth:`receive_event` at least once per event; an event whose
    ``event_id`` was received before must change nothing. An adapter that
    imports in a transaction records the ``dossier-imported`` event in the
    import's own transaction.
    """

    def receive_event(self, event: VendorEvent) -> None:
        """Record one event for the vendor system (idempotent by ``event.event_id``)."""
        ...

    def read_events(self) -> list[VendorEvent]:
        """Every event recorded, oldest first (the conformance suite reads them back)."""
        ...
