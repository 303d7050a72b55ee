"""How commands print: rich tables for people, JSON for programs, times with their zone.

Text printed through :data:`console` and :data:`err_console` is printed as it is: rich markup
is off, so a value that looks like markup (``[rental_id]`` in a suggested fix, ``[bold]`` in a
name) is never eaten or turned into a style. Styling is asked for explicitly, with
:func:`styled` (a markup template whose values are escaped) or a :class:`rich.text.Text`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

F = TypeVar("F", bound=Callable[..., Any])

console = Console(markup=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def styled(template: str, *values: Any) -> Text:
    """Styled text: rich markup in ``template``, each ``{}`` filled with a value shown verbatim.

    ``styled("[red]needs attention:[/] {}", reason)`` colours the label and prints the reason
    exactly as it is, square brackets included. Only the template is read as markup.
    """
    return Text.from_markup(template.format(*(escape(str(v)) for v in values)))


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
        return "—"
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def shown(value: Any) -> str:
    """A value as a person reads it: ``yes``/``no`` for booleans, ``—`` for missing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    out = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        # ids are copied into the next command: never wrap or cut them
        out.add_column(column, no_wrap=column == "id", min_width=16 if column == "id" else None)
    for row in rows:
        out.add_row(*(shown(v) for v in row))
    return out
