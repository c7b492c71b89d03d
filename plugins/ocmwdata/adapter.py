"""The OCMWdata adapter: the vendor's relational database, seen through the canonical dossier.

Export reads two tables, ``clienten`` and ``beslissingen``, and translates
their Dutch codes, integer cents and text dates with :mod:`ocmwdata.vocabulary`.
It never reads the tables that hold notes, activation measures, sanctions,
refused applications or family members, so none of that can leave.

Import writes one transaction: the message id goes into
``ontvangen_berichten`` (its primary key makes a redelivered message a no-op),
the client is created or updated by NISS/BIS, and decisions are merged by
their id in the sending CPAS's dossier.

Threads: one adapter holds one database connection and serialises its calls
with a lock, so it may be built in one thread and called from another (the
node calls it from one worker thread). Several processes may share a database:
writers take turns through the database's own locks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from gateway.adapters import AdapterInfo, ImportResult, VendorEvent, VendorEventKind
from gateway.model.codes import Refusal
from gateway.model.dossier import ContactPoint, Decision, Dossier, build
from gateway.model.errors import AdapterError, GatewayError
from gateway.model.identifiers import validate_enterprise_number
from gateway.testing.synthetic import Beneficiary, FamilyMember, SensitiveData, make_beneficiary
from ocmwdata.database import Database, Row, Session
from ocmwdata.vocabulary import (
    AID_KINDS,
    CATEGORIES,
    LANGUAGES,
    LEGAL_BASES,
    STATUSES,
    DateFormat,
    VocabularyError,
    amount_from_cents,
    cents_from_amount,
    date_from_vendor,
    date_to_vendor,
    join_name,
    split_name,
)

log = logging.getLogger(__name__)

VERSION: Final = "1.0.0"
DEFAULT_URL: Final = "sqlite:///ocmwdata.sqlite3"
DEFAULT_TIMEOUT: Final = 5.0
OPTIONS: Final = frozenset({"url", "schema", "mailbox", "phone", "timeout"})

_CLIENT_COLUMNS: Final = (
    "client_nr, dossiernummer, rijksregisternummer, bisnummer, naam, geboortedatum,"
    " taalcode, leefloon_categorie, kinderen_ten_laste, laatste_sociaal_onderzoek"
)
_DECISION_COLUMNS: Final = (
    "referentie, steuncode, wettelijke_basis, beslissingsdatum, begindatum, einddatum,"
    " statuscode, maandbedrag_cent"
)
_INSERT_CLIENT: Final = (
    "INSERT INTO clienten (client_nr, dossiernummer, rijksregisternummer, bisnummer, naam,"
    " geboortedatum, taalcode, leefloon_categorie, kinderen_ten_laste,"
    " laatste_sociaal_onderzoek, aangemaakt_op, gewijzigd_op)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MERGE_DECISION: Final = (
    f"INSERT INTO beslissingen (client_nr, herkomst_kbo, {_DECISION_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (client_nr, referentie) DO UPDATE SET"
    " herkomst_kbo = excluded.herkomst_kbo, steuncode = excluded.steuncode,"
    " wettelijke_basis = excluded.wettelijke_basis,"
    " beslissingsdatum = excluded.beslissingsdatum, begindatum = excluded.begindatum,"
    " einddatum = excluded.einddatum, statuscode = excluded.statuscode,"
    " maandbedrag_cent = excluded.maandbedrag_cent"
)
_INSERT_SENSITIVE: Final = {
    "notities": "INSERT INTO notities (client_nr, datum, tekst) VALUES (?, ?, ?)",
    "activeringsmaatregelen": (
        "INSERT INTO activeringsmaatregelen (client_nr, omschrijving, begindatum) VALUES (?, ?, ?)"
    ),
    "sancties": "INSERT INTO sancties (client_nr, omschrijving, datum) VALUES (?, ?, ?)",
    "geweigerde_aanvragen": (
        "INSERT INTO geweigerde_aanvragen (client_nr, aanvraag, reden, datum) VALUES (?, ?, ?, ?)"
    ),
    "gezinsleden": (
        "INSERT INTO gezinsleden (client_nr, naam, relatie, geboortedatum, maandinkomen_cent)"
        " VALUES (?, ?, ?, ?, ?)"
    ),
    "adressen": "INSERT INTO adressen (client_nr, adres, sinds) VALUES (?, ?, ?)",
    "gezondheidsgegevens": (
        "INSERT INTO gezondheidsgegevens (client_nr, omschrijving, datum) VALUES (?, ?, ?)"
    ),
}


class OcmwdataAdapter:
    """OCMWdata's relational database as a gateway adapter (export, import and seeding).

    :param cpas_id: the enterprise number of the CPAS this node serves.
    :param options: ``url`` (a SQLite path or URL, or a PostgreSQL URL; default
        ``sqlite:///ocmwdata.sqlite3`` in the working directory), ``schema``
        (PostgreSQL only), ``mailbox`` and ``phone`` (the service contact put in
        exported dossiers; the mailbox defaults to one built from ``cpas_id``),
        ``timeout`` (seconds to wait for a connection or a lock, default 5).
    """

    info = AdapterInfo(
        name="ocmwdata",
        vendor="OCMWdata",
        product="OCMWdata Sociaal Dossier",
        version=VERSION,
    )

    def __init__(self, cpas_id: str, options: Mapping[str, str]) -> None:
        try:
            self.cpas_id = validate_enterprise_number(cpas_id)
        except GatewayError as exc:
            raise AdapterError(f"OCMWdata: {exc.message}", code=Refusal.ADAPTER_CONFIG) from None
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            log.warning("OCMWdata ignores unknown options: %s", ", ".join(unknown))
        try:
            self.contact = ContactPoint(
                mailbox=options.get("mailbox") or f"sociale.dienst@ocmw-{self.cpas_id}.example.be",
                phone=options.get("phone") or None,
            )
        except ValueError as exc:
            raise AdapterError(
                "OCMWdata: the 'mailbox' or 'phone' option is not a valid service contact.",
                code=Refusal.ADAPTER_CONFIG,
            ) from exc
        try:
            timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
        except ValueError:
            timeout = -1.0
        if not timeout > 0:  # also refuses NaN
            raise AdapterError(
                "OCMWdata: the 'timeout' option must be a positive number of seconds.",
                code=Refusal.ADAPTER_CONFIG,
            )
        self._db = Database(
            options.get("url") or DEFAULT_URL, schema=options.get("schema"), timeout=timeout
        )
        self._lock = threading.Lock()
        try:
            self._db.create_schema()
        except BaseException:
            self._db.close()
            raise
        log.debug("OCMWdata adapter for %s on %r", self.cpas_id, self._db)

    def __enter__(self) -> OcmwdataAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._lock:
            self._db.close()

    # ----------------------------------------------------------------- export

    def export_dossier(self, person_number: str) -> Dossier | None:
        """The canonical dossier of a person (NISS or BIS), or ``None`` if OCMWdata has none.

        Raises ``adapter.invalid_data`` when the stored data cannot make a
        valid dossier, naming the vendor's dossier number (never the person's).
        """
        number = _compact_person_number(person_number)
        if number is None:
            return None
        with self._lock, self._db.transaction() as session:
            client = _find_client(session, number)
            if client is None:
                return None
            session.execute(
                f"SELECT {_DECISION_COLUMNS} FROM beslissingen WHERE client_nr = ?", (client[0],)
            )
            decisions = session.fetchall()
        return self._to_dossier(client, decisions)

    def _to_dossier(self, client: Row, decisions: list[Row]) -> Dossier:
        (_, dossiernummer, niss, bis, naam, geboortedatum, taalcode, categorie, kinderen,
         onderzoek) = client  # fmt: skip
        try:
            family_name, given_names = split_name(naam)
            history = sorted(
                (_decision_from_row(row) for row in decisions),
                # Dates are text in DD-MM-YYYY, so SQL cannot order them; Python can.
                # A missing date sorts first here and is refused by the model below.
                key=lambda d: (
                    d["decision_date"] or dt.date.min,
                    d["period_start"] or dt.date.min,
                    str(d["decision_id"]),
                ),
            )
            data: dict[str, Any] = {
                "dossier_id": uuid.uuid4(),
                "created_at": dt.datetime.now(dt.UTC),
                "source": {
                    "cpas_id": self.cpas_id,
                    "case_reference": dossiernummer,
                    "contact": self.contact,
                },
                "person": {
                    "niss": niss,
                    "bis": bis,
                    "family_name": family_name,
                    "given_names": given_names,
                    "birth_date": date_from_vendor(geboortedatum, DateFormat.BIRTH),
                    "language": LANGUAGES.canonical(taalcode),
                },
                "household": {
                    "category": CATEGORIES.canonical(categorie),
                    "dependent_children": kinderen,
                },
                "aid_history": history,
                "last_social_inquiry": date_from_vendor(onderzoek),
            }
            return build(Dossier, data)
        except (VocabularyError, GatewayError) as exc:
            reason = exc.message if isinstance(exc, GatewayError) else str(exc)
            raise AdapterError(
                f"OCMWdata dossier {dossiernummer} cannot make a valid canonical dossier: "
                f"{reason.rstrip('.')}.",
                code=Refusal.ADAPTER_INVALID_DATA,
            ) from exc

    # ----------------------------------------------------------------- import

    def import_dossier(self, dossier: Dossier, *, message_id: str) -> ImportResult:
        """Store a received dossier in one transaction; a message id seen before changes nothing.

        The client is found by NISS/BIS (created when new, its person and
        household facts updated otherwise); decisions are merged by id: the
        same id replaces the stored decision, a new id adds one, and decisions
        the dossier does not mention stay. The sending CPAS is recorded as each
        decision's origin. Returns OCMWdata's dossier number.
        """
        return self.import_batch([(dossier, message_id)])[0]

    def import_batch(self, items: Sequence[tuple[Dossier, str]]) -> list[ImportResult]:
        """Import several dossiers in one transaction (see :meth:`import_dossier`)."""
        prepared = [self._prepare(dossier, message_id) for dossier, message_id in items]
        now = _timestamp()
        with self._lock, self._db.transaction(write=True) as session:
            results = [self._import_in(session, now, *item) for item in prepared]
        for result, (_, message_id, *_rest) in zip(results, prepared, strict=True):
            log.info(
                "message %s %s dossier %s",
                message_id,
                "imported as" if result.created else "was imported before, as",
                result.local_reference,
            )
        return results

    def _prepare(
        self, dossier: Dossier, message_id: str
    ) -> tuple[Dossier, str, tuple[Any, ...], list[tuple[Any, ...]]]:
        if not message_id:
            raise AdapterError("A message id is required to import a dossier.")
        person = dossier.person
        try:
            client_values = (
                join_name(person.family_name, person.given_names),
                date_to_vendor(person.birth_date, DateFormat.BIRTH),
                LANGUAGES.vendor(person.language),
                CATEGORIES.vendor(dossier.household.category),
                dossier.household.dependent_children,
                date_to_vendor(dossier.last_social_inquiry),
            )
            decision_rows = [
                (dossier.source.cpas_id, *_decision_to_row(decision))
                for decision in dossier.aid_history
            ]
        except VocabularyError as exc:
            raise AdapterError(
                f"OCMWdata cannot store this dossier: {exc}.", code=Refusal.ADAPTER_INVALID_DATA
            ) from exc
        return dossier, message_id, client_values, decision_rows

    def _import_in(
        self,
        session: Any,
        now: str,
        dossier: Dossier,
        message_id: str,
        client_values: tuple[Any, ...],
        decision_rows: list[tuple[Any, ...]],
    ) -> ImportResult:
        session.execute(
            "SELECT c.dossiernummer FROM ontvangen_berichten b"
            " JOIN clienten c ON c.client_nr = b.client_nr WHERE b.bericht_id = ?",
            (message_id,),
        )
        seen = session.fetchone()
        if seen is not None:
            return ImportResult(local_reference=seen[0], created=False)
        person = dossier.person
        client = _find_client(session, person.number)
        if client is None:
            client_nr = session.reserve_client_numbers(1)[0]
            dossiernummer = _dossier_number(client_nr, now)
            session.execute(
                _INSERT_CLIENT,
                (client_nr, dossiernummer, person.niss, person.bis, *client_values, now, now),
            )
        else:
            client_nr, dossiernummer = client[0], client[1]
            session.execute(
                "UPDATE clienten SET naam = ?, geboortedatum = ?, taalcode = ?,"
                " leefloon_categorie = ?, kinderen_ten_laste = ?,"
                " laatste_sociaal_onderzoek = ?, gewijzigd_op = ? WHERE client_nr = ?",
                (*client_values, now, client_nr),
            )
        session.executemany(_MERGE_DECISION, [(client_nr, *row) for row in decision_rows])
        session.execute(
            "INSERT INTO ontvangen_berichten (bericht_id, client_nr, afzender_kbo,"
            " afzender_referentie, ontvangen_op) VALUES (?, ?, ?, ?, ?)",
            (message_id, client_nr, dossier.source.cpas_id, dossier.source.case_reference, now),
        )
        # The social worker's notification, in the import's own transaction.
        imported = VendorEvent(
            VendorEventKind.DOSSIER_IMPORTED,
            message_id=message_id,
            peer=dossier.source.cpas_id,
            at=now,
            case_reference=dossier.source.case_reference,
            person_number=person.number,
            local_reference=dossiernummer,
        )
        _insert_event(session, imported, now)
        return ImportResult(local_reference=dossiernummer, created=True)

    # ----------------------------------------------------------------- events

    def receive_event(self, event: VendorEvent) -> None:
        """Record the event in ``meldingen``; an event recorded before changes nothing."""
        with self._lock, self._db.transaction(write=True) as session:
            _insert_event(session, event, _timestamp())

    def read_events(self) -> list[VendorEvent]:
        """Every notification in ``meldingen``, oldest first."""
        with self._lock, self._db.transaction() as session:
            session.execute(
                "SELECT soort, bericht_id, partner_kbo, tijdstip, doel, dossierreferentie,"
                " persoonsnummer, code, lokale_referentie FROM meldingen"
                " ORDER BY aangemaakt_op, melding_id"
            )
            return [VendorEvent(VendorEventKind(row[0]), *row[1:]) for row in session.fetchall()]

    # ------------------------------------------------------- seeding and tests

    def seed(
        self,
        count: int,
        *,
        seed: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Make sure the ``count`` synthetic people of ``seed`` exist; return their numbers.

        People are drawn from ``random.Random(seed)`` with
        :func:`~gateway.testing.synthetic.make_beneficiary`, so a seed gives the same
        people here as in any other adapter, and seeding again adds nobody:
        people already present are left as they are. Their sensitive data
        (notes, activation measures, sanctions, refused applications, family
        members) goes into the vendor tables the export never reads.
        Everything is written in one transaction with batched inserts.

        :param progress: called with how many more people were drawn since the
            previous call (in steps of a few hundred), for a progress bar.
        """
        step = 500
        rng = random.Random(seed)
        people: list[Beneficiary] = []
        seen: set[str] = set()
        while len(people) < count:
            beneficiary = make_beneficiary(rng, self.cpas_id)
            number = beneficiary.dossier.person.number
            if number in seen:  # two draws gave the same number: draw again
                continue
            seen.add(number)
            people.append(beneficiary)
            if progress is not None and len(people) % step == 0:
                progress(step)
        if progress is not None and len(people) % step:
            progress(len(people) % step)

        now = _timestamp()
        with self._lock, self._db.transaction(write=True) as session:
            session.execute("SELECT COALESCE(rijksregisternummer, bisnummer) FROM clienten")
            present = {row[0] for row in session.fetchall()}
            new = [b for b in people if b.dossier.person.number not in present]
            clients, decisions = [], []
            sensitive: dict[str, list[tuple[Any, ...]]] = {table: [] for table in _INSERT_SENSITIVE}
            client_numbers = session.reserve_client_numbers(len(new))
            for client_nr, beneficiary in zip(client_numbers, new, strict=True):
                dossier = beneficiary.dossier
                clients.append(_client_row(client_nr, dossier, now))
                decisions += [
                    (client_nr, self.cpas_id, *_decision_to_row(decision))
                    for decision in dossier.aid_history
                ]
                day = dossier.last_social_inquiry or dt.date.today()
                for table, rows in _sensitive_rows(client_nr, beneficiary.sensitive, day).items():
                    sensitive[table] += rows
            session.executemany(_INSERT_CLIENT, clients)
            session.executemany(_MERGE_DECISION, decisions)
            for table, rows in sensitive.items():
                session.executemany(_INSERT_SENSITIVE[table], rows)
        log.info(
            "seeded %d synthetic people into OCMWdata (%d were already there)",
            len(new),
            len(people) - len(new),
        )
        return [beneficiary.dossier.person.number for beneficiary in people]

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
        """Plant sensitive data on an existing person, for tests that look for leaks.

        Give a :class:`~gateway.testing.synthetic.SensitiveData`, keyword lists, or
        both. ``refused_applications`` are ``(what, reason)`` pairs or bare
        reasons; a family member may be given as a bare name.

        :raises AdapterError: ``adapter.unknown_person`` when there is no such client.
        """
        planted = (sensitive or SensitiveData()).plus(
            notes=notes,
            activation_measures=activation_measures,
            sanctions=sanctions,
            refused_applications=refused_applications,
            family_members=family_members,
            addresses=addresses,
            health_data=health_data,
        )
        number = _compact_person_number(person_number)
        with self._lock, self._db.transaction(write=True) as session:
            client = None if number is None else _find_client(session, number)
            if client is None:
                raise AdapterError(
                    "OCMWdata has no client with this person number.",
                    code=Refusal.ADAPTER_UNKNOWN_PERSON,
                )
            for table, rows in _sensitive_rows(client[0], planted, dt.date.today()).items():
                session.executemany(_INSERT_SENSITIVE[table], rows)

    @contextlib.contextmanager
    def store_unavailable(self) -> Iterator[None]:
        """Test hook: the database is unreachable until the block ends (see ``SimulatesOutage``)."""
        outage = self._db.unreachable()
        with self._lock:
            outage.__enter__()
        try:
            yield
        finally:
            with self._lock:
                outage.__exit__(None, None, None)

    def list_person_numbers(self) -> list[str]:
        """The NISS or BIS number of every client, in the order they were added."""
        with self._lock, self._db.transaction() as session:
            session.execute(
                "SELECT COALESCE(rijksregisternummer, bisnummer) FROM clienten ORDER BY client_nr"
            )
            return [row[0] for row in session.fetchall()]

    def count_persons(self) -> int:
        """How many clients the database holds."""
        with self._lock, self._db.transaction() as session:
            row = session.execute("SELECT COUNT(*) FROM clienten").fetchone()
            return int(row[0]) if row else 0


