"""Rows erasure must not change because other people's rows still point at them.

A table reached *only* by ``outbound`` references (the address an order ships to, the product
on an order line) holds rows the subject uses, not rows the subject owns. Erasure changes such
a row (deletes or masks it) only if nothing outside the subject's own rows points at it:

- rows of a table whose map entry references it (in any direction) that are not among that
  table's subject rows (excluded by primary key, or already deleted by this erasure), and
- rows of any table whose database foreign key points at it (tables outside the map too).

The test is one statement per chunk of keys, inside the erasure's transaction, after the
referencing tables' subject rows are known: ``SELECT <pk> FROM t WHERE <pk> IN (…) AND (EXISTS
(SELECT 1 FROM s WHERE s.c = t.c AND s.<pk> NOT IN (…)) OR …)``. Rows it returns are kept and
counted in the evidence (``counts["kept_shared"]``); the recount does not count them as left.
Tables reached by a key or an ``inbound`` reference as well are the subject's own rows and are
not tested.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.sql_engine import ForeignKey
from dsar.datamap.schema import SqlSystem
from dsar.planning import SystemWalk

Pk = tuple[Any, ...]


@dataclass(frozen=True)
class Referrer:
    """Table ``table`` points at the tested table: its ``columns`` hold the tested table's
    ``to`` columns. ``in_map``: the map lists ``table`` (its subject rows are excluded)."""

    table: str
    schema: str | None
    columns: tuple[str, ...]
    to: tuple[str, ...]
    in_map: bool


def outbound_only(system: SqlSystem, walk: SystemWalk) -> list[str]:
    """The reached tables every match of which is an ``outbound`` reference."""
    out = []
    for name, matches in walk.matches.items():
        if matches and all(_is_outbound(system, name, m) for m in matches):
            out.append(name)
    return out


def _is_outbound(system: SqlSystem, name: str, match: Any) -> bool:
    if match.via != "reference" or match.source is None:
        return False
    return any(ref.table == name and ref.direction == "outbound"
               and tuple(ref.columns) == tuple(match.source_columns)
               and tuple(ref.to) == tuple(match.columns)
               for ref in system.table(match.source).references)


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

    ``reflect(name, schema)`` gives a referencing table; ``pks(name)`` the primary-key columns
    of a map table; ``subject(name)`` the subject's keys of a map table that are still in the
    database (None: the table's subject rows are unknown, so none is excluded — the safe side:
    more rows kept)."""

    def __init__(self, table: sa.Table, pk: Sequence[str], refs: Sequence[Referrer],
                 reflect: Callable[[str, str | None], sa.Table],
                 pks: Callable[[str], Sequence[str]]) -> None:
        self.table, self.pk = table, list(pk)
        self.refs = [(r, reflect(r.table, r.schema).alias(f"_ref{i}"))
                     for i, r in enumerate(refs)]
        self.pks = pks

    def shared(self, conn: Connection, keys: Sequence[Pk],
               subject: Callable[[str], Sequence[Pk] | None]) -> set[Pk]:
        """Of ``keys`` (rows of the tested table), those another row still points at."""
        if not keys or not self.refs:
            return set()
        clause, params = self.clause(subject)
        cols = [self.table.c[c] for c in self.pk]
        target = cols[0] if len(cols) == 1 else sa.tuple_(*cols)
        stmt = sa.select(*cols).where(target.in_(sa.bindparam("_keys", expanding=True))
                                      ).where(clause)
        out: set[Pk] = set()
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            values = [k[0] for k in part] if len(cols) == 1 else [tuple(k) for k in part]
            for row in conn.execute(stmt, {**params, "_keys": values}):
                out.add(tuple(row))
        return out

    def clause(self, subject: Callable[[str], Sequence[Pk] | None]
               ) -> tuple[sa.ColumnElement[bool], dict[str, Any]]:
        """The condition "another row points at this row" over the tested table's columns
        (correlated: usable in a DELETE's WHERE), and its parameters."""
        params: dict[str, Any] = {}
        clauses: list[sa.ColumnElement[bool]] = []
        for i, (ref, other) in enumerate(self.refs):
            cond = [other.c[c] == self.table.c[t] for c, t in zip(ref.columns, ref.to,
                                                                   strict=True)]
            mine = subject(ref.table) if ref.in_map else None
            if mine:
                other_pk = [other.c[c] for c in self.pks(ref.table)]
                param = f"_mine{i}"
                if len(other_pk) == 1:
                    cond.append(other_pk[0].not_in(sa.bindparam(param, expanding=True)))
                    params[param] = [k[0] for k in mine]
                else:
                    cond.append(sa.tuple_(*other_pk).not_in(sa.bindparam(param,
                                                                         expanding=True)))
                    params[param] = [tuple(k) for k in mine]
            clauses.append(sa.exists(sa.select(sa.literal(1)).select_from(other).where(*cond)))
        return (sa.or_(*clauses) if clauses else sa.false()), params


def subject_keys(found: Mapping[str, Sequence[Pk]], deleted: Mapping[str, bool]
                 ) -> Callable[[str], Sequence[Pk] | None]:
    """``subject`` for :meth:`SharedTest.shared`: a table's found keys, empty once its rows
    were deleted by this erasure, None while unknown."""
    def subject(name: str) -> Sequence[Pk] | None:
        if deleted.get(name):
            return ()
        return found.get(name)
    return subject
