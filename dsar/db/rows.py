"""The state database's hot path: the one way workflows and the domain reach
:mod:`dsar.db.direct`.

A flush costs far more CPU than the statement it sends, and SQLAlchemy's per-execution
machinery about as much as the driver on a one-row statement. So where the worker changes a few
columns of an object it has loaded (a request, a task), inserts rows it never reads back as
objects, or reads a few rows, these functions run the statement at once on the session's
connection, in the session's transaction, on the driver's cursor where SQLAlchemy would do
nothing more (:mod:`dsar.db.direct`), and keep loaded objects consistent: new values become
their committed state, so nothing is left for a later flush and reads through the object see
what the row holds. Inside :func:`deferred`, on PostgreSQL, writes wait to share the next
read's round trip.

Every function has the same outcome without the fast path (``DSAR_SQL_FAST_PATH=false``, see
:func:`dsar.db.direct.without_fast_path`): then it uses the ORM's unit of work and SQLAlchemy
Core, one statement at a time. Callers pass a :class:`~sqlalchemy.orm.Session` and statements
built once (module constants: statements built per call cost CPU and fill the caches below,
which hold one entry per statement, table and column set).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from dsar.db import direct


def fetch(session: Session, stmt: sa.Select[Any] | sa.Insert | sa.Update | sa.Delete,
          params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    """The rows of ``stmt`` (a SELECT, or DML with RETURNING) with ``params``, as tuples in
    its columns' order, in ``session``'s transaction. Like any Core statement on the session's
    connection it does not flush the session first."""
    return direct.fetch(session.connection(), stmt, params)


def send(session: Session, stmt: sa.Insert | sa.Update | sa.Delete | sa.TextClause,
         params: Mapping[str, Any]) -> None:
    """Run DML ``stmt`` (without RETURNING; or SQL text without parameters) whose outcome the
    caller does not read, in ``session``'s transaction: now, or inside :func:`deferred` with
    the next statement that reads a result."""
    direct.send(session.connection(), stmt, params)


@contextlib.contextmanager
def deferred(session: Session) -> Iterator[None]:
    """Let the writes of :func:`send`, :func:`update_row` and :func:`insert_rows` (without
    ``returning_id``) wait inside the block, to travel with the next statement that reads a
    result, or together at the block's end: one round trip on PostgreSQL (psycopg) with the
    fast path; elsewhere the block changes nothing. Statements keep their order; a waiting
    write's error is raised by the statement it travels with, or at the block's end (see
    :func:`dsar.db.direct.deferred`)."""
    with direct.deferred(session.connection()):
        yield


_UPDATES: dict[tuple[sa.Table, tuple[str, ...]], sa.Update] = {}


def update_row(session: Session, obj: Any, **values: Any) -> None:
    """``UPDATE`` the row of the loaded object ``obj`` (a single-column primary key) with
    ``values``, and make them the object's committed state. The statement runs now, or inside
    :func:`deferred` with the next statement that reads a result. Without the fast path: the
    attributes are set and the session flushed."""
    mapper = sa.inspect(obj).mapper
    table = mapper.local_table
    key = (table, tuple(sorted(values)))
    statement = _UPDATES.get(key)
    if statement is None:
        (pk,) = mapper.primary_key
        # bind names other than the columns', as UPDATE wants
        statement = (sa.update(table).where(pk == sa.bindparam("_pk"))
                     .values({name: sa.bindparam(f"_v_{name}") for name in key[1]}))
        _UPDATES[key] = statement
    if not direct.fast_path(session.get_bind()):
        for name, value in values.items():
            setattr(obj, name, value)
        session.flush()
        return
    (pk_value,) = mapper.primary_key_from_instance(obj)
    direct.send(session.connection(), statement,
                {"_pk": pk_value, **{f"_v_{k}": v for k, v in values.items()}})
    for name, value in values.items():
        set_committed_value(obj, name, value)


_INSERTS: dict[tuple[sa.Table, bool], sa.Insert] = {}
_ONE_ROW: dict[tuple[sa.Table, tuple[str, ...], bool], sa.Insert] = {}


def insert_rows(session: Session, table: sa.Table, rows: Sequence[Mapping[str, Any]],
                *, returning_id: bool = False) -> list[Any]:
    """``INSERT`` ``rows`` into ``table``; with ``returning_id``, their new ``id`` values in
    the order of ``rows``. Without it, inside :func:`deferred`, the rows go with the next
    statement that reads a result; otherwise now. Without the fast path: objects of the
    table's mapped class, added to the session and flushed."""
    if not rows:
        return []
    if not direct.fast_path(session.get_bind()):
        cls = _mapped_class(table)
        objects = [cls(**row) for row in rows]
        session.add_all(objects)
        session.flush()
        return [o.id for o in objects] if returning_id else []
    if len(rows) == 1 or (not returning_id and direct.deferring(session.connection())):
        return [i for row in rows for i in _insert_one(session, table, row, returning_id)]
    statement = _INSERTS.get((table, returning_id))
    if statement is None:
        statement = sa.insert(table)
        if returning_id:
            statement = statement.returning(table.c.id, sort_by_parameter_order=True)
        _INSERTS[(table, returning_id)] = statement
    result = session.connection().execute(statement, list(rows))
    return list(result.scalars()) if returning_id else []


