"""``erase`` for the SQL connector: delete, mask or retain the subject's rows in one transaction.

What erase guarantees (:meth:`connectors.sql.SqlConnector.erase` checks the map against the
live schema before this runs, and commits only if all of it succeeds):

- tables are taken in ``walk.erase_order`` (children before parents: map references, the
  database's foreign keys, ``erase_after``), each with set-based statements;
- every table's subject rows are the rows its look-up finds *before any change to the tables
  it is found from* — the same rows as reading every table's keys up front;
- evidence per table: ``found`` (the subject's rows), ``deleted`` / ``masked`` (rows changed:
  a second run reports 0), ``retained`` with ground and period, one keyed hash per row of
  ``system/table/pk`` in primary-key order, and ``remaining`` from the recount
  (:mod:`connectors.sql_recount`), which raises — rolling everything back — if anything that
  should be gone or masked is still there (a masked row still found by an identity counts);
- rows of a table reached by ``outbound`` references that other records still point at are
  left as they are, counted in ``counts["kept_shared"]`` and never by the recount
  (:mod:`connectors.sql_shared`); a mask that keeps a look-up column on purpose counts the
  rows still findable by it in ``counts["kept_findable"]``; ``none`` tables are only read;
- identities and key values are always bound parameters.

Two ways of running it, chosen per dialect, with the same results:

- **PostgreSQL** (``returning``): no up-front read. A delete table's rows are deleted and their
  keys returned in one statement, ``WITH erased AS (DELETE … WHERE <look-up> RETURNING …)
  SELECT … ORDER BY <pk>`` (a table reached only outbound: ``WITH found AS (SELECT …),
  erased AS (DELETE … WHERE <key> IN found AND NOT <shared>) …``, one statement too); mask and
  retain tables are read by their look-up at their turn.
  Each step keeps the values other tables are found by (a reference's columns, a provided key)
  from the rows it touched, before changing them, and later look-ups bind those values (as
  arrays: any number, one parameter) instead of reading a table that was already changed;
  look-ups of tables not yet changed are sub-queries, which PostgreSQL plans as semi-joins in a
  DELETE as in a SELECT.
- **MariaDB/MySQL and SQLite** (keys first): every table's keys (and the values other
  tables are found by) are read up front, in discovery order, then rows are deleted or masked
  by key. MariaDB (before 11.1) runs a single-table ``DELETE … WHERE x IN (SELECT …)`` as a
  scan of the whole table, and MySQL has no ``DELETE … RETURNING``; SQLite runs in-process,
  where a statement more costs little.

The recount looks the subject up again with the values read before any change: a table found
from another one is counted by the values that table's subject rows held (so rows pointing at
a deleted parent are found, not hidden by the parent's absence). Without arrays (keys-first
mode) the values bind one parameter each, and the recount's statements hold at most
:data:`~connectors.sql_query.KNOWN_VALUES_LIMIT` of them in all (twice that once padded;
SQLite allows 32766): past that budget, a table is looked up by its sub-query instead.

Statements are built once per shape (:mod:`connectors.sql_plan`) and run on the DB-API cursor
(:mod:`dsar.db.direct`), as collect's are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.base import ConnectorContext, ConnectorResult, SubjectKeys
from connectors.sql_check import effective_pk
from connectors.sql_collect import ItemHasher
from connectors.sql_engine import ForeignKey
from connectors.sql_plan import SubjectLookup, WalkStatements, statements_for
from connectors.sql_query import KNOWN_VALUES_LIMIT, paged, pages, stream
from connectors.sql_recount import KeyStatements, key_walk, mask_rows, recount
from connectors.sql_shared import (
    SharedTest,
    guarded_delete,
    outbound_only,
    outbound_reached,
    own_walk,
    referrers,
)
from dsar.datamap.schema import SqlSystem
from dsar.db.direct import DirectStatement, direct_ok, run
from dsar.evidence import CollectionEvidence
from dsar.memo import DerivedFrom
from dsar.planning import SystemWalk

RETURNING_DIALECTS = frozenset({"postgresql"})
"""Dialects erased with ``DELETE … RETURNING`` and look-ups by the values already read."""
Row = Sequence[Any]


@dataclass(frozen=True)
class TableLayout:
    """What one table's step reads from each subject row: ``columns`` (the primary key first,
    then provided keys and captured columns, each once) and where things are in a row."""

    columns: tuple[str, ...]
    pk: tuple[int, ...]
    provides: tuple[tuple[str, int], ...]  # (key name, position)
    captured: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]  # (columns, positions)


def layouts(system: SqlSystem, walk: SystemWalk, tables: dict[str, sa.Table]
            ) -> dict[str, TableLayout]:
    """Per reached table, its :class:`TableLayout`: its primary key, provided keys and the
    columns other tables' matches are found by (``match.source_columns`` of every match
    sourced there)."""
    captured: dict[str, list[tuple[str, ...]]] = {name: [] for name in walk.discovery}
    for matches in walk.matches.values():
        for match in matches:
            read = tuple(match.source_columns)
            if match.source in captured and read not in captured[match.source]:
                captured[match.source].append(read)
    out = {}
    for name in walk.discovery:
        entry = system.table(name)
        pk = effective_pk(entry, tables[name])
        wanted = [*entry.provides.values(), *[c for cs in captured[name] for c in cs]]
        columns = [*pk, *[c for c in dict.fromkeys(wanted) if c not in pk]]
        at = columns.index
        out[name] = TableLayout(tuple(columns), tuple(range(len(pk))),
                                tuple((k, at(c)) for k, c in entry.provides.items()),
                                tuple((cs, tuple(at(c) for c in cs)) for cs in captured[name]))
    return out


_LAYOUTS: DerivedFrom[dict[str, TableLayout]] = DerivedFrom(limit=64)


def _layouts_for(system: SqlSystem, plan: WalkStatements) -> dict[str, TableLayout]:
    """:func:`layouts`, kept while the data-map system object and the plan live (a reloaded
    map or re-reflected schema gets its own)."""
    return _LAYOUTS.get((system, plan), None,
                        lambda: layouts(system, plan.walk, plan.tables))


def erase_tables(conn: Connection, system: SqlSystem, walk: SystemWalk,
                 tables: dict[str, sa.Table], keys: SubjectKeys, fold_case: frozenset[str],
                 context: ConnectorContext, state: Any, result: ConnectorResult,
                 db_fks: Sequence[ForeignKey] = (),
                 reflect: Callable[[str, str | None], sa.Table] | None = None
                 ) -> list[CollectionEvidence]:
    """Erase the subject's rows in every table of ``walk.erase_order`` as the map says, then
    recount; evidence in erase order. Discovered keys go to ``result``; ``state.collection``
    names the table being worked on (for errors). Raises on any failure: the caller's
    transaction must then roll back.

    ``db_fks`` (the database's foreign keys) and ``reflect`` (a table by name and schema) serve
    the shared-row test of tables reached only by outbound references
    (:mod:`connectors.sql_shared`); without ``reflect`` only the reached tables are looked at."""
    eraser = _Eraser(conn, system, walk, tables, keys, fold_case, context, state, result)
    eraser.db_fks = db_fks
    eraser.reflect = reflect or (lambda name, _schema: tables[name])
    return eraser.run()


class _Eraser:
    """One erasure (see the module docstring)."""

    def __init__(self, conn: Connection, system: SqlSystem, walk: SystemWalk,
                 tables: dict[str, sa.Table], keys: SubjectKeys, fold_case: frozenset[str],
                 context: ConnectorContext, state: Any, result: ConnectorResult) -> None:
        self.conn, self.system, self.walk, self.tables = conn, system, walk, tables
        self.keys, self.fold_case, self.context = keys, fold_case, context
        self.state, self.result = state, result
        self.plan = statements_for(walk, tables)  # one engine's catalog: one dialect
        self.dialect = conn.dialect
        self.direct = context.fast_path and direct_ok(conn)
        self.returning = conn.dialect.name in RETURNING_DIALECTS
        self.layouts = _layouts_for(system, self.plan)
        self.known: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        self.db_fks: Sequence[ForeignKey] = ()
        self.reflect: Callable[[str, str | None], sa.Table] = lambda name, _s: tables[name]
        self.kept: dict[str, set[tuple[Any, ...]]] = {}

    def lookup_of(self, plan: WalkStatements) -> SubjectLookup:
        """:meth:`lookup`'s known values, over the statements of ``plan``."""
        lookup = self.lookup()
        return SubjectLookup(plan, self.keys, self.fold_case, lookup.known, lookup.arrays)

    def shared(self, name: str, rows: Sequence[Row], found: dict[str, list[tuple[Any, ...]]]
               ) -> set[tuple[Any, ...]]:
        """Keys of ``name``'s subject ``rows`` that rows outside the subject's still point at
        (:mod:`connectors.sql_shared`; for a mask, the subject's rows in ``found`` do not
        count); empty unless ``name`` is reached outbound."""
        if name not in self.tested or not rows:
            return set()
        width = len(self.layouts[name].pk)
        mine = {n: (self.layouts[n].columns[:len(self.layouts[n].pk)], keys)
                for n, keys in found.items()} \
            if self.system.table(name).erasure.action == "mask" else None
        shared = self.shared_test(name).shared(self.conn, [tuple(r[:width]) for r in rows],
                                               mine)
        return shared - self.own(name) if shared and name not in self.only_outbound else shared

    def own(self, name: str) -> set[tuple[Any, ...]]:
        """Keys of ``name``'s rows found otherwise than by an outbound reference."""
        plan = statements_for(own_walk(self.system, self.walk), self.tables)
        subject = self.lookup_of(plan).predicate(name)
        if subject is None:
            return set()
        pred, params = subject
        table, layout = self.tables[name], self.layouts[name]
        pk = [table.c[c] for c in layout.columns[: len(layout.pk)]]
        return {tuple(r) for r in self.conn.execute(sa.select(*pk).where(pred), params)}

    def shared_test(self, name: str) -> SharedTest:
        """The shared-row test of table ``name`` (kept with the walk's statements)."""
        def reflect(table: str, schema: str | None) -> sa.Table:
            return self.tables[table] if table in self.tables else self.reflect(table, schema)

        width = len(self.layouts[name].pk)
        return self.plan.statement(("shared-test", name), lambda: SharedTest(
            self.tables[name], self.layouts[name].columns[:width],
            referrers(self.system, name, self.db_fks), reflect))

    def delete_guarded(self, name: str, lookup: SubjectLookup
                       ) -> tuple[list[Row], set[tuple[Any, ...]]]:
        """PostgreSQL, a table reached only outbound: in one statement, read the subject's
        rows of ``name`` and delete those no other row points at; the rows (layout columns,
        primary-key order) and the keys of the rows kept."""
        subject = lookup.predicate(name)
        if subject is None:
            return [], set()
        pred, params = subject
        layout, table = self.layouts[name], self.tables[name]
        width = len(layout.pk)
        query = self.plan.statement(
            ("erase-delete-guarded", name, lookup.shape(name), layout.columns),
            lambda: DirectStatement(guarded_delete(
                table, layout.columns, width, pred, self.shared_test(name).clause()),
                self.dialect))
        out = run(self.conn, query, params, self.direct)
        return [tuple(r[:-1]) for r in out], {tuple(r[:width]) for r in out if r[-1]}

    def lookup(self) -> SubjectLookup:
        """A look-up binding the values kept so far (a new one per step: shapes change as
        tables are done); without arrays, within the budget of the module docstring."""
        if self.returning:
            return SubjectLookup(self.plan, self.keys, self.fold_case, self.known, True)
        uses: dict[tuple[str, tuple[str, ...]], int] = {}
        for matches in self.walk.matches.values():
            for match in matches:
                if match.source is not None:
                    key = (match.source, tuple(match.source_columns))
                    uses[key] = uses.get(key, 0) + len(match.columns)
        known, budget = {}, KNOWN_VALUES_LIMIT
        for key, values in self.known.items():
            cost = len(values) * uses.get(key, 0)  # parameters bound, over all its look-ups
            if cost <= budget:
                known[key], budget = values, budget - cost
        return SubjectLookup(self.plan, self.keys, self.fold_case, known)

    def run(self) -> list[CollectionEvidence]:
        """Every step, then the recount; evidence in erase order."""
        read: dict[str, list[Row]] = {}
        if not self.returning:  # keys first, before any change, by the look-ups' sub-queries
            lookup = SubjectLookup(self.plan, self.keys, self.fold_case)
            for name in self.walk.discovery:
                self.state.collection = name
                read[name] = self.read(name, lookup)
            for name, rows in read.items():
                self.keep(name, rows)
        evidence: dict[str, CollectionEvidence] = {}
        found: dict[str, list[tuple[Any, ...]]] = {}
        self.only_outbound = outbound_only(self.system, self.walk)
        self.tested = outbound_reached(self.system, self.walk)
        for name in self.walk.erase_order:
            self.state.collection = name
            started = time.monotonic()
            action = self.system.table(name).erasure.action
            tested = name in self.tested and action in ("delete", "mask")
            guarded = tested and action == "delete" and name in self.only_outbound
            kept: set[tuple[Any, ...]] = set()
            gone = self.returning and action == "delete" and (guarded or not tested)
            if self.returning:
                lookup = self.lookup()
                if gone and guarded:
                    rows, kept = self.delete_guarded(name, lookup)
                elif gone:
                    rows = self.delete_returning(name, lookup)
                else:
                    rows = self.read(name, lookup)
                self.keep(name, rows)
            else:
                rows = read[name]
            if tested and not gone:
                kept = self.shared(name, rows, found)
            if kept:
                self.kept[name] = kept
            evidence[name], found[name] = self.apply(name, rows, kept, gone)
            evidence[name].duration_ms = int((time.monotonic() - started) * 1000)
        keyed = statements_for(key_walk(self.system, self.walk), self.tables)
        recount(self.conn, self.system, self.walk, self.plan, self.lookup(), found, evidence,
                self.context, self.direct, self.state, self.kept, self.lookup_of(keyed))
        return [evidence[n] for n in self.walk.erase_order]

    def read(self, name: str, lookup: SubjectLookup) -> list[Row]:
        """The subject's rows of ``name`` (its layout's columns) in primary-key order, read
        by keyset pages of ``batch_size`` (streamed when the table has no primary key)."""
        subject = lookup.predicate(name)
        if subject is None:
            return []
        pred, params = subject
        layout, table, batch = self.layouts[name], self.tables[name], self.system.batch_size
        first, after = self.plan.statement(
            ("erase-read", name, lookup.shape(name), batch, layout.columns),
            lambda: self._paged(table, pred, layout, batch))
        rows: list[Row] = []
        if after is None:
            for streamed in stream(self.conn, first.stmt, batch, params):
                rows += streamed
            return rows
        for part in pages(lambda q, p: run(self.conn, q, p, self.direct), first, after,
                          layout.pk, batch, params):
            rows += part
        return rows

    def _paged(self, table: sa.Table, pred: Any, layout: TableLayout, batch: int
               ) -> tuple[DirectStatement, DirectStatement | None]:
        pk = list(layout.columns[: len(layout.pk)])
        first, after = paged(sa.select(*[table.c[c] for c in layout.columns]).where(pred),
                             table, pk, batch)
        return (DirectStatement(first, self.dialect),
                None if after is None else DirectStatement(after, self.dialect))

    def delete_returning(self, name: str, lookup: SubjectLookup) -> list[Row]:
        """Delete the subject's rows of ``name``; their layout columns, in primary-key order."""
        subject = lookup.predicate(name)
        if subject is None:
            return []
        pred, params = subject
        layout, table = self.layouts[name], self.tables[name]

        def build() -> DirectStatement:
            erased = sa.delete(table).where(pred).returning(
                *[table.c[c] for c in layout.columns]).cte("erased")
            return DirectStatement(sa.select(*[erased.c[c] for c in layout.columns]).order_by(
                *[erased.c[layout.columns[i]] for i in layout.pk]), self.dialect)

        query = self.plan.statement(("erase-delete", name, lookup.shape(name), layout.columns),
                                    build)
        return list(run(self.conn, query, params, self.direct))

    def keep(self, name: str, rows: Sequence[Row]) -> None:
        """Keep the values of ``name``'s captured columns in ``rows`` (NULL points at nothing:
        dropped) for the look-ups of the tables found from it."""
        for columns, positions in self.layouts[name].captured:
            if len(positions) == 1:
                at = positions[0]
                values = {row[at] for row in rows}
                values.discard(None)
            else:
                values = {v for row in rows
                          if None not in (v := tuple(row[i] for i in positions))}
            self.known[(name, columns)] = list(values)

    def kept_findable(self, entry: Any) -> bool:
        """Whether a column ``entry`` keeps on purpose is one it is looked up by."""
        keep = set(entry.erasure.keep)
        return bool(keep) and any(m.via == "key" and keep & set(m.columns)
                                  for m in self.walk.matches.get(entry.name, ()))

    def apply(self, name: str, rows: Sequence[Row], kept: set[tuple[Any, ...]] | None = None,
              gone: bool = False) -> tuple[CollectionEvidence, list[tuple[Any, ...]]]:
        """Evidence for ``name``'s subject ``rows`` — deleting them by key (unless ``gone``:
        the statement that read them deleted them, all but the ``kept``), masking or retaining
        them — and their primary keys. Rows whose keys are in ``kept`` (shared with other
        records) are left as they are and counted."""
        entry, layout, table = self.system.table(name), self.layouts[name], self.tables[name]
        action = entry.erasure.action
        hasher = ItemHasher(self.context, self.system.name, name)
        evidence = CollectionEvidence(self.system.name, name, action, found=len(rows),
                                      item_hashes=hasher.rows(rows, layout.pk))
        for key, at in layout.provides:
            self.result.discover(key, (row[at] for row in rows))
        width = len(layout.pk)
        pks = [tuple(row[:width]) for row in rows]
        todo = [k for k in pks if k not in kept] if kept else pks
        if kept:
            evidence.counts["kept_shared"] = len(pks) - len(todo)
        if action == "delete":
            if gone:
                evidence.deleted = len(todo)
            else:
                statements = KeyStatements(self.plan, name, table, layout.columns[:width],
                                           self.dialect)
                evidence.deleted = statements.delete(self.conn, todo, self.direct)
        elif action == "mask":
            evidence.masked = mask_rows(self.conn, self.plan, entry, table,
                                        list(layout.columns[:width]), todo, self.context,
                                        self.system.name, self.direct)
            if self.kept_findable(entry):
                evidence.counts["kept_findable"] = len(pks)
        elif action == "retain":
            assert entry.erasure.retain is not None
            evidence.retained = len(rows)
            evidence.retained_ground = entry.erasure.retain.ground
            evidence.retained_period = entry.erasure.retain.period
        return evidence, pks
