"""Whether an index serves the case-insensitive email look-up, and the statement that adds one.

With ``email_match: case_insensitive`` (the default) the connector looks an address up as
:mod:`connectors.sql_plan` builds it: on a column whose equality already ignores case (a
``_ci`` collation on MariaDB/MySQL, ``citext`` on PostgreSQL) it compares the column itself,
which a plain index on the column serves; elsewhere it compares ``lower(column)``, which only
an index on that expression serves (PostgreSQL, SQLite; MariaDB has none, so there the fix is
a ``_ci`` collation). Without one, every look-up reads the whole table. On PostgreSQL the
statement is followed by ``ANALYZE``: until the expression has statistics, the generic plan
of the driver's prepared look-up (from its sixth run) still scans the table.

:func:`missing_email_index` returns the finding's text and the exact statement to run, or None
when an index serves the look-up. It reads the catalog only.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.sql_engine import CASE_INSENSITIVE

_SQLITE_INDEXES = sa.text("SELECT sql FROM sqlite_master WHERE type = 'index' "
                          "AND tbl_name = :table AND sql IS NOT NULL")


def _plain_index(conn: Connection, table: sa.Table, column: str) -> bool:
    """Whether an index (or the primary key) starts with ``column``."""
    if [c.name for c in table.primary_key.columns][:1] == [column]:
        return True
    inspector = sa.inspect(conn)
    indexes = inspector.get_indexes(table.name, schema=table.schema)
    uniques = inspector.get_unique_constraints(table.name, schema=table.schema)
    return any((ix.get("column_names") or [None])[0] == column for ix in [*indexes, *uniques])


def _lower_index(conn: Connection, table: sa.Table, column: str) -> bool:
    """Whether an index starts with ``lower(column)``."""
    pattern = re.compile(rf"^\s*lower\s*\(\s*\(?\s*[\"`]?{re.escape(column)}[\"`]?\s*\)?"
                         r"(::[a-z ]+)?\s*\)", re.IGNORECASE)
    if conn.dialect.name == "sqlite":
        for (sql,) in conn.execute(_SQLITE_INDEXES, {"table": table.name}):
            inner = sql[sql.find("(", sql.upper().find(" ON ")) + 1:]
            if pattern.match(inner):
                return True
        return False
    for ix in sa.inspect(conn).get_indexes(table.name, schema=table.schema):
        expressions = ix.get("expressions") or []
        if expressions and pattern.match(str(expressions[0])):
            return True
    return False


def missing_email_index(conn: Connection, table: sa.Table, column: str
                        ) -> tuple[str, str] | None:
    """``(problem, fix)`` when no index serves the case-insensitive look-up of ``column``."""
    quote = conn.dialect.identifier_preparer
    qualified = quote.format_table(table)
    col = quote.quote(column)
    name = quote.quote(f"{table.name}_{column}_lower_idx"[:63])
    if column in table.info.get(CASE_INSENSITIVE, ()):
        if _plain_index(conn, table, column):
            return None
        plain = quote.quote(f"{table.name}_{column}_idx"[:63])
        return (f"no index on {column}: every look-up by email reads the whole table",
                f"run: CREATE INDEX {plain} ON {qualified} ({col});")
    backend = conn.dialect.name
    if _lower_index(conn, table, column):
        return None
    problem = f"no index on lower({column}): every case-insensitive look-up by email " \
              "reads the whole table"
    if backend == "postgresql":  # without ANALYZE the planner has no statistics for the
        # expression, and dsar's prepared look-ups get a generic plan that scans the table
        return problem, (f"run: CREATE INDEX CONCURRENTLY {name} ON {qualified} "
                         f"(lower({col})); ANALYZE {qualified};  (or make the column citext, "
                         "or set email_match: exact if addresses are stored lower-cased)")
    if backend == "sqlite":
        return problem, f"run: CREATE INDEX {name} ON {qualified} (lower({col}));"
    if backend in ("mysql", "mariadb"):
        return (f"{column} compares with case (its collation is not _ci), so look-ups by "
                "email compare lower() and read the whole table",
                f"give it a case-insensitive collation: ALTER TABLE {qualified} MODIFY {col} "
                "<its type> COLLATE utf8mb4_unicode_ci; then index it, or set email_match: "
                "exact if addresses are stored lower-cased")
    return None
