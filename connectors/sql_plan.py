"""Subject look-ups for the SQL connector: statements built once, values always bound.

A table's subject predicate depends on the request in two ways only: the *values* it compares
with (request keys, or values already read from a parent table) and a small hashable *shape* —
which of the table's matches contribute, how many chunks of values each binds, and the shapes
of the sub-queries it nests. :class:`SubjectLookup` computes, per request, each table's shape and
the values, as named parameters. :class:`WalkStatements` turns a shape into SQLAlchemy
statements whose every value is a bound parameter; one instance per walk and set of reflected
tables is kept process-wide (:func:`statements_for`), so after the first request a look-up
costs no statement construction, no value coercion into the statement tree and no cache-key
generation (SQLAlchemy memoizes the key on a reused statement object): only the parameters
change.

Single-column ``IN`` lists bind one parameter per value, the list padded to a power of two by
repeating its last value (``x IN (1, 2, 3, 3)`` selects what ``x IN (1, 2, 3)`` does): a
handful of statement texts per table, each compiled once by SQLAlchemy and prepared once by the
driver, with no per-execution expansion. Composite ``(a, b) IN`` lists use SQLAlchemy's
expanding parameters, which render them right on every dialect (SQLite needs ``VALUES``).

Semantics (those of the one-shot predicate builder this replaces, unchanged): key matches
compare the column (``lower(column)`` for keys matched case-insensitively; on a column whose
equality already ignores case, see :data:`~connectors.sql_engine.CASE_INSENSITIVE`, the column
itself, so that an index on it serves, and ``lower(column)`` as well, in the binary collation:
a ``_ci`` collation also equates accents) with the key's
values converted to the column's type; matches fed by another table compare with the values
that table's subject rows hold when the caller has read all of them (``known``), else with an
``IN (SELECT …)`` sub-query over that table's own predicate; a table's clauses are OR-ed; no
clause at all means nothing can match (shape ``None``). Values are split into chunks of
:data:`~connectors.sql_query.CHUNK`. Identities are never part of statement text.

With ``arrays`` (PostgreSQL only; erase uses it), ``known`` values are bound as one array
parameter per column instead — ``column = ANY(:values)``, or ``(a, b) IN (SELECT unnest(:a),
unnest(:b))`` for a composite reference — which selects what the ``IN`` lists select, for any
number of values in one statement text (the 65535-parameter limit of the protocol never
applies). A match whose columns' types have no PostgreSQL array type SQLAlchemy can name (a
type reflection did not recognise) keeps the per-value ``IN`` lists.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from connectors.sql_engine import BINARY_COLLATION, CASE_INSENSITIVE
from connectors.sql_query import chunks, coerce
from dsar.memo import DerivedFrom
from dsar.planning import SystemWalk

T = TypeVar("T")
#: One table's shape: a tuple of ``(match index, kind, chunks or nested shape)``; None: no match.
Shape = tuple[tuple[int, str, Any], ...] | None
KEY, FOLDED, KNOWN, TUPLES, SUB, ARRAY = "key", "folded", "known", "tuples", "sub", "array"
PLAN_LIMIT = 64
"""Walk/table-set combinations whose statements are kept (least recently used dropped)."""
STATEMENT_LIMIT = 512
"""Statements kept per walk (all dropped when exceeded: shapes are few in practice)."""


def _in(columns: Sequence[sa.ColumnElement[Any]], target: Any) -> sa.ColumnElement[bool]:
    if len(columns) == 1:
        return columns[0].in_(target)
    return sa.tuple_(*columns).in_(target)


def _folded(column: sa.ColumnElement[Any], binds: list[Any], binary: str | None
            ) -> sa.ColumnElement[bool]:
    """The case-insensitive match on a column whose equality already ignores case, in a form
    an index on the column serves: ``citext`` compares exactly as ``lower()`` does; a ``_ci``
    collation also equates accents (``ánn`` = ``ann``), so ``lower(column)`` is compared as
    well, in the ``binary`` collation of its character set (on the rows the index found)."""
    if isinstance(column.type, postgresql.CITEXT):
        return column.in_([sa.cast(b, column.type) for b in binds])
    exact = sa.func.lower(column)
    if binary:
        exact = sa.collate(exact, binary)
    return sa.and_(column.in_(binds), exact.in_(binds))


def padded_size(count: int) -> int:
    """The power of two at least ``count`` (1 for 0): the number of parameters bound."""
    return 1 << max(count - 1, 0).bit_length()


class WalkStatements:
    """Statements for one walk over one set of reflected tables, built once per shape.

    Thread-safe: statements are immutable once built; a race builds one twice, harmlessly."""

    def __init__(self, walk: SystemWalk, tables: Mapping[str, sa.Table]) -> None:
        self.walk = walk
        self.tables = dict(tables)
        self._index = {name: i for i, name in enumerate(self.tables)}
        self._predicates: dict[tuple[str, Shape], tuple[Any, frozenset[str]]] = {}
        self._statements: dict[Hashable, Any] = {}
        self._item_names: dict[tuple[str, int, int, int], tuple[str, ...]] = {}
        self._matches: dict[str, list[tuple[int, Any, sa.ColumnElement[Any], Any]]] = {}
        self._arrays: dict[tuple[str, int], bool] = {}

    def array_ok(self, name: str, index: int) -> bool:
        """Whether match ``index`` of ``name`` may bind known values as PostgreSQL arrays:
        every column's type renders as an array type."""
        key = (name, index)
        ok = self._arrays.get(key)
        if ok is None:
            table, compiler = self.tables[name], _PG.type_compiler_instance
            try:
                for column in self.walk.matches[name][index].columns:
                    compiler.process(sa.ARRAY(table.c[column].type))
                ok = True
            except sa.exc.CompileError:
                ok = False
            self._arrays[key] = ok
        return ok

    def matches(self, name: str) -> list[tuple[int, Any, sa.ColumnElement[Any], Any]]:
        """``name``'s matches as ``(index, match, first column, (source, source columns))``."""
        found = self._matches.get(name)
        if found is None:
            table = self.tables[name]
            found = self._matches[name] = [
                (i, m, table.c[m.columns[0]], (m.source, tuple(m.source_columns)))
                for i, m in enumerate(self.walk.matches.get(name, ()))]
        return found

    def item_names(self, table: str, match: int, chunk: int, size: int) -> tuple[str, ...]:
        """``bind_name(table, match, chunk, i)`` for every ``i`` below ``size``."""
        key = (table, match, chunk, size)
        names = self._item_names.get(key)
        if names is None:
            names = self._item_names[key] = tuple(
                self.bind_name(table, match, chunk, i) for i in range(size))
        return names

    def bind_name(self, table: str, match: int, chunk: int, item: int | None = None) -> str:
        """The parameter holding chunk ``chunk`` of match ``match``'s values for ``table``
        (expanding), or value ``item`` of that chunk."""
        base = f"w{self._index[table]}_{match}_{chunk}"
        return base if item is None else f"{base}_{item}"

    def predicate(self, name: str, shape: Shape) -> tuple[Any, frozenset[str]]:
        """``name``'s predicate for ``shape`` (not None), and the parameter names it binds."""
        key = (name, shape)
        cached = self._predicates.get(key)
        if cached is not None:
            return cached
        assert shape is not None
        table, matches = self.tables[name], self.walk.matches[name]
        clauses: list[sa.ColumnElement[bool]] = []
        names: set[str] = set()
        for index, kind, arg in shape:
            match = matches[index]
            cols = [table.c[c] for c in match.columns]
            if kind == SUB:
                source = self.tables[match.source or ""]
                source_pred, source_names = self.predicate(match.source or "", arg)
                names |= source_names
                sub = sa.select(*[source.c[c] for c in match.source_columns]).where(source_pred)
                clauses.append(_in(cols, sub))
                continue
            if kind == ARRAY:
                arrays = [sa.bindparam(self.bind_name(name, index, 0, j), type_=sa.ARRAY(c.type))
                          for j, c in enumerate(cols)]
                names.update(b.key for b in arrays)
                clauses.append(cols[0] == sa.any_(arrays[0]) if len(cols) == 1 else sa.tuple_(
                    *cols).in_(sa.select(*[sa.func.unnest(b) for b in arrays])))
                continue
            if kind == TUPLES:
                for chunk in range(arg):
                    bind_name = self.bind_name(name, index, chunk)
                    names.add(bind_name)
                    bind = sa.bindparam(bind_name, expanding=True)
                    clauses.append(sa.tuple_(*cols).in_(bind))
                continue
            # a str list binds as String (what SQLAlchemy infers for lower()'s untyped result)
            target, type_ = (sa.func.lower(cols[0]), sa.String()) if kind == FOLDED \
                else (cols[0], cols[0].type)
            ignores_case = kind == FOLDED and cols[0].name in table.info.get(CASE_INSENSITIVE, ())
            for chunk, size in enumerate(arg):
                binds = [sa.bindparam(self.bind_name(name, index, chunk, i), type_=type_)
                         for i in range(size)]
                names.update(b.key for b in binds)
                clauses.append(_folded(cols[0], binds, table.info[BINARY_COLLATION].get(
                    cols[0].name)) if ignores_case else target.in_(binds))
        built = (sa.or_(*clauses), frozenset(names))
        self._predicates[key] = built
        return built

    def statement(self, key: Hashable, build: Callable[[], T]) -> T:
        """The statement cached under ``key``, built by ``build`` the first time."""
        found = self._statements.get(key)
        if found is None:
            if len(self._statements) >= STATEMENT_LIMIT:
                self._statements.clear()
            found = self._statements[key] = build()
        return found  # type: ignore[no-any-return]


