"""SQL building blocks for the SQL connector: value coercion, paging, row JSON and digests.

Subject predicates are built in :mod:`connectors.sql_plan`. Here: converting request values to a
column's type (:func:`coerce`), keyset pagination over a statement (:func:`paged`,
:func:`pages`), rows as canonical-JSON-able dicts (:func:`json_value`, :func:`json_rows`) and
the streaming SHA-256 of their RFC 8785 encoding (:class:`StreamDigest`), which feeds signed
evidence and must stay byte-identical to ``sha256(canonical_json(rows))``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from dsar.planning import SystemWalk
from dsar.records.canonical import canonical_json

CHUNK = 1000
MAX_SAFE_INT = 2**53 - 1


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def coerce(column: sa.Column[Any], values: Iterable[str]) -> list[Any]:
    """``values`` converted to what ``column`` holds; values that cannot be (``"abc"`` for an
    integer column) cannot match and are dropped."""
    out: list[Any] = []
    col_type = column.type
    for value in values:
        try:
            if isinstance(col_type, sa.Integer):
                out.append(int(str(value).strip()))
            elif isinstance(col_type, sa.Numeric):
                out.append(decimal.Decimal(str(value).strip()))
            elif isinstance(col_type, sa.Uuid):
                out.append(uuid.UUID(str(value)))
            else:
                out.append(str(value))
        except (ValueError, ArithmeticError):
            continue
    return sorted(set(out), key=str)


def json_value(value: Any) -> Any:
    """A value as canonical-JSON-able data (dates ISO 8601, decimals and big ints as text)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID | dt.timedelta):
        return str(value)
    return str(value)


def json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): json_value(v) for k, v in row.items()}


_NONE = type(None)
_FAST: dict[type, Any] = {  # exact types whose json_value is one call (subclasses: json_value)
    dt.datetime: dt.datetime.isoformat, dt.date: dt.date.isoformat,
    dt.time: dt.time.isoformat, decimal.Decimal: str, uuid.UUID: str,
}


def json_rows(names: Sequence[str], rows: Iterable[Sequence[Any]]
              ) -> tuple[list[dict[str, Any]], bool]:
    """``[json_row(dict(zip(names, row))) for row in rows]`` (``names`` already str), fast;
    and whether the rows are *plain* — every name ASCII and every value None, a str, a bool or
    an int within ±(2**53 - 1), i.e. anything but a float — as :meth:`StreamDigest.add_rows`
    needs to know."""
    out: list[dict[str, Any]] = []
    plain = "".join(names).isascii()
    fast = _FAST.get
    for row in rows:
        item: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            kind = type(value)
            if kind is str or kind is _NONE or kind is bool or (
                    kind is int and -MAX_SAFE_INT <= value <= MAX_SAFE_INT):
                item[name] = value
            elif (convert := fast(kind)) is not None:
                item[name] = convert(value)
            else:
                item[name] = converted = json_value(value)
                if isinstance(converted, float):
                    plain = False
        out.append(item)
    return out, plain


_MAX_SAFE_INT = 2**53 - 1
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            check_circular=False)  # rows are flat: nothing to recurse into


