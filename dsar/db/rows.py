"""Writes on the hot path that skip the ORM's unit of work, and rows read outside the ORM made
into the objects it would have loaded.

A flush costs far more CPU than the statement it sends. Where the worker changes a few columns
of an object it has loaded (a request, a task) or inserts rows it never reads back as objects,
these run the statement at once on the session's connection, in the session's transaction, and
keep loaded objects consistent: the new values become their committed state, so nothing is left
for a later flush and reads through the object see what the row holds. One-row statements run
on the driver's cursor (:mod:`dsar.db.direct`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from dsar.db import direct

_UPDATES: dict[tuple[sa.Table, tuple[str, ...]], sa.Update] = {}


def update_row(session: Session, obj: Any, **values: Any) -> None:
    """``UPDATE`` the row of the loaded object ``obj`` (a single-column primary key) with
    ``values``, and make them the object's committed state. The statement runs now, or inside
    :func:`dsar.db.direct.deferred` with the next statement that reads a result."""
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
    the order of ``rows``. Without it, inside :func:`dsar.db.direct.deferred`, the rows go
    with the next statement that reads a result; otherwise now."""
    if not rows:
        return []
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


_COLUMNS: dict[type, tuple[list[str], list[sa.Column[Any]]]] = {}


def _columns(cls: type) -> tuple[list[str], list[sa.Column[Any]]]:
    known = _COLUMNS.get(cls)
    if known is None:
        props = list(sa.inspect(cls).column_attrs)
        known = _COLUMNS[cls] = ([p.key for p in props], [p.columns[0] for p in props])
    return known


def select_all(cls: type) -> sa.Select[Any]:
    """A SELECT of every mapped column of ``cls``, in the order :func:`adopt` takes them."""
    return sa.select(*_columns(cls)[1])


def adopt(session: Session, cls: type, row: Sequence[Any]) -> Any:
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
