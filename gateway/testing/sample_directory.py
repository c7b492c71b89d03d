"""The sample directory: every municipality's CPAS, and one institution of each other kind.

For demos, tests and the conformance suite (``docs/directory.md``, "The
sample directory"): realistic names, synthetic enterprise numbers, keys
given by the caller or thrown away.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final

from gateway.model import keys, municipalities
from gateway.model.directory import (
    DEFAULT_KEY_VALIDITY,
    Directory,
    InstitutionKind,
    InstitutionStatus,
    KeyEntry,
    build_directory,
)
from gateway.model.directory.institutions import moment
from gateway.model.dossier import ContactPoint
from gateway.model.identifiers import make_enterprise_number

SAMPLE_ISSUER: Final = "CPAS federations (Brulocalis, Fédération des CPAS, VVSG) - sample directory"

PAJOTTEGEM_NIS: Final = "23106"
PAJOTTEGEM_MERGED: Final = ("23023", "23024", "23032")  # Galmaarden, Gooik, Herne (2025)
SAMPLE_CLOSED: Final = ("11007",)  # Borsbeek: a district of Antwerp since 2025

# Non-CPAS institutions, listed so that a refusal can say what they are. Their
# enterprise numbers are synthetic, like the CPAS ones (seeds above any NIS code).
SAMPLE_OTHERS: Final = (
    (
        900001,
        InstitutionKind.JUDICIAL,
        {
            "fr": "Parquet du procureur du Roi de Bruxelles",
            "nl": "Parket van de procureur des Konings te Brussel",
        },
    ),
    (
        900002,
        InstitutionKind.POLICE,
        {"fr": "Police fédérale", "nl": "Federale Politie", "de": "Föderale Polizei"},
    ),
    (
        900003,
        InstitutionKind.SOCIAL_SECURITY,
        {
            "fr": "Office national de sécurité sociale (ONSS)",
            "nl": "Rijksdienst voor Sociale Zekerheid (RSZ)",
            "de": "Landesamt für soziale Sicherheit (LSS)",
        },
    ),
    (
        900004,
        InstitutionKind.SOCIAL_SECURITY,
        {
            "fr": "Institut national d'assurance maladie-invalidité (INAMI)",
            "nl": "Rijksinstituut voor ziekte- en invaliditeitsverzekering (RIZIV)",
            "de": "Landesinstitut für Kranken- und Invalidenversicherung (LIKIV)",
        },
    ),
    (
        900005,
        InstitutionKind.EMPLOYMENT,
        {
            "fr": "Office national de l'emploi (ONEM)",
            "nl": "Rijksdienst voor Arbeidsvoorziening (RVA)",
            "de": "Landesamt für Arbeitsbeschaffung (LfA)",
        },
    ),
    (
        900006,
        InstitutionKind.TAX,
        {"fr": "SPF Finances", "nl": "FOD Financiën", "de": "FÖD Finanzen"},
    ),
    (
        900007,
        InstitutionKind.OTHER,
        {
            "fr": "SPP Intégration sociale",
            "nl": "POD Maatschappelijke Integratie",
            "de": "ÖPD Sozialeingliederung",
        },
    ),
)

KeysFor = Callable[[str], tuple[bytes, bytes]]
"""Given an institution id, its (Ed25519 public key, X25519 public key), both raw."""


def cpas_names(name_fr: str, name_nl: str, name_de: str | None = None) -> dict[str, str]:
    """The names of a municipality's CPAS: "CPAS de X", "OCMW X" and, with German, "ÖSHZ X"."""
    names = {"fr": f"CPAS {_french_of(name_fr)}", "nl": f"OCMW {name_nl}"}
    if name_de:
        names["de"] = f"ÖSHZ {name_de}"
    return names


def _french_of(name: str) -> str:
    # "CPAS du Roeulx", "CPAS des Bons Villers", "CPAS d'Anvers", "CPAS de La Louvière".
    if name.startswith("Le "):
        return "du " + name[3:]
    if name.startswith("Les "):
        return "des " + name[4:]
    if name[0] in "AEIOUYÉÈÊÂÎÔÛ":
        return "d’" + name
    return "de " + name


def sample_directory(
    now: dt.datetime,
    keys_for: KeysFor | None = None,
    *,
    serial: int = 1,
    issuer: str = SAMPLE_ISSUER,
) -> Directory:
    """A complete, realistic directory for demos, tests and the conformance suite.

    One CPAS per municipality of :mod:`gateway.model.municipalities` (581), with a
    synthetic, check-digit-valid enterprise number
    (:func:`~gateway.model.identifiers.make_enterprise_number` of its NIS code), plus
    the CPAS of Pajottegem into which Galmaarden, Gooik and Herne merged in
    2025, Borsbeek closed, and one institution of each other kind. Every active
    CPAS gets an Ed25519 and an X25519 key valid from a day before ``now`` for
    two years: from ``keys_for(id)`` or, without it, freshly generated keys
    whose private halves are thrown away.
    """
    now = moment(now).astimezone(dt.UTC).replace(microsecond=0)
    valid_from, valid_until = now - dt.timedelta(days=1), now + DEFAULT_KEY_VALIDITY
    pajottegem_id = make_enterprise_number(int(PAJOTTEGEM_NIS))

    def keyed(institution_id: str) -> dict[str, list[KeyEntry]]:
        if keys_for is not None:
            signing_raw, encryption_raw = keys_for(institution_id)
        else:
            signing_raw = keys.signing_public_raw(keys.generate_signing_key())
            encryption_raw = keys.generate_encryption_key(keys.KEM_X25519).public_raw
        return {
            "signing_keys": [
                KeyEntry.for_key(keys.SIGNING_ALGORITHM, signing_raw, valid_from, valid_until)
            ],
            "encryption_keys": [
                KeyEntry.for_key(keys.KEM_X25519, encryption_raw, valid_from, valid_until)
            ],
        }

    institutions: list[dict[str, Any]] = []
    for town in municipalities.municipalities():
        institution_id = make_enterprise_number(int(town.nis_code))
        entry: dict[str, Any] = {
            "id": institution_id,
            "kind": InstitutionKind.CPAS,
            "names": cpas_names(town.name_fr, town.name_nl, town.name_de),
            "municipality": town.nis_code,
        }
        if town.nis_code in PAJOTTEGEM_MERGED:
            entry |= {"status": InstitutionStatus.MERGED, "merged_into": pajottegem_id}
        elif town.nis_code in SAMPLE_CLOSED:
            entry |= {"status": InstitutionStatus.CLOSED}
        else:
            entry |= keyed(institution_id) | {"contact": sample_contact(institution_id)}
        institutions.append(entry)
    institutions.append(
        {
            "id": pajottegem_id,
            "kind": InstitutionKind.CPAS,
            "names": cpas_names("Pajottegem", "Pajottegem"),
            "municipality": PAJOTTEGEM_NIS,
            "contact": sample_contact(pajottegem_id),
        }
        | keyed(pajottegem_id)
    )
    for seed, kind, names in SAMPLE_OTHERS:
        institutions.append({"id": make_enterprise_number(seed), "kind": kind, "names": names})
    institutions.sort(key=lambda item: item["id"])
    return build_directory(issuer=issuer, serial=serial, institutions=institutions, issued_at=now)


def sample_contact(cpas_id: str) -> ContactPoint:
    """The social service contact the sample directory lists for a CPAS."""
    return ContactPoint(mailbox=f"service.social@cpas-{cpas_id}.example.be", phone="+3225550100")
