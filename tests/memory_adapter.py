"""An adapter on the base class whose vendor store is a few dictionaries (tests only)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from gateway.adapters import AdapterFactory, impl
from gateway.adapters.base import Listing, Planting, Seeding
from gateway.adapters.protocol import AdapterInfo
from gateway.model.dossier import Dossier
from gateway.testing.synthetic import SensitiveData


class MemoryAdapter(Seeding, Planting, Listing):
    """A vendor store held in dictionaries, with a switch to make it fail."""

    def _reach(self) -> None:
        """Every use of the store fails with :attr:`failure` while one is set."""
        self.threads.add(threading.get_ident())
        if self.failure is not None:
            raise self.failure

    info = AdapterInfo(name="memory", vendor="Test", product="Memory", version="1")
    suite_options = {"folder": "{workdir}/memory"}  # noqa: RUF012

    def connect(self) -> None:
        self.people: dict[str, Dossier] = {}
        self.messages: dict[str, str] = {}
        self.sensitive: dict[str, list[str]] = {}
        self.reads: list[str] = []
        self.failure: Exception | None = None
        self.threads: set[int] = set()

    def read_dossier(self, person_number: str) -> Dossier | None:
        self.reads.append(person_number)
        self._reach()
        stored = self.people.get(person_number)
        if stored is None:
            return None
        return self.new_dossier(
            case_reference=f"M-{person_number[-4:]}",
            **stored.model_dump(include={"person", "household", "aid_history"}),
        )

    def write_dossier(self, dossier: Dossier) -> str:
        self._reach()
        self.people[dossier.person.number] = dossier
        return f"M-{dossier.person.number[-4:]}"

    def find_message(self, message_id: str) -> str | None:
        self._reach()
        return self.messages.get(message_id)

    def record_message(self, message_id: str, local_reference: str, dossier: Dossier) -> None:
        self.messages[message_id] = local_reference

    def write_sensitive(self, person_number: str, sensitive: SensitiveData) -> bool:
        if person_number not in self.people:
            return False
        self.sensitive.setdefault(person_number, []).extend(sensitive.all_strings())
        return True

    def person_numbers(self) -> list[str]:
        self._reach()
        return list(self.people)

    def make_store_unavailable(self) -> None:
        self.failure = ConnectionRefusedError("the store's server is down")

    def make_store_available(self) -> None:
        self.failure = None


class MemoryPlugin:
    """Registers :class:`MemoryAdapter` as ``memory``."""

    @impl
    def cpas_register_adapters(self, register: Callable[[str, AdapterFactory], None]) -> None:
        register("memory", MemoryAdapter)
