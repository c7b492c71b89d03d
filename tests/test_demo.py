"""``cpas-gateway demo --adapter NAME``: a vendor's adapter against a reference one."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest
from memory_adapter import MemoryPlugin
from rich.console import Console

from gateway.demo import run_demo
from gateway.federation.localnet import cpas_id_of
from gateway.model.errors import ConfigError

GENT = "44021"


def demo(amqp_url: str, workdir: Path, **kwargs: object) -> str:
    out = io.StringIO()
    status = run_demo(
        amqp_url,
        count=4,
        workdir=workdir,
        console=Console(file=out, width=200),
        plugins=[MemoryPlugin()],
        **kwargs,  # type: ignore[arg-type]
    )
    assert status == 0
    return out.getvalue()


def gent_options(workdir: Path) -> dict[str, str]:
    folder = workdir / "federation" / f"cpas-{cpas_id_of(GENT)}"
    config = tomllib.loads((folder / "node.toml").read_text(encoding="utf-8"))
    return dict(config["adapter"]["options"])


def test_a_vendors_adapter_exchanges_dossiers_both_ways_with_a_reference_adapter(
    amqp_url: str, tmp_path: Path
) -> None:
    shown = demo(amqp_url, tmp_path, adapter="memory")
    assert "Receipts: 4 imported" in shown
    assert "Gand (Test)" in shown and "(FicheSociale)" in shown
    assert "What stayed home" in shown and "present!" not in shown


def test_the_demo_shows_a_request_held_in_gent_and_released_at_its_desk(
    amqp_url: str, tmp_path: Path
) -> None:
    shown = " ".join(demo(amqp_url, tmp_path).replace("│", " ").split())
    assert "Gent's policy holds it: Liège sees the state held." in shown
    assert "Social worker GT-SW-117 signs in to Gent's desk" in shown
    assert "Liège sees the state answered." in shown
    assert "request-answered" in shown
    assert "(référence LG-AS-0042) a demandé votre dossier" in shown


def test_the_vendors_adapter_gets_a_fresh_store_in_its_nodes_own_folder(
    amqp_url: str, tmp_path: Path
) -> None:
    demo(amqp_url, tmp_path, adapter="memory")
    folder = tmp_path / "federation" / f"cpas-{cpas_id_of(GENT)}"
    assert gent_options(tmp_path) == {"folder": f"{folder}/memory"}


def test_an_option_given_to_the_demo_wins_with_the_nodes_folder_as_workdir(
    amqp_url: str, tmp_path: Path
) -> None:
    demo(amqp_url, tmp_path, adapter="memory", options={"folder": "{workdir}/mine", "x": "1"})
    folder = tmp_path / "federation" / f"cpas-{cpas_id_of(GENT)}"
    assert gent_options(tmp_path) == {"folder": f"{folder}/mine", "x": "1"}


def test_an_adapter_that_is_not_installed_is_named_with_those_that_are(
    amqp_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as refused:
        demo(amqp_url, tmp_path, adapter="acme")
    assert refused.value.code == "adapter.unknown" and "memory" in refused.value.message
