"""Deliberately broken adapters, to prove the conformance suite fails when it should.

Each wraps a reference adapter and breaks exactly one thing a real vendor
could plausibly ship; the suite must fail on exactly the requirement that
thing breaks (``EXPECTED_FAILURE``), and nothing else.
Two more declare less than the reference adapters do, to prove that what an
adapter does not declare gives visible skips, and that leaving out the
minimality test hook does not avoid the minimality requirement.

They reach the suite as a pluggy plugin object, ``PLUGIN``, passed to
:func:`gateway.adapters.load_adapters` (``cpas_conformance.cli.main(...,
plugins=[PLUGIN])``). Their options are the wrapped adapter's, e.g.
``url={workdir}/db.sqlite3`` for OCMWdata or ``folder={workdir}/fiches`` for
FicheSociale.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Final

from fichesociale import FicheSocialeAdapter
from gateway.adapters import AdapterFactory, ImportResult, impl
from gateway.model.directory import Directory, Verdict
from gateway.model.dossier import AidKind, Decision, DecisionStatus, Dossier, legal_basis_for
from gateway.model.errors import AdapterError, GatewayError
from gateway.model.identifiers import validate_person_number
from gateway.testing.synthetic import SensitiveData
from ocmwdata import OcmwdataAdapter

OPTIONS: Final = {
    OcmwdataAdapter: {"url": "{workdir}/ocmwdata.sqlite3"},
    FicheSocialeAdapter: {"folder": "{workdir}/fiches"},
}


class Wrapper:
    """A reference adapter seen through a thin layer; subclasses break one thing.

    Optional protocols (seed, inspect, add_sensitive) pass through unless
    named in ``hidden``, so that ``isinstance(wrapper, Seedable)`` tells the
    truth about the wrapper.
    """

    name: ClassVar[str]
    wraps: ClassVar[type[Any]]
    capabilities: ClassVar[frozenset[str]] = frozenset({"export", "import"})
    hidden: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        self.inner = self.wraps(cpas_id, options)
        store = options.get("url") or options.get("folder") or "."
        self.workdir = Path(store).parent
        self.info = dataclasses.replace(
            self.inner.info,
            name=self.name,
            vendor="Broken on purpose",
            capabilities=self.capabilities,
        )

    def __getattr__(self, name: str) -> Any:
        if name in self.hidden or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def export_dossier(self, person_number: str) -> Dossier | None:
        return self.inner.export_dossier(person_number)

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        return self.inner.import_dossier(dossier, message_id=message_id)

    def close(self) -> None:
        self.inner.close()


class LeakyNote(Wrapper):
    """Sends the latest social worker's note as the case reference (breaks DSE-MIN-001).

    A real adapter would read the note from its own tables; this one keeps
    what the test hook planted, which is the same note.
    """

    name = "broken-leaky-note"
    wraps = OcmwdataAdapter

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        super().__init__(cpas_id, options)
        self.notes: dict[str, str] = {}

    def add_sensitive(self, person_number: str, sensitive: SensitiveData) -> None:
        self.inner.add_sensitive(person_number, sensitive)
        if sensitive.notes:
            self.notes[person_number] = sensitive.notes[-1]

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        note = self.notes.get(person_number)
        if dossier is None or note is None:
            return dossier
        ascii_note = unicodedata.normalize("NFKD", note).encode("ascii", "ignore").decode()
        reference = re.sub(r"[^A-Za-z0-9._/-]+", "-", ascii_note).strip("-")[:64]
        source = dossier.source.model_copy(update={"case_reference": reference})
        return dossier.model_copy(update={"source": source})


class LeaksUnlessWatched(LeakyNote):
    """Leaks like ``LeakyNote``, unless it sees the suite's modules or loggers when built
    (breaks DSE-MIN-001, if the suite cannot be seen)."""

    name = "broken-leaks-unless-watched"

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        super().__init__(cpas_id, options)
        self.watched = "cpas_conformance" in sys.modules or any(
            name.startswith("cpas_conformance") for name in logging.Logger.manager.loggerDict
        )

    def export_dossier(self, person_number: str) -> Dossier | None:
        if self.watched:
            return self.inner.export_dossier(person_number)
        return super().export_dossier(person_number)


class LostDiacritics(Wrapper):
    """Drops accents and other combining marks from names on export (breaks DSE-TXT-001)."""

    name = "broken-lost-diacritics"
    wraps = FicheSocialeAdapter

    @staticmethod
    def _strip(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", text)
        return "".join(ch for ch in decomposed if not unicodedata.combining(ch))

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is None:
            return None
        person = dossier.person.model_copy(
            update={
                "family_name": self._strip(dossier.person.family_name),
                "given_names": [self._strip(name) for name in dossier.person.given_names],
            }
        )
        return dossier.model_copy(update={"person": person})


class ComposesNames(Wrapper):
    """Stores names in Unicode's composed form (NFC): a decomposed accent comes back
    composed, the same letters in other code points (breaks DSE-TXT-001)."""

    name = "broken-composes-names"
    wraps = OcmwdataAdapter

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        person = dossier.person
        composed = person.model_copy(
            update={
                "family_name": unicodedata.normalize("NFC", person.family_name),
                "given_names": [unicodedata.normalize("NFC", n) for n in person.given_names],
            }
        )
        return super().import_dossier(
            dossier.model_copy(update={"person": composed}), message_id=message_id
        )


class DoubleImport(Wrapper):
    """Forgets message ids: a redelivered message is imported again (breaks DSE-IMP-002)."""

    name = "broken-double-import"
    wraps = OcmwdataAdapter
    # Its imports record events under the ids it makes up: judged only on what it breaks.
    hidden = frozenset({"receive_event", "read_events"})

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        return super().import_dossier(dossier, message_id=f"{message_id}/{uuid.uuid4()}")


class CreatedMeansNewPerson(Wrapper):
    """Reports ``created`` false when a new message updates a person already held, as if
    ``created`` meant "a new person" (breaks DSE-IMP-001)."""

    name = "broken-created-means-new-person"
    wraps = FicheSocialeAdapter

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        held = self.inner.export_dossier(dossier.person.number) is not None
        result = self.inner.import_dossier(dossier, message_id=message_id)
        return dataclasses.replace(result, created=result.created and not held)


class BadCheckDigits(Wrapper):
    """Exports the person number with its check digits off by one (breaks DSE-EXP-002).

    ``model_copy`` does not validate, which is exactly how such a defect slips
    past an adapter's own model.
    """

    name = "broken-check-digits"
    wraps = OcmwdataAdapter

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is None:
            return None
        person = dossier.person
        number = person.number
        wrong = f"{number[:9]}{(int(number[9:]) + 1) % 100:02d}"
        field = "niss" if person.niss is not None else "bis"
        return dossier.model_copy(update={"person": person.model_copy(update={field: wrong})})


class CrashOnUnknown(Wrapper):
    """Raises ``KeyError`` for a valid person number it does not hold (breaks DSE-EXP-003).

    A person number is 11 ASCII digits with valid check digits, as the schema
    writes it; anything else still gives ``None``.
    """

    name = "broken-crash-on-unknown"
    wraps = FicheSocialeAdapter

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is None:
            if not person_number.isascii():
                return None
            try:
                validate_person_number(person_number)
            except GatewayError:
                return None
            raise KeyError(person_number)
        return dossier


# ------------------------------------------------------------- lifecycle


class NeverCommits(Wrapper):
    """Its writes last only as long as the adapter: closing it loses them (breaks DSE-PER-001)."""

    name = "broken-never-commits"
    wraps = OcmwdataAdapter

    def close(self) -> None:
        super().close()
        for leftover in self.workdir.glob("ocmwdata.sqlite3*"):
            leftover.unlink()


class IdsInMemory(Wrapper):
    """Remembers message ids in memory only: after a restart it imports them again
    (breaks DSE-PER-001)."""

    name = "broken-ids-in-memory"
    wraps = OcmwdataAdapter
    # Its imports record events under the ids it makes up: judged only on what it breaks.
    hidden = frozenset({"receive_event", "read_events"})

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        super().__init__(cpas_id, options)
        self.seen: dict[str, str] = {}

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        if message_id in self.seen:
            return ImportResult(self.seen[message_id], created=False)
        result = super().import_dossier(dossier, message_id=str(uuid.uuid4()))
        self.seen[message_id] = result.local_reference
        return result

    def import_batch(self, items: Sequence[tuple[Dossier, str]]) -> list[ImportResult]:
        return [
            self.import_dossier(dossier, message_id=message_id) for dossier, message_id in items
        ]


class BatchForgetsIds(Wrapper):
    """Its ``import_batch`` skips the message-id check (breaks DSE-IMP-003)."""

    name = "broken-batch-forgets-ids"
    wraps = FicheSocialeAdapter

    def import_batch(self, items: Sequence[tuple[Dossier, str]]) -> list[ImportResult]:
        return list(self.inner.import_batch([(dossier, str(uuid.uuid4())) for dossier, _ in items]))


class BoundToThread(Wrapper):
    """Works only in the thread that built it, as SQLite's default connection does
    (breaks DSE-THR-001)."""

    name = "broken-bound-to-thread"
    wraps = OcmwdataAdapter

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        super().__init__(cpas_id, options)
        self.thread = threading.get_ident()

    def _same_thread(self) -> None:
        if threading.get_ident() != self.thread:
            raise sqlite3.ProgrammingError(
                "SQLite objects created in a thread can only be used in that same thread."
            )

    def export_dossier(self, person_number: str) -> Dossier | None:
        self._same_thread()
        return super().export_dossier(person_number)

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        self._same_thread()
        return super().import_dossier(dossier, message_id=message_id)

    def import_batch(self, items: Sequence[tuple[Dossier, str]]) -> list[ImportResult]:
        self._same_thread()
        return list(self.inner.import_batch(items))


class FirstWriteWins(Wrapper):
    """A newer dossier of a person already held says "imported" and changes nothing
    (breaks DSE-UPD-001)."""

    name = "broken-first-write-wins"
    wraps = OcmwdataAdapter

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        held = self.inner.export_dossier(dossier.person.number)
        # What it holds is written again under the new message id: nothing changes.
        return super().import_dossier(held or dossier, message_id=message_id)


# ---------------------------------------------------------------- content


class ShiftsDates(Wrapper):
    """Stores dates as local midnight and reads them back in UTC: a day early east of UTC
    (breaks DSE-TZN-001; on a UTC host nothing shows)."""

    name = "broken-shifts-dates"
    wraps = FicheSocialeAdapter

    @staticmethod
    def _shift(day: dt.date | None) -> dt.date | None:
        if day is None:
            return None
        return dt.datetime.fromtimestamp(time.mktime(day.timetuple()), dt.UTC).date()

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is None:
            return None
        history = [
            item.model_copy(
                update={
                    name: self._shift(getattr(item, name))
                    for name in ("decision_date", "period_start", "period_end")
                }
            )
            for item in dossier.aid_history
        ]
        person = dossier.person.model_copy(
            update={"birth_date": self._shift(dossier.person.birth_date)}
        )
        return dossier.model_copy(
            update={
                "person": person,
                "aid_history": history,
                "last_social_inquiry": self._shift(dossier.last_social_inquiry),
            }
        )


class PassesOnSender(Wrapper):
    """Passes a received dossier on under its sender's case reference and contact
    (breaks DSE-EXP-005)."""

    name = "broken-passes-on-sender"
    wraps = OcmwdataAdapter

    @property
    def _senders(self) -> Path:
        return self.workdir / "senders.json"

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        senders = json.loads(self._senders.read_text()) if self._senders.exists() else {}
        senders[dossier.person.number] = dossier.source.model_dump(mode="json", exclude={"cpas_id"})
        self._senders.write_text(json.dumps(senders))
        return super().import_dossier(dossier, message_id=message_id)

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        senders = json.loads(self._senders.read_text()) if self._senders.exists() else {}
        if dossier is None or person_number not in senders:
            return dossier
        sender = senders[person_number]
        source = dossier.source.model_copy(
            update={
                "case_reference": sender["case_reference"],
                "contact": dossier.source.contact.model_copy(update=sender["contact"]),
            }
        )
        return dossier.model_copy(update={"source": source})


class SanctionsAsDecisions(Wrapper):
    """Exports sanctions, refusals and activation measures as ordinary "ended" decisions:
    no planted text, all the facts (breaks DSE-MIN-002)."""

    name = "broken-sanctions-as-decisions"
    wraps = OcmwdataAdapter

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        super().__init__(cpas_id, options)
        self.measures: dict[str, int] = {}

    def add_sensitive(self, person_number: str, sensitive: SensitiveData) -> None:
        self.inner.add_sensitive(person_number, sensitive)
        count = len(sensitive.sanctions) + len(sensitive.refused_applications)
        count += len(sensitive.activation_measures)
        self.measures[person_number] = self.measures.get(person_number, 0) + count

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is None or not self.measures.get(person_number):
            return dossier
        day = dt.date(2025, 3, 1)
        kind = AidKind.OTHER_FINANCIAL_AID
        extra = [
            Decision(
                decision_id=f"SAN-{index:04d}",
                kind=kind,
                legal_basis=legal_basis_for(kind),
                decision_date=day,
                period_start=day,
                period_end=day + dt.timedelta(days=30),
                status=DecisionStatus.ENDED,
                monthly_amount=Decimal("0.00"),
            )
            for index in range(self.measures[person_number])
        ]
        return dossier.model_copy(update={"aid_history": [*dossier.aid_history, *extra]})


# ----------------------------------------------------------------- errors


class LockedEscapes(Wrapper):
    """Lets the database's own "locked" error escape during an outage (breaks DSE-ERR-002)."""

    name = "broken-locked-escapes"
    wraps = OcmwdataAdapter

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except AdapterError as exc:
            if exc.transient:
                raise sqlite3.OperationalError("database is locked") from exc
            raise

    def export_dossier(self, person_number: str) -> Dossier | None:
        return self._guard(lambda: super(LockedEscapes, self).export_dossier(person_number))

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        return self._guard(
            lambda: super(LockedEscapes, self).import_dossier(dossier, message_id=message_id)
        )


