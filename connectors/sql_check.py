"""Live checks of one SQL system of the data map against its database.

:func:`check_sql_system` is what ``dsar datamap check`` runs for ``kind: sql`` systems, and what
the SQL connector runs before any erasure (refusing to start when it finds an error). It reports
:class:`~dsar.datamap.findings.Finding` objects for: missing tables and columns, identity columns
of the wrong type, tables no key reaches, and erasure plans the database would refuse or that
would break what the map promises — deleting a parent row while a retained or masked child row
keeps a foreign key to it (also when only the database declares that key, on a table the map
leaves out, or on the table itself), nulling a NOT NULL or primary-key column, masking a
generated column, a fixed mask value longer than the column or on a unique column — all
errors. A map that names a
PostgreSQL partition or a view is an error (map the partitioned parent, the base tables);
foreign keys declared on partitions count as their parent's, and tables are matched by name
and schema; a kept inheritance child of a deleted or masked parent is an error (PostgreSQL
changes the children's rows with the parent's). It warns when no index serves the
case-insensitive email look-up, with the statement that adds one
(:mod:`connectors.sql_check_index`).

The checks read the database through the connector's :class:`~connectors.sql_engine.Catalog`
(tables and foreign keys reflected from the live database, kept until a statement fails). Their
findings depend on nothing else — the map, the key names and what the catalog holds — so
:func:`checked_sql_system`, which erase calls before its first statement, keeps findings with no
error per system, key names and catalog generation: after the first erasure it costs a
dictionary look-up, and any invalidation of the catalog (every failed statement causes one)
makes the next erasure reflect and check afresh. Findings with an error are never kept: a
refused erasure is checked again, against the database, every time.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.sql_check_index import missing_email_index
from connectors.sql_check_mask import check_mask
from connectors.sql_engine import Catalog, ForeignKey
from connectors.sql_mask import column_length, fixed_problem, is_textual
from connectors.sql_shared import check_beyond_shared, guard_covers
from dsar.datamap.findings import Finding
from dsar.datamap.schema import SqlSystem, SqlTable
from dsar.memo import DerivedFrom
from dsar.planning import Link, SystemWalk, walk_sql_system

TEXTUAL_KEYS = ("email", "phone", "mail", "mobile")
MISSING_TABLE = "table does not exist in the database"


def effective_pk(entry: SqlTable, table: sa.Table) -> list[str]:
    """The map's primary key, else the database's."""
    return list(entry.primary_key) or [c.name for c in table.primary_key.columns]


CHECK_CACHE_LIMIT = 256
"""Checked (system, catalog, key names) results kept while their system and catalog live; the
oldest goes first past it."""
_CHECKED: DerivedFrom[tuple[list[Finding], SystemWalk]] = DerivedFrom(CHECK_CACHE_LIMIT)


def checked_sql_system(
    system: SqlSystem, conn: Connection, catalog: Catalog, available: Iterable[str]
) -> tuple[list[Finding], SystemWalk]:
    """:func:`check_sql_system`, kept while ``catalog`` is not invalidated when it found no
    error (see the module docstring). The findings list is shared: do not change it."""
    names = frozenset(available)
    generation = catalog.generation  # read first: an invalidation meanwhile is not missed
    # a result with an error is not kept: the next task checks again (it may be fixed now)
    return _CHECKED.get((system, catalog), (names, generation),
                        lambda: check_sql_system(system, conn, catalog, names),
                        keep=lambda done: not any(f.severity == "error" for f in done[0]))


def check_sql_system(
    system: SqlSystem, conn: Connection, catalog: Catalog, available: Iterable[str]
) -> tuple[list[Finding], SystemWalk]:
    """Findings for ``system``, and its walk with ``available`` key names (DB FKs included)."""
    out: list[Finding] = []

    def add(severity: str, table: str | None, column: str | None, problem: str, fix: str) -> None:
        out.append(Finding(severity, system.name, table, column, problem, fix))  # type: ignore[arg-type]

    db_fks = _map_foreign_keys(system, conn, catalog)
    existing = {fk.table for fk in db_fks} | {fk.parent for fk in db_fks}
    reflected: dict[str, sa.Table] = {}
    for entry in system.tables:
        layout = catalog.layout(conn, entry.db_schema)
        if entry.name in layout.partitions:
            root = layout.partitions[entry.name]
            add("error", entry.name, None, f"a partition of {root}: look-ups here miss the "
                f"rows in {root}'s other partitions", f"map {root} instead (a look-up on it "
                "reaches every partition) and remove the partitions from the map")
            continue
        if entry.name in layout.views:
            add("error", entry.name, None, "a view: its rows live in its base tables, and "
                "erasure cannot change them here", "map the base tables instead")
            continue
        if not catalog.has_table(conn, entry.name, entry.db_schema):
            names = sorted(existing | set(layout.tables))
            close = difflib.get_close_matches(entry.name, names, n=1)
            add("error", entry.name, None, MISSING_TABLE,
                f"did you mean {close[0]!r}?" if close else "fix the name or remove the entry")
            continue
        reflected[entry.name] = catalog.table(conn, entry.name, entry.db_schema)
    for entry in system.tables:
        table = reflected.get(entry.name)
        if table is None:
            continue
        _check_columns(entry, table, reflected, add)
        if system.email_match == "case_insensitive":
            for column in entry.identity_columns("email"):
                if column in table.c and is_textual(table.c[column]) and (
                        missing := catalog.memo(("email index", table.schema, table.name,
                                                 column),
                                                lambda t=table, c=column: missing_email_index(
                                                    conn, t, c))):
                    add("warning", entry.name, column, *missing)
    links = [Link(fk.table, fk.parent, fk.columns, fk.parent_columns) for fk in db_fks]
    walk = walk_sql_system(system, available, links)
    for name in walk.unreachable:
        add("warning", name, None, "no key reaches this table with the keys requests carry "
            "(email, phone and provided keys)", "add identities, a 'provides' upstream, or a "
            "reference with direction inbound/outbound; otherwise it is only searched with --id")
    _check_erasure(system, walk, reflected, db_fks, add)
    check_beyond_shared(system, walk, add)  # rows hanging off shared rows (sql_shared)
    _check_inheritance(system, conn, catalog, add)
    return out, walk


def _check_inheritance(system: SqlSystem, conn: Connection, catalog: Catalog, add: Any) -> None:
    """PostgreSQL inheritance: a DELETE or UPDATE on a parent also changes its children's
    rows, so a child the map keeps must not have a parent the map deletes or masks."""
    entries = {(t.db_schema, t.name): t for t in system.tables}
    for (schema, name), entry in entries.items():
        parent_name = catalog.layout(conn, schema).inherits.get(name)
        parent = entries.get((schema, parent_name)) if parent_name else None
        if parent is None or parent.erasure.action not in ("delete", "mask") or \
                entry.erasure.action not in ("retain", "none"):
            continue
        done = "deletes" if parent.erasure.action == "delete" else "masks"
        add("error", name, None, f"{name} inherits from {parent.name}: erasing {parent.name} "
            f"{done} the subject's {name} rows too, which the map keeps "
            f"({entry.erasure.action})", f"give {parent.name} an action that keeps rows, or "
            f"erase {name} as {parent.name} is")


def _map_foreign_keys(system: SqlSystem, conn: Connection, catalog: Catalog
                      ) -> list[ForeignKey]:
    """The database's foreign keys of every schema the map names, and those other schemas
    declare into them, with tables named as the map names them (by name and schema); a table
    outside the map keeps its name, qualified with its schema when that is not the default."""
    default = sa.inspect(conn).default_schema_name

    def norm(schema: str | None) -> str | None:
        return None if schema in (None, default) else schema

    by_place = {(norm(t.db_schema), t.name): t.name for t in system.tables}
    schemas = {t.db_schema for t in system.tables}
    mapped = {norm(s) for s in schemas}
    referrers = {r for s in schemas for r in catalog.referrers(conn, s)} - {
        s for s in schemas if s}
    found: list[ForeignKey] = []
    for schema in sorted(schemas | referrers, key=lambda x: x or ""):
        for fk in catalog.foreign_keys(conn, schema):
            child = (norm(fk.schema), fk.table)
            parent = (norm(fk.parent_schema), fk.parent)
            if schema in referrers and (norm(schema) in mapped or parent[0] not in mapped):
                continue  # another schema's own keys: only those into the map's count
            found.append(replace(
                fk, table=by_place.get(child, ".".join(p for p in child if p)),
                parent=by_place.get(parent, ".".join(p for p in parent if p))))
    return found


def _check_columns(entry: SqlTable, table: sa.Table, reflected: dict[str, sa.Table],
                   add: Any) -> None:
    names = list(table.c.keys())
    wanted = entry.known_columns() | set(entry.erasure.mask)
    for column in sorted(wanted - set(names)):
        close = difflib.get_close_matches(column, names, n=1)
        add("error", entry.name, column, "column does not exist in the table",
            f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(names)}")
    for ref in entry.references:
        target = reflected.get(ref.table)
        if target is not None:
            for column in ref.to:
                if column not in target.c:
                    add("error", ref.table, column, f"column named by {entry.name}'s reference "
                        "does not exist", f"use one of: {', '.join(target.c.keys())}")
    for key, column in entry.identity_items():
        if column in table.c and any(k in key for k in TEXTUAL_KEYS) and \
                not is_textual(table.c[column]):
            add("error", entry.name, column, f"identity {key!r} is compared with a "
                f"{table.c[column].type} column", "point the identity at the text column that "
                "holds it")
    if not effective_pk(entry, table):
        add("error" if entry.erasure.action != "retain" else "warning", entry.name, None,
            "the table has no primary key", "declare 'primary_key: [...]' in the map (rows are "
            "deleted, masked and proven by their key)")
    for column, rule in entry.erasure.mask.items():
        if column not in table.c:
            continue
        col = table.c[column]
        if col.computed is not None:
            add("error", entry.name, column, "a generated column: the database computes it "
                "and refuses to write it", "remove it from mask; mask the columns it is "
                "computed from")
        elif col.primary_key or column in entry.primary_key:
            add("error", entry.name, column, "masking a primary-key column", "mask other "
                "columns; delete the row if the key itself is personal data")
        elif rule.strategy == "null" and not col.nullable:
            add("error", entry.name, column, "the column is NOT NULL, so it cannot be nulled",
                "use strategy fixed, hash or random")
        elif rule.strategy == "fixed" and (problem := fixed_problem(rule, col)):
            add("error", entry.name, column, problem, "write a shorter value, or of the "
                "column's type")
        elif rule.strategy == "fixed" and _unique(table, column):
            add("error", entry.name, column, "the column is unique, so one fixed value for "
                "every erased subject is refused by the database from the second on",
                "use strategy hash or random (or null if the column is nullable)")
        elif rule.strategy == "hash" and not is_textual(col):
            add("error", entry.name, column, f"a hash is text; the column is {col.type}",
                "use strategy null, fixed or random")
        elif rule.strategy == "hash" and (column_length(col) or 64) < 16:
            add("warning", entry.name, column, f"hashes truncated to {column_length(col)} "
                "characters may collide", "use random or a longer column")
    check_mask(entry, table, add)  # what a mask or 'none' leaves findable (sql_check_mask)


def _unique(table: sa.Table, column: str) -> bool:
    """Whether a unique constraint or index of ``table`` is on ``column`` alone."""
    sets = [[c.name for c in ix.columns] for ix in table.indexes if ix.unique]
    sets += [[c.name for c in u.columns] for u in table.constraints
             if isinstance(u, sa.UniqueConstraint)]
    return [column] in sets


def _check_erasure(system: SqlSystem, walk: SystemWalk, reflected: dict[str, sa.Table],
                   db_fks: list[ForeignKey], add: Any) -> None:
    entries = {t.name: t for t in system.tables}
    reached = set(walk.matches)
    relations: list[tuple[str, tuple[str, ...], str, str | None, bool]] = [
        (fk.table, fk.columns, fk.parent, fk.ondelete, True) for fk in db_fks]
    declared = {(fk.table, fk.columns, fk.parent) for fk in db_fks}
    for entry in system.tables:
        for ref in entry.references:
            if (entry.name, tuple(ref.columns), ref.table) not in declared:
                relations.append((entry.name, tuple(ref.columns), ref.table, None, False))
    for child, columns, parent, ondelete, in_db in relations:
        parent_entry = entries.get(parent)
        if parent not in reached or parent_entry is None:
            continue
        if parent_entry.erasure.action != "delete":
            continue
        if guard_covers(system, walk, child, columns, parent):  # see sql_shared
            continue
        rule = (ondelete or "").upper()
        cols = ", ".join(columns)
        if child == parent:
            if in_db and rule == "CASCADE":
                add("error", child, None, f"{child}.{cols} references {child} itself with ON "
                    f"DELETE CASCADE: deleting the subject's row also deletes every other "
                    f"{child} row that points at it (other people's)", f"erase {child} with "
                    "action mask (keep the row, mask its personal columns)")
            elif in_db and rule != "SET NULL":
                add("error", child, None, f"{child}.{cols} references {child} itself: deleting "
                    f"the subject's row is refused by the database while another {child} row "
                    "points at it", f"erase {child} with action mask (keep the row, mask its "
                    "personal columns)")
            continue
        child_entry = entries.get(child)
        if child_entry is None:
            if in_db and rule not in ("CASCADE", "SET NULL"):
                add("error", child, None, f"not in the data map, but {child}.{cols} "
                    f"references {parent}, whose subject rows erasure deletes: the database "
                    f"refuses if {child} holds rows pointing at them",
                    f"add {child} to the map with a reference to {parent} (direction "
                    f"inbound), or erase {parent} with action mask")
            continue
        fed = any(m.source == parent and tuple(m.columns) == columns
                  for m in walk.matches.get(child, ())) or any(
            m.source == child and tuple(m.source_columns) == columns
            for m in walk.matches.get(parent, ()))  # parent found from these child rows
        action = child_entry.erasure.action
        if in_db and not fed and action == "delete" and rule not in ("CASCADE", "SET NULL"):
            add("error", child, None, f"{child}.{cols} references {parent} in the database, but "
                f"the map does not reach {child}'s rows from {parent}'s: deleting {parent} rows "
                "would fail if any points at the subject's row",
                f"{child} holds other people, so erase {parent} with action mask instead of "
                "delete" if child_entry.identities else
                f"add to {child}: references: [{{columns: [{cols}], table: {parent}, "
                "to: [...], direction: inbound}]")
        if action == "delete":
            continue
        masked_null = all(child_entry.erasure.mask.get(c) is not None and
                          child_entry.erasure.mask[c].strategy == "null" for c in columns)
        if action == "mask" and masked_null:
            continue
        keeps = {"retain": "retained", "mask": "masked"}.get(action, "unchanged")
        if not in_db:
            add("warning", child, None, f"{keeps} {child} rows keep {cols} pointing at {parent} "
                "rows that erasure deletes", f"mask {parent} instead of deleting it, or mask "
                f"{cols} with strategy null")
        elif rule == "CASCADE":
            add("error", child, None, f"deleting {parent} rows cascades to the {keeps} {child} "
                "rows", f"mask {parent} instead of deleting it, or erase {child} with delete")
        elif rule == "SET NULL":
            add("warning", child, None, f"deleting {parent} rows sets {child}.{cols} to NULL in "
                f"the {keeps} rows", "fine if intended; otherwise mask the parent instead")
        else:
            table = reflected.get(child)
            not_null = table is not None and any(
                c in table.c and not table.c[c].nullable for c in columns)
            add("error", child, None, f"deleting {parent} rows is refused by the database: "
                f"{keeps} {child} rows keep a {'NOT NULL ' if not_null else ''}foreign key "
                f"({cols}) to them", f"erase {parent} with action mask (keep the row, mask its "
                f"personal columns), or delete {child} rows too"
                + ("" if not_null else f", or mask {cols} with strategy null"))
