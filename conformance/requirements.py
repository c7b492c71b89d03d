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
``seed`` / ``inspect`` / ``plant``
    The adapter implements :class:`~gateway.adapters.Seedable`,
    :class:`~gateway.adapters.Inspectable` or
    :class:`~gateway.adapters.PlantsSensitiveData`.

A requirement whose capabilities the adapter lacks is *skipped, not
applicable*, visibly and with the reason, never passed. The ``plant`` hook is
not such a capability for :data:`MIN_001`: an exporting adapter without it
cannot be certified for minimality, so that requirement fails rather than
skips (see its ``how``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

Capability = Literal["export", "import", "seed", "inspect", "plant"]
CAPABILITIES: Final[tuple[Capability, ...]] = ("export", "import", "seed", "inspect", "plant")
DECLARED_CAPABILITIES: Final = frozenset({"export", "import"})
"""The capabilities an adapter declares in ``AdapterInfo.capabilities``."""

_PROTOCOL_NAMES: Final = {"seed": "Seedable", "inspect": "Inspectable", "plant": "planting"}


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
    title="A first import reports a new record (`created` true) and the vendor system's "
    "reference for it.",
    why="The receipt a sender gets quotes the receiver's reference; the journal records "
    "what was created.",
    how="A fresh adapter imports `everything-present.xml` (a NISS) and "
    "`bis-number-sex-known.xml` (a BIS number): each returns an `ImportResult` with "
    "`created` true and a non-empty `local_reference`.",
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
    "sanctions, refused applications or family members.",
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
    title="Every failure is a project error (`gateway.errors.AdapterError` or another "
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

REQUIREMENTS: Final[tuple[Requirement, ...]] = (
    INF_001,
    EXP_001,
    EXP_002,
    EXP_003,
    EXP_004,
    RTR_001,
    TXT_001,
    VOL_001,
    IMP_001,
    IMP_002,
    MIN_001,
    ERR_001,
    INT_001,
    INS_001,
    SED_001,
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
