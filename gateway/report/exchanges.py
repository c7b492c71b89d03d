"""Gathering the report: a person's journal entries grouped into exchanges, told step by step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from gateway.journal import ContentState, Entry, Event, Journal, VerifyResult
from gateway.model.codes import N_, Outcome
from gateway.model.directory import Directory
from gateway.model.identifiers import validate_person_number
from gateway.report.dossiers import dossier_view, person_language, person_name
from gateway.report.names import Names, format_number, number_label
from gateway.report.views import Exchange, Report, Step
from gateway.report.words import (
    EVENTS,
    LANGUAGES,
    PURPOSES,
    REASONS,
    Words,
)


def build_report(
    journal: Journal,
    directory: Directory,
    *,
    cpas_id: str,
    person_number: str,
    lang: str | None = None,
    verified: VerifyResult | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """The report for the person with ``person_number``, in ``lang``.

    :param cpas_id: the CPAS whose journal this is (the node's own id).
    :param lang: ``fr``, ``nl`` or ``de``; by default the person's own
        language as their latest readable dossier gives it, else French.
    :param verified: the result of :meth:`Journal.verify`, stated in the report.
    """
    _, number = validate_person_number(person_number)
    # Only the journal's own API writes entries, and it knows every event; an
    # entry with another one was slipped in, and ``verified`` says so.
    entries = [e for e in journal.entries_for(number) if e.event in _KNOWN_EVENTS]
    if lang is None:
        lang = person_language(entries) or LANGUAGES[0]
    words = Words(lang)
    now = now or dt.datetime.now(dt.UTC)
    names = Names(directory, words, cpas_id)
    this = names.of(cpas_id, plain=True)
    exchanges = tuple(_exchange(group, words, names, this) for group in _threads(entries))
    return Report(
        lang=lang,
        generated_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        generated=words.moment(now),
        cpas_id=cpas_id,
        cpas=this,
        person_number=format_number(number),
        person_number_label=number_label(number, words),
        person_name=person_name(entries),
        journal_intact=None if verified is None else verified.ok,
        journal_entries=None if verified is None else verified.entries,
        exchanges=exchanges,
    )


def _threads(entries: Sequence[Entry]) -> list[list[Entry]]:
    """Group entries by the message that started them (replies follow their correlation)."""
    root_of: dict[str, str] = {}
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        key = None
        if entry.correlation_id is not None:
            key = root_of.get(entry.correlation_id, entry.correlation_id)
        if key is None:
            key = entry.message_id or f"#{entry.seq}"
        if entry.message_id is not None:
            root_of.setdefault(entry.message_id, key)
        groups.setdefault(key, []).append(entry)
    return list(groups.values())


_KNOWN_EVENTS: Final = frozenset(event.value for event in Event)

_TITLES: Final = {
    (Event.SENT, "transfer"): N_("Your dossier sent to {peer}"),
    (Event.SENT, "request"): N_("Request for your dossier sent to {peer}"),
    (Event.RECEIVED, "transfer"): N_("Your dossier received from {peer}"),
    (Event.RECEIVED, "request"): N_("Request for your dossier from {peer}"),
    # Refusals may name any institution (a police service...): the
    # translations keep its name apart, where no article or case depends on it.
    (Event.REFUSED_OUTGOING, "transfer"): N_("Sending of your dossier refused (recipient: {peer})"),
    (Event.REFUSED_OUTGOING, "request"): N_("Request for your dossier refused (recipient: {peer})"),
    (Event.REFUSED_INCOMING, None): N_("Message refused (sender: {peer})"),
    (Event.DOSSIER_SHOWN, None): N_("Dossier shown to you before sending (recipient: {peer})"),
}


def _exchange(group: list[Entry], words: Words, names: Names, this: str) -> Exchange:
    first = group[0]
    peer_id = next((e.peer for e in group if e.peer), None)
    peer = names.of(peer_id)
    purpose_code = next((e.purpose for e in group if e.purpose), None)
    case_reference = next((e.case_reference for e in group if e.case_reference), None)
    event = Event(first.event)
    title = (
        _TITLES.get((event, first.message_type))
        or _TITLES.get((event, None))
        or N_("Exchange (institution: {peer})")
    )
    steps = tuple(_step(entry, words, this, peer) for entry in group)
    dossiers = tuple(dossier_view(entry, words, names) for entry in group if _carries(entry))
    refused = any(
        e.event in (Event.REFUSED_OUTGOING, Event.REFUSED_INCOMING, Event.REQUEST_REFUSED)
        for e in group
    )
    return Exchange(
        title=words(title, peer=peer),
        at=first.at.isoformat(timespec="seconds"),
        when=words.moment(first.at),
        peer_id=peer_id,
        peer=peer,
        purpose_code=purpose_code,
        purpose=words.label(PURPOSES, purpose_code) if purpose_code else "",
        case_reference=case_reference,
        refused=refused,
        outcome=_outcome(group, words),
        steps=steps,
        dossiers=dossiers,
    )


def _carries(entry: Entry) -> bool:
    return entry.content_state is not ContentState.NONE


def _outcome(group: list[Entry], words: Words) -> str:
    """One phrase for the overview: what came of the exchange in the end."""
    last = group[-1]
    event = Event(last.event)
    if event is Event.REFUSED_OUTGOING:
        return words(N_("refused: nothing was sent"))
    if event in (Event.REFUSED_INCOMING, Event.REQUEST_REFUSED, Event.REQUEST_EXPIRED):
        return words.label(EVENTS, event.value)
    if last.outcome in (Outcome.IMPORTED, Outcome.REJECTED):
        return words(Outcome(last.outcome).words)
    answers = (Event.RESPONSE_SENT, Event.RESPONSE_RECEIVED)
    if event in answers and last.content_state is ContentState.NONE:
        return words(N_("answered without the dossier"))
    return words.label(EVENTS, event.value)


def _step(entry: Entry, words: Words, this: str, peer: str) -> Step:
    event = Event(entry.event)
    reason_code = entry.code or (
        entry.outcome if entry.outcome not in (None, Outcome.IMPORTED, Outcome.REJECTED) else None
    )
    reason = words.label(REASONS, reason_code) if reason_code else None
    values = {"this": this, "peer": peer, "reason": reason or "", "actor": entry.actor or ""}
    kind = entry.message_type
    has_dossier = _carries(entry)
    message: str
    acted = _acted(entry, has_dossier, reason)
    if acted is not None:
        message = acted
    elif event is Event.SENT:
        message = (
            N_("{this} asked {peer} for your dossier.")
            if kind == "request"
            else N_("{this} sent your dossier to {peer}.")
        )
    elif event is Event.RECEIVED:
        message = (
            N_("{peer} asked {this} for your dossier.")
            if kind == "request"
            else N_("{this} received your dossier from {peer}.")
        )
    elif event is Event.RECEIPT_RECEIVED:
        message = (
            N_("{peer} confirmed that it imported your dossier.")
            if entry.outcome == Outcome.IMPORTED
            else N_("{peer} did not import your dossier: {reason}.")
        )
    elif event is Event.RECEIPT_SENT:
        message = (
            N_("{this} imported your dossier and confirmed it to {peer}.")
            if entry.outcome == Outcome.IMPORTED
            else N_("{this} did not import the dossier ({reason}) and told {peer}.")
        )
    elif event is Event.REFUSED_OUTGOING:
        message = (
            N_(
                "{this} refused to send the request (recipient: {peer}): {reason}. "
                "Nothing was sent."
            )
            if kind == "request"
            else N_(
                "{this} refused to send your dossier (recipient: {peer}): {reason}. "
                "Nothing was sent."
            )
        )
    elif event is Event.REFUSED_INCOMING:
        message = N_("{this} refused a message (sender: {peer}): {reason}.")
    elif event is Event.REQUEST_HELD:
        message = N_("The request waits for the decision of a social worker of {this}.")
    elif event is Event.REQUEST_RELEASED:
        message = N_("A social worker of {this} agreed to answer the request.")
    elif event is Event.REQUEST_REFUSED:
        message = N_("A social worker of {this} decided not to hand over your dossier.")
    elif event is Event.REQUEST_EXPIRED:
        message = N_("No answer came from {peer} before the request expired.")
    elif event is Event.DOSSIER_SHOWN:
        message = N_("You were shown the dossier that would be sent to {peer}.")
    elif event is Event.RESPONSE_SENT:
        message = (
            N_("{this} sent your dossier to {peer} in answer to its request.")
            if has_dossier
            else N_("{this} answered {peer} without sending your dossier: {reason}.")
        )
    else:  # Event.RESPONSE_RECEIVED
        message = (
            N_("{this} received your dossier from {peer} in answer to its request.")
            if has_dossier
            else N_("{peer} answered without sending your dossier: {reason}.")
        )
    return Step(
        seq=entry.seq,
        event=event.value,
        event_label=words.label(EVENTS, event.value),
        at=entry.at.isoformat(timespec="seconds"),
        when=words.moment(entry.at),
        text=words(message, **values),
        outcome=entry.outcome,
        code=entry.code,
        reason=reason,
    )


def _acted(entry: Entry, has_dossier: bool, reason: str | None) -> str | None:
    """The step's sentence naming the social worker who acted, or ``None`` when no one is named.

    ``{actor}`` is this CPAS's own staff reference, or the pseudonym another
    CPAS's envelope gave (which that CPAS can resolve).
    """
    if entry.actor is None:
        return None
    event, kind = Event(entry.event), entry.message_type
    if event is Event.SENT:
        return (
            N_("A social worker of {this} (reference {actor}) asked {peer} for your dossier.")
            if kind == "request"
            else N_("A social worker of {this} (reference {actor}) sent your dossier to {peer}.")
        )
    if event is Event.RECEIVED:
        return (
            N_("A social worker of {peer} (reference {actor}) asked {this} for your dossier.")
            if kind == "request"
            else N_(
                "{this} received your dossier from {peer}, sent by a social worker of {peer} "
                "(reference {actor})."
            )
        )
    if event is Event.REQUEST_RELEASED:
        return (
            N_(
                "A social worker of {this} (reference {actor}) agreed to answer the request; "
                "a second social worker must agree too."
            )
            if entry.outcome == Outcome.AWAITING_SECOND_RELEASE
            else N_("A social worker of {this} (reference {actor}) agreed to answer the request.")
        )
    if event is Event.REQUEST_REFUSED and reason:
        return N_(
            "A social worker of {this} (reference {actor}) decided not to hand over your "
            "dossier: {reason}."
        )
    if event is Event.RESPONSE_SENT and has_dossier:
        return N_(
            "A social worker of {this} (reference {actor}) released your dossier to {peer} in "
            "answer to its request."
        )
    if event is Event.RESPONSE_RECEIVED and has_dossier:
        return N_(
            "{this} received your dossier from {peer} in answer to its request; a social "
            "worker of {peer} (reference {actor}) released it."
        )
    if event is Event.DOSSIER_SHOWN:
        return N_(
            "A social worker of {this} (reference {actor}) showed you the dossier that would "
            "be sent to {peer}."
        )
    return None
