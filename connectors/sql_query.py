"""SQL building blocks for the SQL connector: subject predicates, value coercion, row JSON.

:func:`subject_predicate` turns a table's :class:`~dsar.planning.Match` list into one SQL
condition. Key matches compare a column with the key's values, converted to the column's type
and always bound (expanding ``IN`` parameters, in chunks of :data:`CHUNK`). Matches fed by
another table become ``IN (SELECT …)`` sub-queries over that table's own predicate, so the
database walks customer -> invoice -> invoice line itself and nothing is held in memory. The
planner guarantees the matches form no cycle.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
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


def _in(columns: list[sa.Column[Any]], target: Any) -> sa.ColumnElement[bool]:
    if len(columns) == 1:
        return columns[0].in_(target)
    return sa.tuple_(*columns).in_(target)


def subject_predicate(
    walk: SystemWalk,
    name: str,
    keys: Mapping[str, Iterable[str]],
    tables: Mapping[str, sa.Table],
    _memo: dict[str, sa.ColumnElement[bool] | None] | None = None,
    fold_case: frozenset[str] = frozenset({"email"}),
    known: Mapping[tuple[str, tuple[str, ...]], Sequence[Any]] | None = None,
) -> sa.ColumnElement[bool] | None:
    """The condition selecting the subject's rows of table ``name``; None when nothing can
    match (no key values reach it).

    Keys named in ``fold_case`` (email, by default) match their column case-insensitively:
    the request's value is normalised to lower case, and addresses are stored as people typed
    them. On PostgreSQL, an index on ``lower(column)`` keeps that fast.

    ``known`` maps ``(table, columns)`` to every value those columns hold in the subject's rows
    of that table, when the caller has already read all of them (collect does): a reference
    from that table then binds those values instead of repeating the look-up as a sub-query."""
    memo = {} if _memo is None else _memo
    if name in memo:
        return memo[name]
    table = tables[name]
    clauses: list[sa.ColumnElement[bool]] = []
    for match in walk.matches.get(name, ()):
        cols = [table.c[c] for c in match.columns]
        if match.source is None:
            values = coerce(cols[0], keys.get(match.key or "", ()))
            target: Any = cols[0]
            if match.key in fold_case and isinstance(cols[0].type, sa.String):
                target = sa.func.lower(cols[0])
                values = sorted({str(v).lower() for v in values})
            clauses += [target.in_(list(part)) for part in chunks(values)]
            continue
        seen = (known or {}).get((match.source, tuple(match.source_columns)))
        if seen is not None:
            clauses += [_in(cols, list(part)) for part in chunks(list(seen))]
            continue
        source_pred = subject_predicate(walk, match.source, keys, tables, memo, fold_case,
                                        known)
        if source_pred is None:
            continue
        source = tables[match.source]
        sub = sa.select(*[source.c[c] for c in match.source_columns]).where(source_pred)
        clauses.append(_in(cols, sub))
    memo[name] = sa.or_(*clauses) if clauses else None
    return memo[name]


def pk_in(table: sa.Table, pk: Sequence[str], values: Sequence[tuple[Any, ...]]) -> Any:
    """``pk IN (bound values)`` for one chunk of primary-key tuples."""
    cols = [table.c[c] for c in pk]
    if len(cols) == 1:
        return cols[0].in_([v[0] for v in values])
    return sa.tuple_(*cols).in_([tuple(v) for v in values])


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


_MAX_SAFE_INT = 2**53 - 1


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

    def hexdigest(self) -> str:
        final = self._hash.copy()
        final.update(b"]")
        return final.hexdigest()


def pk_text(values: Sequence[Any]) -> str:
    """The canonical text of a primary key, the input of its keyed hash."""
    return canonical_flat([json_value(v) for v in values]).decode()


def pages(conn: sa.Connection, stmt: sa.Select[Any], table: sa.Table, pk: Sequence[str],
          batch: int) -> Iterator[list[sa.Row[Any]]]:
    """The rows of ``stmt`` (which must select the ``pk`` columns) in primary-key order,
    ``batch`` at a time, by keyset pagination: one short query per page, so memory is bounded
    by the batch and a subject with few rows costs one round trip. Without a primary key, a
    server-side cursor streams them instead."""
    if not pk:
        opts = {"stream_results": True, "max_row_buffer": batch}
        yield from conn.execute(stmt, execution_options=opts).partitions(batch)
        return
    cols = [table.c[c] for c in pk]
    ordered = stmt.order_by(*cols).limit(batch)
    page = ordered
    while True:
        rows = conn.execute(page).all()
        if rows:
            yield rows
        if len(rows) < batch:
            return
        last = [rows[-1]._mapping[c] for c in cols]
        after = cols[0] > last[0] if len(cols) == 1 else sa.tuple_(*cols) > sa.tuple_(*last)
        page = ordered.where(after)


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


def value_of(raw: Any, columns: tuple[str, ...]) -> Any:
    if len(columns) == 1:
        return raw[columns[0]]
    values = tuple(raw[c] for c in columns)
    return None if any(v is None for v in values) else values