def _insert_one(session: Session, table: sa.Table, row: Mapping[str, Any],
                returning_id: bool) -> list[Any]:
    key = (table, tuple(row), returning_id)
    statement = _ONE_ROW.get(key)
    if statement is None:
        # compiled once for these columns (bind names other than the columns', as INSERT wants)
        statement = sa.insert(table).values({name: sa.bindparam(f"_v_{name}") for name in row})
        # without the primary key's implicit RETURNING when the caller does not want it
        statement = statement.returning(table.c.id) if returning_id else statement.inline()
        _ONE_ROW[key] = statement
    params = {f"_v_{name}": value for name, value in row.items()}
    conn = session.connection()
    if returning_id:
        return [direct.fetch(conn, statement, params)[0][0]]
    direct.send(conn, statement, params)
    return []


def _mapped_class(table: sa.Table) -> type:
    from dsar.db.models import Base

    (cls,) = [m.class_ for m in Base.registry.mappers if m.local_table is table]
    return cls


def insert_objects(session: Session, objects: Sequence[Any]) -> None:
    """``INSERT`` the rows of new mapped ``objects`` (built in memory, never added to a
    session; foreign keys set): each table's rows together, the tables in the order they
    first appear in ``objects`` (so a parent's table goes first). With the fast path the rows
    go as :func:`insert_rows` writes them (in one round trip on PostgreSQL) and the objects
    stay out of ``session``; without it they join ``session``, flushed table by table. Either
    way, read the rows back rather than use the objects as loaded ones."""
    groups: dict[sa.Table, list[Any]] = {}
    for obj in objects:
        groups.setdefault(sa.inspect(obj).mapper.local_table, []).append(obj)
    if not direct.fast_path(session.get_bind()):
        for group in groups.values():
            session.add_all(group)
            session.flush()
        return
    with deferred(session):
        for table, group in groups.items():
            insert_rows(session, table, [_values(obj) for obj in group])


def _values(obj: Any) -> dict[str, Any]:
    """The column values set on a new ORM object (columns left unset take their defaults)."""
    state = sa.inspect(obj)
    return {attr.key: state.dict[attr.key] for attr in state.mapper.column_attrs
            if attr.key in state.dict}


_COLUMNS: dict[type, tuple[list[str], list[sa.Column[Any]]]] = {}


def _columns(cls: type) -> tuple[list[str], list[sa.Column[Any]]]:
    known = _COLUMNS.get(cls)
    if known is None:
        props = list(sa.inspect(cls).column_attrs)
        known = _COLUMNS[cls] = ([p.key for p in props], [p.columns[0] for p in props])
    return known


def select_all(cls: type) -> sa.Select[Any]:
    """A SELECT of every mapped column of ``cls``, for a :data:`Read` of its objects."""
    return sa.select(*_columns(cls)[1])


def _adopt(session: Session, cls: type, row: Sequence[Any]) -> Any:
    """The persistent object of mapped class ``cls`` for ``row`` (read with :func:`select_all`
    outside the ORM), as the ORM would load it with ``populate_existing``: an object of that
    identity already in ``session`` takes the row's values as its committed state; otherwise a
    new object joins ``session`` without any SQL. Relationships load when first used."""
    names = _columns(cls)[0]
    mapper = sa.inspect(cls)
    values = dict(zip(names, row, strict=True))
    key = mapper.identity_key_from_primary_key(
        [values[mapper.get_property_by_column(c).key] for c in mapper.primary_key])
    obj = session.identity_map.get(key)
    if obj is not None:
        for name, value in values.items():
            set_committed_value(obj, name, value)
        return obj
    obj = mapper.class_manager.new_instance()
    for name, value in values.items():
        set_committed_value(obj, name, value)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


#: A read for :func:`read_together`: the mapped class of the objects wanted (None: rows), the
#: statement and its parameters.
Read = tuple[type | None, sa.Select[Any], Mapping[str, Any]]


def read_together(session: Session, reads: Sequence[Read]) -> list[list[Any]]:
    """For each ``(cls, stmt, params)`` of ``reads``: with a mapped class ``cls`` (``stmt``
    built on :func:`select_all` of it), the persistent objects of its rows as the ORM loads
    them with ``populate_existing`` (an object already in ``session`` takes the row's values;
    relationships load when first used); with None, the rows as :func:`fetch` returns them.
    After a flush of ``session``, as the ORM's autoflush would; on PostgreSQL, with the fast
    path, in one round trip with the writes waiting in :func:`deferred`. None of the
    statements may depend on another's result."""
    session.flush()
    conn = session.connection()
    if direct.fast_path(conn):
        results = direct.fetch_together(conn, [(stmt, params) for _, stmt, params in reads])
        return [list(rows) if cls is None else [_adopt(session, cls, row) for row in rows]
                for (cls, _, _), rows in zip(reads, results, strict=True)]
    return [list(session.execute(stmt, dict(params)).all()) if cls is None
            else list(session.scalars(sa.select(cls).from_statement(stmt), dict(params),
                                      execution_options={"populate_existing": True}))
            for cls, stmt, params in reads]
