"""Rows erasure must not change because other people's rows still point at them.

A table reached *only* by ``outbound`` references (the address an order ships to, the product
on an order line) holds rows the subject uses, not rows the subject owns. Erasure changes such
a row (deletes or masks it) only if nothing outside the subject's own rows points at it: no
row of a table whose map entry references it (in any direction), and no row of a table whose
database foreign key points at it (tables outside the map too).

The test runs inside the erasure's transaction at the table's turn in the erase order, after
the tables referencing it (children first), so the subject's own referencing rows are deleted
or masked by then. For a ``delete``, any row still pointing at it keeps it (another record's,
or one of the subject's that erasure leaves pointing at it, a plan ``datamap check`` refuses
where the database declares the key: :func:`guard_covers`). For a ``mask``, the subject's own
rows (by their keys) do not count: masking breaks no reference. On PostgreSQL a delete's test
is part of the one statement that reads and deletes the rows (:func:`guarded_delete`);
otherwise it is one ``SELECT <pk> FROM t WHERE <pk> IN (…) AND (EXISTS (SELECT 1 FROM s WHERE
s.c = t.c) OR …)`` per chunk of keys. Rows kept are counted in the evidence
(``counts["kept_shared"]``), and the recount does not count them as left.

A table reached both ways (by a key or an ``inbound`` reference, and by an ``outbound`` one) is
tested too, except for its rows the other ways find (:func:`own_walk`): those are the
subject's own, erased whoever points at them (the database decides if it may).
:func:`check_beyond_shared` refuses (a ``check`` error) tables the walk reaches only *through*
rows reached outbound (reviews hanging off a product), whose rows may be other people's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.sql_engine import ForeignKey
from connectors.sql_query import CHUNK
from dsar.datamap.schema import SqlSystem
from dsar.memo import DerivedFrom
from dsar.planning import SystemWalk

Pk = tuple[Any, ...]




@dataclass(frozen=True)
class Referrer:
    """Table ``table`` points at the tested table: its ``columns`` hold the tested table's
    ``to`` columns. ``in_map``: the map lists ``table`` (a mask leaves its subject rows out)."""

    table: str
    schema: str | None
    columns: tuple[str, ...]
    to: tuple[str, ...]
    in_map: bool


def outbound_only(system: SqlSystem, walk: SystemWalk) -> frozenset[str]:
    """The reached tables every match of which is an ``outbound`` reference."""
    return _outbound(system, walk)[0]


def outbound_reached(system: SqlSystem, walk: SystemWalk) -> frozenset[str]:
    """The reached tables some match of which is an ``outbound`` reference."""
    return _outbound(system, walk)[1]


_OUTBOUND: DerivedFrom[tuple[frozenset[str], ...]] = DerivedFrom(limit=64)


def _outbound(system: SqlSystem, walk: SystemWalk) -> tuple[frozenset[str], ...]:
    def build() -> tuple[frozenset[str], ...]:
        kinds = {name: [_is_outbound(system, name, m) for m in matches]
                 for name, matches in walk.matches.items()}
        return (frozenset(n for n, k in kinds.items() if k and all(k)),
                frozenset(n for n, k in kinds.items() if any(k)))

    return _OUTBOUND.get((system, walk), None, build)


_OWN: DerivedFrom[SystemWalk] = DerivedFrom(limit=64)


def own_walk(system: SqlSystem, walk: SystemWalk) -> SystemWalk:
    """``walk`` without its ``outbound`` matches: what finds the rows of a table reached both
    ways that are the subject's own (by a key, or hanging off the subject's rows). Kept per
    system and walk, while they live."""
    def build() -> SystemWalk:
        matches = {name: tuple(m for m in found if not _is_outbound(system, name, m))
                   for name, found in walk.matches.items()}
        return dataclasses.replace(walk, matches=matches)

    return _OWN.get((system, walk), None, build)


def _is_outbound(system: SqlSystem, name: str, match: Any) -> bool:
    if match.via != "reference" or match.source is None:
        return False
    return any(ref.table == name and ref.direction == "outbound"
               and tuple(ref.columns) == tuple(match.source_columns)
               and tuple(ref.to) == tuple(match.columns)
               for ref in system.table(match.source).references)


def guard_covers(system: SqlSystem, walk: SystemWalk, child: str, columns: Sequence[str],
                 parent: str) -> bool:
    """Whether deleting ``parent``'s subject rows cannot break ``child.columns -> parent``:
    ``parent`` is reached only outbound (rows still pointed at are kept), and no subject row of
    ``child`` is left pointing at it (``child`` unreached, outside the map, deleted, or masking
    those columns to NULL). Otherwise the subject's own surviving rows would keep the parent
    row — ``datamap check`` says so instead."""
    if parent not in outbound_only(system, walk):
        return False
    if child not in walk.matches or child not in {t.name for t in system.tables}:
        return True
    spec = system.table(child).erasure
    return spec.action == "delete" or (spec.action == "mask" and all(
        c in spec.mask and spec.mask[c].strategy == "null" for c in columns))


def check_beyond_shared(system: SqlSystem, walk: SystemWalk, add: Callable[..., None]
                        ) -> None:
    """``datamap check``: an error for tables reached only through rows reached by
    ``outbound`` references (reviews hanging off a product the subject bought). Those rows are
    other people's unless the map says otherwise, yet access would collect them and erasure
    change them as the subject's; the map must say whose they are (``direction: none``, or a
    key or ``inbound`` path from the subject's own rows), and erasure refuses until it does."""
    derived = set(outbound_only(system, walk))
    for name in walk.discovery:
        matches = walk.matches.get(name, ())
        if name in derived or not matches or any(m.source not in derived for m in matches):
            continue
        derived.add(name)
        via = sorted({m.source for m in matches if m.source})
        add("error", name, None, f"reached only through {', '.join(via)}, whose rows the "
            "subject shares with others (an outbound reference): its rows hang off those "
            "and may be other people's, yet access would collect them and erasure change them",
            "if they are not the subject's, set that reference's direction to none; if they "
            "are, reach them by a key or an inbound reference from the subject's own rows")


