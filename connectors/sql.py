"""The SQL connector: PostgreSQL, MariaDB/MySQL and SQLite through SQLAlchemy 2.

One system of the data map (``kind: sql``) is one database. The connector walks its tables as
:func:`dsar.planning.walk_sql_system` says — from the tables that look subjects up by an
available key, along references in their declared direction and along keys one table
``provides`` to another — and lets the database do the walking with ``IN (SELECT …)``
sub-queries, so key values never pile up in memory.

``collect`` streams each table's rows (keyset pages of ``batch_size`` rows) into the sink,
ordered by primary key so the digest is reproducible (:mod:`connectors.sql_collect`).
Statements are built once per shape of look-up and reused with fresh bound values
(:mod:`connectors.sql_plan`); collect runs its SELECTs on the DB-API cursor as SQLAlchemy
would (:mod:`connectors.sql_direct`). ``erase`` runs in one
transaction: it checks the map against the live schema first (refusing with
:class:`~dsar.errors.DataMapError` before any statement changes anything), records the primary
keys of the subject's rows, applies delete / mask / retain children first with set-based
statements over bounded key chunks, recounts in the same transaction and commits only if the
recount finds nothing left that should be gone. ``count`` counts without changing anything.

Every operation runs under the dialect's statement timeout; driver errors become
:class:`~dsar.errors.ConnectorError` naming system and table, with ``transient`` telling the
fleet whether a retry may help. A failure rolls the whole transaction back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from connectors.base import (
    CollectionSink,
    Connector,
    ConnectorContext,
    ConnectorResult,
    SubjectKeys,
    register,
)
from connectors.sql_check import MISSING_TABLE, check_sql_system, effective_pk
from connectors.sql_collect import collect_tables
from connectors.sql_engine import Catalog, begin, engine_for, resolve_url, translate_error
from connectors.sql_mask import mask_function, same
from connectors.sql_plan import SubjectLookup, statements_for
from connectors.sql_query import chunks, pk_in, pk_text, select_pages
from dsar.datamap.findings import errors_of, raise_for_errors
from dsar.datamap.schema import SqlSystem, SqlTable
from dsar.errors import ConnectorError, DsarError
from dsar.evidence import CollectionEvidence
from dsar.planning import SystemWalk, walk_sql_system

Pk = tuple[Any, ...]


#: Walks depend only on the system and the key names: computed once per data map version.
_WALKS: dict[tuple[int, frozenset[str]], tuple[SqlSystem, SystemWalk]] = {}


@register("sql")
class SqlConnector(Connector):
    """Connector for ``kind: sql`` systems. See the module docstring for the guarantees."""

    system: SqlSystem

    def __init__(self, system: SqlSystem, context: ConnectorContext) -> None:
        super().__init__(system, context)
        self._engine: Engine | None = None
        self._fold_case = frozenset({"email"}) if system.email_match == "case_insensitive" \
            else frozenset()

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            url = resolve_url(self.system.url_env, self.context.environ, self.system.name)
            self._engine = engine_for(url, self.system.statement_timeout_seconds)
        return self._engine

    @property
    def catalog(self) -> Catalog:
        return Catalog.of(self.engine)

    @contextmanager
    def _session(self) -> Iterator[tuple[Connection, SimpleNamespace]]:
        """One transaction; driver errors become ConnectorError and roll back."""
        state = SimpleNamespace(collection=None)
        try:
            with begin(self.engine) as conn:
                yield conn, state
        except DsarError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            if self._engine is not None:
                self.catalog.invalidate()
            raise translate_error(exc, self.system.name, state.collection) from exc

    def _reflect(self, conn: Connection, names: Sequence[str],
                 state: SimpleNamespace) -> dict[str, sa.Table]:
        tables, catalog = {}, self.catalog
        for name in names:
            state.collection = name
            tables[name] = catalog.table(conn, name, self.system.table(name).db_schema)
        state.collection = None
        return tables

    def _walk(self, keys: SubjectKeys) -> SystemWalk:
        names = frozenset(k for k, v in keys.items() if v)
        cached = _WALKS.get((id(self.system), names))
        if cached is not None and cached[0] is self.system:
            return cached[1]
        walk = walk_sql_system(self.system, sorted(names))
        _WALKS[(id(self.system), names)] = (self.system, walk)
        return walk

    def _lookup(self, walk: SystemWalk, tables: dict[str, sa.Table],
                keys: SubjectKeys) -> SubjectLookup:
        return SubjectLookup(statements_for(walk, tables), keys, self._fold_case)

    def _item_hash(self, name: str, pk: Sequence[Any]) -> str:
        return self.context.keyed_hash(f"{self.system.name}/{name}/{pk_text(pk)}")

    def _skipped(self, walk: SystemWalk, action: str) -> list[CollectionEvidence]:
        return [CollectionEvidence(self.system.name, name, action, outcome="skipped")
                for name in walk.unreachable]

    # -- collect -------------------------------------------------------------------------------

    def collect(self, keys: SubjectKeys, sink: CollectionSink) -> ConnectorResult:
        """Stream every row of the subject, table by table, into ``sink`` (see
        :mod:`connectors.sql_collect`)."""
        result = ConnectorResult()
        walk = self._walk(keys)
        with self._session() as (conn, state):
            tables = self._reflect(conn, walk.discovery, state)
            collect_tables(conn, self.system, walk, tables, keys, self._fold_case, self.context,
                           sink, state, result)
        result.evidence += self._skipped(walk, "collect")
        return result

    # -- count ---------------------------------------------------------------------------------

    def count(self, keys: SubjectKeys) -> ConnectorResult:
        """How many rows of the subject each reached table holds; nothing is returned."""
        result = ConnectorResult()
        walk = self._walk(keys)
        with self._session() as (conn, state):
            tables = self._reflect(conn, walk.discovery, state)
            lookup = self._lookup(walk, tables, keys)
            for name in walk.discovery:
                state.collection = name
                entry, table = self.system.table(name), tables[name]
                evidence = CollectionEvidence(self.system.name, name, "count")
                found = lookup.predicate(name)
                if found is not None:
                    pred, params = found
                    stmt = sa.select(sa.func.count()).select_from(table).where(pred)
                    evidence.found = int(conn.execute(stmt, params).scalar_one())
                    for key, column in entry.provides.items():
                        values = conn.execute(sa.select(table.c[column]).where(pred).distinct(),
                                              params)
                        result.discover(key, values.scalars())
                result.evidence.append(evidence)
        result.evidence += self._skipped(walk, "count")
        return result

    # -- erase ---------------------------------------------------------------------------------

    def check(self, keys: SubjectKeys | None = None) -> list[Any]:
        """The live findings for this system (see :mod:`connectors.sql_check`)."""
        available = [k for k, v in (keys or {}).items() if v] if keys else _all_keys(self.system)
        with self._session() as (conn, _state):
            findings, _walk = check_sql_system(self.system, conn, self.catalog, available)
        return findings

    def erase(self, keys: SubjectKeys) -> ConnectorResult:
        """Delete, mask or retain the subject's rows as the map says; recount; commit."""
        result = ConnectorResult()
        available = [k for k, v in keys.items() if v]
        with self._session() as (conn, state):
            findings, walk = check_sql_system(self.system, conn, self.catalog, available)
            self._refuse(findings)
            tables = self._reflect(conn, walk.discovery, state)
            found = self._record_keys(conn, walk, keys, tables, state, result)
            evidence: dict[str, CollectionEvidence] = {}
            for name in walk.erase_order:
                state.collection = name
                started = time.monotonic()
                evidence[name] = self._apply(conn, self.system.table(name), tables[name],
                                             found[name])
                evidence[name].duration_ms = int((time.monotonic() - started) * 1000)
            self._recount(conn, walk, keys, tables, found, evidence, state)
        result.evidence += [evidence[n] for n in walk.erase_order]
        result.evidence += self._skipped(walk, "erase")
        return result

    def _refuse(self, findings: list[Any]) -> None:
        for finding in errors_of(findings):
            if finding.problem == MISSING_TABLE:
                raise ConnectorError(
                    f"{self.system.name}.{finding.table}: {finding.problem}", finding.fix,
                    system=self.system.name, collection=finding.table, code="missing_table")
        raise_for_errors(findings, f"system {self.system.name}'s erasure plan")

    def _record_keys(self, conn: Connection, walk: SystemWalk, keys: SubjectKeys,
                     tables: dict[str, sa.Table], state: SimpleNamespace,
                     result: ConnectorResult) -> dict[str, list[Pk]]:
        """The primary keys of the subject's rows in every reached table, before any change
        (so later statements do not depend on rows already deleted or masked)."""
        found: dict[str, list[Pk]] = {}
        lookup = self._lookup(walk, tables, keys)
        for name in walk.discovery:
            state.collection = name
            entry, table = self.system.table(name), tables[name]
            subject = lookup.predicate(name)
            found[name] = []
            if subject is None:
                continue
            pred, params = subject
            pk = effective_pk(entry, table)
            provides = list(entry.provides.items())
            cols = [table.c[c] for c in pk] + [table.c[c] for _, c in provides]
            stmt = sa.select(*cols).where(pred)
            for part in select_pages(conn, stmt, table, pk, self.system.batch_size, params):
                found[name] += [tuple(row[: len(pk)]) for row in part]
                for i, (key, _column) in enumerate(provides):
                    result.discover(key, (row[len(pk) + i] for row in part))
        return found

    def _apply(self, conn: Connection, entry: SqlTable, table: sa.Table,
               rows: list[Pk]) -> CollectionEvidence:
        action = entry.erasure.action
        pk = effective_pk(entry, table)
        evidence = CollectionEvidence(
            self.system.name, entry.name, action, found=len(rows),
            item_hashes=[self._item_hash(entry.name, r) for r in rows])
        if action == "delete":
            for part in chunks(rows):
                evidence.deleted += conn.execute(sa.delete(table).where(
                    pk_in(table, pk, part))).rowcount
        elif action == "mask":
            evidence.masked = self._mask(conn, entry, table, pk, rows)
        else:
            assert entry.erasure.retain is not None
            evidence.retained = len(rows)
            evidence.retained_ground = entry.erasure.retain.ground
            evidence.retained_period = entry.erasure.retain.period
        return evidence

    def _mask_functions(self, entry: SqlTable, table: sa.Table) -> dict[str, Any]:
        scope = f"{self.system.name}/{entry.name}"
        return {col: mask_function(rule, table.c[col], self.context.keyed_hash, scope)
                for col, rule in entry.erasure.mask.items()}

    def _unmasked(self, conn: Connection, entry: SqlTable, table: sa.Table, pk: list[str],
                  where: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows matching ``where`` (``params`` bound) whose masked columns differ from their
        mask, as the UPDATE parameters that would fix them."""
        funcs = self._mask_functions(entry, table)
        cols = [table.c[c] for c in pk] + [table.c[c] for c in funcs]
        todo = []
        for row in conn.execute(sa.select(*cols).where(where), params or {}):
            key = tuple(row[: len(pk)])
            expected = [f(key) for f in funcs.values()]
            if not all(same(c, e) for c, e in zip(row[len(pk):], expected, strict=True)):
                params = {f"_pk{i}": v for i, v in enumerate(key)}
                params.update({f"_m{i}": v for i, v in enumerate(expected)})
                todo.append(params)
        return todo

    def _mask(self, conn: Connection, entry: SqlTable, table: sa.Table, pk: list[str],
              rows: list[Pk]) -> int:
        """Mask the subject's rows; only rows that change are counted (idempotent)."""
        rules = entry.erasure.mask
        changed = 0
        if all(rule.strategy in ("null", "fixed") for rule in rules.values()):
            funcs = self._mask_functions(entry, table)
            values = {col: f(()) for col, f in funcs.items()}
            differs = sa.or_(*[
                table.c[c].is_not(None) if v is None
                else sa.or_(table.c[c] != v, table.c[c].is_(None))
                for c, v in values.items()])
            for part in chunks(rows):
                changed += conn.execute(sa.update(table).where(pk_in(table, pk, part))
                                        .where(differs).values(values)).rowcount
            return changed
        stmt = sa.update(table).where(
            *[table.c[c] == sa.bindparam(f"_pk{i}") for i, c in enumerate(pk)]
        ).values({c: sa.bindparam(f"_m{i}") for i, c in enumerate(rules)})
        for part in chunks(rows):
            todo = self._unmasked(conn, entry, table, pk, pk_in(table, pk, part))
            if todo:
                conn.execute(stmt, todo)
                changed += len(todo)
        return changed

    def _recount(self, conn: Connection, walk: SystemWalk, keys: SubjectKeys,
                 tables: dict[str, sa.Table], found: dict[str, list[Pk]],
                 evidence: dict[str, CollectionEvidence], state: SimpleNamespace) -> None:
        """In the same transaction: nothing the map deletes may remain, nothing it masks may
        hold an unmasked value. Raises (so the transaction rolls back) otherwise."""
        lookup = self._lookup(walk, tables, keys)
        remaining: dict[str, int] = {}
        counts: dict[str, Any] = {}
        count_params: dict[str, Any] = {}
        for name in walk.erase_order:
            state.collection = name
            entry, table = self.system.table(name), tables[name]
            action = entry.erasure.action
            if action == "retain":
                continue
            pk = effective_pk(entry, table)
            subject = lookup.predicate(name)
            if action == "delete":
                # rows the DELETE reported gone are gone in this transaction; recount by key
                # only if it reported fewer, and always re-run the walk (new rows)
                remaining[name] = 0
                if evidence[name].deleted != len(found[name]):
                    for part in chunks(found[name]):
                        remaining[name] += int(conn.execute(sa.select(sa.func.count())
                                               .select_from(table).where(
                                                   pk_in(table, pk, part))).scalar_one())
                if subject is not None:
                    counts[name] = sa.select(sa.func.count()).select_from(table).where(
                        subject[0]).scalar_subquery()
                    count_params.update(subject[1])
                continue
            wheres: list[tuple[Any, dict[str, Any]]] = [
                (pk_in(table, pk, part), {}) for part in chunks(found[name])]
            if subject is not None:
                wheres.append(subject)
            remaining[name] = sum(len(self._unmasked(conn, entry, table, pk, where, params))
                                  for where, params in wheres)
        if counts:  # the walk re-run for every delete table, in one round trip
            names = list(counts)
            row = conn.execute(sa.select(*[counts[n].label(f"c{i}")
                                           for i, n in enumerate(names)]), count_params).one()
            for i, name in enumerate(names):
                remaining[name] += int(row[i])
        for name in walk.erase_order:
            if name not in remaining:
                continue
            state.collection = name
            action = self.system.table(name).erasure.action
            evidence[name].remaining = remaining[name]
            if remaining[name]:
                raise ConnectorError(
                    f"{self.system.name}.{name}: the recount after erasure found "
                    f"{remaining[name]} "
                    f"row(s) still {'present' if action == 'delete' else 'unmasked'}; "
                    "nothing was changed (rolled back)",
                    "retry; if it persists, another writer adds the subject's rows while "
                    "erasure runs", system=self.system.name, collection=name,
                    code="recount_failed", transient=True)


def _all_keys(system: SqlSystem) -> list[str]:
    keys = {"email", "phone"}
    for table in system.tables:
        keys |= set(table.provides)
    return sorted(keys)


def connector_for(system: SqlSystem, context: ConnectorContext) -> SqlConnector:
    """A connector without the registry (benchmarks, checks)."""
    return SqlConnector(system, context)


__all__ = ["SqlConnector", "connector_for"]
