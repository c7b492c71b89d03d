"""A node's configuration: secrets stay out of logs and tracebacks, the policy is typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import NodeConfig
from gateway.model.codes import PolicyAction
from gateway.model.envelope import Purpose
from gateway.model.errors import ConfigError


def _write(folder: Path, extra: str = "") -> Path:
    path = folder / "node.toml"
    path.write_text(
        'cpas_id = "0201234517"\n'
        'keys = "keys"\n'
        'directory = "directory.xml"\n'
        'trust_anchor = "federation.pub"\n'
        'amqp_url = "amqp://gent:pa55word@broker-1:5672/dse,amqp://gent:pa55word@broker-2/dse"\n'
        'key_passphrase = "open sesame"\n' + extra + "[adapter]\n"
        'name = "ocmwdata"\n',
        encoding="utf-8",
    )
    return path


def test_the_broker_password_and_key_passphrase_never_show_in_the_configuration(
    tmp_path: Path,
) -> None:
    config = NodeConfig.load(_write(tmp_path))
    for shown in (repr(config), str(config), config.model_dump_json()):
        assert "pa55word" not in shown
        assert "open sesame" not in shown
    assert config.amqp_urls == [
        "amqp://gent:pa55word@broker-1:5672/dse",
        "amqp://gent:pa55word@broker-2/dse",
    ]


def test_the_policy_is_read_as_purposes_and_actions(tmp_path: Path) -> None:
    config = NodeConfig.load(_write(tmp_path, '[policy]\n"new-application-inquiry" = "hold"\n'))
    assert config.policy == {Purpose.NEW_APPLICATION_INQUIRY: PolicyAction.HOLD}
    assert type(next(iter(config.policy))) is Purpose


@pytest.mark.parametrize(
    "policy",
    ['"police-inquiry" = "auto"', '"new-application-inquiry" = "always"'],
    ids=["unknown-purpose", "unknown-action"],
)
def test_a_policy_outside_the_closed_lists_is_refused_in_one_sentence(
    tmp_path: Path, policy: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(_write(tmp_path, f"[policy]\n{policy}\n"))
    assert "policy" in refused.value.message
    assert "\n" not in refused.value.message
