"""Erase by key, mask, and the recount that ends every erasure (see :mod:`connectors.sql_erase`).

- :class:`KeyStatements`: statements over a table's rows by primary key, one per chunk of
  :data:`~connectors.sql_query.CHUNK` keys; a single-column key binds one parameter per value,
  the chunk padded to a power of two by repeating its last key (``id IN (1, 2, 3, 3)`` selects
  what ``id IN (1, 2, 3)`` does), so each statement is built, compiled and prepared once per
  size. Composite keys use SQLAlchemy's expanding ``(a, b) IN`` (run through ``conn.execute``).
- :func:`mask_rows`: overwrite the masked columns of the subject's rows, counting only rows that
  change, so a second erasure reports 0. ``null``/``fixed`` masks are one ``UPDATE … WHERE key
  IN (…) AND <a column differs>`` per chunk; ``hash``/``random`` ones read the chunk, compute
  each row's mask and update the rows that differ (one ``executemany``).
- :func:`recount`: in the same transaction, before commit. Delete tables: the look-up is run
  again for every one of them, as counts in one statement, plus a count by key of the rows a
  DELETE reported fewer of than were found. Mask tables: rows found by key or by the look-up
  whose masked columns do not hold their mask, and rows the look-ups by key alone
  (:func:`key_walk`: identities and provided keys, minus columns the map keeps on purpose)
  still find — a masked row that still holds the subject's identity is not erased. Rows kept
  because other records share them (:mod:`connectors.sql_shared`) are never counted; ``none``
  and ``retain`` tables are not recounted. Anything found raises
  :class:`~dsar.errors.ConnectorError` (``recount_failed``, transient), so the caller's
  transaction rolls back; otherwise each table's ``remaining`` is set to 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from connectors.base import ConnectorContext
from connectors.sql_check import effective_pk
from connectors.sql_mask import mask_function, same
from connectors.sql_plan import SubjectLookup, WalkStatements, padded_size
from connectors.sql_query import chunks
from dsar.datamap.schema import SqlSystem, SqlTable
from dsar.db.direct import DirectStatement, run, run_rowcount
from dsar.errors import ConnectorError
from dsar.evidence import CollectionEvidence
from dsar.memo import DerivedFrom
from dsar.planning import SystemWalk

Pk = tuple[Any, ...]
_NAMES: dict[int, tuple[str, ...]] = {}


def _key_names(size: int) -> tuple[str, ...]:
    names = _NAMES.get(size)
    if names is None:
        names = _NAMES[size] = tuple(f"_k{i}" for i in range(size))
    return names


class KeyStatements:
    """Statements over table ``name``'s rows by primary key ``pk`` (see the module docstring).

    Statements are kept in ``plan`` under ``(kind, name, pk, size)``: ``kind`` must name
    everything ``build`` puts in the statement besides the key clause."""

    def __init__(self, plan: WalkStatements, name: str, table: sa.Table, pk: Sequence[str],
                 dialect: Dialect) -> None:
        self.plan, self.name, self.table, self.dialect = plan, name, table, dialect
        self.pk = tuple(pk)
        self.columns = [table.c[c] for c in pk]

    def _clause(self, size: int) -> sa.ColumnElement[bool]:
        if len(self.columns) == 1:
            column = self.columns[0]
            return column.in_([sa.bindparam(n, type_=column.type) for n in _key_names(size)])
        return sa.tuple_(*self.columns).in_(sa.bindparam("_keys", expanding=True))

    def chunks(self, kind: Hashable, build: Callable[[sa.ColumnElement[bool]], Any],
               keys: Sequence[Pk]) -> Iterator[tuple[DirectStatement, dict[str, Any]]]:
        """Per chunk of ``keys``: the statement ``build(<key IN chunk>)`` and its parameters."""
        for part in chunks(keys):
            if len(self.columns) == 1:
                size = padded_size(len(part))
                values = [k[0] for k in part]
                values += [values[-1]] * (size - len(values))
                params = dict(zip(_key_names(size), values, strict=True))
            else:
                size, params = 0, {"_keys": [tuple(k) for k in part]}
            query = self.plan.statement(
                (kind, self.name, self.pk, size),
                lambda s=size: DirectStatement(build(self._clause(s)), self.dialect))  # type: ignore[misc]
            yield query, params

    def delete(self, conn: Connection, keys: Sequence[Pk], direct: bool) -> int:
        """Delete the rows with these keys; how many the database reported deleted."""
        return sum(run_rowcount(conn, query, params, direct) for query, params in self.chunks(
            "erase-delete-keys", lambda clause: sa.delete(self.table).where(clause), keys))

    def count(self, conn: Connection, keys: Sequence[Pk], direct: bool) -> int:
        """How many rows with these keys there are."""
        return sum(int(run(conn, query, params, direct)[0][0]) for query, params in self.chunks(
            "erase-count-keys",
            lambda clause: sa.select(sa.func.count()).select_from(self.table).where(clause),
            keys))


def mask_functions(entry: SqlTable, table: sa.Table, context: ConnectorContext,
                   system: str) -> dict[str, Callable[[Sequence[Any]], Any]]:
    """Per masked column, the function from a row's primary key to its mask value."""
    scope = f"{system}/{entry.name}"
    return {col: mask_function(rule, table.c[col], context.keyed_hash, scope)
            for col, rule in entry.erasure.mask.items()}