# ---------------------------------------------------------- side channels


class SupportFolder(Wrapper):
    """Writes every export, with the social worker's notes, to a support folder outside
    its store (breaks DSE-SID-001)."""

    name = "broken-support-folder"
    wraps = FicheSocialeAdapter

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is not None:
            support = self.workdir.parent / "support"
            support.mkdir(exist_ok=True)
            (support / f"{person_number}.xml").write_bytes(dossier.to_xml())
        return dossier


class PublishesItself(Wrapper):
    """Sends every dossier it imports over the network itself, in clear (breaks DSE-SID-001).

    It stands for an adapter publishing to the broker; it connects to a closed
    local port, so the test disturbs no real broker.
    """

    name = "broken-publishes-itself"
    wraps = OcmwdataAdapter

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        try:
            with socket.create_connection(("127.0.0.1", 1), timeout=0.2) as connection:
                connection.sendall(dossier.to_xml())
        except OSError:
            pass
        return super().import_dossier(dossier, message_id=message_id)


class HoldsBrokerClient(Wrapper):
    """Keeps the broker client at hand, ready to publish (breaks DSE-SID-001)."""

    name = "broken-holds-broker-client"
    wraps = FicheSocialeAdapter

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        super().__init__(cpas_id, options)
        import pika

        self.amqp = pika


