"""``collect`` for the SQL connector: stream the subject's rows, table by table, into a sink.

Each table's rows are read by keyset pages of ``batch_size`` rows in primary-key order (a
server-side cursor when there is no key), so memory is bounded by the batch and the digest is
reproducible. A reference from a table whose subject rows are all read by then is looked up by
their values, bound, rather than by repeating the look-up as a sub-query. Per table, evidence
holds the row count, the SHA-256 of the rows' canonical JSON array (exactly
``sha256(canonical_json(rows))``) and one keyed hash per row of ``system/table/pk`` (exactly
``context.keyed_hash(f"{system}/{table}/{pk_text(pk)}")``). The digest is of the rows' JSON
form (:func:`connectors.sql_query.json_row`); the sink gets the driver's values (dates,
decimals, UUIDs, big integers as such), so the bundle can name each column's type.

Statements come from :mod:`connectors.sql_plan`, built once per shape and reused; per request
only the bound values change.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import hashlib
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from connectors.base import CollectionSink, ConnectorContext, ConnectorResult, SubjectKeys
from connectors.sql_check import effective_pk
from connectors.sql_plan import SubjectLookup, statements_for
from connectors.sql_query import (
    KNOWN_VALUES_LIMIT,
    MAX_SAFE_INT,
    StreamDigest,
    json_rows,
    json_value,
    paged,
    pages,
    pk_text,
    referenced_columns,
    stream,
)
from dsar.datamap.schema import SqlSystem, SqlTable
from dsar.db.direct import DirectStatement, direct_ok, run
from dsar.evidence import CollectionEvidence
from dsar.planning import SystemWalk

_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@functools.lru_cache(maxsize=64)
def _hmac_states(key: bytes, prefix: str) -> tuple[Any, Any]:
    """SHA-256 states after HMAC's inner key pad and ``prefix``, and after its outer key pad
    (RFC 2104, exactly as :mod:`hmac` computes HMAC-SHA256). Kept per deployment key and
    table, like the key itself in the connector's context."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(key.translate(_IPAD))
    inner.update(prefix.encode())
    return inner, hashlib.sha256(key.translate(_OPAD))


class ItemHasher:
    """Per-row evidence hashes of one table: ``context.keyed_hash(f"{system}/{table}/"
    f"{pk_text(pk)}")``, byte for byte.

    With the standard context (HMAC-SHA256 under ``hash_key``) it runs HMAC from SHA-256
    states prepared once per key and table, and writes the key text of a single safe-integer
    key directly (``[42]``, what ``pk_text`` gives); anything else goes through ``pk_text``
    and, for a context that overrides ``keyed_hash``, through that."""

    def __init__(self, context: ConnectorContext, system: str, table: str) -> None:
        self._prefix = f"{system}/{table}/"
        self._keyed_hash = context.keyed_hash
        self._states: tuple[Any, Any] | None = None
        if type(context).keyed_hash is ConnectorContext.keyed_hash:
            self._states = _hmac_states(bytes(context.hash_key), self._prefix)

    def _mac(self, tail: bytes) -> str:
        assert self._states is not None
        inner = self._states[0].copy()
        inner.update(tail)
        outer = self._states[1].copy()
        outer.update(inner.digest())
        return outer.hexdigest()  # type: ignore[no-any-return]

    def one(self, pk: Sequence[Any]) -> str:
        if self._states is None:
            return self._keyed_hash(f"{self._prefix}{pk_text(pk)}")
        return self._mac(pk_text(pk).encode())

    def rows(self, rows: Sequence[Sequence[Any]], positions: Sequence[int]) -> list[str]:
        """The hashes of ``rows``, whose primary key is at ``positions``."""
        if self._states is None or len(positions) != 1:
            return [self.one([row[i] for i in positions]) for row in rows]
        at, (inner_state, outer_state), out = positions[0], self._states, []
        for row in rows:
            value = row[at]
            if type(value) is int and -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
                inner = inner_state.copy()
                inner.update(b"[%d]" % value)
                outer = outer_state.copy()
                outer.update(inner.digest())
                out.append(outer.hexdigest())
            else:
                out.append(self.one((value,)))
        return out


@dataclass(frozen=True)
class TableQuery:
    """How one table's subject rows are read for one predicate shape (built once, reused)."""

    first: DirectStatement
    after: DirectStatement | None  # None: no primary key, stream instead of paging
    pk: list[int]  # positions in a row
    provides: list[tuple[str, Any]]  # (key, getter of its column)
    referenced: list[tuple[tuple[str, ...], Any]]  # (columns, getter of their value)
    typed: list[tuple[str, int]]  # columns whose sink value is not their JSON form

    @classmethod
    def build(cls, table: sa.Table, pred: Any, entry: SqlTable,
              referenced: list[tuple[str, ...]], batch: int, dialect: Dialect) -> TableQuery:
        pk = effective_pk(entry, table)
        first, after = paged(sa.select(table).where(pred), table, pk, batch)
        query = DirectStatement(first, dialect)
        at = query.names.index
        return cls(query, None if after is None else DirectStatement(after, dialect),
                   [at(c) for c in pk],
                   [(k, itemgetter(at(c))) for k, c in entry.provides.items()],
                   [(cs, _value_getter([at(c) for c in cs])) for cs in referenced],
                   typed_columns(table, query.names, dialect))


#: what a sink (and so a bundle, with its column ``types``) is given as the value itself; any
#: other type a driver returns (an interval, an IP address, a range) goes as its text
_NATIVE = frozenset({str, int, float, bool, type(None), dt.datetime, dt.date, dt.time,
                     decimal.Decimal, uuid.UUID, bytes, list, dict})


