"""The SQL connector: PostgreSQL, MariaDB/MySQL and SQLite through SQLAlchemy 2.

One system of the data map (``kind: sql``) is one database. The connector walks its tables as
:func:`dsar.planning.walk_sql_system` says — from the tables that look subjects up by an
available key, along references in their declared direction and along keys one table
``provides`` to another — and lets the database do the walking with ``IN (SELECT …)``
sub-queries, so key values never pile up in memory.

``collect`` streams each table's rows (keyset pages of ``batch_size`` rows) into the sink,
ordered by primary key so the digest is reproducible (:mod:`connectors.sql_collect`).
Statements are built once per shape of look-up and reused with fresh bound values
(:mod:`connectors.sql_plan`); collect and erase run them on the DB-API cursor as SQLAlchemy
would (:mod:`dsar.db.direct`). ``erase`` runs in one transaction: it checks the map
against the schema first (refusing with :class:`~dsar.errors.DataMapError` before any
statement changes anything; :func:`~connectors.sql_check.checked_sql_system` says what is kept
between erasures), applies delete / mask / retain children first with set-based statements
(:mod:`connectors.sql_erase`), recounts in the same transaction and commits only if the
recount finds nothing left that should be gone (:mod:`connectors.sql_recount`). ``count``
counts without changing anything.

Every operation runs under the dialect's statement timeout; driver errors become
:class:`~dsar.errors.ConnectorError` naming system and table, with ``transient`` telling the
fleet whether a retry may help. A failure rolls the whole transaction back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
from connectors.sql_check import MISSING_TABLE, check_sql_system, checked_sql_system
from connectors.sql_collect import collect_tables
from connectors.sql_engine import Catalog, begin, engine_for, resolve_url, translate_error
from connectors.sql_erase import erase_tables
from connectors.sql_plan import SubjectLookup, statements_for
from dsar.datamap.findings import errors_of, raise_for_errors
from dsar.datamap.schema import SqlSystem
from dsar.errors import ConnectorError, DsarError
from dsar.evidence import CollectionEvidence
from dsar.memo import DerivedFrom
from dsar.planning import SystemWalk, walk_sql_system

#: Walks depend only on the system and the key names: computed once per data map version.
_WALKS: DerivedFrom[SystemWalk] = DerivedFrom(limit=256)


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
        return _WALKS.get((self.system,), names,
                          lambda: walk_sql_system(self.system, sorted(names)))

    def _lookup(self, walk: SystemWalk, tables: dict[str, sa.Table],
                keys: SubjectKeys) -> SubjectLookup:
        return SubjectLookup(statements_for(walk, tables), keys, self._fold_case)

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
        """Delete, mask or retain the subject's rows as the map says; recount; commit.

        One transaction: the map is checked against the schema first (refusing before any
        statement changes anything), then :func:`connectors.sql_erase.erase_tables` runs."""
        return self._erase(keys, None)

    def erase_counted(self, keys: SubjectKeys,
                      record_found: Callable[[list[CollectionEvidence]], None]
                      ) -> ConnectorResult:
        """:meth:`erase`, handing its evidence to ``record_found`` inside the transaction,
        before it commits: what the erasure found is what was there before it changed
        anything, so one pass over the subject's rows serves both (no separate count). If
        ``record_found`` raises, the transaction rolls back."""
        return self._erase(keys, record_found)

    def _erase(self, keys: SubjectKeys,
               record_found: Callable[[list[CollectionEvidence]], None] | None
               ) -> ConnectorResult:
        result = ConnectorResult()
        available = [k for k, v in keys.items() if v]
        try:
            with self._session() as (conn, state):
                findings, walk = checked_sql_system(self.system, conn, self.catalog, available)
                self._refuse(findings)
                tables = self._reflect(conn, walk.discovery, state)
                catalog = self.catalog
                db_fks = [fk for schema in {t.db_schema for t in self.system.tables}
                          for fk in catalog.foreign_keys(conn, schema)]
                result.evidence += erase_tables(
                    conn, self.system, walk, tables, keys, self._fold_case, self.context, state,
                    result, db_fks, lambda name, schema: catalog.table(conn, name, schema))
                if record_found is not None:
                    try:
                        record_found(list(result.evidence))
                    except BaseException as exc:  # not this system's error: roll back, re-raise
                        raise _NotCommitted from exc
        except _NotCommitted as stop:
            raise stop.__cause__ from None  # type: ignore[misc]
        result.evidence += self._skipped(walk, "erase")
        return result

    def _refuse(self, findings: list[Any]) -> None:
        for finding in errors_of(findings):
            if finding.problem == MISSING_TABLE:
                raise ConnectorError(
                    f"{self.system.name}.{finding.table}: {finding.problem}", finding.fix,
                    system=self.system.name, collection=finding.table, code="missing_table")
        raise_for_errors(findings, f"system {self.system.name}'s erasure plan")


class _NotCommitted(Exception):
    """Carries an exception raised by ``record_found`` out of the erasure's transaction, past
    the translation of this system's own errors."""


def _all_keys(system: SqlSystem) -> list[str]:
    keys = {"email", "phone"}
    for table in system.tables:
        keys |= set(table.provides)
    return sorted(keys)


__all__ = ["SqlConnector"]
