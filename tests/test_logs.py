"""Logs an operator can use: JSON lines with the message fields, never a person."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GENT, LIEGE

from gateway.broker import Names, cpas_topology, delete_topology, directory_topology
from gateway.cli import main
from gateway.federation.localnet import make_local_federation
from gateway.logs import configure_logging, mask_person_numbers
from gateway.model.envelope import Purpose
from gateway.model.identifiers import make_niss
from gateway.node import build_node


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("gateway.broker", "gateway.node", "pika"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_a_run_logs_json_lines_with_message_fields_and_no_person(
    amqp_url: str, tmp_path: Path
) -> None:
    federation = make_local_federation(tmp_path / "federation", [GENT, LIEGE], small=True)
    gent, liege = federation.member(GENT), federation.member(LIEGE)
    namespace = f"logs-{uuid.uuid4().hex[:8]}"
    sender_config = federation.node_config(
        gent.cpas_id,
        "ocmwdata",
        {"url": f"sqlite:///{gent.folder}/vendor.sqlite3"},
        amqp_url=amqp_url,
        namespace=namespace,
    )
    federation.node_config(
        liege.cpas_id,
        "fichesociale",
        {"folder": str(liege.folder / "fiches")},
        amqp_url=amqp_url,
        namespace=namespace,
    )
    stderr = tmp_path / "run.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPAS_GATEWAY_")}
    with stderr.open("wb") as err:
        receiver = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(liege.folder / "node.toml"),
             "--log-format", "json", "--log-level", "gateway.broker=DEBUG"],
            stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "connected to the broker" not in stderr.read_text(encoding="utf-8"):
            assert receiver.poll() is None, stderr.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "the receiving node did not connect"
            time.sleep(0.2)
        sender = build_node(sender_config).start()
        try:
            numbers = sender.adapter.seed(2, seed=77)  # type: ignore[attr-defined]
            people = [sender.adapter.export_dossier(n) for n in numbers]
            sent = [
                sender.send_transfer(n, liege.cpas_id, Purpose.CONTINUITY_AFTER_MOVE)
                for n in numbers
            ]
            outcomes = sender.wait_for_outcomes([s.message_id for s in sent], timeout=60)
            assert {o.outcome for o in outcomes.values()} == {"imported"}
        finally:
            sender.stop()
            sender.adapter.close()
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(60)
        names = Names(namespace)
        for topology in (
            cpas_topology(federation.members, names=names),
            directory_topology(federation.members, names=names),
        ):
            delete_topology(amqp_url, topology)
    lines = stderr.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    received = [e for e in entries if e.get("event") == "received"]
    assert {e["message_id"] for e in received} == {s.message_id for s in sent}
    assert all(e["peer"] == gent.cpas_id and e["message_type"] == "transfer" for e in received)
    assert {e.get("outcome") for e in entries if e.get("event") == "receipt-sent"} == {"imported"}
    assert any(e["logger"].startswith("gateway.broker.") for e in entries)
    text = "\n".join(lines)
    for person in people:
        assert person is not None
        assert person.person.niss not in text
        assert person.person.family_name not in text
        for given in person.person.given_names:
            assert given not in text


def test_a_level_per_component_leaves_the_others_alone(restore_logging: None) -> None:
    configure_logging(level="INFO", levels={"gateway.broker": "DEBUG"}, stream=io.StringIO())
    assert logging.getLogger("gateway.broker").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("gateway.node").getEffectiveLevel() == logging.INFO


def test_pika_tracebacks_stay_out_of_the_operators_log(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(level="DEBUG", stream=out)
    try:
        raise ConnectionRefusedError("refused")
    except ConnectionRefusedError:
        logging.getLogger("pika.adapters.blocking_connection").exception("connect failed")
    assert out.getvalue() == ""


def test_a_json_line_masks_a_national_number_a_message_would_carry(
    restore_logging: None,
) -> None:
    out = io.StringIO()
    configure_logging(level="INFO", log_format="json", stream=out)
    number = make_niss(dt.date(1985, 7, 14), 123)
    logging.getLogger("gateway.test").warning("lookup failed for %s", number)
    entry = json.loads(out.getvalue())
    assert number not in out.getvalue()
    assert entry["message"] == "lookup failed for <national-number>"


def test_eleven_digits_that_are_not_a_national_number_stay() -> None:
    assert mask_person_numbers("order 12345678901 shipped") == "order 12345678901 shipped"


def test_a_malformed_log_level_flag_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "node.toml"
    config.write_text('cpas_id = "x"\n')
    assert main(["run", "--config", str(config), "--log-level", "gateway.broker"]) == 1
    assert "COMPONENT=LEVEL" in capsys.readouterr().err