def unmasked(rows: Sequence[Sequence[Any]], funcs: dict[str, Callable[[Sequence[Any]], Any]],
             width: int) -> list[dict[str, Any]]:
    """Of ``rows`` (``width`` key columns, then the masked columns in ``funcs`` order), those
    whose masked columns differ from their mask, as the UPDATE parameters that fix them."""
    todo = []
    for row in rows:
        key = tuple(row[:width])
        expected = [f(key) for f in funcs.values()]
        if not all(same(c, e) for c, e in zip(row[width:], expected, strict=True)):
            params = {f"_pk{i}": v for i, v in enumerate(key)}
            params.update({f"_m{i}": v for i, v in enumerate(expected)})
            todo.append(params)
    return todo


def _mask_read(keys: KeyStatements, funcs: dict[str, Any]) -> tuple[Hashable, Any]:
    """The kind and builder of the statements reading keys and masked columns by key."""
    table = keys.table
    columns = [*keys.columns, *[table.c[c] for c in funcs]]
    return ("erase-mask-read", tuple(funcs)), lambda clause: sa.select(*columns).where(clause)


def mask_rows(conn: Connection, plan: WalkStatements, entry: SqlTable, table: sa.Table,
              pk: list[str], keys: Sequence[Pk], context: ConnectorContext, system: str,
              direct: bool) -> int:
    """Mask the rows with these ``keys``; how many changed (see the module docstring)."""
    funcs = mask_functions(entry, table, context, system)
    statements = KeyStatements(plan, entry.name, table, pk, conn.dialect)
    if all(rule.strategy in ("null", "fixed") for rule in entry.erasure.mask.values()):
        values = {col: f(()) for col, f in funcs.items()}

        def build(clause: sa.ColumnElement[bool]) -> sa.Update:
            differs = sa.or_(*[
                table.c[c].is_not(None) if v is None
                else sa.or_(table.c[c] != v, table.c[c].is_(None))
                for c, v in values.items()])
            return sa.update(table).where(clause).where(differs).values(values)

        fixed = ("erase-mask-set", tuple((c, type(v), repr(v)) for c, v in values.items()))
        return sum(run_rowcount(conn, query, params, direct)
                   for query, params in statements.chunks(fixed, build, keys))
    update = plan.statement(("erase-mask-update", entry.name, tuple(pk), tuple(funcs)),
                            lambda: sa.update(table).where(
                                *[table.c[c] == sa.bindparam(f"_pk{i}") for i, c in enumerate(pk)]
                            ).values({c: sa.bindparam(f"_m{i}") for i, c in enumerate(funcs)}))
    changed = 0
    kind, build_read = _mask_read(statements, funcs)
    for query, params in statements.chunks(kind, build_read, keys):
        todo = unmasked(run(conn, query, params, direct), funcs, len(pk))
        if todo:
            conn.execute(update, todo)
            changed += len(todo)
    return changed


_KEY_WALKS: DerivedFrom[SystemWalk] = DerivedFrom(limit=64)


def key_walk(system: SqlSystem, walk: SystemWalk) -> SystemWalk:
    """``walk`` with each mask table's matches cut down to its look-ups by key (identities,
    provided keys) on columns the map does not keep on purpose: what finds a masked row that
    still holds the subject's identity. Kept while the system and the walk live."""
    return _KEY_WALKS.get((system, walk), None, lambda: _key_walk(system, walk))


def _key_walk(system: SqlSystem, walk: SystemWalk) -> SystemWalk:
    matches = dict(walk.matches)
    for name, found in walk.matches.items():
        spec = system.table(name).erasure
        if spec.action == "mask":
            matches[name] = tuple(m for m in found if m.via == "key"
                                  and not set(m.columns) & set(spec.keep))
    return dataclasses.replace(walk, matches=matches)


def _still_found(conn: Connection, lookup: SubjectLookup | None, name: str, table: sa.Table,
                 pk: Sequence[str], direct: bool) -> set[Pk]:
    """Keys of ``name``'s rows ``lookup`` finds (none without a look-up)."""
    subject = None if lookup is None else lookup.predicate(name)
    if subject is None:
        return set()
    pred, params = subject
    assert lookup is not None
    query = lookup.plan.statement(
        ("erase-still-found", name, lookup.shape(name), tuple(pk)),
        lambda: DirectStatement(sa.select(*[table.c[c] for c in pk]).where(pred), conn.dialect))
    return {tuple(row) for row in run(conn, query, params, direct)}


