"""The demo: two CPAS, two vendors, dossiers moving both ways through RabbitMQ.

Gent runs the relational vendor OCMWdata (Dutch tables, SQLite); Liège runs
the file-based vendor FicheSociale (French JSON fiches). With ``adapter``,
Gent runs that adapter instead -- a vendor trying its own against a
reference adapter, each node with its own state. The demo makes a
local federation (keys and a signed directory of every Belgian CPAS), starts
one node for each, seeds both vendor systems with synthetic people -- with
the notes, sanctions and family details real systems hold -- moves dossiers
both ways, and shows what moved, what each side now holds, what stayed home
as non-minimal, and what happens when someone tries to send to a non-CPAS.
Then the vendors' software takes over through the node API
(:mod:`gateway.demo_api`): Liège asks, Gent holds, a Gent social worker
releases at the desk, and the report names both.
"""

from __future__ import annotations

import datetime as dt
import random
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import Progress
from rich.table import Table

from gateway.adapters import Inspectable, PlantsSensitiveData, Seedable, load_adapters
from gateway.broker import (
    BrokerTLS,
    Names,
    connect,
    cpas_topology,
    delete_topology,
    directory_topology,
    where,
)
from gateway.config import split_urls
from gateway.demo_api import HELD_PURPOSE, show_api_story
from gateway.federation.localnet import LocalFederation, make_local_federation
from gateway.model.codes import Fault
from gateway.model.directory import InstitutionKind, InstitutionStatus
from gateway.model.envelope import Purpose
from gateway.model.errors import BrokerError, ConfigError, DestinationRefused, GatewayError
from gateway.node import Node, build_node
from gateway.report import build_report, render
from gateway.testing.synthetic import FamilyMember, SensitiveData, make_beneficiary

GENT, LIEGE = "44021", "62063"

# What a social worker's file holds and the canonical dossier has no place for.
SHOWCASE = SensitiveData(
    notes=("Vermoeden van zwartwerk, buren bevragen",),
    activation_measures=("Artikel 60-tewerkstelling bij de groendienst",),
    sanctions=("Leefloon een maand geschorst wegens niet-naleving GPMI",),
    refused_applications=(
        ("huurwaarborg", "Bestaansmiddelen boven de grens door inkomen partner"),
    ),
    family_members=(
        FamilyMember("Karim El Idrissi", "partner", dt.date(1984, 3, 2), Decimal("1450.00")),
    ),
)


def check_broker(url: str, tls: BrokerTLS | None = None) -> None:
    """Raise one clear sentence when no broker answers."""
    try:
        connect([url], tls, timeout=3).close()
    except BrokerError as exc:
        raise BrokerError(
            f"{exc.message} Start one (`rabbitmq-server -detached`, or `docker compose up -d "
            "rabbitmq` in this folder) or point CPAS_GATEWAY_AMQP_URL at yours.",
            code=exc.code,
        ) from None


def mask(number: str) -> str:
    """Show a NISS as the person would recognise it on paper, hiding the serial."""
    return f"{number[:2]}.{number[2:4]}.{number[4:6]}-xxx.{number[9:]}"


REFERENCE_OPTIONS: dict[str, Callable[[Path], dict[str, str]]] = {
    "ocmwdata": lambda folder: {"url": f"sqlite:///{folder}/ocmwdata.sqlite3"},
    "fichesociale": lambda folder: {"folder": str(folder / "fiches")},
}
STORAGE = {"ocmwdata": "SQLite, Dutch tables", "fichesociale": "JSON fiches, French fields"}


