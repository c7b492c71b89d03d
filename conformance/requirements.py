"""The requirements an adapter must meet, each with a stable id.

This registry is the single source of truth: the checks in
:mod:`cpas_conformance.checks` implement exactly these ids, reports quote
their titles, and the requirement table of ``docs/conformance.md`` is
generated from it (:mod:`cpas_conformance.docs`). Ids are a public contract:
a federation's published report cites them, so an id is never renamed or
reused; a withdrawn requirement keeps its id, retired.

Capabilities say when a requirement applies, the way SQLAlchemy's dialect
suite names what a backend supports:

``export`` / ``import``
    Declared by the adapter in :attr:`gateway.adapters.AdapterInfo.capabilities`.
``seed`` / ``inspect`` / ``plant`` / ``batch`` / ``outage`` / ``events``
    The adapter implements :class:`~gateway.adapters.Seedable`,
    :class:`~gateway.adapters.Inspectable`,
    :class:`~gateway.adapters.PlantsSensitiveData`,
    :class:`~gateway.adapters.BatchImporter`,
    :class:`~gateway.adapters.SimulatesOutage` or
    :class:`~gateway.adapters.ReceivesEvents`.

A requirement whose capabilities the adapter lacks is *skipped, not
applicable*, visibly and with the reason, never passed. The ``plant`` hook is
not such a capability for :data:`MIN_001`: an exporting adapter without it
cannot be certified for minimality, so that requirement fails rather than
skips (see its ``how``); nor is the ``outage`` hook for :data:`ERR_002`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

Capability = Literal["export", "import", "seed", "inspect", "plant", "batch", "outage", "events"]
CAPABILITIES: Final[tuple[Capability, ...]] = (
    "export",
    "import",
    "seed",
    "inspect",
    "plant",
    "batch",
    "outage",
    "events",
)
DECLARED_CAPABILITIES: Final = frozenset({"export", "import"})
"""The capabilities an adapter declares in ``AdapterInfo.capabilities``."""

_PROTOCOL_NAMES: Final = {
    "seed": "Seedable",
    "inspect": "Inspectable",
    "plant": "planting",
    "batch": "BatchImporter",
    "outage": "SimulatesOutage",
    "events": "ReceivesEvents",
}


@dataclass(frozen=True)
class Requirement:
    """One thing a conformant adapter does.

    :param id: stable id, ``DSE-<area>-<number>``.
    :param title: the requirement, as one sentence a federation can publish.
    :param why: what goes wrong for a CPAS or a person when it is broken.
    :param how: how the suite tests it, precisely enough to reproduce.
    :param mandatory: a conformant adapter must pass it (when it applies).
    :param capability: the capabilities it applies to; empty means every adapter.
    """

    id: str
    title: str
    why: str
    how: str
    mandatory: bool
    capability: tuple[Capability, ...] = ()

    @property
    def applies_to(self) -> str:
        """The adapters it applies to, in words, for reports and the documentation."""
        if not self.capability:
            return "every adapter"
        declared = [item for item in self.capability if item in DECLARED_CAPABILITIES]
        protocols = [_PROTOCOL_NAMES[item] for item in self.capability if item in _PROTOCOL_NAMES]
        words = [f"adapters that {' and '.join(declared)}"] if declared else []
        words += [f"{name} adapters" for name in protocols]
        return ", ".join(words)


INF_001: Final = Requirement(
    id="DSE-INF-001",
    title="The adapter describes itself: name, vendor, product, version, "
    'schema version "1" and its capabilities.',
    why="A federation certifies one product at one version, and a node refuses an adapter "
    "that cannot read or write the schema version it speaks.",
    how="Reads `info` on a fresh adapter: an `AdapterInfo` whose `name` is the name it is "
    'registered under, non-empty `vendor`, `product` and `version`, `"1"` among '
    "`schema_versions`, and `capabilities` a non-empty subset of `export` and `import`; the "
    "adapter has `export_dossier`, `import_dossier` and `close`.",
    mandatory=True,
)

EXP_001: Final = Requirement(
    id="DSE-EXP-001",
    title="Every export is a `Dossier` whose XML validates against the dossier XSD.",
    why="The XSD is the contract between CPAS: a receiving node refuses anything else, "
    "and the person's dossier does not arrive.",
    how="One case per file of `corpus/valid/`, and one for a generated history of 1000 "
    "decisions: a fresh adapter imports the dossier, exports the person, and the suite "
    "serialises the result with `Dossier.to_xml` and validates it against `dossier.xsd`. "
    "A Seedable adapter also exports twenty seeded people (case "
    "`seeded-people`); an export-only adapter is checked on those alone, and must be "
    "Seedable to be certified.",
    mandatory=True,
    capability=("export",),
)

EXP_002: Final = Requirement(
    id="DSE-EXP-002",
    title="Every export keeps the rules the XSD cannot express: NISS/BIS and enterprise "
    "check digits, dates, legal bases.",
    why="A wrong check digit sends a dossier about someone else; a receiving node refuses it.",
    how="The XML of every export that validates against the XSD (the cases of DSE-EXP-001) is "
    "parsed back with `Dossier.from_xml`, which applies the model's checks, and must be "
    "accepted.",
    mandatory=True,
    capability=("export",),
)

EXP_003: Final = Requirement(
    id="DSE-EXP-003",
    title="Exporting a person the vendor system does not know gives no dossier (`None`), "
    "not an error.",
    why="A request for an unknown person is answered with a typed refusal; an exception "
    "instead becomes a failed message, retried and dead-lettered.",
    how="Check-digit-valid NISS and BIS numbers nobody holds are exported from an empty store "
    "and from a store holding someone else; each must return `None`.",
    mandatory=True,
    capability=("export",),
)

EXP_004: Final = Requirement(
    id="DSE-EXP-004",
    title="An export names the CPAS the adapter serves as its source.",
    why="The receiving CPAS answers to, and the person's report names, the CPAS in "
    "`source`; a dossier received from elsewhere must not be passed on in that CPAS's name.",
    how="A fresh adapter built for a synthetic CPAS imports a dossier whose source is another "
    "CPAS (or is seeded) and exports it: `source.cpas_id` must be the adapter's own CPAS.",
    mandatory=True,
    capability=("export",),
)

RTR_001: Final = Requirement(
    id="DSE-RTR-001",
    title="Importing a dossier and exporting the person gives back the same canonical "
    "content: person, household, aid history and last social inquiry.",
    why="The new CPAS decides on the person's aid from this dossier; anything lost or "
    "changed on the way is a wrong decision.",
    how="One case per file of `corpus/valid/`, each on a fresh adapter: import, export, and "
    "compare field by field. The order of decisions is not significant (each is matched by "
    "its id); `dossier_id`, `created_at` and `source` are the exporting CPAS's own and are not "
    "compared. A case whose export is invalid is judged by DSE-EXP-001/002, and one whose "
    "only difference is in names by DSE-TXT-001, so that each defect is reported once.",
    mandatory=True,
    capability=("export", "import"),
)

TXT_001: Final = Requirement(
    id="DSE-TXT-001",
    title="Names keep every character: accents, apostrophes, hyphens, spaces, combining "
    "marks and scripts beyond Latin-1 come back exactly.",
    why="D'Hondt, Müller-Lüdenscheidt, Nguyễn and Ó Briain are Belgian residents; a "
    "mangled name is a different person in the receiving CPAS's records.",
    how="One case per file of `corpus/valid/` whose names hold anything but ASCII letters: "
    "import, export, and compare the family name and given names code point by code point "
    "(no Unicode normalisation).",
    mandatory=True,
    capability=("export", "import"),
)

VOL_001: Final = Requirement(
    id="DSE-VOL-001",
    title="Long aid histories come back whole: 200 decisions, and the schema's maximum of 1000.",
    why="People with long histories are the ones whose continuity of aid matters most.",
    how="The corpus's `history-200-decisions.xml` and a generated dossier of 1000 decisions "
    "are imported and exported on fresh adapters; every decision must come back, equal, "
    "matched by id. Timings are reported as information.",
    mandatory=True,
    capability=("export", "import"),
)

IMP_001: Final = Requirement(
    id="DSE-IMP-001",
    title="An import under a message id not seen before reports `created` true, also when it "
    "updates a person already held, and the vendor system's reference for the record.",
    why="The receipt a sender gets quotes the receiver's reference; the journal records that "
    "the message was stored, and `created` false is kept for a redelivery, which changed "
    "nothing.",
    how="A fresh adapter imports `everything-present.xml` (a NISS) and "
    "`bis-number-sex-known.xml` (a BIS number): each returns an `ImportResult` with "
    "`created` true and a non-empty `local_reference`. In a third case the person of "
    "`everything-present.xml` is imported again under a second new message id: `created` "
    "must be true again, with the same `local_reference`, the reference of the person's record.",
    mandatory=True,
    capability=("import",),
)

IMP_002: Final = Requirement(
    id="DSE-IMP-002",
    title="Importing the same message twice gives one record: the second import reports "
    "`created` false and changes nothing.",
    why="Delivery is at least once: a redelivered message must never create a second "
    "record or a second payment.",
    how="A fresh adapter imports a dossier twice under the same message id: the second "
    "`ImportResult` has `created` false and the same `local_reference`, the export is "
    "unchanged (apart from `dossier_id` and `created_at`), and, when the adapter is "
    "Inspectable, it holds as many people as before.",
    mandatory=True,
    capability=("import",),
)

MIN_001: Final = Requirement(
    id="DSE-MIN-001",
    title="Nothing beyond the minimal dossier ever leaves: no notes, activation measures, "
    "sanctions, refused applications, family members, addresses or health data.",
    why="Professional secrecy: the federations accept the flow only because the dossier "
    "holds objective, administrative facts and nothing else.",
    how="One case per kind of sensitive data. A fresh adapter is given two people; unique "
    "markers (random letters inside realistic, non-ASCII text) are planted on the first "
    "through the `PlantsSensitiveData.add_sensitive` hook, the first is imported again as an "
    "update, and both are exported. No marker, nor its random part in any letter case, may "
    "appear in the exported XML bytes or in `model_dump_json()`. The hook is required for "
    "certification: an exporting adapter without it fails this requirement, because a "
    "mandatory requirement cannot be avoided by leaving out the means to test it.",
    mandatory=True,
    capability=("export",),
)

ERR_001: Final = Requirement(
    id="DSE-ERR-001",
    title="Every failure is a project error (`gateway.model.errors.AdapterError` or another "
    "`GatewayError`), never another exception.",
    why="The node turns project errors into receipts, retries and journal entries; any "
    "other exception is a crash whose message may quote personal data.",
    how="Malformed person numbers (empty, letters, too short or long, wrong check digits, "
    "SQL and path fragments, full-width digits, a NUL byte) are exported, and exports and "
    "imports are attempted after `close()`; each must return normally (`None` for a number "
    "that is not one) or raise a `GatewayError`.",
    mandatory=True,
)

INT_001: Final = Requirement(
    id="DSE-INT-001",
    title="Loading and running the adapter leaves the gateway's own checks intact.",
    why="An adapter runs inside the node; one that loosened the parser or the model to "
    "accept its own data would let hostile or non-minimal documents through for everyone.",
    how="One case per file of `corpus/invalid/`: after a fresh adapter has started, the "
    "document is checked as a node checks what it receives and must be refused with the "
    "code the corpus manifest gives.",
    mandatory=True,
)

EXP_005: Final = Requirement(
    id="DSE-EXP-005",
    title="A dossier passed on carries the exporting CPAS's own case reference and contact "
    "point, never the sender's.",
    why="The receiving CPAS writes to the contact point and quotes the case reference of the "
    "dossier's source; a dossier passed on under the previous CPAS's reference and mailbox "
    "sends questions about the person to a CPAS that is no longer competent.",
    how="A fresh adapter imports two dossiers received from two other CPAS, whose case "
    "references and mailboxes are drawn for the run, and exports both people: neither "
    "export may carry its sender's case reference or mailbox (or phone), and both must "
    "carry the same contact point, the adapter's own.",
    mandatory=True,
    capability=("export", "import"),
)

TZN_001: Final = Requirement(
    id="DSE-TZN-001",
    title="Dates come back unchanged whatever the host's time zone.",
    why="A CPAS server runs in Europe/Brussels; a date shifted by a day changes a period of "
    "aid, a birth date, and with it the person's number.",
    how="Round trips (import, export, compare every date and the rest of the canonical "
    "content) of the corpus files with dates at the edges of a day and a year, on fresh "
    "adapters built and called with the process's zone set to Europe/Brussels, "
    "Pacific/Auckland and America/Los_Angeles in turn (`TZ` and `time.tzset()`).",
    mandatory=True,
    capability=("export", "import"),
)

IMP_003: Final = Requirement(
    id="DSE-IMP-003",
    title="`import_batch`, when offered, keeps the rules of `import_dossier` item by item, "
    "also for a redelivered batch that mixes new and known message ids.",
    why="The node imports every batch of two or more deliveries through `import_batch`; after "
    "a broker restart a batch holds messages imported before next to new ones.",
    how="A fresh adapter imports a batch of two dossiers; then a batch with those two message "
    "ids again, a new message of a third person and, in the same batch, that new id twice. "
    "The results must come in order: `created` false with the first references for the two "
    "known ids, `created` true then false (same reference) for the new one; every person "
    "exports, and an Inspectable adapter holds three people.",
    mandatory=True,
    capability=("import", "batch"),
)

PER_001: Final = Requirement(
    id="DSE-PER-001",
    title="What was imported lasts: after `close()`, a new adapter on the same store exports "
    "it, and recognises its message ids.",
    why="A node restarts (an update, a crash): a dossier acknowledged to the sender must still "
    "be there, and a redelivered message must not be imported a second time.",
    how="An adapter imports a dossier (through `import_batch` too, when offered) and is "
    "closed; a second adapter is built on the same store: it must export the person with the "
    "same content, and importing the same message ids again must give `created` false, the "
    "first local references, and (when Inspectable) no second record.",
    mandatory=True,
    capability=("import",),
)

UPD_001: Final = Requirement(
    id="DSE-UPD-001",
    title="A newer dossier of a person already held updates that person: the export reflects "
    "the newer dossier.",
    why="A person moves on, or a CPAS corrects an amount: if the first dossier received wins, "
    'the receiving CPAS decides on outdated facts while the receipt says "imported".',
    how="A fresh adapter imports version 1 of a person, then version 2 under a new message id "
    "(dependent children and last social inquiry changed, one amount corrected, one decision "
    'ended, two decisions added): the export must equal version 2 (see "Updates" in '
    "`docs/adapters.md`) and an Inspectable adapter holds one person.",
    mandatory=True,
    capability=("export", "import"),
)

THR_001: Final = Requirement(
    id="DSE-THR-001",
    title="The adapter works when called from a thread other than the one that built it.",
    why="The node builds its adapter in its main thread and calls it from a worker thread; an "
    "adapter bound to its creating thread fails on every call in production.",
    how="An adapter is built in one thread; imports (and a batch, when offered), exports and "
    "`close()` are called from another, and must behave as from the first.",
    mandatory=True,
)

MIN_002: Final = Requirement(
    id="DSE-MIN-002",
    title="Non-minimal data changes nothing in an export: the export after planting equals the "
    "export before.",
    why='Sanctions, refusals or activation measures exported as ordinary "ended" decisions '
    "carry no planted text, yet tell the receiving CPAS what professional secrecy protects.",
    how="One case per kind of non-minimal data (notes, activation measures, sanctions, "
    "refused applications, household members, an address, health data). A fresh adapter is "
    "given two people, both are exported, the data is planted on the first with "
    "`PlantsSensitiveData.add_sensitive`, and both are exported again: apart from "
    "`dossier_id` and `created_at`, each export must equal the one before, field by field.",
    mandatory=True,
    capability=("export",),
)

ERR_002: Final = Requirement(
    id="DSE-ERR-002",
    title="When the vendor's store is unavailable, every call raises `AdapterError` with "
    "`transient=True`, and the adapter works again once the store is back.",
    why="The node retries a transient error and gives the message back to the broker; any "
    "other error during an outage dead-letters the message, and the person's dossier is lost "
    "for the receiving CPAS.",
    how="Through the `SimulatesOutage.store_unavailable()` test hook, the store of an adapter "
    "holding one person is made unavailable: an export and an import must each raise "
    "`gateway.model.errors.AdapterError` with `transient` true. After the hook's block, without a "
    "new adapter, the person exports again and the import refused during the outage succeeds "
    "(`created` true: it left no trace). The hook is required for certification: without it "
    "the requirement fails, because a mandatory requirement cannot be avoided by leaving out "
    "the means to test it.",
    mandatory=True,
)

INT_002: Final = Requirement(
    id="DSE-INT-002",
    title="Loading and running the adapter changes none of the gateway's own functions: "
    "nobody but an active CPAS becomes a destination.",
    why="An adapter that patched the directory check in-process would let a dossier leave for "
    "the police, a court or the tax administration.",
    how="Before any adapter is loaded, the suite fingerprints every function and class (and "
    "class member, code and defaults) of the directory, envelope, dossier, parser, identifier, "
    "key and validation modules; after every adapter is built and after it is closed, in "
    "every case of the run, the fingerprint must be unchanged (a change is recorded and "
    "undone). With a fresh adapter open, the destination check of a directory listing every "
    "kind of institution must refuse each kind that is not a CPAS, a closed and a merged "
    "CPAS and an unknown id, each with its own code, and allow an active CPAS.",
    mandatory=True,
)

SID_001: Final = Requirement(
    id="DSE-SID-001",
    title="The adapter uses no side channel: no file written outside its store, no connection "
    "but to its store, no subprocess, no broker client.",
    why="Personal data written to a support folder, or published by the adapter itself, "
    "escapes the minimal, encrypted, journaled flow the federations accepted.",
    how="From its construction to the end of its `close()`, every adapter of every case is "
    "watched through a Python audit hook: files opened for writing, created, renamed or "
    "removed outside the case's own work folder, SQLite databases outside it, socket "
    "connections to anything but a host and port named in an option URL, subprocesses, and "
    "imports of an AMQP client module. A case runs a whole day's work (imports, a batch, "
    "exports, planting) under watch; another judges everything the earlier cases of the run "
    "saw; a third fails an adapter whose modules or attributes hold an AMQP client.",
    mandatory=True,
)

INS_001: Final = Requirement(
    id="DSE-INS-001",
    title="An Inspectable adapter says truly whom it holds.",
    why="Operators and the demo count and list people through this hook; the suite uses it "
    "to count records in DSE-IMP-002.",
    how="On a fresh adapter: `count_persons()` is 0 and `list_person_numbers()` empty; after "
    "three people are imported (or seeded), the count is 3 and the list holds exactly their "
    "numbers.",
    mandatory=False,
    capability=("inspect",),
)

SED_001: Final = Requirement(
    id="DSE-SED-001",
    title="A Seedable adapter fills its vendor system with valid synthetic people.",
    why="Vendors and CPAS IT seed test systems for demonstrations and load tests.",
    how="`seed(5, seed=1)` on a fresh adapter returns five distinct, check-digit-valid "
    "NISS/BIS numbers; when the adapter exports, each exports a dossier of that person.",
    mandatory=False,
    capability=("seed",),
)

EVT_001: Final = Requirement(
    id="DSE-EVT-001",
    title="An adapter that takes events records each event the node gives it, exactly once.",
    why="The vendor's software shows a social worker the requests held for them and what became "
    "of their exchanges; a lost event leaves a request waiting unseen, a doubled one shows it "
    "twice.",
    how="On a fresh adapter, one event of every kind (`gateway.adapters.VendorEventKind`) is "
    "given to `receive_event`, then the first one again; `read_events()` returns every event "
    "once, each with the kind, message id, peer, purpose, case reference, person number, code "
    "and local reference it was given. When the adapter imports, importing a dossier also "
    "records its `dossier-imported` event.",
    mandatory=False,
    capability=("events",),
)

PRF_001: Final = Requirement(
    id="DSE-PRF-001",
    title="Exports and imports keep within the published times (a warning, never a failure).",
    why="A node moves a caseload of thousands of people; an adapter far slower than the "
    "thresholds makes a move take hours, but it is not wrong, so speed only warns.",
    how="Every export and import of the run is timed, per case: the median (p50) and 95th "
    "percentile (p95) of each case are compared with the thresholds of "
    "`cpas_conformance.speed.THRESHOLDS` (p95 of 200 ms per export or import, 1 s per batch, "
    "500 ms and 2 s for the 200- and 1000-decision histories); a case over a threshold gives "
    "the grade *warning*.",
    mandatory=False,
)

REQUIREMENTS: Final[tuple[Requirement, ...]] = (
    INF_001,
    EXP_001,
    EXP_002,
    EXP_003,
    EXP_004,
    EXP_005,
    RTR_001,
    TXT_001,
    TZN_001,
    VOL_001,
    IMP_001,
    IMP_002,
    IMP_003,
    PER_001,
    UPD_001,
    THR_001,
    MIN_001,
    MIN_002,
    ERR_001,
    ERR_002,
    INT_001,
    INT_002,
    INS_001,
    SED_001,
    EVT_001,
    SID_001,
    PRF_001,
)
"""Every requirement, in the order reports list them."""

_BY_ID: Final = {requirement.id: requirement for requirement in REQUIREMENTS}


def requirement(requirement_id: str) -> Requirement:
    """The requirement with this id; :class:`KeyError` for an unknown id."""
    return _BY_ID[requirement_id]


def iter_requirements(*, mandatory: bool | None = None) -> Iterator[Requirement]:
    """The requirements in report order, optionally only the mandatory or optional ones."""
    for item in REQUIREMENTS:
        if mandatory is None or item.mandatory is mandatory:
            yield item
