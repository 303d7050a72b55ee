"""Engines, reflected schemas and error translation for the SQL connector.

- :func:`engine_for` keeps one SQLAlchemy engine per URL for the life of the process (a worker
  runs many tasks against the same databases), with short connect timeouts, and SQLite foreign
  key enforcement switched on so SQLite refuses what PostgreSQL and MariaDB refuse.
- :class:`Catalog` caches reflected tables and foreign keys per engine; it is invalidated when
  a statement fails, so a retry after a schema change reflects afresh. It also knows what a
  plain reflection hides (:class:`Layout`): PostgreSQL partitions (a map names the partitioned
  parent; foreign keys declared on partitions, or pointing at them, count as the parent's),
  inheritance children, views and partitioned MariaDB/MySQL tables; and it marks the text
  columns the database already compares without case (``CASE_INSENSITIVE`` in ``Table.info``);
  both read by :mod:`connectors.sql_layout`.
- :func:`begin` opens the one transaction a task runs in, with the dialect's statement timeout.
- :func:`translate_error` turns driver errors into :class:`~dsar.errors.ConnectorError` with a
  stable ``code``, whether retrying may help (``transient``), and no data values in the text.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from connectors.sql_layout import (
    BINARY_COLLATION,
    CASE_INSENSITIVE,
    Layout,
    case_insensitive_columns,
    referrer_query,
    reflect_layout,
)
from dsar.errors import ConnectorError

T = TypeVar("T")
_LOCK = threading.Lock()
# Connection pools are the process's: one engine per URL and timeout, and its catalog, for the
# life of the process (or until dispose_all).
_ENGINES: dict[tuple[str, float], Engine] = {}
_CATALOGS: dict[Engine, Catalog] = {}


def resolve_url(url_env: str, environ: Mapping[str, str], system: str) -> str:
    url = environ.get(url_env)
    if not url:
        raise ConnectorError(
            f"system {system}: environment variable {url_env} is not set",
            f"set {url_env} to the database URL (e.g. postgresql+psycopg://user@host/db)",
            system=system, code="config",
        )
    return url


def engine_for(url: str, timeout_seconds: float = 30.0) -> Engine:
    """The process-wide engine for ``url`` whose sessions carry ``timeout_seconds`` as their
    statement timeout."""
    with _LOCK:
        engine = _ENGINES.get((url, timeout_seconds))
        if engine is None:
            engine = _create(url, timeout_seconds)
            _ENGINES[(url, timeout_seconds)] = engine
        return engine


def _create(url: str, timeout_seconds: float) -> Engine:
    # The statement timeout is set once per connection, when it is made, rather than in every
    # transaction: one round trip less per task. No pre-ping either (another round trip): a
    # connection that went stale fails its statement, which is a transient error the fleet
    # retries, and connections are recycled before servers typically drop idle ones.
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    args: dict[str, Any] = {}
    millis = int(timeout_seconds * 1000)
    if backend == "postgresql":
        args = {"connect_timeout": 5, "options": f"-c statement_timeout={millis}"}
    elif backend in ("mysql", "mariadb"):
        args = {"connect_timeout": 5, "charset": "utf8mb4"}
    elif backend == "sqlite":
        args = {"timeout": min(timeout_seconds, 30)}
    engine = sa.create_engine(url, connect_args=args, pool_recycle=1800)
    if backend in ("mysql", "mariadb"):

        @sa.event.listens_for(engine, "connect")
        def _timeout(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            version = dbapi_conn.get_server_info() if hasattr(dbapi_conn, "get_server_info") \
                else ""
            if "MariaDB" in version:
                cursor.execute(f"SET SESSION max_statement_time = {timeout_seconds:g}")
            else:
                cursor.execute(f"SET SESSION max_execution_time = {millis}")
            cursor.close()

    if backend == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _fk_on(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def dispose_all() -> None:
    """Close every cached engine (tests, shutdown)."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()
        _CATALOGS.clear()


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key the database declares: ``table.columns -> parent.parent_columns``.

    Partitions never appear: a key declared on a partition is its partitioned parent's, and
    one pointing at a partition points at the parent. ``schema``/``parent_schema`` are None
    for the connection's default schema."""

    table: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    ondelete: str | None
    nullable: bool
    schema: str | None = None
    parent_schema: str | None = None


