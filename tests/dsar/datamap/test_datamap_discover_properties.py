"""Property test of ``discover`` on generated schemas, in SQLite files, MariaDB databases and
PostgreSQL schemas of their own (``--schema``): whatever the tables, columns, foreign keys
(nullable or not, ``ON DELETE`` rules, self-references) and generated columns, the draft loads,
``check`` finds no error in it, and an erasure run with it on filled tables is never refused by
the database and finds nobody afterwards in what it deletes or masks."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors import sql_engine
from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from connectors.sql_discover import discover
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from dsar.errors import DataMapError
from tests import services
from tests.connectors.test_sql_chinook import ListSink

NAMES = ["customer", "employee", "invoice", "orders", "address", "product", "country", "note",
         "payment", "ticket", "profile", "session"]
COLUMNS = {  # name -> DDL type
    "email": "VARCHAR(80)", "phone": "VARCHAR(20)", "first_name": "VARCHAR(40)",
    "last_name": "VARCHAR(8)", "city": "TEXT", "amount": "NUMERIC(10, 2)",
    "birth_date": "DATE", "quantity": "INTEGER",
}
RULES = ["", " ON DELETE CASCADE", " ON DELETE SET NULL"]


@st.composite
def schemas(draw: Any) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    tables = []
    for i, name in enumerate(names):
        columns = draw(st.lists(st.sampled_from(sorted(COLUMNS)), max_size=4, unique=True))
        not_null = {c for c in columns if draw(st.booleans())}
        fks = []
        for j, parent in enumerate(draw(st.lists(st.sampled_from(names[:i + 1]), max_size=2))):
            nullable = draw(st.booleans())
            rule = draw(st.sampled_from(RULES if nullable else RULES[:2]))
            fks.append({"column": f"{parent}_{j}_id", "parent": parent, "nullable": nullable,
                        "rule": rule})
        generated = "first_name" in columns and draw(st.booleans())
        tables.append({"name": name, "columns": columns, "not_null": not_null, "fks": fks,
                       "generated": generated})
    return tables


def ddl(table: dict[str, Any]) -> str:
    parts = ["id INTEGER PRIMARY KEY"]
    parts += [f"{c} {COLUMNS[c]}{' NOT NULL' if c in table['not_null'] else ''}"
              for c in table["columns"]]
    if table["generated"]:
        parts.append("shout VARCHAR(40) GENERATED ALWAYS AS (upper(first_name)) STORED")
    parts += [f"{fk['column']} INTEGER{'' if fk['nullable'] else ' NOT NULL'}"
              for fk in table["fks"]]
    parts += [f"FOREIGN KEY ({fk['column']}) REFERENCES {fk['parent']} (id){fk['rule']}"
              for fk in table["fks"]]
    return f"CREATE TABLE {table['name']} ({', '.join(parts)})"


def value(column: str, person: int) -> Any:
    return {"email": f"p{person}@example.org", "phone": f"+4930{person:06d}",
            "amount": person * 1.5, "birth_date": f"1980-01-{person:02d}",
            "quantity": person}.get(column, f"v{person}")


def fill(url: str, tables: list[dict[str, Any]], schema: str | None = None,
         mariadb: bool = False) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if schema:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            conn.exec_driver_sql(f"SET search_path TO {schema}")
        elif not mariadb:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        for table in tables:
            conn.exec_driver_sql(ddl(table))
        for table in tables:  # parents come first (or are the table itself)
            for row in (1, 2, 3):
                values = {"id": row, **{c: value(c, row) for c in table["columns"]}}
                for fk in table["fks"]:  # point at another person's row where possible
                    values[fk["column"]] = row % 3 + 1 if fk["parent"] != table["name"] else 1
                names = ", ".join(values)
                marks = ", ".join(f":{n}" for n in values)
                conn.execute(sa.text(f"INSERT INTO {table['name']} ({names}) VALUES ({marks})"),
                             values)
    engine.dispose()


OTHERS_POINT_AT_OWN_ROWS = [  # employee rows are the customer's own, yet other people's
    # invoices (found by their own email) point at them: deleting them would be refused
    {"name": "customer", "columns": ["email"], "not_null": set(), "fks": [], "generated": False},
    {"name": "employee", "columns": ["amount", "birth_date"], "not_null": set(), "generated": False,
     "fks": [{"column": "customer_0_id", "parent": "customer", "nullable": False, "rule": ""}]},
    {"name": "invoice", "columns": ["email"], "not_null": set(), "generated": False,
     "fks": [{"column": "employee_0_id", "parent": "employee", "nullable": False, "rule": ""}]},
]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(schemas())
@example(OTHERS_POINT_AT_OWN_ROWS)
def test_drafts_pass_their_check_and_their_erasure_is_never_refused(
        tables: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'db.sqlite'}"
        fill(url, tables)
        draft_runs(url, tables, None)


SCHEMAS = iter(range(10**6))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables=schemas())
def test_postgresql_drafts_in_their_own_schema_pass_too(postgres_url: str,
                                                        tables: list[dict[str, Any]]) -> None:
    schema = f"s{next(SCHEMAS)}"
    fill(postgres_url, tables, schema)
    draft_runs(postgres_url, tables, schema)


@pytest.mark.usefixtures("mariadb_server")
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables=schemas())
def test_mariadb_drafts_pass_too(tables: list[dict[str, Any]]) -> None:
    url = services.create_mariadb_database("dsar_prop")
    try:
        fill(url, tables, mariadb=True)
        draft_runs(url, tables, None)
    finally:
        services.drop_mariadb_database(url)


def draft_runs(url: str, tables: list[dict[str, Any]], schema: str | None) -> None:
    """The property: discover's draft passes check, and its erasure completes and leaves the
    subject unfound in what it deletes or masks."""
    try:
        text = discover(url, "db", "DB_URL", schema)
    except DataMapError as exc:  # no identity column anywhere: refused, said so
        assert not any({"email", "phone"} & set(t["columns"]) for t in tables), exc
        return
    try:
        dm = parse_datamap(text)
        found = check_datamap(dm, {"DB_URL": url})
        assert [f.one_line() for f in found if f.severity == "error"] == [], text
        system = dm.systems[0]
        context = ConnectorContext(hash_key=b"k" * 32, environ={"DB_URL": url})
        identities = {k for t in system.tables for k in t.identities}  # type: ignore[union-attr]
        keys = {k: frozenset({value(k, 1)}) for k in identities}
        SqlConnector(system, context).erase(keys)  # type: ignore[arg-type]
        sink = ListSink()
        SqlConnector(system, context).collect(keys, sink)  # type: ignore[arg-type]
        erased = {t.name for t in system.tables  # type: ignore[union-attr]
                  if t.erasure.action in ("delete", "mask") and t.identities}
        assert not any(sink.rows.get(name) for name in erased), text
    finally:
        sql_engine.dispose_all()