class RunsAProgram(Wrapper):
    """Runs a program of the vendor's on every export (breaks DSE-SID-001)."""

    name = "broken-runs-a-program"
    wraps = OcmwdataAdapter

    def export_dossier(self, person_number: str) -> Dossier | None:
        subprocess.run(["true"], check=False)
        return super().export_dossier(person_number)


# --------------------------------------------------------------- gateway


class PatchesDirectory(Wrapper):
    """Loosens the gateway's directory check in-process, so the police is a destination
    (breaks DSE-INT-002). It puts the check back when closed, to leave the tests clean."""

    name = "broken-patches-directory"
    wraps = FicheSocialeAdapter

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        super().__init__(cpas_id, options)
        self.original = Directory.__dict__["may_receive"]

        def anyone(directory: Directory, institution_id: str, at: Any = None) -> Verdict:
            return Verdict(True, "directory.ok", f"{institution_id} may receive.")

        Directory.may_receive = anyone  # type: ignore[method-assign]

    def close(self) -> None:
        Directory.may_receive = self.original  # type: ignore[method-assign]
        super().close()


# ------------------------------------------------------------------ speed


class SlowBatches(Wrapper):
    """Takes 300 ms per dossier of a batch: conformant, with a speed warning (DSE-PRF-001)."""

    name = "slow-batches"
    wraps = OcmwdataAdapter

    def import_batch(self, items: Sequence[tuple[Dossier, str]]) -> list[ImportResult]:
        time.sleep(0.3 * len(items))
        return list(self.inner.import_batch(items))