class Catalog:
    """Reflected tables and foreign keys of one engine, cached until :meth:`invalidate`.

    ``generation`` counts invalidations: what was computed from the catalog's contents while
    it held a value stays valid while it still holds it (entries, once reflected, change only
    by invalidation)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.generation = 0
        self._tables: dict[tuple[str | None, str], sa.Table] = {}
        self._fks: dict[str | None, list[ForeignKey]] = {}
        self._layouts: dict[str | None, Layout] = {}
        self._memo: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, engine: Engine) -> Catalog:
        with _LOCK:
            catalog = _CATALOGS.get(engine)  # engines hash by identity
            if catalog is None:
                catalog = _CATALOGS[engine] = cls(engine)
            return catalog

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1
            self._tables.clear()
            self._fks.clear()
            self._layouts.clear()
            self._memo.clear()

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, kept under ``key`` until :meth:`invalidate` (for what is derived
        from the catalog alone, e.g. which indexes a table has)."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self._memo[key] = value
        return value

    def layout(self, conn: Connection, schema: str | None = None) -> Layout:
        """The :class:`Layout` of ``schema`` (default schema if None)."""
        with self._lock:
            found = self._layouts.get(schema)
        if found is None:
            found = reflect_layout(conn, schema)
            with self._lock:
                self._layouts[schema] = found
        return found

    def referrers(self, conn: Connection, schema: str | None = None) -> tuple[str, ...]:
        """The other schemas that declare foreign keys into ``schema`` (their tables' rows
        keep the database from deleting rows of ``schema`` they point at)."""
        query = referrer_query(conn.dialect.name)
        if query is None:
            return ()
        return self.memo(("referrers", schema), lambda: tuple(
            r[0] for r in conn.execute(query, {"schema": schema})))

    def table(self, conn: Connection, name: str, schema: str | None = None) -> sa.Table:
        """The reflected table; raises ``sqlalchemy.exc.NoSuchTableError`` when absent.
        ``table.info[CASE_INSENSITIVE]`` names its columns that compare without case."""
        key = (schema, name)
        with self._lock:
            if key not in self._tables:
                with warnings.catch_warnings():  # SQLite: expression indexes are not needed
                    warnings.filterwarnings("ignore", "Skipped unsupported reflection",
                                            sa.exc.SAWarning)
                    table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
                table.info[BINARY_COLLATION] = binary = case_insensitive_columns(conn, table)
                table.info[CASE_INSENSITIVE] = frozenset(binary)
                self._tables[key] = table
            return self._tables[key]

    def has_table(self, conn: Connection, name: str, schema: str | None = None) -> bool:
        try:
            self.table(conn, name, schema)
        except sa.exc.NoSuchTableError:
            return False
        return True

    def foreign_keys(self, conn: Connection, schema: str | None = None) -> list[ForeignKey]:
        """Every foreign key declared between tables of ``schema`` (default schema if None)."""
        with self._lock:
            if schema in self._fks:
                return self._fks[schema]
        inspector = sa.inspect(conn)
        layout = self.layout(conn, schema)
        default = inspector.default_schema_name
        found: dict[tuple[Any, ...], ForeignKey] = {}
        for name in inspector.get_table_names(schema=schema):
            nullable = {c["name"]: c.get("nullable", True)
                        for c in inspector.get_columns(name, schema=schema)}
            for fk in inspector.get_foreign_keys(name, schema=schema):
                cols = tuple(fk["constrained_columns"])
                # PostgreSQL leaves out the schema of a table on the search path; the others
                # leave it out for the table's own schema
                parent_schema = fk.get("referred_schema") or (
                    None if conn.dialect.name == "postgresql" else schema)
                if parent_schema == default:
                    parent_schema = None
                parent = fk["referred_table"]
                if (parent_schema or default) == (schema or default):
                    parent = layout.root(parent)
                key = (layout.root(name), cols, parent_schema, parent,
                       tuple(fk["referred_columns"]))
                found.setdefault(key, ForeignKey(
                    layout.root(name), cols, parent, tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                    all(nullable.get(c, True) for c in cols), schema, parent_schema,
                ))
        result = list(found.values())
        with self._lock:
            self._fks[schema] = result
        return result


@contextmanager
def begin(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction (the statement timeout is the engine's)."""
    with engine.connect() as conn, conn.begin():
        yield conn