def recount(conn: Connection, system: SqlSystem, walk: SystemWalk, plan: WalkStatements,
            lookup: SubjectLookup, found: dict[str, list[Pk]],
            evidence: dict[str, CollectionEvidence], context: ConnectorContext, direct: bool,
            state: Any, kept: dict[str, set[Pk]] | None = None,
            by_key: SubjectLookup | None = None) -> None:
    """Set ``remaining`` on the evidence of every delete and mask table, or raise (see the
    module docstring). ``found`` holds each table's keys, ``lookup`` the subject's look-ups,
    ``kept`` the keys left as they were because other records share them (never counted),
    ``by_key`` the look-ups of :func:`key_walk` (a masked row they find still holds the
    subject's identity: it counts as remaining)."""
    kept = kept or {}
    remaining: dict[str, int] = {}
    identified: set[str] = set()
    counted: list[tuple[str, Any, Any]] = []  # (name, shape, predicate)
    count_params: dict[str, Any] = {}
    for name in walk.erase_order:
        state.collection = name
        entry, table = system.table(name), plan.tables[name]
        action = entry.erasure.action
        if action in ("retain", "none"):
            continue
        pk = effective_pk(entry, table)
        statements = KeyStatements(plan, name, table, pk, conn.dialect)
        subject = lookup.predicate(name)
        shared = kept.get(name, set())
        todo = [k for k in found[name] if k not in shared] if shared else found[name]
        if action == "delete":
            # rows a DELETE reported gone are gone in this transaction: count by key only if it
            # reported fewer; and always run the look-up again (rows added meanwhile)
            remaining[name] = 0
            if evidence[name].deleted != len(todo):
                remaining[name] += statements.count(conn, todo, direct)
            if shared:  # the look-up finds the kept rows: read its keys, leave those out
                remaining[name] += len(_still_found(conn, lookup, name, table, pk, direct)
                                       - shared)
            elif subject is not None:
                counted.append((name, lookup.shape(name), subject[0]))
                count_params.update(subject[1])
            continue
        funcs = mask_functions(entry, table, context, system.name)
        kind, build_read = _mask_read(statements, funcs)
        left: set[Pk] = set()
        for query, params in statements.chunks(kind, build_read, todo):
            left |= {_pk(r, len(pk)) for r in unmasked(run(conn, query, params, direct), funcs,
                                                       len(pk))}
        if subject is not None:
            pred, params = subject
            query = plan.statement(
                ("erase-unmasked", name, lookup.shape(name), tuple(pk), tuple(funcs)),
                lambda p=pred, b=build_read: DirectStatement(b(p), conn.dialect))  # type: ignore[misc]
            left |= {_pk(r, len(pk)) for r in unmasked(run(conn, query, params, direct), funcs,
                                                       len(pk))}
        by_identity = _still_found(conn, by_key, name, table, pk, direct) - shared
        if by_identity and not (left - shared):
            identified.add(name)  # masks hold, but the row still holds the identity
        remaining[name] = len((left | by_identity) - shared)
    if counted:  # the look-up run again for every delete table, in one round trip
        def build() -> DirectStatement:
            counts = [sa.select(sa.func.count()).select_from(plan.tables[name]).where(pred)
                      .scalar_subquery().label(f"c{i}")
                      for i, (name, _shape, pred) in enumerate(counted)]
            return DirectStatement(sa.select(*counts), conn.dialect)

        query = plan.statement(("erase-recount", tuple((n, s) for n, s, _ in counted)), build)
        row = run(conn, query, count_params, direct)[0]
        for i, (name, _shape, _pred) in enumerate(counted):
            remaining[name] += int(row[i])
    _settle(system, walk, remaining, evidence, state, identified)


def _pk(params: dict[str, Any], width: int) -> Pk:
    """The key of a row from its UPDATE parameters (see :func:`unmasked`)."""
    return tuple(params[f"_pk{i}"] for i in range(width))


def _settle(system: SqlSystem, walk: SystemWalk, remaining: dict[str, int],
            evidence: dict[str, CollectionEvidence], state: Any, identified: set[str]) -> None:
    for name in walk.erase_order:
        if name not in remaining:
            continue
        state.collection = name
        action = system.table(name).erasure.action
        evidence[name].remaining = remaining[name]
        if remaining[name] and name in identified:
            raise ConnectorError(
                f"{system.name}.{name}: the recount after erasure still finds "
                f"{remaining[name]} masked row(s) by the subject's identity; nothing was "
                "changed (rolled back)", "mask the column the subject is found by, or keep it "
                "on purpose with the reason (erasure: keep: {column: reason}); dsar datamap "
                "check names it", system=system.name, collection=name,
                code="recount_failed", transient=False)
        if remaining[name]:
            raise ConnectorError(
                f"{system.name}.{name}: the recount after erasure found {remaining[name]} "
                f"row(s) still {'present' if action == 'delete' else 'unmasked or found'}; "
                "nothing was changed (rolled back)",
                "retry; if it persists, another writer adds the subject's rows while "
                "erasure runs", system=system.name, collection=name,
                code="recount_failed", transient=True)