# ------------------------------------------------------- starting, wording


class NeedsAnOption(Wrapper):
    """Cannot start without its ``db`` option, as a vendor's adapter run without options."""

    name = "needs-an-option"
    wraps = OcmwdataAdapter

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        if "db" not in options:
            raise AdapterError("Acme needs the option db (the path of its database).")
        super().__init__(cpas_id, options)


class LongHistoryAmounts(Wrapper):
    """Rounds every amount of a long history to the euro: all decisions come back, wrong."""

    name = "broken-long-history-amounts"
    wraps = OcmwdataAdapter

    def export_dossier(self, person_number: str) -> Dossier | None:
        dossier = super().export_dossier(person_number)
        if dossier is None or len(dossier.aid_history) < 200:
            return dossier
        history = [
            item.model_copy(update={"monthly_amount": round(item.monthly_amount)})
            if item.monthly_amount
            else item
            for item in dossier.aid_history
        ]
        return dossier.model_copy(update={"aid_history": history})


class ExportOnly(Wrapper):
    """Declares only ``export``: import requirements must be skipped, visibly."""

    name = "export-only"
    wraps = OcmwdataAdapter
    capabilities = frozenset({"export"})


class NoTestHooks(Wrapper):
    """Implements none of the optional protocols (no seed, inspect or planting hook)."""

    name = "no-test-hooks"
    wraps = FicheSocialeAdapter
    hidden = frozenset(
        {
            "seed", "add_sensitive", "list_person_numbers", "count_persons", "store_unavailable",
            "receive_event", "read_events",
        }
    )  # fmt: skip


