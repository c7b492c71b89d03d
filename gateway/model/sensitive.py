"""What a vendor system holds about a beneficiary that must never leave the CPAS.

An adapter that can plant such data (the optional ``PlantsSensitiveData``
ability, :mod:`gateway.adapters.protocol`) receives it as
:class:`SensitiveData`; the conformance suite and the synthetic people of
:mod:`gateway.testing.synthetic` use it to prove that an export drops all of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class FamilyMember:
    """Someone in the household: never part of the canonical dossier."""

    name: str
    relation: str
    birth_date: dt.date
    monthly_income: Decimal


@dataclass(frozen=True)
class SensitiveData:
    """What a vendor system holds about a beneficiary that must never leave the CPAS."""

    notes: tuple[str, ...] = ()
    activation_measures: tuple[str, ...] = ()
    sanctions: tuple[str, ...] = ()
    refused_applications: tuple[tuple[str, str], ...] = ()  # (what, reason)
    family_members: tuple[FamilyMember, ...] = ()
    addresses: tuple[str, ...] = ()
    health_data: tuple[str, ...] = ()

    def plus(
        self,
        *,
        notes: Iterable[str] = (),
        activation_measures: Iterable[str] = (),
        sanctions: Iterable[str] = (),
        refused_applications: Iterable[tuple[str, str] | str] = (),
        family_members: Iterable[FamilyMember | str] = (),
        addresses: Iterable[str] = (),
        health_data: Iterable[str] = (),
    ) -> SensitiveData:
        """This data with more added; bare strings are accepted for tests that plant markers.

        A bare refused application is its reason; a bare family member is a name.
        """
        members = tuple(
            m
            if isinstance(m, FamilyMember)
            else FamilyMember(m, "partner", dt.date(1980, 1, 1), Decimal("0.00"))
            for m in family_members
        )
        refusals = tuple(
            ("aid application", r) if isinstance(r, str) else r for r in refused_applications
        )
        return SensitiveData(
            notes=(*self.notes, *notes),
            activation_measures=(*self.activation_measures, *activation_measures),
            sanctions=(*self.sanctions, *sanctions),
            refused_applications=(*self.refused_applications, *refusals),
            family_members=(*self.family_members, *members),
            addresses=(*self.addresses, *addresses),
            health_data=(*self.health_data, *health_data),
        )

    def all_strings(self) -> list[str]:
        """Every free-text value, for tests that search exports for leaks."""
        out = [*self.notes, *self.activation_measures, *self.sanctions]
        out += [reason for _, reason in self.refused_applications]
        out += [member.name for member in self.family_members]
        out += [*self.addresses, *self.health_data]
        return out
