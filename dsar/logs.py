"""Logging set-up: plain text for people, one JSON object per line for log pipelines.

Log lines name requests and tasks by id only; no identity or collected value is ever logged.

:func:`configure` puts one handler on the root logger, so every library that logs through
:mod:`logging` (Dramatiq, Alembic, pika, botocore) prints in the same format as dsar. The
handler writes to whatever ``sys.stderr`` is when a line is logged: Dramatiq's worker processes
point ``sys.stderr`` at a pipe their parent reads, and lines logged there stay whole.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

_EXTRAS = ("request_id", "task_id", "flag", "system")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries whose INFO lines are chatter in a worker's log (Alembic announces each of its
# plugins every time a migration context is set up).
QUIET = ("pika", "botocore", "urllib3", "alembic")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRAS:
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = record.exc_info[0].__name__
        return json.dumps(data)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler on the current ``sys.stderr`` (looked up at each line, not once)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (``text`` or ``json``)."""
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT, "%Y-%m-%dT%H:%M:%S%z")


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Make the root logger's only handler print ``log_format`` lines on standard error, at
    ``level``, with the :data:`QUIET` libraries at WARNING."""
    handler = StderrHandler()
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
