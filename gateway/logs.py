"""Logs an operator can use: text or one JSON object per line, a level per component.

Messages are logged with what an operator needs to follow them -- message
id, type, peer CPAS, event and outcome -- as structured fields
(``extra={"message_id": ...}``), never with a national number or a name.
The JSON formatter writes those fields as keys, and, as a last safeguard,
masks anything in a log line that reads as a valid NISS or BIS number.

``configure_logging`` is called once by the command line: a global level,
levels per logger name (``{"gateway.broker": "DEBUG"}``), and pika's own
connection tracebacks kept out of the operator's terminal (the gateway
reports each connection failure in one sentence of its own).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

from stdnum.be import bis, nn

from gateway.model.errors import ConfigError

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

MESSAGE_FIELDS = ("message_id", "message_type", "peer", "event", "outcome", "code", "cpas")
"""The structured fields a log record may carry, in the order JSON lines show them."""

_ELEVEN_DIGITS = re.compile(r"(?<!\d)(\d{2}[.]?\d{2}[.]?\d{2}[-.]?\d{3}[.]?\d{2})(?!\d)")

QUIET_LOGGERS = {"pika": "CRITICAL"}
"""Libraries whose own failure logs (with tracebacks) the gateway reports itself."""


def mask_person_numbers(text: str) -> str:
    """Replace every valid NISS or BIS number in ``text`` by ``<national-number>``."""

    def masked(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(1))
        if nn.is_valid(digits) or bis.is_valid(digits):
            return "<national-number>"
        return match.group(1)

    return _ELEVEN_DIGITS.sub(masked, text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the message fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_person_numbers(record.getMessage()),
        }
        for name in MESSAGE_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = str(value)
        if record.exc_info:
            # The exception's type and text, on the same line: a collector
            # keeps one event together.
            entry["error"] = mask_person_numbers(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic text line, with the message fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = mask_person_numbers(super().format(record))
        fields = [
            f"{name}={getattr(record, name)}"
            for name in MESSAGE_FIELDS
            if getattr(record, name, None) is not None
        ]
        return f"{line} [{' '.join(fields)}]" if fields else line


class _GatewayHandler(logging.StreamHandler):
    """The gateway's handler: to a given stream, or to the current ``sys.stderr``."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self._fixed = stream  # the base class stored sys.stderr when None: undo that

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        self._fixed = value


def configure_logging(
    *,
    level: str | int = logging.WARNING,
    log_format: LogFormat = "text",
    levels: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Set up the root logger's handler (replacing the one set before) and the levels.

    :param stream: where to write; default: whatever ``sys.stderr`` is when a
        line is written.
    """
    handler = _GatewayHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    # Only our own handler is replaced: others (a test runner's) stay.
    for old in [h for h in root.handlers if isinstance(h, _GatewayHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, component_level in (QUIET_LOGGERS | dict(levels or {})).items():
        logging.getLogger(name).setLevel(component_level)


def parse_levels(values: list[str]) -> dict[str, str]:
    """``["gateway.broker=DEBUG", ...]`` (the ``--log-level`` flag) as a mapping."""
    levels = {}
    for value in values:
        name, sep, level = value.partition("=")
        if not sep or not name or level.upper() not in logging.getLevelNamesMapping():
            raise ConfigError(
                f"--log-level {value!r}: write COMPONENT=LEVEL, e.g. gateway.broker=DEBUG."
            )
        levels[name] = level.upper()
    return levels
