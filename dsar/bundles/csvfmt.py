"""The bundle's CSV dialect: RFC 4180, UTF-8 (no BOM), ``\\r\\n`` line ends, header row.

Text is always quoted and numbers, booleans and nulls never are, so a reader can tell them apart:

- ``""`` is the empty string, an empty unquoted field is null (``None``);
- ``42``, ``-1.5``, ``1e+100`` are numbers, ``true``/``false`` booleans;
- every other value is a quoted string; its column's type in ``data.json`` says how to read it
  (a date, a decimal, base64 bytes …, see :mod:`dsar.bundles.values`); values of ``json``
  columns are JSON text.

Spreadsheets open this as usual. :func:`parse` reads it back exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from dsar.bundles.values import decode, dumps

INT = re.compile(r"^-?\d+$")
FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,\r\n"]*)')


def quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def cell(value: Any, kind: str | None) -> str:
    """One field for a JSON value (as written to data.json) of a column of type ``kind``."""
    cls = type(value)
    if cls is str and kind != "json":  # the common case first
        return '"' + value.replace('"', '""') + '"'
    if value is None:
        return ""
    if cls is int:
        return str(value)
    if kind == "json" or isinstance(value, list | dict):
        return quote(dumps(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return quote(str(value))


def header(columns: Sequence[str]) -> str:
    return ",".join(quote(c) for c in columns) + "\r\n"


def line(row: Mapping[str, Any], columns: Sequence[str], types: Mapping[str, str]) -> str:
    """One record; columns the row lacks are null."""
    return ",".join(cell(row.get(c), types.get(c)) for c in columns) + "\r\n"


def lines(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], types: Mapping[str, str]
) -> Iterator[str]:
    yield header(columns)
    for row in rows:
        yield line(row, columns, types)


def _records(text: str) -> Iterator[list[tuple[str, bool]]]:
    """Fields as ``(text, was_quoted)``, record by record."""
    pos, end = 0, len(text)
    record: list[tuple[str, bool]] = []
    while pos < end:
        match = FIELD.match(text, pos)
        if match is None:  # pragma: no cover - FIELD always matches (possibly empty)
            raise ValueError(f"malformed CSV at offset {pos}")
        quoted = match.group(1) is not None
        value = match.group(1).replace('""', '"') if quoted else match.group(2)
        record.append((value, quoted))
        pos = match.end()
        if text.startswith(",", pos):
            pos += 1
        elif text.startswith("\r\n", pos) or pos == end:
            pos += 2
            yield record
            record = []
        else:
            raise ValueError(f"malformed CSV at offset {pos}: {text[pos:pos + 20]!r}")


def _value(text: str, quoted: bool, kind: str | None) -> Any:
    if quoted:
        return json.loads(text) if kind == "json" else decode(text, kind)
    if text == "":
        return None
    if text in {"true", "false"}:
        return text == "true"
    return int(text) if INT.match(text) else float(text)


def parse(text: str, types: Mapping[str, str] | None = None) -> tuple[list[str], list[dict]]:
    """``(columns, rows)`` from a bundle CSV; with ``types`` values are decoded exactly."""
    types = types or {}
    records = _records(text)
    columns = [name for name, _ in next(records, [])]
    rows = [
        {c: _value(t, q, types.get(c)) for c, (t, q) in zip(columns, rec, strict=True)}
        for rec in records
    ]
    return columns, rows