_TIMEOUT_STATES = {"57014"}
_AUTH_STATES = {"28P01", "28000"}
_MYSQL_CODES = {
    1969: "timeout", 3024: "timeout", 1045: "auth", 1044: "auth", 1698: "auth",
    1049: "missing_database", 1146: "missing_table", 1054: "missing_column",
    1213: "conflict", 1205: "conflict", 1451: "integrity", 1452: "integrity",
    1048: "integrity", 1406: "integrity", 1062: "integrity",
    2002: "unreachable", 2003: "unreachable", 2005: "unreachable", 2006: "unreachable",
    2013: "unreachable",
}
_PROBLEMS = {
    "timeout": ("a statement ran longer than the statement timeout",
                "retry later, add an index on the lookup columns, or raise "
                "statement_timeout_seconds in the data map", True),
    "auth": ("the database refused the credentials",
             "check the user and password in the URL's environment variable", False),
    "missing_database": ("the database named in the URL does not exist",
                         "check the URL's database name", False),
    "missing_table": ("a table in the data map does not exist in the database",
                      "run `dsar datamap check` and fix the table name", False),
    "missing_column": ("a column in the data map does not exist in the database",
                       "run `dsar datamap check` and fix the column name", False),
    "conflict": ("the transaction met a lock conflict or deadlock", "retry", True),
    "integrity": ("the database refused a change (a constraint would break); nothing was "
                  "changed", "run `dsar datamap check`: the map's erasure plan does not fit "
                  "the schema's constraints", False),
    "unreachable": ("the database does not answer", "check that it runs and that the host and "
                    "port in the URL are right; the task will be retried", True),
    "db_error": ("the database reported an error", "see the database log", False),
}


def classify(exc: BaseException) -> str:
    """A stable code for a driver error (see ``_PROBLEMS``)."""
    if isinstance(exc, sa.exc.NoSuchTableError):
        return "missing_table"
    orig = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None)
    if state is None and hasattr(orig, "diag"):
        state = getattr(orig.diag, "sqlstate", None)
    text = str(orig).lower()
    if state:
        if state in _TIMEOUT_STATES:
            return "timeout"
        if state in _AUTH_STATES:
            return "auth"
        if state == "3D000":
            return "missing_database"
        if state == "42P01":
            return "missing_table"
        if state == "42703":
            return "missing_column"
        if state in ("40001", "40P01", "55P03"):
            return "conflict"
        if state.startswith("23"):
            return "integrity"
        if state.startswith("08"):
            return "unreachable"
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_CODES:
        return _MYSQL_CODES[args[0]]
    if "no such table" in text:
        return "missing_table"
    if "no such column" in text or "has no column" in text:
        return "missing_column"
    if "constraint failed" in text:
        return "integrity"
    if "database is locked" in text:
        return "conflict"
    if "password authentication failed" in text or ("role" in text and "does not exist" in text):
        return "auth"
    if "database" in text and "does not exist" in text:
        return "missing_database"
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) and (
        "connect" in text or "connection" in text or "timeout expired" in text
    ):
        return "unreachable"
    return "db_error"


def translate_error(
    exc: BaseException, system: str, collection: str | None = None
) -> ConnectorError:
    """A :class:`ConnectorError` naming ``system`` and ``collection``; no values in the text."""
    code = classify(exc)
    problem, fix, transient = _PROBLEMS[code]
    orig = getattr(exc, "orig", None) or exc
    where = f"{system}.{collection}" if collection else system
    detail = type(orig).__name__
    if code == "missing_table" and isinstance(exc, sa.exc.NoSuchTableError):
        detail = f"table {exc.args[0]!r}"
    return ConnectorError(f"{where}: {problem} ({detail})", fix, system=system,
                          collection=collection, code=code, transient=transient)
