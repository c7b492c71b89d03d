"""A base class for adapters over a vendor's own store: what every adapter repeats, done once.

An adapter does not have to use it (the two reference adapters in ``plugins/``
do not); one that does writes only what is its own -- how a person is read
from and written to the vendor's store, and where the ids of imported
messages are kept -- and gets, correctly and once:

- the **error guard**: any exception of the vendor's code becomes an
  :class:`~gateway.model.errors.AdapterError`, transient when :meth:`StoreAdapter.is_transient`
  says a retry may help (by default: the operating system or the network
  failed), with the cause in the log and no personal data in the message;
- **person-number checks**: :meth:`StoreAdapter.export_dossier` answers
  ``None`` for anything that is not a valid NISS or BIS number, before the
  vendor's code sees it;
- **idempotency by message id**, for one dossier and for a batch, on the
  vendor's own store and in the same transaction as the import;
- the **export's source**: :meth:`StoreAdapter.new_dossier` names the CPAS the
  adapter serves, the case reference the vendor gives, and the service
  contact of the standard ``mailbox`` and ``phone`` options;
- **one call at a time** on one adapter object: the node builds the adapter
  in one thread and calls it from its worker thread; a lock serialises the
  calls. Between processes (the workers of ``cpas-gateway run --workers N``,
  the command line) only the store can: see :meth:`StoreAdapter.transaction`;
- the **outage hook** ``store_unavailable()``
  (:class:`~gateway.adapters.SimulatesOutage`, required for certification)
  on top of the vendor's :meth:`StoreAdapter.make_store_unavailable` and
  :meth:`StoreAdapter.make_store_available`;
- with the mixins, ``seed()`` (:class:`Seeding`), ``add_sensitive()``
  (:class:`Planting`) and ``list_person_numbers()``/``count_persons()``
  (:class:`Listing`) on top of the vendor's store functions.

``cpas-gateway adapter new NAME`` writes a package whose adapter starts from
this class, with every method the vendor must still write marked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from gateway.adapters.protocol import AdapterInfo, ImportResult
from gateway.model.base import build
from gateway.model.codes import Refusal
from gateway.model.dossier import ContactPoint, Dossier
from gateway.model.errors import AdapterError, GatewayError
from gateway.model.identifiers import validate_enterprise_number, validate_person_number
from gateway.testing.sample_directory import sample_contact
from gateway.testing.synthetic import Beneficiary, SensitiveData, make_beneficiary

log = logging.getLogger(__name__)

CONTACT_OPTIONS: tuple[str, str] = ("mailbox", "phone")
"""The standard options naming the service contact put in every exported dossier."""


def person_number_or_none(value: object) -> str | None:
    """The 11 digits of a valid NISS or BIS number (separators allowed), ``None`` otherwise."""
    if not isinstance(value, str) or not value.isascii():
        return None
    try:
        return validate_person_number(value)[1]
    except (GatewayError, ValueError):
        return None


def contact_from_options(cpas_id: str, options: Mapping[str, str]) -> ContactPoint:
    """The service contact of the ``mailbox`` and ``phone`` options.

    The mailbox defaults to the one the sample directory lists for the CPAS
    (:func:`~gateway.testing.sample_directory.sample_contact`,
    ``service.social@cpas-<cpas_id>.example.be``): a placeholder a CPAS
    replaces with its own service mailbox, never a person's.

    :raises AdapterError: ``adapter.config`` when either option is not a valid contact.
    """
    try:
        return ContactPoint(
            mailbox=options.get("mailbox") or sample_contact(cpas_id).mailbox,
            phone=options.get("phone") or None,
        )
    except ValueError as exc:
        raise AdapterError(
            "The 'mailbox' or 'phone' option is not a valid service contact "
            "(a mailbox such as service.social@cpas.example.be, a phone such as +3225550100).",
            code=Refusal.ADAPTER_CONFIG,
        ) from exc


class StoreAdapter:
    """The base of an adapter over the vendor's own store (see the module docstring).

    A subclass sets :attr:`info` (and, for the conformance suite,
    :attr:`suite_options`) and writes :meth:`read_dossier`,
    :meth:`write_dossier`, :meth:`find_message` and :meth:`record_message`;
    usually also :meth:`connect`, :meth:`disconnect` and :meth:`transaction`;
    and, for the conformance suite, :meth:`make_store_unavailable` and
    :meth:`make_store_available`. The methods the gateway (and the suite)
    calls -- :meth:`export_dossier`, :meth:`import_dossier`,
    :meth:`import_batch`, :meth:`close`, :meth:`store_unavailable` -- are
    written here and are not meant to be overridden.

    :param cpas_id: the enterprise number of the CPAS this node serves.
    :param options: the ``[adapter.options]`` of the node's configuration,
        as strings; ``mailbox`` and ``phone`` are read here.
    """

    info: AdapterInfo
    suite_options: ClassVar[Mapping[str, str]] = {}
    """Options the conformance suite gives this adapter unless told otherwise.

    ``{workdir}`` is each case's own empty folder, ``{workid}`` a name unique
    to the case, e.g. ``{"db": "{workdir}/acme.sqlite3"}``.
    """

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        try:
            self.cpas_id = validate_enterprise_number(cpas_id)
        except GatewayError as exc:
            raise AdapterError(
                f"{self.info.product}: {exc.message}", code=Refusal.ADAPTER_CONFIG
            ) from None
        self.options: dict[str, str] = dict(options)
        self.contact = contact_from_options(self.cpas_id, self.options)
        self._lock = threading.RLock()
        self._closed = False
        with self._guard("start"):
            self.connect()

    # ------------------------------------------------- written by the vendor

    def connect(self) -> None:
        """Open the vendor's store (read ``self.options``); called once, by ``__init__``.

        The node calls the adapter from another thread than the one that built
        it: open connections that may be used from any thread (for SQLite,
        ``sqlite3.connect(path, check_same_thread=False)``); the base class
        makes sure only one call runs at a time.
        """

    def disconnect(self) -> None:
        """Close the vendor's store; called once, by :meth:`close`."""

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        """One transaction of the vendor's store: committed when the block ends, else rolled back.

        Every export, import, batch and seeding runs inside one, opened on
        each call. Several processes may use the store at once (the workers of
        ``cpas-gateway run --workers N``, the command line), and this class's
        lock serialises the calls of one adapter object only: so take, at the
        start of the transaction, an exclusive lock every other writer of the
        store waits for (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
        ``pg_advisory_xact_lock``, a ``flock`` on a lock file), held until the
        end. Then a message id :meth:`find_message` does not see cannot be
        recorded by another process before this transaction ends, and
        ``created`` is ``True`` once per message id. A lock that cannot be had
        in time must fail with an exception :meth:`is_transient` calls
        transient. The default does nothing: safe in one process only.
        """
        return contextlib.nullcontext()

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a retry may help after ``exc`` (the store is down, locked, unreachable).

        A transient error makes the node retry with a capped back-off and give
        the message back to the broker; any other sends it to the dead-letter
        queue. By default: an error of the operating system or the network.
        """
        return isinstance(exc, OSError | TimeoutError)

    def read_dossier(self, person_number: str) -> Dossier | None:
        """The person's dossier from the vendor's store, or ``None`` when it holds no such person.

        :param person_number: 11 digits of a valid NISS or BIS number.
        Build the dossier with :meth:`new_dossier`.
        """
        raise NotImplementedError

    def write_dossier(self, dossier: Dossier) -> str:
        """Create the person of ``dossier``, or update the one with the same NISS/BIS number.

        Store the person, household, aid history (merge decisions by their
        ``decision_id``) and last social inquiry; ``dossier.source`` is the
        CPAS that sent it. Return the vendor's own reference of the record
        (its case or file number): the receipt quotes it to the sender.
        """
        raise NotImplementedError

    def find_message(self, message_id: str) -> str | None:
        """The local reference recorded for an imported ``message_id``, ``None`` if never seen."""
        raise NotImplementedError

    def record_message(self, message_id: str, local_reference: str, dossier: Dossier) -> None:
        """Record in the vendor's store that ``message_id`` was imported as ``local_reference``.

        Called in the same transaction as :meth:`write_dossier`, so that a
        redelivered message is recognised after any crash.
        """
        raise NotImplementedError

    def make_store_unavailable(self) -> None:
        """Make the vendor's store unreachable, as a real outage would (a test hook).

        Afterwards every read and write of the store must fail the way it
        fails when the database server is down or the folder is gone, with an
        exception :meth:`is_transient` calls transient; :meth:`make_store_available`
        undoes it. Only the conformance suite calls it, through
        :meth:`store_unavailable`; never a running node.
        """
        raise NotImplementedError

    def make_store_available(self) -> None:
        """Undo :meth:`make_store_unavailable`: the store works again, for this same adapter."""
        raise NotImplementedError

    # ------------------------------------------------------- for the vendor

    def new_dossier(self, *, case_reference: str, **content: Any) -> Dossier:
        """A dossier sent by this CPAS: a fresh id and time, and this adapter's source.

        :param case_reference: the vendor's own reference of the case (opaque
            to the receiver: a file number, never a name).
        :param content: ``person``, ``household``, ``aid_history`` and
            ``last_social_inquiry``, as models or dictionaries.
        :raises GatewayError: when the content does not make a valid dossier.
        """
        return build(
            Dossier,
            {
                "dossier_id": uuid.uuid4(),
                "created_at": dt.datetime.now(dt.UTC),
                "source": {
                    "cpas_id": self.cpas_id,
                    "case_reference": case_reference,
                    "contact": self.contact,
                },
                **content,
            },
        )

    @contextlib.contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """Turn anything the vendor's code raises into an :class:`AdapterError`."""
        try:
            yield
        except AdapterError:
            raise
        except GatewayError as exc:
            # The vendor's data made no valid dossier (or the model refused it).
            raise AdapterError(
                f"{self.info.product}: {operation}: {exc.message}",
                code=Refusal.ADAPTER_INVALID_DATA,
            ) from exc
        except NotImplementedError as exc:
            raise AdapterError(
                f"{self.info.product}: {operation} needs code that is still to be written "
                f"({_where(exc)}).",
                code=Refusal.ADAPTER_NOT_WRITTEN,
            ) from exc
        except Exception as exc:
            transient = self.is_transient(exc)
            # The cause stays in this node's log; the message travels and must
            # hold no personal data, so it names only the kind of failure.
            log.error("%s: %s failed", self.info.product, operation, exc_info=True)
            raise AdapterError(
                f"{self.info.product}: {operation} failed ({type(exc).__name__}); "
                "the cause is in the log.",
                code=Refusal.ADAPTER_UNAVAILABLE if transient else "adapter.failed",
                transient=transient,
            ) from exc

    @contextlib.contextmanager
    def _alone(self, operation: str) -> Iterator[None]:
        """Guarded, alone, on an adapter that is not closed."""
        with self._guard(operation), self._lock:
            if self._closed:
                raise AdapterError(
                    f"{self.info.product}: the adapter is closed.", code=Refusal.ADAPTER_CLOSED
                )
            yield

    @contextlib.contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        """One call of the gateway: open, guarded, alone, in one transaction of the store."""
        with self._alone(operation), self.transaction():
            yield

    # ------------------------------------------------ called by the gateway

    def export_dossier(self, person_number: str) -> Dossier | None:
        """The dossier of the person (NISS or BIS); ``None`` if unknown or not a number."""
        number = person_number_or_none(person_number)
        with self._call("export"):
            return None if number is None else self.read_dossier(number)

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        """Store a received dossier; a message id imported before changes nothing.

        ``created`` is ``True`` whenever this message id is new -- also when
        it updates a person the store already held -- and ``False`` only for
        a message id imported before, with the reference recorded then.
        """
        return self.import_batch([(dossier, message_id)])[0]

    def import_batch(self, items: Sequence[tuple[Dossier, str]]) -> list[ImportResult]:
        """Import ``(dossier, message_id)`` pairs in one transaction (as :meth:`import_dossier`)."""
        if any(not message_id for _, message_id in items):
            raise AdapterError("A message id is required to import a dossier.")
        results = []
        with self._call("import"):
            for dossier, message_id in items:
                seen = self.find_message(message_id)
                if seen is not None:
                    results.append(ImportResult(local_reference=seen, created=False))
                    continue
                reference = self.write_dossier(dossier)
                self.record_message(message_id, reference, dossier)
                results.append(ImportResult(local_reference=reference, created=True))
        return results

    @contextlib.contextmanager
    def store_unavailable(self) -> Iterator[None]:
        """The store is unreachable until the block ends (the ``SimulatesOutage`` hook).

        Calls made inside the block meet the vendor's own failure, turned into
        a transient :class:`AdapterError` by the guard when :meth:`is_transient`
        agrees; the store is made available again however the block ends.
        """
        with self._alone("outage"):
            self.make_store_unavailable()
        try:
            yield
        finally:
            with self._alone("end of outage"):
                self.make_store_available()

    def close(self) -> None:
        """Close the store (once; later calls do nothing)."""
        with self._guard("close"), self._lock:
            if not self._closed:
                self._closed = True
                self.disconnect()

    def __enter__(self) -> StoreAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where(exc: BaseException) -> str:
    """``method in file.py``: the innermost frame, the vendor's method that is not written yet."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown place"
    code = tb.tb_frame.f_code
    return f"{code.co_name} in {code.co_filename.rsplit('/', 1)[-1]}"


class Seeding(StoreAdapter):
    """Adds ``seed()`` (:class:`~gateway.adapters.Seedable`) on top of :meth:`write_dossier`.

    When the class also plants sensitive data (:class:`Planting`), each
    synthetic person gets the notes, sanctions and family members real files
    hold, in the vendor's own places for them.
    """

    def seed(self, count: int, *, seed: int = 0) -> list[str]:
        """Make sure the ``count`` synthetic people of ``seed`` exist; return their numbers.

        People come from :func:`~gateway.testing.synthetic.make_beneficiary` with
        ``random.Random(seed)``, so a seed gives the same people in every
        adapter; a person already present is left as they are. One transaction.
        """
        rng = random.Random(seed)
        people: dict[str, Beneficiary] = {}
        while len(people) < count:
            beneficiary = make_beneficiary(rng, self.cpas_id)
            people.setdefault(beneficiary.dossier.person.number, beneficiary)
        with self._call("seed"):
            for number, beneficiary in people.items():
                if self.read_dossier(number) is not None:
                    continue
                self.write_dossier(beneficiary.dossier)
                if isinstance(self, Planting):
                    self.write_sensitive(number, beneficiary.sensitive)
        return list(people)


class Planting(StoreAdapter):
    """Adds ``add_sensitive()`` (:class:`~gateway.adapters.PlantsSensitiveData`).

    The conformance suite plants unique markers through it and proves none
    ever leaves: :meth:`write_sensitive` must store them where the product
    really keeps notes, activation measures, sanctions, refused
    applications, family members, addresses and health data.
    """

    def write_sensitive(self, person_number: str, sensitive: SensitiveData) -> bool:
        """Store ``sensitive`` on the person; ``False`` when the store holds no such person.

        Every field of ``sensitive`` goes where the product keeps such data,
        ``addresses`` and ``health_data`` included; an export must read none
        of it, and nothing in an export may change because of it.
        """
        raise NotImplementedError

    def add_sensitive(
        self,
        person_number: str,
        sensitive: SensitiveData | None = None,
        **more: Iterable[Any],
    ) -> None:
        """Put non-minimal data on a person (a test hook; never called by a running node).

        Give a :class:`~gateway.testing.synthetic.SensitiveData`, keyword lists, or
        both, as to the reference adapters: ``more`` takes the keywords of
        :meth:`SensitiveData.plus <gateway.testing.synthetic.SensitiveData.plus>`
        (``notes=``, ..., ``addresses=``, ``health_data=``; a refused
        application may be a bare reason, a family member a bare name).
        :meth:`write_sensitive` receives it all as one ``SensitiveData``.

        :raises AdapterError: ``adapter.unknown_person`` for a person the store does not hold.
        """
        planted = (sensitive or SensitiveData()).plus(**more)
        number = person_number_or_none(person_number)
        with self._call("add_sensitive"):
            if number is None or not self.write_sensitive(number, planted):
                raise AdapterError(
                    f"{self.info.product} holds no person with this number.",
                    code=Refusal.ADAPTER_UNKNOWN_PERSON,
                )


class Listing(StoreAdapter):
    """Adds ``list_person_numbers()`` and ``count_persons()``.

    Together they make the adapter :class:`~gateway.adapters.Inspectable`.
    """

    def person_numbers(self) -> list[str]:
        """The NISS/BIS number of every person the vendor's store holds."""
        raise NotImplementedError

    def list_person_numbers(self) -> list[str]:
        """NISS/BIS numbers of every person the vendor system holds."""
        with self._call("list"):
            return list(self.person_numbers())

    def count_persons(self) -> int:
        """How many people the vendor system holds."""
        return len(self.list_person_numbers())