# ------------------------------------------------------------------ helpers


def _insert_event(session: Any, event: VendorEvent, now: str) -> None:
    session.execute(
        "INSERT INTO meldingen (melding_id, soort, bericht_id, partner_kbo, doel,"
        " dossierreferentie, persoonsnummer, code, lokale_referentie, tijdstip, aangemaakt_op)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (melding_id) DO NOTHING",
        (
            event.event_id, event.kind.value, event.message_id, event.peer, event.purpose,
            event.case_reference, event.person_number, event.code, event.local_reference,
            event.at, now,
        ),
    )  # fmt: skip


def _compact_person_number(value: str) -> str | None:
    """The 11 digits of a NISS/BIS written with or without separators; ``None`` if not one."""
    compact = "".join(ch for ch in str(value) if ch not in ".- ")
    return compact if len(compact) == 11 and compact.isascii() and compact.isdigit() else None


def _find_client(session: Session, number: str) -> Row | None:
    session.execute(
        f"SELECT {_CLIENT_COLUMNS} FROM clienten WHERE rijksregisternummer = ? OR bisnummer = ?",
        (number, number),
    )
    return session.fetchone()


def _timestamp() -> str:
    """Now, in UTC, as OCMWdata writes its bookkeeping timestamps."""
    return dt.datetime.now(dt.UTC).strftime("%d-%m-%Y %H:%M:%S")