_PG = postgresql.dialect()
_LOCK = threading.Lock()
_PLANS: dict[Hashable, WalkStatements] = {}  # by value, least recently used first
_BY_IDENTITY: DerivedFrom[WalkStatements] = DerivedFrom(PLAN_LIMIT)


def statements_for(walk: SystemWalk, tables: Mapping[str, sa.Table]) -> WalkStatements:
    """The process-wide :class:`WalkStatements` for ``walk`` over exactly these ``tables``
    (the same Table objects: a re-reflected schema gets new statements). Equal walks share
    one, also when recomputed (erase recomputes its walk with the database's foreign keys)."""
    items = tuple(tables.items())

    def by_value() -> WalkStatements:
        key = (walk.system, walk.discovery, tuple(walk.matches.items()), items)
        with _LOCK:
            plan = _PLANS.pop(key, None)
            if plan is None:
                plan = WalkStatements(walk, tables)
            if len(_PLANS) >= PLAN_LIMIT:
                del _PLANS[next(iter(_PLANS))]
            _PLANS[key] = plan
            return plan

    # a walk seen before over the same tables: found by identity, without hashing its matches
    return _BY_IDENTITY.get((walk,), items, by_value)


class SubjectLookup:
    """The subject's predicates for one request: shapes (memoized per table) and values.

    Keys named in ``fold_case`` (email, for a system matching it case-insensitively) match
    their text column case-insensitively: the request's value is lower-cased and compared with
    ``lower(column)``, since addresses are stored as people typed them (on PostgreSQL an index
    on ``lower(column)`` keeps that fast). The planner guarantees the matches form no cycle,
    so nesting sub-queries terminates.

    ``known`` maps ``(table, columns)`` to every value those columns hold in the subject's rows
    of that table, once the caller has read all of them (collect does; it may add entries as it
    goes): a reference from that table then binds those values instead of repeating the
    look-up as a sub-query. A table's shape is fixed the first time it is asked for. With
    ``arrays`` (PostgreSQL), known values bind as arrays (see the module docstring); composite
    ones are then tuples, and no value may be NULL (callers drop those: they point at
    nothing)."""

    def __init__(self, plan: WalkStatements, keys: Mapping[str, Iterable[str]],
                 fold_case: frozenset[str],
                 known: Mapping[tuple[str, tuple[str, ...]], Sequence[Any]] | None = None,
                 arrays: bool = False) -> None:
        self.plan = plan
        self.keys = keys
        self.fold_case = fold_case
        self.known = {} if known is None else known
        self.arrays = arrays
        self.values: dict[str, list[Any]] = {}
        self._shapes: dict[str, Shape] = {}

    def shape(self, name: str) -> Shape:
        """``name``'s shape (None when nothing can match), binding its values on the way."""
        if name in self._shapes:
            return self._shapes[name]
        parts: list[tuple[int, str, Any]] = []
        for index, match, column, source_key in self.plan.matches(name):
            if match.source is None:
                values = coerce(column, self.keys.get(match.key or "", ()))
                kind = KEY
                if match.key in self.fold_case and isinstance(column.type, sa.String):
                    kind, values = FOLDED, sorted({str(v).lower() for v in values})
                if sizes := self._bind(name, index, values):
                    parts.append((index, kind, sizes))
                continue
            seen = self.known.get(source_key)
            if seen is not None:
                if self.arrays and self.plan.array_ok(name, index):
                    if seen:
                        self._bind_arrays(name, index, seen, len(match.columns))
                        parts.append((index, ARRAY, len(match.columns)))
                    continue
                if len(match.columns) > 1:
                    if count := self._bind_expanding(name, index, seen):
                        parts.append((index, TUPLES, count))
                elif sizes := self._bind(name, index, seen):
                    parts.append((index, KNOWN, sizes))
                continue
            source = self.shape(match.source)
            if source is not None:
                parts.append((index, SUB, source))
        shape = self._shapes[name] = tuple(parts) or None
        return shape

    def _bind(self, name: str, index: int, values: Sequence[Any]) -> tuple[int, ...]:
        """Bind ``values`` one parameter each, per chunk padded to :func:`padded_size` with
        the chunk's last value; the padded sizes."""
        sizes = []
        for chunk, part in enumerate(chunks(values)):
            size = padded_size(len(part))
            padded = [*part, *[part[-1]] * (size - len(part))]
            self.values.update(zip(self.plan.item_names(name, index, chunk, size), padded,
                                   strict=True))
            sizes.append(size)
        return tuple(sizes)

    def _bind_arrays(self, name: str, index: int, values: Sequence[Any], width: int) -> None:
        """Bind ``values`` (single values, or tuples of ``width``) as one list per column."""
        if width == 1:
            self.values[self.plan.bind_name(name, index, 0, 0)] = list(values)
            return
        for j in range(width):
            self.values[self.plan.bind_name(name, index, 0, j)] = [v[j] for v in values]

    def _bind_expanding(self, name: str, index: int, values: Sequence[Any]) -> int:
        count = 0
        for count, part in enumerate(chunks(list(values)), start=1):
            self.values[self.plan.bind_name(name, index, count - 1)] = list(part)
        return count

    def predicate(self, name: str) -> tuple[Any, dict[str, Any]] | None:
        """``name``'s predicate with its parameters (exactly the ones it binds), or None when
        nothing can match."""
        shape = self.shape(name)
        if shape is None:
            return None
        pred, names = self.plan.predicate(name, shape)
        return pred, {n: self.values[n] for n in names}
