"""``dsar datamap discover``'s reading step: reflect a live database for a draft data map.

:func:`discover` connects to the database, reads its catalog through :class:`~connectors.
sql_engine.Catalog` (tables, primary and foreign keys, PostgreSQL partitions and inheritance,
views, generated columns, and foreign keys from other schemas that point into the discovered
ones) into a :class:`~dsar.datamap.discover_erasure.Reflected`, and hands it to
:func:`dsar.datamap.discover.draft`, which writes the YAML. It never reads rows, and the URL is
not written anywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from connectors.sql_engine import Catalog
from dsar.datamap.discover import draft
from dsar.datamap.discover_erasure import Reflected
from dsar.errors import DataMapError


def discover(url: str, system_name: str = "main", url_env: str = "DATABASE_URL",
             schema: str | Sequence[str] | None = None) -> str:
    """Annotated data map YAML for the database at ``url`` (:func:`dsar.datamap.discover.draft`
    says what it guesses). ``schema``: one schema or several (default: the connection's
    default schema). Reads the catalog only, never rows; DataMapError for a URL that cannot be
    used, a schema that cannot be read, an empty schema or a table name in two schemas."""
    schemas: list[str | None] = [schema] if isinstance(schema, str) else list(schema or [None])
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise DataMapError(f"cannot use database URL ({type(exc).__name__})",
                           "give a SQLAlchemy URL such as postgresql+psycopg://user@host/db"
                           ) from None
    try:
        with engine.connect() as conn:
            db = _reflect(conn, schemas)
    except sa.exc.SQLAlchemyError as exc:
        raise DataMapError(f"cannot read the database schema ({type(exc).__name__})",
                           "check the URL, the --schema names, that the database runs and that "
                           "the user may read its catalog") from None
    finally:
        engine.dispose()
    return draft(system_name, url_env, db)


def _reflect(conn: Any, schemas: list[str | None]) -> Reflected:
    catalog = Catalog(conn.engine)
    inspector = sa.inspect(conn)
    db = Reflected()
    where: dict[str, str | None] = {}
    for schema in schemas:
        layout = catalog.layout(conn, schema)
        label = f"schema {schema!r}" if schema else "the database"
        if not layout.tables:
            raise DataMapError(f"{label} has no tables: there is nothing to map",
                               "check the URL and --schema (the schema that holds the tables)")
        for name in layout.tables:
            if name in where:
                raise DataMapError(
                    f"table {name!r} exists in schemas {where[name]!r} and {schema!r}; a data "
                    "map names each table once", "discover each schema into its own system "
                    "(one --schema and --system each) and merge the systems by hand")
            where[name] = schema
            db.names.append(name)
            db.schema[name] = schema
            db.columns[name] = inspector.get_columns(name, schema=schema)
            db.pk[name] = inspector.get_pk_constraint(name, schema=schema).get(
                "constrained_columns") or []
        for name in layout.tables:
            if not db.pk[name]:
                _key_instead(inspector, db, name, schema, layout.inherits.get(name))
        db.layouts[schema] = layout
        db.fks += catalog.foreign_keys(conn, schema)
    for other in sorted({r for s in schemas for r in catalog.referrers(conn, s)} - set(schemas)):
        for fk in catalog.foreign_keys(conn, other):  # rows there may point at mapped rows
            db.fks.append(dataclasses.replace(fk, table=f"{other}.{fk.table}"))
    db.explicit_schema = schemas != [None]
    default = inspector.default_schema_name
    for fk in db.fks:  # a parent outside the discovered schemas is not a node
        parent_schema = fk.parent_schema
        if fk.parent not in where or (where[fk.parent] or default) != (parent_schema or default):
            db.outside.add(id(fk))
    return db


def _key_instead(inspector: Any, db: Reflected, name: str, schema: str | None,
                 parent: str | None) -> None:
    """For a table without a primary key: a unique key of NOT NULL columns, else the key of
    the table it inherits from (PostgreSQL does not inherit keys), noted for review."""
    not_null = {c["name"] for c in db.columns[name] if not c.get("nullable", True)}
    uniques = [u["column_names"] for u in inspector.get_unique_constraints(name, schema=schema)]
    uniques += [ix["column_names"] for ix in inspector.get_indexes(name, schema=schema)
                if ix.get("unique") and None not in ix["column_names"]]
    for columns in uniques:
        if columns and set(columns) <= not_null:
            db.pk[name] = list(columns)
            db.key_notes[name] = "no primary key: a unique key of NOT NULL columns serves"
            return
    if parent is not None:
        key = inspector.get_pk_constraint(parent, schema=schema).get("constrained_columns")
        if key:
            db.pk[name] = list(key)
            db.key_notes[name] = (f"no primary key: {parent}'s, which it inherits the columns "
                                  "of but not the constraint; make sure it is unique here")