def canonical_flat(obj: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """RFC 8785 canonical JSON of a flat row or key tuple, fast.

    For strings, safe integers, booleans and nulls under ASCII keys, ``json.dumps`` with
    sorted keys and no spaces produces exactly the RFC 8785 bytes, many times faster than the
    general encoder; anything else (floats, nested values, lone surrogates) goes to it."""
    values = obj.values() if isinstance(obj, Mapping) else obj
    plain = all(v is None or isinstance(v, str)
                or (isinstance(v, int) and -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT)
                for v in values)
    if plain and (not isinstance(obj, Mapping) or all(k.isascii() for k in obj)):
        try:
            return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
        except UnicodeEncodeError:
            pass
    return canonical_json(obj)


class StreamDigest:
    """SHA-256 of the canonical JSON array of rows, fed one row at a time (equal to
    ``sha256(canonical_json(rows))``)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"[")
        self._first = True

    def add(self, row: Mapping[str, Any]) -> None:
        if not self._first:
            self._hash.update(b",")
        self._first = False
        self._hash.update(canonical_flat(row))

    def add_rows(self, rows: Sequence[Mapping[str, Any]], plain: bool = False) -> None:
        """``add`` each row, in order. ``plain`` promises that every key is ASCII and every
        value None, a str, a bool or an int within ±(2**53 - 1) (as :func:`json_rows`
        reports): then one ``json.dumps`` of the whole list yields exactly the rows' RFC 8785
        encodings joined by commas."""
        if plain and rows:
            try:
                body = _ENCODER.encode(rows).encode()
            except UnicodeEncodeError:  # lone surrogates: the general encoder decides
                pass
            else:
                if not self._first:
                    self._hash.update(b",")
                self._first = False
                self._hash.update(memoryview(body)[1:-1])
                return
        for row in rows:
            self.add(row)

    def hexdigest(self) -> str:
        final = self._hash.copy()
        final.update(b"]")
        return final.hexdigest()


def pk_text(values: Sequence[Any]) -> str:
    """The canonical text of a primary key, the input of its keyed hash."""
    return canonical_flat([json_value(v) for v in values]).decode()


def paged(stmt: sa.Select[Any], table: sa.Table, pk: Sequence[str],
          batch: int) -> tuple[sa.Select[Any], sa.Select[Any] | None]:
    """For :func:`pages`: ``stmt`` (which must select the ``pk`` columns) ordered by primary
    key and limited to ``batch`` rows, and the same for the rows after a key bound as
    ``_after0``, ``_after1`` …; without a primary key, ``stmt`` and None. Build once, reuse."""
    if not pk:
        return stmt, None
    cols = [table.c[c] for c in pk]
    ordered = stmt.order_by(*cols).limit(batch)
    binds = [sa.bindparam(f"_after{i}", type_=c.type) for i, c in enumerate(cols)]
    after = cols[0] > binds[0] if len(cols) == 1 else sa.tuple_(*cols) > sa.tuple_(*binds)
    return ordered, ordered.where(after)


def pages(fetch: Callable[[Any, dict[str, Any]], Sequence[Sequence[Any]]], first: Any,
          after: Any, pk: Sequence[int], batch: int, params: Mapping[str, Any],
          first_rows: Sequence[Sequence[Any]] | None = None
          ) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of the :func:`paged` statements ``first``/``after`` (``params`` bound; ``pk``
    the primary key's positions in a row) in primary-key order, ``batch`` at a time, by keyset
    pagination: one short query per page, so memory is bounded by the batch and a subject with
    few rows costs one round trip. ``fetch(statement, params)`` runs one page; ``first_rows``
    is the first page when the caller has already fetched it."""
    params = dict(params)
    rows = fetch(first, params) if first_rows is None else first_rows
    while True:
        if rows:
            yield rows
        if len(rows) < batch:
            return
        last = rows[-1]
        params.update({f"_after{i}": last[at] for i, at in enumerate(pk)})
        rows = fetch(after, params)


def stream(conn: sa.Connection, stmt: sa.Executable, batch: int,
           params: Mapping[str, Any]) -> Iterator[Sequence[sa.Row[Any]]]:
    """The rows of ``stmt`` through a server-side cursor, ``batch`` at a time (for tables
    without a primary key, which keyset pagination needs)."""
    opts = {"stream_results": True, "max_row_buffer": batch}
    yield from conn.execute(stmt, dict(params), execution_options=opts).partitions(batch)


KNOWN_VALUES_LIMIT = 10_000
"""Up to this many values, a child table is looked up by its parent's values, bound, rather
than by repeating the parent's look-up as a sub-query."""


def referenced_columns(walk: SystemWalk) -> dict[str, list[tuple[str, ...]]]:
    """Per table, the column tuples that other tables' references point at."""
    out: dict[str, list[tuple[str, ...]]] = {name: [] for name in walk.discovery}
    for matches in walk.matches.values():
        for match in matches:
            if match.via == "reference" and match.source in out:
                columns = tuple(match.source_columns)
                if columns not in out[match.source]:
                    out[match.source].append(columns)
    return out

