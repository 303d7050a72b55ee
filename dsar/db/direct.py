"""Cached statements run on the connection's DB-API cursor, as SQLAlchemy would run them.

On a short indexed look-up or a one-row write, SQLAlchemy's per-execution machinery (execution
context, cursor result, row objects) costs about as much CPU as the driver itself: the SQL
connector runs several such statements per subject, and the worker's hot path several per
request on the state database (:func:`execute`, :func:`fetch`). :class:`DirectStatement`
compiles a statement once for a dialect — a SELECT, or an INSERT/UPDATE/DELETE with or without
RETURNING — and runs it on the DB-API cursor of the SQLAlchemy connection, inside its
transaction, doing what SQLAlchemy does for such a statement:

- parameters: :meth:`~sqlalchemy.sql.compiler.SQLCompiler.construct_params` (which refuses a
  missing value), the bind types' bind processors, escaped names, positional order;
- rows (:meth:`~DirectStatement.all`; SELECT or RETURNING): the result columns' processors for
  the cursor's column type codes, worked out at the first execution and kept with the
  statement (as SQLAlchemy keeps a compiled statement's result metadata), so values are
  exactly what ``conn.execute(stmt).all()`` yields;
- row counts (:meth:`~DirectStatement.rowcount`; DML without RETURNING): the cursor's
  ``rowcount``, which is what SQLAlchemy's ``CursorResult.rowcount`` reports (rows matched, on
  MySQL/MariaDB too: SQLAlchemy connects with ``CLIENT.FOUND_ROWS``);
- errors: DB-API errors become SQLAlchemy's ``DBAPIError`` subclasses (parameters hidden), and a
  disconnect invalidates the connection.

Writes whose outcome the caller does not read go through :func:`send`. Inside :func:`deferred`
on PostgreSQL (psycopg), they wait and travel with the next statement that reads a result, or
at the end of the block, in one pipeline: one round trip for several statements (see
:func:`deferred` for what that changes).

It steps aside — :func:`run` falls back to ``conn.execute`` — whenever SQLAlchemy would do more
than that: expanding or literal-execute parameters, column defaults computed in Python (an
INSERT that leaves out such a column), echo, execution options that change the
SQL (``schema_translate_map``), or execute, cursor, error or ``do_execute`` event listeners on
the engine or its dialect (SQL logging or tracing keeps seeing every statement), and on an
engine the fast path is turned off for (:func:`without_fast_path`, ``DSAR_SQL_FAST_PATH=false``).

Two callers only (an import-linter contract): :mod:`dsar.db.rows`, through which the rest of
dsar reaches the state database's fast path, and the SQL connector's collect, erase and
recount, which run Core statements compiled once on the customer's databases.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

_ENGINE_EVENTS = ("before_execute", "after_execute", "before_cursor_execute",
                  "after_cursor_execute")
_DIALECT_EVENTS = ("handle_error", "do_execute", "do_execute_no_params", "do_setinputsizes")


class DirectStatement:
    """``stmt`` compiled once for ``dialect``; see the module docstring for the contract.

    ``stmt`` is a SELECT, or a DML statement (its RETURNING columns, if any, are the rows); an
    INSERT names its values as bind parameters (``.values(col=bindparam(...))``), since it is
    compiled once, not for the keys of each call's parameters."""

    def __init__(self, stmt: sa.Select[Any] | sa.Insert | sa.Delete | sa.Update,
                 dialect: Dialect) -> None:
        self.stmt = stmt
        self.dialect = dialect
        columns = stmt.selected_columns if isinstance(stmt, sa.Select) \
            else stmt.exported_columns  # a DML statement's RETURNING columns (or none)
        self.names = [str(k) for k in columns.keys()]  # noqa: SIM118
        self._types = [c.type for c in columns]
        compiled = stmt.compile(dialect=dialect)
        self._compiled = compiled
        self.sql = compiled.string
        self._order = list(compiled.positiontup or ()) if compiled.positional else None
        self._escaped = dict(compiled.escaped_bind_names or {})
        self._bind_processors = {
            name: proc for bind, name in compiled.bind_names.items()
            if (proc := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
        # Column defaults computed in Python at execution (prefetch) are SQLAlchemy's to run.
        self.usable = not (compiled.literal_execute_params or compiled.post_compile_params
                           or any(b.expanding for b in compiled.binds.values())
                           or getattr(compiled, "insert_prefetch", None)
                           or getattr(compiled, "update_prefetch", None))
        self._result_processors: list[Any] | None = None
        self._described = False

    def _arguments(self, params: Mapping[str, Any]) -> Any:
        """The DB-API parameters, built as SQLAlchemy's execution context builds them."""
        values = self._compiled.construct_params(params, escape_names=False)
        for name, proc in self._bind_processors.items():
            values[name] = proc(values[name])
        if self._order is not None:
            return self.dialect.execute_sequence_format([values[k] for k in self._order])
        return {self._escaped.get(k, k): v for k, v in values.items()}

    def _processors(self, cursor: Any) -> list[Any] | None:
        if not self._described:
            dialect = self.dialect
            procs = [t.dialect_impl(dialect).result_processor(dialect, d[1])
                     for t, d in zip(self._types, cursor.description, strict=True)]
            self._result_processors = procs if any(procs) else None
            self._described = True
        return self._result_processors

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Every row, as tuples in ``names`` order (call only where :func:`direct_ok`)."""
        return self._processed(*self._execute(conn, params, True))

    @staticmethod
    def _processed(rows: list[Any], procs: list[Any] | None) -> list[Sequence[Any]]:
        if procs is None:
            return rows
        return [tuple(v if p is None else p(v) for p, v in zip(procs, row, strict=True))
                for row in rows]

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """The rows a DML statement without RETURNING matched (call only where
        :func:`direct_ok`)."""
        return self._execute(conn, params, False)[0]  # type: ignore[no-any-return]

    def _execute(self, conn: Connection, params: Mapping[str, Any], fetch: bool) -> Any:
        """Run once on a fresh cursor: ``(rows, result processors)`` when ``fetch``, else
        ``(rowcount, None)``; DB-API errors become SQLAlchemy's, as ``conn.execute`` raises."""
        args = self._arguments(params)
        dbapi_conn = _in_transaction(conn)
        waiting = conn.info.get(_WAITING)
        cursor = dbapi_conn.cursor()
        try:
            if waiting:  # they go first, in the same round trip
                with dbapi_conn.pipeline():
                    _send_waiting(dbapi_conn, waiting)
                    cursor.execute(self.sql, args)
                # Read only now: the block's end sent a Sync and took every answer in, while a
                # fetch inside it would have cost a round trip of its own.
            else:
                cursor.execute(self.sql, args)
            if not fetch:
                return cursor.rowcount, None
            rows = cursor.fetchall()
            return rows, self._processors(cursor)
        except self.dialect.loaded_dbapi.Error as exc:
            raise _sqlalchemy_error(conn, self.sql, exc, cursor) from exc
        finally:
            cursor.close()


def _sqlalchemy_error(conn: Connection, sql: str, exc: Exception, cursor: Any) -> Exception:
    """The SQLAlchemy error ``conn.execute`` would raise for DB-API error ``exc`` (parameters
    hidden); a disconnect invalidates ``conn``."""
    dialect = conn.dialect
    invalidated = dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
    if invalidated:
        conn.invalidate(exc)
    return sa.exc.DBAPIError.instance(  # type: ignore[no-any-return]
        sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
        connection_invalidated=invalidated, dialect=dialect)


#: The execution option that turns the fast path off for an engine or a connection.
_FAST_PATH = "dsar_fast_path"


def without_fast_path(engine: Engine) -> Engine:
    """``engine``, changed so that every statement on it goes through SQLAlchemy: here
    :func:`direct_ok` is false, and :mod:`dsar.db.rows` uses the ORM's unit of work."""
    engine.update_execution_options(**{_FAST_PATH: False})
    return engine


def fast_path(conn: Connection | Engine) -> bool:
    """Whether the fast path is allowed on ``conn`` (see :func:`without_fast_path`)."""
    return conn.get_execution_options().get(_FAST_PATH, True) is not False


def direct_ok(conn: Connection) -> bool:
    """Whether SQLAlchemy would do nothing for a plain statement on ``conn`` beyond what
    :class:`DirectStatement` does (no echo, no SQL-changing options, no statement listeners),
    and the fast path is allowed on it (:func:`fast_path`)."""
    engine = conn.engine
    options = conn.get_execution_options()
    if engine.echo or options.get("schema_translate_map") or options.get(_FAST_PATH) is False:
        return False
    try:
        return not (any(getattr(engine.dispatch, name) for name in _ENGINE_EVENTS)
                    or any(getattr(engine.dialect.dispatch, name) for name in _DIALECT_EVENTS))
    except AttributeError:  # another SQLAlchemy's event names: be conservative
        return False


def run(conn: Connection, query: DirectStatement, params: Mapping[str, Any],
        direct: bool) -> Sequence[Sequence[Any]]:
    """``query``'s rows with ``params``: on the cursor when ``direct`` (see
    :func:`direct_ok`) and the statement allows it, else through ``conn.execute``."""
    if direct and query.usable:
        return query.all(conn, params)
    return conn.execute(query.stmt, dict(params)).all()


def run_rowcount(conn: Connection, query: DirectStatement, params: Mapping[str, Any],
                 direct: bool) -> int:
    """The rows DML ``query`` matched with ``params``: on the cursor when ``direct`` and the
    statement allows it, else through ``conn.execute``."""
    if direct and query.usable:
        return query.rowcount(conn, params)
    return conn.execute(query.stmt, dict(params)).rowcount  # type: ignore[attr-defined, no-any-return]


_STATEMENTS: dict[tuple[Any, str, str], DirectStatement] = {}


def _direct(stmt: Any, dialect: Dialect) -> DirectStatement:
    key = (stmt, dialect.name, dialect.driver)
    query = _STATEMENTS.get(key)
    if query is None:
        query = _STATEMENTS[key] = DirectStatement(stmt, dialect)
    return query


def execute(conn: Connection, stmt: sa.Insert | sa.Update | sa.Delete,
            params: Mapping[str, Any]) -> int:
    """Run DML ``stmt`` (built once, without RETURNING) with ``params``; the rows it matched.
    On the cursor where SQLAlchemy would do nothing more (:func:`direct_ok`), else through
    ``conn.execute``."""
    return run_rowcount(conn, _direct(stmt, conn.dialect), params, direct_ok(conn))


def fetch(conn: Connection, stmt: sa.Select[Any] | sa.Insert | sa.Update | sa.Delete,
          params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    """The rows of ``stmt`` (built once: a SELECT, or DML with RETURNING) with ``params``, as
    :func:`execute` runs it."""
    return run(conn, _direct(stmt, conn.dialect), params, direct_ok(conn))


def fetch_together(conn: Connection, reads: Sequence[tuple[sa.Select[Any], Mapping[str, Any]]]
                   ) -> list[Sequence[Sequence[Any]]]:
    """The rows of each ``(stmt, params)`` in ``reads``, as :func:`fetch` returns them: on
    PostgreSQL (psycopg) in one round trip, with the writes waiting (:func:`deferred`) sent
    first and, at a transaction's start, its BEGIN; elsewhere one after the other. None of the
    statements may depend on another's result."""
    queries = [(_direct(stmt, conn.dialect), params) for stmt, params in reads]
    if conn.dialect.driver != "psycopg" or not direct_ok(conn) \
            or not all(q.usable for q, _ in queries):
        return [fetch(conn, stmt, params) for stmt, params in reads]
    dbapi_conn = _in_transaction(conn)
    cursors = [dbapi_conn.cursor() for _ in queries]
    try:
        with dbapi_conn.pipeline():
            waiting = conn.info.get(_WAITING)
            if waiting:
                _send_waiting(dbapi_conn, waiting)
            for cursor, (query, params) in zip(cursors, queries, strict=True):
                cursor.execute(query.sql, query._arguments(params))
        # read after the block's Sync (see DirectStatement._execute)
        return [query._processed(cursor.fetchall(), query._processors(cursor))
                for cursor, (query, _) in zip(cursors, queries, strict=True)]
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _sqlalchemy_error(conn, "(reads sent together)", exc, None) from exc
    finally:
        for cursor in cursors:
            cursor.close()


_WAITING = "dsar.direct.waiting"  # Connection.info: the writes send() has queued


def send(conn: Connection, stmt: sa.Insert | sa.Update | sa.Delete | sa.TextClause,
         params: Mapping[str, Any]) -> None:
    """Run DML ``stmt`` (built once, without RETURNING; or SQL text without parameters) whose
    outcome the caller does not read: at once, as :func:`execute` runs it, or inside
    :func:`deferred`, later."""
    waiting = conn.info.get(_WAITING)
    if isinstance(stmt, sa.TextClause):
        if waiting is None or params:
            conn.execute(stmt, dict(params))
        else:
            _in_transaction(conn)  # so that a commit or rollback meanwhile sees it
            waiting.append((stmt.text, None))
        return
    if waiting is None:
        execute(conn, stmt, params)
        return
    query = _direct(stmt, conn.dialect)
    if not query.usable:
        flush(conn)
        conn.execute(query.stmt, dict(params))
        return
    _in_transaction(conn)
    waiting.append((query.sql, query._arguments(params)))


def deferring(conn: Connection) -> bool:
    """Whether :func:`send` on ``conn`` queues writes now (inside :func:`deferred`)."""
    return conn.info.get(_WAITING) is not None


@contextlib.contextmanager
def deferred(conn: Connection) -> Iterator[None]:
    """Let :func:`send`'s writes on ``conn`` wait inside the block, to travel with the next
    statement that reads a result (:func:`fetch`, :func:`execute`) or, at the block's end,
    together: one round trip for all of them, in PostgreSQL's pipeline mode (psycopg). Where
    that is not available (other databases and drivers, or :func:`direct_ok` false) the block
    changes nothing: :func:`send` runs each write at once.

    What stays the same: the statements run in the order the code issues them, in the
    caller's transaction; SQLAlchemy's own executions on ``conn`` (ORM loads and flushes,
    ``conn.execute``) and its commits send the waiting writes first, its rollbacks drop them
    with the rest of the transaction. What changes: a waiting write's error is
    raised by the statement it travels with, or at the end of the block; and the block's
    exception, if it has one, is raised after the waiting writes were sent (an error of theirs
    then aborts the transaction). Nested blocks are one block."""
    if deferring(conn) or conn.dialect.driver != "psycopg" or not direct_ok(conn):
        yield
        return
    info = conn.info  # kept: an invalidated connection's info would reconnect
    info[_WAITING] = []
    for name, listener in _LISTENERS:
        sa.event.listen(conn, name, listener)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the block's own exception is the one to see
            if info[_WAITING]:
                flush(conn)
        raise
    else:
        if info[_WAITING]:  # (a commit in the block may have closed a session's connection)
            flush(conn)
    finally:
        info.pop(_WAITING, None)
        for name, listener in _LISTENERS:
            sa.event.remove(conn, name, listener)


def flush(conn: Connection) -> None:
    """Send the writes waiting on ``conn`` now, in one round trip (nothing when none wait)."""
    waiting = conn.info.get(_WAITING)
    if not waiting:
        return
    dbapi_conn = _in_transaction(conn)
    try:
        with dbapi_conn.pipeline():
            _send_waiting(dbapi_conn, waiting)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _sqlalchemy_error(conn, "(writes sent together)", exc, None) from exc


def _send_waiting(dbapi_conn: Any, waiting: list[tuple[str, Any]]) -> None:
    """Queue ``waiting`` on ``dbapi_conn``'s open pipeline, emptying it."""
    batch = list(waiting)
    waiting.clear()
    with dbapi_conn.cursor() as cursor:
        for sql, args in batch:
            cursor.execute(sql, args)


def _in_transaction(conn: Connection) -> Any:
    """``conn``'s DB-API connection, in a transaction SQLAlchemy knows of (begun here as
    ``conn.execute`` would begin it), so that ``conn.commit()`` and ``conn.rollback()`` take
    what runs on its cursor."""
    if not conn.in_transaction():
        conn.begin()
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    return dbapi_conn


def _flush_before(conn: Connection, cursor: Any, statement: str, parameters: Any,
                  context: Any, executemany: bool) -> None:
    flush(conn)


def _drop_waiting(conn: Connection) -> None:
    """A rollback takes the waiting writes with the rest of the transaction."""
    waiting = conn.info.get(_WAITING)
    if waiting:
        waiting.clear()


#: Inside :func:`deferred`: SQLAlchemy's executions and commits send the waiting writes first;
#: a rollback drops them.
_LISTENERS = (("before_cursor_execute", _flush_before), ("commit", flush),
              ("rollback", _drop_waiting))