EXPECTED_FAILURE: Final = {
    LeakyNote: "DSE-MIN-001",
    LeaksUnlessWatched: "DSE-MIN-001",
    LostDiacritics: "DSE-TXT-001",
    ComposesNames: "DSE-TXT-001",
    DoubleImport: "DSE-IMP-002",
    CreatedMeansNewPerson: "DSE-IMP-001",
    BadCheckDigits: "DSE-EXP-002",
    CrashOnUnknown: "DSE-EXP-003",
    NeverCommits: "DSE-PER-001",
    IdsInMemory: "DSE-PER-001",
    BatchForgetsIds: "DSE-IMP-003",
    BoundToThread: "DSE-THR-001",
    FirstWriteWins: "DSE-UPD-001",
    ShiftsDates: "DSE-TZN-001",
    PassesOnSender: "DSE-EXP-005",
    SanctionsAsDecisions: "DSE-MIN-002",
    LockedEscapes: "DSE-ERR-002",
    SupportFolder: "DSE-SID-001",
    PublishesItself: "DSE-SID-001",
    HoldsBrokerClient: "DSE-SID-001",
    RunsAProgram: "DSE-SID-001",
    PatchesDirectory: "DSE-INT-002",
}
"""The one requirement each broken adapter must fail."""

BROKEN: Final[tuple[type[Wrapper], ...]] = tuple(EXPECTED_FAILURE)
DECLARING_LESS: Final[tuple[type[Wrapper], ...]] = (ExportOnly, NoTestHooks)
OTHERS: Final[tuple[type[Wrapper], ...]] = (SlowBatches, NeedsAnOption, LongHistoryAmounts)
"""A slow but conformant adapter, one that cannot start, one whose failure is worded."""


def options_for(name: str) -> list[str]:
    """``--option`` arguments giving the named test adapter a fresh store per case."""
    wrapper = next(item for item in (*BROKEN, *DECLARING_LESS, *OTHERS) if item.name == name)
    return [f"{key}={value}" for key, value in OPTIONS[wrapper.wraps].items()]


class Plugin:
    """The pluggy plugin registering every test adapter."""

    @impl
    def cpas_register_adapters(self, register: Callable[[str, AdapterFactory], None]) -> None:
        for wrapper in (*BROKEN, *DECLARING_LESS, *OTHERS):
            register(wrapper.name, wrapper)


PLUGIN: Final = Plugin()
