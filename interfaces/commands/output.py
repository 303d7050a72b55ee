"""How commands print: rich tables for people, JSON for programs, times with their zone.

Text printed through :data:`console` and :data:`err_console` is printed as it is: rich markup
is off, so a value that looks like markup (``[rental_id]`` in a suggested fix, ``[bold]`` in a
name) is never eaten or turned into a style. Styling is asked for explicitly, with
:func:`styled` (a markup template whose values are escaped) or a :class:`rich.text.Text`.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich import box
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

F = TypeVar("F", bound=Callable[..., Any])

class _Console(Console):
    """A console whose width follows ``COLUMNS`` as it is when printing, not as it was when the
    console was made: rich reads ``COLUMNS`` once, at construction, and these consoles are made
    at import, before ``CliRunner`` or a script sets the variable for one command."""

    @property  # type: ignore[override]
    def size(self) -> ConsoleDimensions:
        columns = os.environ.get("COLUMNS", "")
        self._width = int(columns) if columns.isdigit() else None
        return super().size


console = _Console(markup=False, emoji=False, highlight=False, soft_wrap=True)
err_console = _Console(stderr=True, markup=False, emoji=False, highlight=False,
                       soft_wrap=True)


_SLOT = "\x00"  # where a value goes: a character no template holds


def styled(template: str, *values: Any) -> Text:
    """Styled text: rich markup in ``template``, each ``{}`` filled with a value shown verbatim.

    ``styled("[red]needs attention:[/] {}", reason)`` colours the label and prints the reason
    exactly as it is, square brackets included. Only the template is read as markup.
    """
    marked = Text.from_markup(template.replace("{}", _SLOT), emoji=False)
    out, start, given = Text(end=marked.end), 0, iter(values)
    for at, char in enumerate(marked.plain):
        if char != _SLOT:
            continue
        out.append_text(marked[start:at])
        value = Text(str(next(given)))
        for span in marked.spans:
            if span.start <= at < span.end:
                value.stylize(span.style)
        out.append_text(value)
        start = at + 1
    out.append_text(marked[start:])
    return out


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


#: Columns whose values are copied or compared whole (ids, states, dates): never wrapped or cut.
WHOLE = frozenset({"id", "request", "state", "received", "due", "responded", "when",
                   "days left", "left", "setting", "kind", "regime", "channel", "on time",
                   "source", "event", "from", "to", "severity", "where", "system",
                   "collection"})

_FOLD_MIN = 10  # the narrowest a wrapping column gets

#: A header rule and spaces between columns, no outer frame: more room for the values.
_STYLE: dict[str, Any] = {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False,
                          "show_lines": False}


def _need(columns: Sequence[str], cells: list[list[str]]) -> int:
    """The narrowest width a table of these columns fits in without cutting a WHOLE value."""
    width = 3 * max(len(columns) - 1, 0)  # a space, the divider and a space between columns
    for i, column in enumerate(columns):
        values = [row[i] for row in cells]
        if column in WHOLE:
            width += max([len(column), *(len(v) for v in values)])
        else:
            longest = max([len(w) for v in [column, *values] for w in v.split()] or [1])
            width += min(longest, _FOLD_MIN)
    return width


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
          optional: Sequence[str] = (), width: int | None = None) -> Table:
    """A table that fits the terminal (``width``, default the console's) without cutting
    ids, dates or states (:data:`WHOLE` columns): other columns wrap; when that is not enough
    the ``optional`` columns are left out, in the order given (a caption says which and that
    ``--json`` has them); when even that is too wide, each row is shown as ``column value``
    lines. Values read as people read them (:func:`shown`)."""
    cells = [[shown(v) for v in row] for row in rows]
    width = width or console.width
    keep = list(range(len(columns)))
    dropped: list[str] = []
    for name in optional:
        if _need([columns[i] for i in keep], [[r[i] for i in keep] for r in cells]) <= width:
            break
        if name in columns:
            keep.remove(columns.index(name))
            dropped.append(name)
    names = [columns[i] for i in keep]
    caption = (textwrap.fill(f"narrow terminal: {', '.join(dropped)} left out (--json has "
                             "every field)", width) if dropped else None)
    if _need(names, [[r[i] for i in keep] for r in cells]) > width:
        return _vertical(title, list(columns), cells)
    out = Table(title=title, title_justify="left", caption=caption, caption_justify="left",
                **_STYLE)
    for name in names:
        whole = name in WHOLE
        out.add_column(name, no_wrap=whole, overflow="fold",
                       min_width=max([len(name), *(len(r[columns.index(name)]) for r in cells)])
                       if whole else None)
    for row in cells:
        out.add_row(*(row[i] for i in keep))
    return out


def _vertical(title: str | None, columns: list[str], cells: list[list[str]]) -> Table:
    """One ``column value`` line per field, a rule between rows: for very narrow terminals."""
    out = Table(title=title, title_justify="left", show_header=False, **_STYLE)
    out.add_column("field", no_wrap=True, style="bold")
    out.add_column("value", overflow="fold")
    for row in cells:
        for i, (name, value) in enumerate(zip(columns, row, strict=True)):
            out.add_row(name, value, end_section=i == len(columns) - 1)
    return out
