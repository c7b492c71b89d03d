"""The journal as the nodes keep it: a run of real exchanges, and the person's report from it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import GENT, LIEGE, NodeFactory

from gateway.federation.localnet import LocalFederation
from gateway.journal import Journal
from gateway.model.directory import InstitutionKind
from gateway.model.envelope import Purpose
from gateway.model.errors import DestinationRefused
from gateway.node import Node
from gateway.report import build_report, render

MOVE, INQUIRY = Purpose.CONTINUITY_AFTER_MOVE, Purpose.NEW_APPLICATION_INQUIRY


def _journal(node: Node) -> Journal:
    assert node.journal is not None
    return node.journal


def _run(make_node: NodeFactory, federation: LocalFederation) -> tuple[Node, Node, list[str]]:
    """Gent sends two people to Liège, Liège asks Gent for a third, Gent tries the police."""
    gent, liege = make_node(GENT, "ocmwdata"), make_node(LIEGE, "fichesociale")
    first, second, third = gent.adapter.seed(3, seed=51)  # type: ignore[attr-defined]
    sent = [gent.send_transfer(n, liege.cpas_id, MOVE) for n in (first, second)]
    asked = liege.send_request(third, gent.cpas_id, INQUIRY, "LG-51")
    police = next(i for i in federation.directory.institutions if i.kind is InstitutionKind.POLICE)
    with pytest.raises(DestinationRefused):
        gent.send_transfer(first, police.id, MOVE)
    gent.wait_for_outcomes([s.message_id for s in sent], 15)
    liege.wait_for_outcomes([asked.message_id], 15)
    # The last receipts (for the transfers, and Liège's for the response) are on their way.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (
        len(_journal(gent).entries_for(first)) < 3 or len(_journal(gent).entries_for(third)) < 3
    ):
        time.sleep(0.05)
    return gent, liege, [first, second, third]


def test_a_persons_report_lists_exactly_their_exchanges(
    make_node: NodeFactory, federation: LocalFederation
) -> None:
    gent, _, (first, second, third) = _run(make_node, federation)
    events = [e.event for e in _journal(gent).entries_for(first)]
    assert sorted(events) == ["receipt-received", "refused-outgoing", "sent"]
    assert [e.event for e in _journal(gent).entries_for(second)] == ["sent", "receipt-received"]
    assert sorted(e.event for e in _journal(gent).entries_for(third)) == [
        "receipt-received",
        "received",
        "response-sent",
    ]
    report = build_report(
        _journal(gent), federation.directory, cpas_id=gent.cpas_id, person_number=first, lang="fr"
    )
    text = render(report, "text")
    assert "Police" in text and second not in text and third not in text


def test_the_dossier_in_the_journals_is_byte_for_byte_what_was_sent(
    make_node: NodeFactory, federation: LocalFederation
) -> None:
    gent, liege, (first, _, third) = _run(make_node, federation)
    (sent,) = [e for e in _journal(gent).entries_for(first) if e.event == "sent"]
    (received,) = [e for e in _journal(liege).entries_for(first) if e.event == "received"]
    assert sent.content is not None and sent.content == received.content
    (answer,) = [e for e in _journal(gent).entries_for(third) if e.event == "response-sent"]
    (answered,) = [e for e in _journal(liege).entries_for(third) if e.event == "response-received"]
    assert answer.content is not None and answer.content == answered.content


def test_both_journals_verify_after_a_run(
    make_node: NodeFactory, federation: LocalFederation
) -> None:
    gent, liege, _ = _run(make_node, federation)
    for node in (gent, liege):
        result = _journal(node).verify()
        assert result.ok, result.reason
        assert result.entries > 0


def test_no_number_of_a_person_is_in_clear_in_a_journal_the_node_kept(
    make_node: NodeFactory, federation: LocalFederation
) -> None:
    gent, liege, numbers = _run(make_node, federation)
    for node in (gent, liege):
        path = Path(_journal(node).url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        raw = b"".join(f.read_bytes() for f in files if f.exists())
        for number in numbers:
            assert number.encode() not in raw
