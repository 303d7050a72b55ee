"""What a plain reflection of a schema hides, for the SQL connector's catalog and discover.

- :func:`reflect_layout`: PostgreSQL partitions (with the partitioned table each belongs to, at
  the top of any sub-partitioning), inheritance children, partitioned MariaDB/MySQL tables and
  views (:class:`Layout`);
- :func:`case_insensitive_columns`: the text columns whose equality already ignores case (a
  ``_ci`` collation, ``citext``), which :mod:`connectors.sql_plan` compares directly so that an
  index on the column serves the look-up;
- :func:`referrer_query`: which other schemas declare foreign keys into a schema.

Catalog queries only; never rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

CASE_INSENSITIVE = "dsar_case_insensitive"
"""Key of ``Table.info``: the names of the columns whose equality already ignores case (a
``_ci`` collation on MariaDB/MySQL, ``citext`` on PostgreSQL)."""
BINARY_COLLATION = "dsar_binary_collation"
"""Key of ``Table.info``: column name -> the binary collation of its character set
(MariaDB/MySQL ``_ci`` columns), for comparisons that must not equate accents."""


@dataclass(frozen=True)
class Layout:
    """What one schema holds besides plain tables, as a data map must see it.

    ``tables``: the tables a map may name (partitions left out). ``partitions``: partition ->
    its top partitioned table. ``inherits``: PostgreSQL ``INHERITS`` child -> parent (a query
    on the parent also returns the child's rows). ``partitioned``: tables split into
    partitions (PostgreSQL parents; MariaDB/MySQL tables, whose partitions reflection never
    shows). ``views``: views (never mapped: rows live in their base tables)."""

    tables: tuple[str, ...]
    partitions: dict[str, str]
    inherits: dict[str, str]
    partitioned: frozenset[str]
    views: tuple[str, ...]

    def root(self, name: str) -> str:
        """``name``, or the partitioned table it is a partition of."""
        return self.partitions.get(name, name)


_PG_INHERITS = sa.text("""
    SELECT c.relname, p.relname, c.relispartition, p.relkind = 'p'
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
    JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
    WHERE cn.nspname = coalesce(:schema, current_schema())
      AND pn.nspname = cn.nspname AND c.relkind IN ('r', 'p')""")
_PG_PARTITIONED = sa.text("""
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'p' AND n.nspname = coalesce(:schema, current_schema())""")
_PG_CITEXT = sa.text("""
    SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = CAST(:table AS regclass) AND t.typname = 'citext'
      AND a.attnum > 0 AND NOT a.attisdropped""")
_MY_PARTITIONED = sa.text("""
    SELECT DISTINCT TABLE_NAME FROM information_schema.PARTITIONS
    WHERE TABLE_SCHEMA = coalesce(:schema, database()) AND PARTITION_NAME IS NOT NULL""")
_PG_REFERRERS = sa.text("""
    SELECT DISTINCT n.nspname FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
    WHERE k.contype = 'f' AND pn.nspname = coalesce(:schema, current_schema())
      AND n.nspname <> pn.nspname ORDER BY 1""")
_MY_REFERRERS = sa.text("""
    SELECT DISTINCT TABLE_SCHEMA FROM information_schema.KEY_COLUMN_USAGE
    WHERE REFERENCED_TABLE_SCHEMA = coalesce(:schema, database())
      AND TABLE_SCHEMA <> REFERENCED_TABLE_SCHEMA ORDER BY 1""")
_MY_CI = sa.text("""
    SELECT COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = coalesce(:schema, database()) AND TABLE_NAME = :table
      AND COLLATION_NAME LIKE '%\\_ci'""")


def reflect_layout(conn: Connection, schema: str | None = None) -> Layout:
    """The :class:`Layout` of ``schema`` (the default schema if None), read from the catalog."""
    inspector = sa.inspect(conn)
    names = inspector.get_table_names(schema=schema)
    views = tuple(sorted(inspector.get_view_names(schema=schema)))
    backend = conn.dialect.name
    parents: dict[str, str] = {}
    inherits: dict[str, str] = {}
    partitioned: set[str] = set()
    if backend == "postgresql":
        for child, parent, is_partition, _parent_partitioned in conn.execute(
                _PG_INHERITS, {"schema": schema}):
            (parents if is_partition else inherits)[child] = parent
        partitioned = {r[0] for r in conn.execute(_PG_PARTITIONED, {"schema": schema})}
    elif backend in ("mysql", "mariadb"):
        partitioned = {r[0] for r in conn.execute(_MY_PARTITIONED, {"schema": schema})}
    partitions: dict[str, str] = {}
    for name in parents:
        root, seen = name, {name}
        while root in parents and parents[root] not in seen:  # sub-partitions: the top
            root = parents[root]
            seen.add(root)
        partitions[name] = root
    tables = tuple(sorted(n for n in names if n not in partitions))
    return Layout(tables, partitions, inherits, frozenset(partitioned), views)


def referrer_query(backend: str) -> Any:
    """The query naming the schemas with foreign keys into ``:schema`` (None: the dialect has
    no schemas of that kind)."""
    if backend == "postgresql":
        return _PG_REFERRERS
    if backend in ("mysql", "mariadb"):
        return _MY_REFERRERS
    return None


def case_insensitive_columns(conn: Connection, table: sa.Table) -> dict[str, str | None]:
    """The columns of ``table`` whose ``=`` ignores case (see :data:`CASE_INSENSITIVE`), with
    their character set's binary collation (None for ``citext``)."""
    backend = conn.dialect.name
    if backend in ("mysql", "mariadb"):
        rows = conn.execute(_MY_CI, {"schema": table.schema, "table": table.name})
        return {name: f"{charset}_bin" for name, charset in rows}
    if backend == "postgresql":
        qualified = conn.dialect.identifier_preparer.format_table(table)
        return {r[0]: None for r in conn.execute(_PG_CITEXT, {"table": qualified})}
    return {}