def _dossier_number(client_nr: int, timestamp: str) -> str:
    """OCMWdata's dossier number: the year the client was opened and the client number."""
    return f"{timestamp[6:10]}/{client_nr:06d}"


def _client_row(client_nr: int, dossier: Dossier, now: str) -> tuple[Any, ...]:
    person, household = dossier.person, dossier.household
    return (
        client_nr,
        _dossier_number(client_nr, now),
        person.niss,
        person.bis,
        join_name(person.family_name, person.given_names),
        date_to_vendor(person.birth_date, DateFormat.BIRTH),
        LANGUAGES.vendor(person.language),
        CATEGORIES.vendor(household.category),
        household.dependent_children,
        date_to_vendor(dossier.last_social_inquiry),
        now,
        now,
    )


def _decision_to_row(decision: Decision) -> tuple[Any, ...]:
    """The ``beslissingen`` columns of a decision, in :data:`_DECISION_COLUMNS` order."""
    return (
        decision.decision_id,
        AID_KINDS.vendor(decision.kind),
        LEGAL_BASES.vendor(decision.legal_basis),
        date_to_vendor(decision.decision_date),
        date_to_vendor(decision.period_start),
        date_to_vendor(decision.period_end),
        STATUSES.vendor(decision.status),
        cents_from_amount(decision.monthly_amount),
    )