def run_demo(
    amqp_url: str,
    *,
    count: int,
    workdir: Path | None,
    console: Console,
    adapter: str | None = None,
    options: Mapping[str, str] | None = None,
    plugins: Iterable[object] = (),
    tls: BrokerTLS | None = None,
) -> int:
    """Run the demo; ``adapter`` (with ``options``) replaces OCMWdata in Gent.

    In ``options``, ``{workdir}`` is the Gent node's own folder; without
    options, the adapter's ``suite_options`` give it a fresh store there.

    :param tls: how to reach an ``amqps://`` broker (CA, client certificate).
    :param plugins: extra adapter plugins, as for :func:`gateway.adapters.load_adapters`.
    """
    check_broker(split_urls(amqp_url)[0], tls)
    registry = load_adapters(plugins=plugins)
    gent_adapter = adapter or "ocmwdata"
    if gent_adapter not in registry.names:
        raise ConfigError(
            f"No adapter named {gent_adapter!r} is installed "
            f"(installed: {', '.join(registry.names) or 'none'}).",
            code=Fault.ADAPTER_UNKNOWN,
        )
    liege_adapter = "ocmwdata" if gent_adapter == "fichesociale" else "fichesociale"
    root = workdir or Path(tempfile.mkdtemp(prefix="cpas-demo-"))
    console.rule("[bold]CPAS Dossier Gateway — demo")
    if tls is not None:
        console.print(
            f"Broker over mutual TLS at {where(split_urls(amqp_url)[0])}: "
            f"CA {tls.ca_file}, client certificate {tls.cert_file}."
        )
    federation = make_local_federation(root / "federation", [GENT, LIEGE])
    gent, liege = federation.member(GENT), federation.member(LIEGE)
    console.print(
        f"Federation directory: {len(federation.directory.institutions)} institutions, "
        f"signed; trust anchor {federation.trust_anchor.name}. Work folder: {root}"
    )
    names = Names(f"demo-{uuid.uuid4().hex[:8]}")
    # The adapter's own defaults for a fresh store (as the conformance suite
    # gives them), in the node's folder; the options given win.
    defaults = (
        REFERENCE_OPTIONS[gent_adapter](gent.folder)
        if gent_adapter in REFERENCE_OPTIONS
        else registry.suite_options(gent_adapter)
    )
    gent_options = expand_workdir({**defaults, **(options or {})}, gent.folder)
    node_a = _node(
        federation,
        gent.cpas_id,
        gent_adapter,
        gent_options,
        amqp_url,
        names,
        registry,
        tls,
        policy={HELD_PURPOSE.value: "hold"},
    )
    try:
        node_b = _node(
            federation,
            liege.cpas_id,
            liege_adapter,
            REFERENCE_OPTIONS[liege_adapter](liege.folder),
            amqp_url,
            names,
            registry,
            tls,
        )
    except BaseException:
        node_a.adapter.close()
        raise
    try:
        node_a.start()
        node_b.start()
        people_a = _people(node_a, count, seed=1)
        people_b = _people(node_b, count, seed=2)
        before = {n.cpas_id: _count(n) for n in (node_a, node_b)}
        showcase = people_a[0]
        planted = isinstance(node_a.adapter, PlantsSensitiveData)
        if planted:
            node_a.adapter.add_sensitive(showcase, SHOWCASE)  # type: ignore[attr-defined]

        half = max(1, count // 2)
        moves = [(node_a, node_b, n) for n in people_a[:half]] + [
            (node_b, node_a, n) for n in people_b[:half]
        ]
        rows = _transfer(moves, console)
        _show_moves(rows, federation, console)
        _show_holdings(node_a, node_b, before, federation, console)
        if planted:
            _show_minimality(node_a, node_b, showcase, federation, console)
        else:
            console.print(
                f"{node_a.adapter.info.vendor} cannot plant non-minimal data "
                "(PlantsSensitiveData), so the demo cannot show what stays home."
            )
        _show_refusals(node_a, showcase, federation, console)
        _show_report(node_a, showcase, federation, console)
        show_api_story(node_a, node_b, people_a[-1], console)
    finally:
        for node in (node_a, node_b):
            node.stop()
            node.adapter.close()
        for topology in (
            cpas_topology([gent.cpas_id, liege.cpas_id], names=names),
            directory_topology([gent.cpas_id, liege.cpas_id], names=names),
        ):
            delete_topology(split_urls(amqp_url)[0], topology, tls)
    console.print(
        f"\nEverything the demo made is in {root} (keys, directory, vendor data, node stores)."
    )
    return 0


def expand_workdir(options: Mapping[str, str], folder: Path) -> dict[str, str]:
    """The options with ``{workdir}`` as the node's own folder and ``{workid}`` as its name."""
    return {
        key: value.replace("{workdir}", str(folder)).replace(
            "{workid}", folder.name.replace("-", "_")
        )
        for key, value in options.items()
    }


def _people(node: Node, count: int, *, seed: int) -> list[str]:
    """Synthetic people in the node's vendor system: seeded, or imported when it cannot seed."""
    adapter = node.adapter
    if isinstance(adapter, Seedable):
        return adapter.seed(count, seed=seed)
    rng = random.Random(seed)
    people = [make_beneficiary(rng, node.cpas_id).dossier for _ in range(count)]
    for dossier in people:
        adapter.import_dossier(dossier, message_id=str(uuid.uuid4()))
    return [dossier.person.number for dossier in people]


def _count(node: Node) -> str:
    adapter = node.adapter
    return str(adapter.count_persons()) if isinstance(adapter, Inspectable) else "—"


def _node(
    federation: LocalFederation,
    cpas_id: str,
    adapter: str,
    options: dict[str, str],
    amqp_url: str,
    names: Names,
    registry: object,
    tls: BrokerTLS | None = None,
    policy: dict[str, str] | None = None,
) -> Node:
    settings: dict[str, object] = {} if policy is None else {"policy": policy}
    if tls is not None:
        settings["broker_tls"] = {
            key: str(value)
            for key, value in (
                ("ca_file", tls.ca_file),
                ("cert_file", tls.cert_file),
                ("key_file", tls.key_file),
            )
            if value is not None
        }
    config = federation.node_config(
        cpas_id, adapter, options, amqp_url=amqp_url, namespace=names.namespace, **settings
    )
    return build_node(config, adapters=registry)  # type: ignore[arg-type]


def _transfer(
    moves: list[tuple[Node, Node, str]], console: Console
) -> list[tuple[Node, Node, str, str]]:
    sent = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Sending dossiers", total=len(moves))
        for sender, receiver, number in moves:
            s = sender.send_transfer(number, receiver.cpas_id, Purpose.CONTINUITY_AFTER_MOVE)
            sent.append((sender, receiver, number, s.message_id))
            progress.advance(task)
        task = progress.add_task("Waiting for signed receipts", total=len(sent))
        for sender in {s for s, _, _, _ in sent}:
            ids = [mid for s, _, _, mid in sent if s is sender]
            sender.wait_for_outcomes(ids, timeout=60)
            progress.advance(task, len(ids))
    return sent


def _show_moves(
    rows: list[tuple[Node, Node, str, str]], federation: LocalFederation, console: Console
) -> None:
    table = Table(title="Dossiers moved (each sealed to the receiver, signed by the sender)")
    for column in ("from", "to", "person", "decisions", "receipt"):
        table.add_column(column)
    outcomes: dict[str, int] = {}
    for sender, receiver, number, message_id in rows:
        entry = sender.store.outgoing(message_id)
        outcome = (entry.outcome if entry else None) or "no receipt yet"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        dossier = receiver.adapter.export_dossier(number)
        table.add_row(
            _label(federation, sender),
            _label(federation, receiver),
            mask(number) + (f"  {dossier.person.family_name}" if dossier else ""),
            str(len(dossier.aid_history)) if dossier else "—",
            outcome,
        )
    console.print(table)
    console.print("Receipts: " + ", ".join(f"{v} {k}" for k, v in sorted(outcomes.items())))


def _label(federation: LocalFederation, node: Node) -> str:
    institution = federation.directory.get(node.cpas_id)
    name = institution.name("fr") if institution else node.cpas_id
    return f"{name.removeprefix('CPAS de ')} ({node.adapter.info.vendor})"


def _show_holdings(
    a: Node, b: Node, before: dict[str, str], federation: LocalFederation, console: Console
) -> None:
    table = Table(title="What each vendor system holds")
    for column in (
        "CPAS",
        "vendor",
        "storage",
        "people before",
        "people after",
        "imported",
        "duplicates",
    ):
        table.add_column(column)
    for node in (a, b):
        info = node.adapter.info
        table.add_row(
            _label(federation, node).split(" (")[0],
            info.vendor,
            STORAGE.get(info.name, f"{info.product} {info.version}"),
            before[node.cpas_id],
            _count(node),
            str(node.stats["imported"]),
            str(node.stats["duplicates"]),
        )
    console.print(table)


def _show_minimality(
    a: Node, b: Node, number: str, federation: LocalFederation, console: Console
) -> None:
    exported = a.adapter.export_dossier(number)
    sent_xml = exported.to_xml().decode() if exported else ""
    received = b.adapter.export_dossier(number)
    received_xml = received.to_xml().decode() if received else ""
    # A file-based receiver: search its own files too, not only what it exports.
    folder = getattr(b.adapter, "folder", None)
    fiche = (
        next((p.read_text(encoding="utf-8") for p in Path(folder).rglob(f"{number}.json")), "")
        if folder is not None
        else ""
    )
    table = Table(title=f"What stayed home: {mask(number)}, held by {_label(federation, a)}")
    for column in ("kind", "held by the sending vendor", "in the dossier sent", "at the receiver"):
        table.add_column(column)
    items = [
        ("social worker's note", SHOWCASE.notes[0]),
        ("activation measure", SHOWCASE.activation_measures[0]),
        ("sanction", SHOWCASE.sanctions[0]),
        ("refused application, reason", SHOWCASE.refused_applications[0][1]),
        ("family member", SHOWCASE.family_members[0].name),
    ]
    for kind, text in items:
        table.add_row(
            kind,
            text,
            "present!" if text in sent_xml else "absent",
            "present!" if text in fiche + received_xml else "absent",
        )
    console.print(table)
    if received is not None:
        console.print(
            f"Arrived at {b.adapter.info.vendor} with {len(received.aid_history)} decisions, "
            f"household '{received.household.category.value}', "
            f"last social inquiry {received.last_social_inquiry}."
        )


def _show_refusals(
    sender: Node, number: str, federation: LocalFederation, console: Console
) -> None:
    targets = [
        next(i for i in federation.directory.institutions if i.kind is InstitutionKind.POLICE),
        next(i for i in federation.directory.institutions if i.kind is InstitutionKind.EMPLOYMENT),
        next(i for i in federation.directory.institutions if i.status is InstitutionStatus.MERGED),
    ]
    lines = []
    for target in targets:
        try:
            sender.send_transfer(number, target.id, Purpose.CONTINUITY_AFTER_MOVE)
            lines.append(f"[red]SENT to {escape(target.label)}: this must never happen[/red]")
        except DestinationRefused as refusal:
            lines.append(
                f"[green]refused[/green] {target.name('fr')}: [{refusal.code}] {refusal.message}"
            )
        except GatewayError as error:
            lines.append(f"refused: {escape(str(error))}")
    console.print(
        Panel(
            "\n".join(lines),
            title="Attempts to send outside the CPAS network (nothing was published)",
        )
    )


def _show_report(node: Node, number: str, federation: LocalFederation, console: Console) -> None:
    """The person's own report, as a social worker in Gent would print it for them."""
    if node.journal is None:
        return
    report = build_report(
        node.journal, federation.directory, cpas_id=node.cpas_id, person_number=number, lang="nl"
    )
    console.print(
        Panel(
            escape(render(report, "text")),
            title=f"The person's report ({mask(number)}), in Dutch: `cpas-gateway report`",
        )
    )
