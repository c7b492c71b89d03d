"""One batch of deliveries as a unit of work: what it leaves to do once its records commit.

A batch's records (the store and the journal) commit together; only then are
its replies published and its deliveries acked or rejected. The handlers put
those actions here (:meth:`UnitOfWork.defer`), and the dossiers to import
with the rest of the batch (:meth:`UnitOfWork.import_later`). A batch whose
transaction rolls back is tried again on a fresh unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.broker import Delivery
from gateway.model.dossier import Dossier
from gateway.model.envelope import Header


@dataclass(frozen=True)
class Import:
    """A received dossier waiting to be imported with the rest of its batch."""

    delivery: Delivery
    header: Header
    dossier: Dossier
    then: Callable[[], None] | None
    """Run once the import is recorded (a response records the request's outcome)."""


@dataclass
class UnitOfWork:
    """The deferred replies and acks, and the dossiers to import, of one batch."""

    deferred: list[Callable[[], None]] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)

    def defer(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a reply, an ack) once the batch's records are committed."""
        self.deferred.append(action)

    def import_later(self, item: Import) -> None:
        """Import this dossier with the rest of the batch."""
        self.imports.append(item)

    def mark(self) -> int:
        """Where the deferred actions stand now (see :meth:`roll_back_to`)."""
        return len(self.deferred)

    def roll_back_to(self, mark: int) -> None:
        """Forget the actions deferred since ``mark``: their records did not commit."""
        del self.deferred[mark:]

    def run_deferred(self) -> None:
        """The batch is committed: publish the replies, settle the deliveries."""
        deferred, self.deferred = self.deferred, []
        for action in deferred:
            action()