def referrers(system: SqlSystem, name: str, db_fks: Sequence[ForeignKey]
              ) -> list[Referrer]:
    """Every relation pointing at table ``name``: the map's references, then the database's
    foreign keys not already among them."""
    listed = {t.name: t for t in system.tables}
    found: dict[tuple[str, tuple[str, ...]], Referrer] = {}
    for entry in system.tables:
        for ref in entry.references:
            if ref.table == name:
                found[(entry.name, tuple(ref.columns))] = Referrer(
                    entry.name, entry.db_schema, tuple(ref.columns), tuple(ref.to), True)
    schema = system.table(name).db_schema
    for fk in db_fks:
        if fk.parent == name and (fk.table, fk.columns) not in found:
            entry = listed.get(fk.table)
            found[(fk.table, fk.columns)] = Referrer(
                fk.table, entry.db_schema if entry else getattr(fk, "schema", schema),
                fk.columns, fk.parent_columns, entry is not None)
    return list(found.values())


class SharedTest:
    """The shared-row test for one table (see the module docstring).

    ``reflect(name, schema)`` gives a referencing table. The test runs at the tested table's
    turn in the erase order, after every table referencing it (children first): the subject's
    own referencing rows are deleted or masked by then, so any row still pointing at a tested
    row is another record's — or the subject's own row kept as it is (retained, ``none``, or
    masked without nulling the reference), which keeps the tested row just as well."""

    def __init__(self, table: sa.Table, pk: Sequence[str], refs: Sequence[Referrer],
                 reflect: Callable[[str, str | None], sa.Table]) -> None:
        self.table, self.pk = table, list(pk)
        self.refs = [(r, reflect(r.table, r.schema).alias(f"_ref{i}"))
                     for i, r in enumerate(refs)]

    def shared(self, conn: Connection, keys: Sequence[Pk],
               mine: Mapping[str, tuple[Sequence[str], Sequence[Pk]]] | None = None
               ) -> set[Pk]:
        """Of ``keys`` (rows of the tested table), those another row still points at.
        ``mine`` maps a map table to its key columns and the subject's keys in it: those rows
        do not count (for a mask, which breaks no reference; a delete must count them)."""
        if not keys or not self.refs:
            return set()
        cols = [self.table.c[c] for c in self.pk]
        target = cols[0] if len(cols) == 1 else sa.tuple_(*cols)
        clause, params = self._clause(mine or {})
        stmt = sa.select(*cols).where(target.in_(sa.bindparam("_keys", expanding=True))
                                      ).where(clause)
        out: set[Pk] = set()
        for start in range(0, len(keys), CHUNK):
            part = keys[start:start + CHUNK]
            values = [k[0] for k in part] if len(cols) == 1 else [tuple(k) for k in part]
            for row in conn.execute(stmt, {**params, "_keys": values}):
                out.add(tuple(row))
        return out

    def clause(self) -> sa.ColumnElement[bool]:
        """The condition "another row points at this row" over the tested table's columns
        (correlated: usable in a DELETE's WHERE)."""
        return self._clause({})[0]

    def _clause(self, mine: Mapping[str, tuple[Sequence[str], Sequence[Pk]]]
                ) -> tuple[sa.ColumnElement[bool], dict[str, Any]]:
        clauses: list[sa.ColumnElement[bool]] = []
        params: dict[str, Any] = {}
        for i, (ref, other) in enumerate(self.refs):
            cond = [other.c[c] == self.table.c[t] for c, t in zip(ref.columns, ref.to,
                                                                   strict=True)]
            pk, keys = mine.get(ref.table, ((), ())) if ref.in_map else ((), ())
            if keys:  # the subject's own rows of that table do not count
                own = [other.c[c] for c in pk]
                cond.append((own[0] if len(own) == 1 else sa.tuple_(*own)).not_in(
                    sa.bindparam(f"_mine{i}", expanding=True)))
                params[f"_mine{i}"] = [k[0] if len(own) == 1 else tuple(k) for k in keys]
            clauses.append(sa.exists(sa.select(sa.literal_column("1")).select_from(other)
                                     .where(*cond)))
        return (sa.or_(*clauses) if clauses else sa.false()), params


def guarded_delete(table: sa.Table, columns: Sequence[str], width: int, pred: Any,
                   shared: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """PostgreSQL: one statement that reads the rows of ``table`` matching ``pred`` (its
    ``columns``, the first ``width`` the primary key, in key order, then whether the row is
    kept) and deletes those ``shared`` (:meth:`SharedTest.clause`) is false for:
    ``WITH found AS (SELECT …, <shared> AS _kept …), erased AS (DELETE … USING found WHERE
    <key> = found.<key> AND NOT found._kept) SELECT * FROM found``."""
    pk = list(columns[:width])
    found = sa.select(*[table.c[c] for c in columns], shared.label("_kept")).where(
        pred).cte("found")
    erased = sa.delete(table).where(*[table.c[c] == found.c[c] for c in pk]).where(
        sa.not_(found.c["_kept"])).cte("erased")
    return sa.select(*[found.c[c] for c in columns], found.c["_kept"]).add_cte(
        erased).order_by(*[found.c[c] for c in pk])
