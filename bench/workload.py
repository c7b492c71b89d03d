"""The benchmark's workload: real sealed envelopes, and caseloads spread by population.

Dossiers come from :func:`gateway.testing.synthetic.make_beneficiary`, the same
generator every adapter seeds from: an aid history of an exponentially
distributed number of decisions (mean about 6, at most 60), so a run mixes
people with no decision and people with dozens.

How dossiers spread over CPAS follows population (:mod:`gateway.model.municipalities`):
each CPAS holds a share of the national caseload equal to its share of the
inhabitants. :func:`caseloads` uses it to say what the measured rates mean
for the largest CPAS -- the caseload a merger or a change of vendor moves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.stats import summary
from gateway.federation.localnet import LocalFederation
from gateway.model import municipalities
from gateway.model.codes import Outcome
from gateway.model.envelope import Header, MessageType, Purpose, ReceiptBody, TransferBody, seal
from gateway.testing.synthetic import make_beneficiary

NATIONAL_CASELOAD = 240_000
"""People helped by a CPAS in one year, all of Belgium."""


@dataclass(frozen=True)
class EnvelopeSample:
    """Real sealed envelopes: transfers of synthetic dossiers and the receipts they get."""

    transfers: list[bytes]
    receipts: list[bytes]
    decisions: list[int]

    def describe(self) -> dict[str, object]:
        """Sizes in bytes and aid-history lengths, for the report."""
        return {
            "dossiers": len(self.transfers),
            "transfer_bytes": summary([len(t) for t in self.transfers], digits=0),
            "receipt_bytes": summary([len(r) for r in self.receipts], digits=0),
            "decisions_per_dossier": summary(self.decisions),
        }


def sample_envelopes(
    federation: LocalFederation, sender: str, recipient: str, count: int, *, seed: int = 7
) -> EnvelopeSample:
    """Seal ``count`` transfers from ``sender`` to ``recipient`` (CPAS ids), and their receipts."""
    rng = random.Random(seed)
    source, target = federation.members[sender], federation.members[recipient]
    directory = federation.directory
    transfers, receipts, decisions = [], [], []
    for _ in range(count):
        dossier = make_beneficiary(rng, sender, with_sensitive=False).dossier
        header = Header.new(
            MessageType.TRANSFER,
            sender=sender,
            recipient=recipient,
            purpose=Purpose.CONTINUITY_AFTER_MOVE,
            case_reference=dossier.source.case_reference,
        )
        body = TransferBody(dossier).to_xml()
        transfers.append(seal(header, body, keys=source.node_keys, directory=directory).to_xml())
        receipt = Header.new(
            MessageType.RECEIPT,
            sender=recipient,
            recipient=sender,
            purpose=header.purpose,
            case_reference=header.case_reference,
            correlation_id=header.message_id,
        )
        answer = ReceiptBody(Outcome.IMPORTED).to_xml()
        receipts.append(seal(receipt, answer, keys=target.node_keys, directory=directory).to_xml())
        decisions.append(len(dossier.aid_history))
    return EnvelopeSample(transfers, receipts, decisions)


def caseloads(rate_per_s: float | None, *, top: int = 5) -> list[dict[str, object]]:
    """The largest CPAS's share of the national caseload, and how long moving it takes.

    :param rate_per_s: a measured end-to-end rate in dossiers per second.
    """
    towns = municipalities.municipalities()
    inhabitants = sum(m.population for m in towns)
    largest = sorted(towns, key=lambda m: m.population, reverse=True)[:top]
    out: list[dict[str, object]] = []
    for town in largest:
        dossiers = round(NATIONAL_CASELOAD * town.population / inhabitants)
        out.append(
            {
                "nis_code": town.nis_code,
                "name": town.name_fr,
                "inhabitants": town.population,
                "dossiers": dossiers,
                "seconds_at_measured_rate": round(dossiers / rate_per_s, 1) if rate_per_s else None,
            }
        )
    return out
