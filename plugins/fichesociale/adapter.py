"""The FicheSociale adapter: one JSON fiche per beneficiary in an exchange folder.

Layout of the folder (option ``folder``, default ``./fichesociale-data``)::

    <folder>/fiches/<numero_national>.json   one fiche per beneficiary
    <folder>/recus/<sha256(message id)>.json one marker per imported message
    <folder>/.verrou                         the lock file of the folder's writers

Every file is written atomically: a temporary file in the same folder
(``.<name>.<random>.tmp``), flushed and fsynced, then ``os.replace``-d over the
target, then the folder itself fsynced. A reader therefore sees the old
fiche or the new one, never half of one.

An import writes the fiche first and the message marker second. A crash in
between leaves a fiche and no marker: the redelivered message merges into the
same fiche again (the merge is idempotent) and only then records the marker.

Several processes may use one folder at once (the workers of
``cpas-gateway run --workers N``, the command line). Every read-modify-write
of the folder -- an import or a batch, planting, seeding -- runs alone: the
adapter's lock keeps its own threads in turn, an exclusive ``flock`` on
``.verrou`` every other adapter, in this process or another. So a message id
is found unrecorded, merged and recorded by one writer only: ``created`` is
``True`` once per message id, and no merge is lost. Reads (export, listing,
events) take no lock: they read files that are only ever replaced whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import random
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from fichesociale import dialect
from gateway.adapters import AdapterInfo, ImportResult, VendorEvent, VendorEventKind
from gateway.model.codes import Refusal
from gateway.model.dossier import ContactPoint, Dossier, refusal_from
from gateway.model.errors import AdapterError, GatewayError
from gateway.model.identifiers import validate_enterprise_number
from gateway.testing.synthetic import FamilyMember, SensitiveData, make_beneficiary

log = logging.getLogger(__name__)

ADAPTER_VERSION: Final = "0.1.0"
DEFAULT_FOLDER: Final = "./fichesociale-data"
KNOWN_OPTIONS: Final = frozenset({"folder", "mailbox", "phone"})
MAX_FICHE_BYTES: Final = 16 * 1024 * 1024
"""Larger than any real fiche (200 decisions is about 60 KiB); anything bigger is refused."""

LOCK_FILE: Final = ".verrou"
"""The file in the folder whose ``flock`` every writer of the folder holds."""

STALE_TEMP_SECONDS: Final = 600
"""Temporary files older than this are leftovers of a crash and are removed at start-up."""

_PERSON_NUMBER = re.compile(r"^\d{11}$")
_ABSENT: Final = object()
"""What reading a file that does not exist gives (``None`` is valid JSON)."""


def _person_number(value: str) -> str | None:
    """The 11 digits of a person number as people write it, or ``None`` if it cannot be one.

    Only digits ever reach a file name, so no input can point outside the folder.
    """
    compact = re.sub(r"[ .\-]", "", value) if isinstance(value, str) else ""
    return compact if _PERSON_NUMBER.match(compact) else None


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if os.name == "posix" else None


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; only POSIX lets a directory be opened for it.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flush_to_disk(folder: Path) -> None:
    """Make every file written in ``folder`` (and their renames) durable, in one call.

    ``syncfs`` flushes the folder's file system at once: far cheaper than one
    fsync per file for a batch. Where it is missing, ``os.sync`` does the same
    for every file system.
    """
    syncfs = getattr(_LIBC, "syncfs", None) if _LIBC is not None else None
    if syncfs is None:
        os.sync()
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new content, never a mix.

    :param durable: fsync the file and its folder, so the new content survives
        a power cut once this returns.
    """
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if durable:
        _fsync_folder(path.parent)


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (created 0600) until the block ends.

    The file is opened afresh for each hold and closed after it (closing
    releases the lock). A ``flock`` belongs to an open file description, so
    one opened per hold excludes every other hold: of another process, and of
    another adapter object in this process. Nothing stays open between holds
    for a forked process to inherit, and ``O_CLOEXEC`` keeps the lock from
    programs started during one. Opened for writing, as NFS needs for an
    exclusive lock. A missing folder fails here, as any other call does,
    rather than being made again.
    """
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _to_json(document: Mapping[str, Any], *, pretty: bool = True) -> bytes:
    # Indented JSON goes through the pure-Python encoder, several times slower
    # than the compact one; bulk seeding asks for compact output.
    text = json.dumps(document, ensure_ascii=False, indent=2 if pretty else None)
    return (text + "\n").encode("utf-8")


class FicheSocialeAdapter:
    """FicheSociale's exchange folder, seen through the canonical dossier.

    :param cpas_id: enterprise number of the CPAS this node serves.
    :param options: ``folder`` (created if absent), ``mailbox`` and ``phone``
        (the service contact put in exported dossiers; the mailbox defaults to
        one built from ``cpas_id``).
    :raises AdapterError: ``adapter.config`` for a bad option,
        ``adapter.unavailable`` when the folder cannot be created.
    """

    info = AdapterInfo(
        name="fichesociale",
        vendor="FicheSociale",
        product="FicheSociale dossiers bénéficiaires",
        version=ADAPTER_VERSION,
    )

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        unknown = sorted(set(options) - KNOWN_OPTIONS)
        if unknown:
            log.warning("fichesociale ignores unknown options: %s", ", ".join(unknown))
        try:
            self.cpas_id = validate_enterprise_number(cpas_id)
            self.contact = ContactPoint(
                mailbox=options.get("mailbox") or f"service.social@cpas-{self.cpas_id}.example.be",
                phone=options.get("phone") or None,
            )
        except GatewayError as exc:
            raise AdapterError(
                f"The fichesociale adapter cannot serve CPAS {cpas_id!r}: {exc.message}",
                code=Refusal.ADAPTER_CONFIG,
            ) from None
        except ValidationError as exc:
            raise AdapterError(
                f"The fichesociale contact options are wrong: {refusal_from(exc).message}",
                code=Refusal.ADAPTER_CONFIG,
            ) from None
        self.folder = Path(options.get("folder") or DEFAULT_FOLDER)
        self._fiches = self.folder / "fiches"
        self._recus = self.folder / "recus"
        self._evenements = self.folder / "evenements"
        self._lock = threading.Lock()
        with self._guard("creating the folder"):
            self._fiches.mkdir(parents=True, exist_ok=True)
            self._recus.mkdir(parents=True, exist_ok=True)
            self._evenements.mkdir(parents=True, exist_ok=True)
            self._sweep_leftovers()
        log.debug("fichesociale adapter for CPAS %s on %s", self.cpas_id, self.folder)

    # ------------------------------------------------------------ contract

    def export_dossier(self, person_number: str) -> Dossier | None:
        """The canonical dossier of the person, or ``None`` when there is no fiche for them.

        :raises AdapterError: ``adapter.invalid_data`` when the fiche is corrupt
            or cannot make a valid dossier; ``adapter.unavailable`` when the
            folder cannot be read.
        """
        number = _person_number(person_number)
        if number is None:
            return None
        path = self._fiches / f"{number}.json"
        with self._guard("exporting a dossier"):
            fiche = self._read_fiche(path)
            if fiche is None:
                return None
            try:
                dossier = dialect.dossier_from_fiche(
                    fiche,
                    cpas_id=self.cpas_id,
                    contact=self.contact,
                    dossier_id=uuid.uuid4(),
                    created_at=dt.datetime.now(dt.UTC),
                )
            except dialect.FicheInvalid as exc:
                raise self._invalid(path, f"cannot make a valid dossier: {exc}") from None
            if dossier.person.number != number:
                raise self._invalid(path, "holds the number of another person")
            return dossier

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        """Upsert the person's fiche from ``dossier``, once per ``message_id``.

        A message already recorded returns its fiche's reference with
        ``created=False`` and changes nothing. Otherwise the dossier is merged
        into the person's fiche (see :func:`dialect.fiche_from_dossier`; the
        fiche's sensitive fields are kept as they are), then the message is
        recorded.

        :returns: the fiche's ``numero_dossier`` as the local reference.
        """
        return self.import_batch([(dossier, message_id)])[0]

    def import_batch(self, items: Sequence[tuple[Dossier, str]]) -> list[ImportResult]:
        """Import several dossiers with two flushes in all (see :meth:`import_dossier`).

        Every fiche is written and flushed to disk before any message marker
        is, so a crash never leaves a marker without its fiche; so is each
        import's ``dossier-imported`` event, so a marker never lacks its event
        either. The markers are flushed before this returns (and so before the
        node acks anything).
        """
        for _, message_id in items:
            if not isinstance(message_id, str) or not message_id:
                raise AdapterError(
                    "An imported dossier needs a message id.", code=Refusal.ADAPTER_FAILED
                )
        with self._writing("importing dossiers"):
            results: list[ImportResult] = []
            # marker -> (message id, reference, dossier)
            new_markers: dict[Path, tuple[str, str, Dossier]] = {}
            for dossier, message_id in items:
                marker = self._marker_path(message_id)
                recorded = self._read_marker(marker)
                if recorded is None and marker in new_markers:  # twice in one batch
                    recorded = new_markers[marker][1]
                if recorded is not None:
                    results.append(ImportResult(local_reference=recorded, created=False))
                    continue
                numero = self._write_fiche(dossier)
                new_markers[marker] = (message_id, numero, dossier)
                results.append(ImportResult(local_reference=numero, created=True))
            if new_markers:
                for message_id, numero, dossier in new_markers.values():
                    self._write_event(_imported(message_id, numero, dossier), durable=False)
                _flush_to_disk(self._fiches)
                _flush_to_disk(self._evenements)
                for marker, (message_id, numero, _) in new_markers.items():
                    write_atomically(
                        marker, self._marker_document(message_id, numero), durable=False
                    )
                _flush_to_disk(self._recus)
        return results

    def _marker_path(self, message_id: str) -> Path:
        return self._recus / f"{hashlib.sha256(message_id.encode('utf-8')).hexdigest()}.json"

    @staticmethod
    def _marker_document(message_id: str, numero: str) -> bytes:
        now = dt.datetime.now(dt.UTC)
        return _to_json(
            {
                "message_id": message_id,
                "numero_dossier": numero,
                "recu_le": now.strftime("%d/%m/%Y %H:%M:%S UTC"),
            }
        )

    def _write_fiche(self, dossier: Dossier) -> str:
        """Merge ``dossier`` into the person's fiche (not yet flushed); return its reference."""
        path = self._fiches / f"{dossier.person.number}.json"
        existing = self._read_fiche(path)
        numero = existing.get("numero_dossier") if existing else None
        if not isinstance(numero, str) or not numero:
            numero = f"FS-{dt.date.today().year}-{secrets.token_hex(4).upper()}"
        fiche = dialect.fiche_from_dossier(
            dossier, numero_dossier=numero, existing=existing, received_at=dt.datetime.now(dt.UTC)
        )
        write_atomically(path, _to_json(fiche), durable=False)
        log.info("fiche %s %s", numero, "updated" if existing else "created")
        return numero

    def close(self) -> None:
        """Nothing stays open between calls; kept for the adapter contract."""
        log.debug("fichesociale adapter on %s closed", self.folder)

    def __enter__(self) -> FicheSocialeAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------- seeding

    def seed(
        self,
        count: int,
        *,
        seed: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Write ``count`` synthetic beneficiaries, sensitive data included; return their numbers.

        The same ``seed`` gives the same people, so seeding again replaces
        their fiches rather than adding new ones.

        Fiches are still written atomically, but not fsynced one by one: ten
        thousand fsyncs would take minutes for data that can be regenerated at
        will. One ``os.sync`` at the end makes the whole batch durable. For the
        same reason they are written as compact JSON (one line) rather than
        indented.

        :param progress: called with ``1`` after each fiche (for a progress bar).
        """
        rng = random.Random(seed)
        # A separate stream for the vendor's references, so that the people
        # drawn for a seed are the same as in any other adapter.
        references = random.Random(f"fichesociale-{seed}")
        numbers: list[str] = []
        seen: set[str] = set()
        with self._writing("seeding synthetic beneficiaries"):
            while len(numbers) < count:
                beneficiary = make_beneficiary(rng, self.cpas_id)
                number = beneficiary.dossier.person.number
                if number in seen:  # two people drew the same number: draw again
                    continue
                seen.add(number)
                year = beneficiary.dossier.source.case_reference[:4]
                fiche = dialect.fiche_from_dossier(
                    beneficiary.dossier,
                    numero_dossier=f"FS-{year}-{references.getrandbits(32):08X}",
                )
                fiche.update(dialect.sensitive_fields(beneficiary.sensitive))
                write_atomically(
                    self._fiches / f"{number}.json", _to_json(fiche, pretty=False), durable=False
                )
                numbers.append(number)
                if progress is not None:
                    progress(1)
            if numbers and hasattr(os, "sync"):
                os.sync()
                _fsync_folder(self._fiches)
        log.info("seeded %d synthetic beneficiaries into %s", len(numbers), self._fiches)
        return numbers

    def add_sensitive(
        self,
        person_number: str,
        sensitive: SensitiveData | None = None,
        *,
        notes: Iterable[str] = (),
        activation_measures: Iterable[str] = (),
        sanctions: Iterable[str] = (),
        refused_applications: Iterable[tuple[str, str] | str] = (),
        family_members: Iterable[FamilyMember | str] = (),
        addresses: Iterable[str] = (),
        health_data: Iterable[str] = (),
    ) -> None:
        """Add sensitive data to an existing fiche (for tests that check it never leaves).

        Give a :class:`~gateway.testing.synthetic.SensitiveData`, keyword lists, or
        both. ``refused_applications`` are ``(what, reason)`` pairs or bare
        reasons; ``family_members`` are :class:`~gateway.testing.synthetic.FamilyMember`
        or bare names.

        :raises AdapterError: ``adapter.unknown_person`` when there is no such fiche.
        """
        number = _person_number(person_number)
        with self._writing("adding sensitive data"):
            path = self._fiches / f"{number}.json"
            fiche = None if number is None else self._read_fiche(path)
            if fiche is None:
                raise AdapterError(
                    "There is no FicheSociale fiche for this person number.",
                    code=Refusal.ADAPTER_UNKNOWN_PERSON,
                )
            planted = (sensitive or SensitiveData()).plus(
                notes=notes,
                activation_measures=activation_measures,
                sanctions=sanctions,
                refused_applications=refused_applications,
                family_members=family_members,
                addresses=addresses,
                health_data=health_data,
            )
            dialect.add_sensitive(fiche, planted)
            write_atomically(path, _to_json(fiche))

    @contextlib.contextmanager
    def store_unavailable(self) -> Iterator[None]:
        """Test hook: the folder is unreachable until the block ends (see ``SimulatesOutage``).

        The folder is moved aside and put back, so every call meets a missing
        folder, as when a network share is down.
        """
        aside = self.folder.with_name(f".{self.folder.name}.unreachable-{secrets.token_hex(4)}")
        # Between two writes of any process, never in the middle of one.
        with self._lock, _exclusive(self.folder / LOCK_FILE):
            os.rename(self.folder, aside)
        try:
            yield
        finally:
            with self._lock:
                os.rename(aside, self.folder)

    def list_person_numbers(self) -> list[str]:
        """The person numbers that have a fiche, sorted."""
        with self._guard("listing the fiches"), os.scandir(self._fiches) as entries:
            return sorted(
                entry.name[:-5]
                for entry in entries
                if entry.name.endswith(".json") and _PERSON_NUMBER.match(entry.name[:-5])
            )

    def count_persons(self) -> int:
        """How many beneficiaries have a fiche."""
        return len(self.list_person_numbers())

    # -------------------------------------------------------------- events

    def receive_event(self, event: VendorEvent) -> None:
        """One JSON file per event in ``evenements/``, named by the event: a repeat changes
        nothing (an import already wrote its ``dossier-imported`` event itself)."""
        with self._guard("writing an event"):
            if not self._event_path(event).exists():
                self._write_event(event)

    def _event_path(self, event: VendorEvent) -> Path:
        return self._evenements / f"{event.message_id}.{event.kind.value}.json"

    def _write_event(self, event: VendorEvent, *, durable: bool = True) -> None:
        data = json.dumps(event.to_json(), ensure_ascii=False, indent=2).encode("utf-8")
        write_atomically(self._event_path(event), data, durable=durable)

    def read_events(self) -> list[VendorEvent]:
        """Every event file, oldest first."""
        with self._guard("reading the events"):
            events = [
                VendorEvent.from_json(json.loads(path.read_bytes()))
                for path in self._evenements.glob("*.json")
            ]
        return sorted(events, key=lambda e: (e.at, e.event_id))

    # ------------------------------------------------------------- helpers

    @contextlib.contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        """Alone in the folder while ``doing``: no other thread, adapter or process writes to it.

        Inside the guard, so that failing to take the folder's lock (the
        folder is gone, the file system refuses locks) is the same transient
        ``adapter.unavailable`` as any other failure of the folder.
        """
        with self._lock, self._guard(doing), _exclusive(self.folder / LOCK_FILE):
            yield

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Let only :class:`AdapterError` out of the adapter."""
        try:
            yield
        except AdapterError:
            raise
        except OSError as exc:
            raise AdapterError(
                f"The FicheSociale folder {self.folder} is unavailable while {doing}: "
                f"{exc.strerror or exc}.",
                code=Refusal.ADAPTER_UNAVAILABLE,
                transient=True,
            ) from exc
        except Exception as exc:
            # Only the type: a message could quote the content of a fiche.
            log.exception("fichesociale adapter failed while %s", doing)
            raise AdapterError(
                f"The fichesociale adapter failed while {doing} ({type(exc).__name__}).",
                code=Refusal.ADAPTER_FAILED,
            ) from exc

    def _invalid(self, path: Path, problem: str, *, what: str = "fiche") -> AdapterError:
        end = "" if problem.endswith(".") else "."
        return AdapterError(
            f"The FicheSociale {what} {path.name} {problem}{end}", code=Refusal.ADAPTER_INVALID_DATA
        )

    def _read_json(self, path: Path) -> Any:
        """The parsed document at ``path``, ``_ABSENT`` if absent; corrupt content is refused."""
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FICHE_BYTES + 1)
        except FileNotFoundError:
            if not path.parent.is_dir():  # the folder went away: not the same as "unknown"
                raise
            return _ABSENT
        if len(raw) > MAX_FICHE_BYTES:
            raise self._invalid(path, f"is larger than {MAX_FICHE_BYTES} bytes")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            raise self._invalid(path, f"is not readable JSON ({detail})") from None

    def _read_fiche(self, path: Path) -> dict[str, Any] | None:
        """The fiche at ``path``, or ``None`` if there is none."""
        fiche = self._read_json(path)
        if fiche is _ABSENT:
            return None
        if not isinstance(fiche, dict):
            raise self._invalid(path, "is not a JSON object")
        return fiche

    def _read_marker(self, path: Path) -> str | None:
        """The local reference recorded for a message, or ``None`` if it was never imported."""
        marker = self._read_json(path)
        if marker is _ABSENT:
            return None
        reference = marker.get("numero_dossier") if isinstance(marker, dict) else None
        if not isinstance(reference, str) or not reference:
            raise self._invalid(path, "names no numero_dossier", what="received-message record")
        return reference

    def _sweep_leftovers(self) -> None:
        """Remove temporary files a crash left behind (old enough not to be in use)."""
        cutoff = time.time() - STALE_TEMP_SECONDS
        for folder in (self._fiches, self._recus, self._evenements):
            for temp in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    if temp.stat().st_mtime < cutoff:
                        temp.unlink()
                        log.warning("removed %s, left behind by an interrupted write", temp)


def _imported(message_id: str, numero: str, dossier: Dossier) -> VendorEvent:
    return VendorEvent(
        VendorEventKind.DOSSIER_IMPORTED,
        message_id=message_id,
        peer=dossier.source.cpas_id,
        at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        case_reference=dossier.source.case_reference,
        person_number=dossier.person.number,
        local_reference=numero,
    )
