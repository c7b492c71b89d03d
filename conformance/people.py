"""The run's people: the corpus dossiers under person numbers and names drawn for this run.

The corpus files are public, so an adapter that kept a list of their person
numbers or names could tell it is being certified and behave only then. Each
run therefore gives every corpus person a fresh person number (same birth
date, same kind, same sex: only the serial and the check digits change),
fresh given and family names where the file does not test the characters of
a name, a fresh dossier id, and a sending CPAS's case reference and contact
drawn for the run. Everything is drawn from the run's seed, which every
report records: ``--seed`` replays a run exactly.
"""

from __future__ import annotations

import random
import uuid
from typing import Final

from gateway.model.dossier import Dossier
from gateway.model.identifiers import validate_person_number

from . import corpus

# ASCII letters only: a file tests the characters of a name, or it does not,
# whatever this run draws for it.
GIVEN_NAMES: Final = (
    "Amelie", "Anouk", "Bram", "Camille", "Daan", "Elif", "Emma", "Fatima", "Finn", "Hanne",
    "Ines", "Jonas", "Julie", "Karim", "Lars", "Lea", "Lotte", "Louis", "Maarten", "Marie",
    "Mehdi", "Nora", "Olivier", "Pauline", "Pieter", "Rania", "Sander", "Sofia", "Thomas",
    "Wout", "Yasmine", "Zoe", "Noah", "Lina", "Arthur", "Jules", "Nina", "Victor", "Elise",
)  # fmt: skip
FAMILY_NAMES: Final = (
    "Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens",
    "Wouters", "Dubois", "Lambert", "Dupont", "Martin", "Simon", "Leclercq", "Laurent",
    "Renard", "Mathieu", "Lemaire", "Hermans", "Aerts", "Pauwels", "Vermeulen", "Michiels",
    "Schmitz", "Hoffmann", "Kessler", "Benali", "Ouali", "Kaya", "Yilmaz", "Nowak",
)  # fmt: skip


def _plain(name: str) -> bool:
    """A name made of ASCII letters only: replacing it loses nothing a case tests."""
    return name.isascii() and name.isalpha()


def _check_digits(body: str, born_after_2000: bool) -> str:
    base = int(("2" if born_after_2000 else "") + body)
    return f"{97 - base % 97:02d}"


class People:
    """The corpus as this run's people, drawn from ``seed``; the same seed, the same people."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._numbers: set[str] = set()
        self._cache: dict[str, Dossier] = {}

    def rng(self, purpose: str) -> random.Random:
        """A random stream for one purpose of the run, independent of the order of use."""
        return random.Random(f"{self.seed}:{purpose}")

    def person_number(self, original: str, purpose: str) -> str:
        """A fresh number of the kind, birth date and sex of ``original``, unique in the run."""
        after_2000 = _check_digits(original[:9], False) != original[9:]
        rng = self.rng(f"number:{purpose}")
        parity = int(original[6:9]) % 2
        while True:
            serial = rng.randrange(1, 998)
            if serial % 2 != parity:
                continue
            body = f"{original[:6]}{serial:03d}"
            number = body + _check_digits(body, after_2000)
            if number != original and number not in self._numbers:
                validate_person_number(number)
                self._numbers.add(number)
                return number

    def dossier(self, name: str) -> Dossier:
        """The corpus file ``name`` as this run's person."""
        if name not in self._cache:
            self._cache[name] = self.disguise(corpus.valid_dossier(name), name)
        return self._cache[name]

    def generated_history(self) -> Dossier:
        """The generated history of the schema's maximum length, as this run's person."""
        key = f"generated-{corpus.MAX_DECISIONS}"
        if key not in self._cache:
            self._cache[key] = self.disguise(corpus.generated_history(), key)
        return self._cache[key]

    def disguise(self, dossier: Dossier, purpose: str) -> Dossier:
        """``dossier`` with a fresh number, names, dossier id and sender's reference and contact."""
        rng = self.rng(f"dossier:{purpose}")
        person = dossier.person
        field = "niss" if person.niss is not None else "bis"
        number = self.person_number(person.number, purpose)
        family = person.family_name
        if _plain(family):
            family = rng.choice(FAMILY_NAMES)
        given = [
            rng.choice(GIVEN_NAMES) if _plain(n) and len(n) > 1 else n for n in person.given_names
        ]
        town = rng.choice(FAMILY_NAMES).lower()
        mailbox = f"social.{rng.getrandbits(24):06x}@cpas-{town}.example.be"
        source = dossier.source.model_copy(
            update={
                "case_reference": f"{rng.randrange(2015, 2026)}-{rng.randrange(10**5, 10**6)}",
                "contact": dossier.source.contact.model_copy(update={"mailbox": mailbox}),
            }
        )
        updated = person.model_copy(
            update={field: number, "family_name": family, "given_names": given}
        )
        return Dossier.model_validate(
            dossier.model_copy(
                update={
                    "dossier_id": uuid.UUID(int=rng.getrandbits(128), version=4),
                    "person": updated,
                    "source": source,
                }
            ).model_dump()
        )