def _decision_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """A ``beslissingen`` row as the fields of a canonical decision (validated later)."""
    referentie, steuncode, basis, beslist, begin, einde, status, cent = row
    return {
        "decision_id": referentie,
        "kind": AID_KINDS.canonical(steuncode),
        "legal_basis": LEGAL_BASES.canonical(basis),
        "decision_date": date_from_vendor(beslist),
        "period_start": date_from_vendor(begin),
        "period_end": date_from_vendor(einde),
        "status": STATUSES.canonical(status),
        "monthly_amount": amount_from_cents(cent),
    }


def _sensitive_rows(
    client_nr: int, sensitive: SensitiveData, day: dt.date
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of the sensitive tables for one client."""
    datum = date_to_vendor(day)
    return {
        "notities": [(client_nr, datum, text) for text in sensitive.notes],
        "activeringsmaatregelen": [
            (client_nr, text, datum) for text in sensitive.activation_measures
        ],
        "sancties": [(client_nr, text, datum) for text in sensitive.sanctions],
        "geweigerde_aanvragen": [
            (client_nr, what, reason, datum) for what, reason in sensitive.refused_applications
        ],
        "gezinsleden": [
            (
                client_nr,
                member.name,
                member.relation,
                date_to_vendor(member.birth_date, DateFormat.BIRTH),
                cents_from_amount(member.monthly_income),
            )
            for member in sensitive.family_members
        ],
        "adressen": [(client_nr, text, datum) for text in sensitive.addresses],
        "gezondheidsgegevens": [(client_nr, text, datum) for text in sensitive.health_data],
    }
