"""How commands print: rich tables for people, JSON for programs, times with their zone."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def json_option(func: F) -> F:
    """Add ``--json``: print machine-readable output instead of tables."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON instead of text, for scripts.")(func)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_default, ensure_ascii=False) + "\n")


def local_time(moment: datetime | None, tz: str) -> str:
    """``2025-03-05 09:30 CET``: a time in the controller's zone, with the zone shown."""
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    out = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        # ids are copied into the next command: never wrap or cut them
        out.add_column(column, no_wrap=column == "id", min_width=16 if column == "id" else None)
    for row in rows:
        out.add_row(*("-" if v is None else str(v) for v in row))
    return out