def native_value(value: Any) -> Any:
    """``value`` as a sink receives it: the driver's value where the bundle can type it
    (dates, decimals, UUIDs, big integers, bytes, JSON documents), otherwise its JSON form."""
    if type(value) in _NATIVE:
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return json_value(value)


def _holds_as_is(col_type: Any, dialect: Dialect) -> bool:
    """Whether the driver gives a column's values as str, bool or an int that JSON carries
    exactly, so their JSON form is the value itself. Not BigInteger (it may pass 2**53), nor
    any integer on SQLite, where an INTEGER column holds 64 bits."""
    if isinstance(col_type, sa.String | sa.Enum | sa.Boolean):
        return True
    return (isinstance(col_type, sa.Integer) and not isinstance(col_type, sa.BigInteger)
            and dialect.name != "sqlite")


def typed_columns(table: sa.Table, names: Sequence[str], dialect: Dialect
                  ) -> list[tuple[str, int]]:
    """``(name, position)`` of the columns whose JSON form may differ from the driver's value
    (dates, decimals, UUIDs, big integers, bytes, JSON, types the catalog does not name)."""
    return [(name, at) for at, name in enumerate(names)
            if name not in table.c or not _holds_as_is(table.c[name].type, dialect)]


def restore_values(encoded: list[dict[str, Any]], rows: Sequence[Sequence[Any]],
                   typed: Sequence[tuple[str, int]]) -> None:
    """Put the driver's values (see :func:`native_value`) back into the JSON-form rows
    ``encoded`` for the ``typed`` columns, in place, once the evidence digest has read them:
    the sink then gets dates, decimals and UUIDs as such, so data.json records each column's
    type and a CSV leaves numbers unquoted."""
    for item, row in zip(encoded, rows, strict=True):
        for name, at in typed:
            item[name] = native_value(row[at])


def _value_getter(positions: list[int]) -> Any:
    """A row's value of the columns at ``positions``: the one value, or a tuple of them — None
    when any is NULL (a composite value with a NULL part points at nothing)."""
    if len(positions) == 1:
        return itemgetter(positions[0])
    getter = itemgetter(*positions)

    def composite(row: Sequence[Any]) -> tuple[Any, ...] | None:
        value = getter(row)
        return None if None in value else value

    return composite


def collect_tables(conn: Connection, system: SqlSystem, walk: SystemWalk,
                   tables: dict[str, sa.Table], keys: SubjectKeys, fold_case: frozenset[str],
                   context: ConnectorContext, sink: CollectionSink, state: Any,
                   result: ConnectorResult) -> None:
    """Collect every table of ``walk.discovery`` into ``sink``; evidence and discovered keys
    go to ``result``. ``state.collection`` names the table being read (for errors)."""
    plan = statements_for(walk, tables)  # tables come from one engine's catalog: one dialect
    dialect, batch = conn.dialect, system.batch_size
    direct = context.fast_path and direct_ok(conn)

    def fetch(query: DirectStatement, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return run(conn, query, params, direct)

    known: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
    lookup = SubjectLookup(plan, keys, fold_case, known)
    referenced = plan.statement(("referenced",), lambda: referenced_columns(walk))
    for name in walk.discovery:
        state.collection = name
        started = time.monotonic()
        evidence = CollectionEvidence(system.name, name, "collect")
        digest = StreamDigest()
        values: dict[tuple[str, ...], set[Any]] = {c: set() for c in referenced[name]}
        found = lookup.predicate(name)
        if found is not None:
            pred, params = found
            entry = system.table(name)  # the plan may outlive this map: key on what it says
            query = plan.statement(
                ("collect", name, lookup.shape(name), batch, tuple(entry.primary_key),
                 tuple(entry.provides.items())),
                lambda n=name, p=pred: TableQuery.build(  # type: ignore[misc]
                    tables[n], p, system.table(n), referenced[n], batch, dialect))
            names, pk, hasher = query.first.names, query.pk, ItemHasher(context, system.name, name)
            refs = [(values[cs], get) for cs, get in query.referenced]
            batches: Iterable[Sequence[Sequence[Any]]]
            if query.after is None:
                batches = stream(conn, query.first.stmt, batch, params)
            elif direct and query.first.usable and query.after.usable:
                first = query.first.all(conn, params)  # most subjects: one page, no generator
                if len(first) < batch:
                    batches = (first,) if first else ()  # the sink never sees an empty batch
                else:
                    batches = pages(fetch, query.first, query.after, pk, batch, params, first)
            else:
                batches = pages(fetch, query.first, query.after, pk, batch, params)
            for rows in batches:
                encoded, plain = json_rows(names, rows)
                digest.add_rows(encoded, plain)
                if query.typed:
                    restore_values(encoded, rows, query.typed)
                if pk:
                    evidence.item_hashes += hasher.rows(rows, pk)
                for key, get in query.provides:
                    result.discover(key, map(get, rows))
                for seen, get in refs:
                    seen.update(map(get, rows))
                sink.write_rows(system.name, name, encoded)
                evidence.found += len(encoded)
        for columns, seen in values.items():
            seen.discard(None)
            if len(seen) <= KNOWN_VALUES_LIMIT:
                known[(name, columns)] = sorted(seen, key=repr)
        evidence.collected = evidence.found
        evidence.digest = digest.hexdigest()
        evidence.duration_ms = int((time.monotonic() - started) * 1000)
        result.evidence.append(evidence)
