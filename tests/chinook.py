"""Chinook in three dialects for tests: load it, copy it, and write data maps for it.

- :func:`load_postgres`, :func:`load_mariadb`: run the dataset's SQL script into the (empty)
  database at a URL, minus the script's own DROP/CREATE DATABASE and ``\\c``/``USE`` lines.
- :func:`copy_sqlite`: a writable copy of the SQLite file.
- :func:`postgres_copy`: a new database cloned from a loaded one with ``CREATE DATABASE …
  TEMPLATE`` (fast: erasure tests each get a fresh copy).
- :func:`chinook_map`: the data map YAML for a dialect (PostgreSQL spells ``invoice_line`` /
  ``customer_id``; MariaDB and SQLite ``InvoiceLine`` / ``CustomerId``), with the erasure of
  customer and invoice chosen by the test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
import yaml

from tests import services

SNAKE = "postgresql"


def naming(dialect: str) -> Any:
    """``n("invoice_line")`` -> the dialect's spelling of a snake_case Chinook name."""
    if dialect == SNAKE:
        return lambda name: name
    return lambda name: "".join(part.capitalize() for part in name.split("_"))


def _script(chinook_dir: Path, dialect: str) -> str:
    name = "Chinook_PostgreSql.sql" if dialect == SNAKE else "Chinook_MySql.sql"
    lines = (chinook_dir / name).read_text(encoding="utf-8").splitlines()
    skip = ("DROP DATABASE", "CREATE DATABASE", "\\c ", "USE ")
    return "\n".join(line for line in lines if not line.strip().startswith(skip))


def load_postgres(url: str, chinook_dir: Path) -> None:
    """Load Chinook into the empty PostgreSQL database at ``url``."""
    import psycopg

    parsed = sa.make_url(url)
    with psycopg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                         dbname=parsed.database) as conn:
        conn.execute(_script(chinook_dir, SNAKE).encode())


def load_mariadb(url: str, chinook_dir: Path) -> None:
    """Load Chinook into the empty MariaDB database at ``url``."""
    parsed = sa.make_url(url)
    conn = pymysql.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 3306, user=parsed.username or "root",
        password=parsed.password or "", database=parsed.database, charset="utf8mb4",
        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS, autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(_script(chinook_dir, "mariadb"))
            while cursor.nextset():
                pass
    finally:
        conn.close()


def copy_sqlite(chinook_dir: Path, dest_dir: Path) -> str:
    """A writable copy of the SQLite Chinook; returns its URL."""
    dest = dest_dir / "chinook.sqlite"
    shutil.copyfile(chinook_dir / "Chinook_Sqlite.sqlite", dest)
    dest.chmod(0o644)
    return f"sqlite:///{dest}"


def postgres_copy(template_url: str) -> str:
    """A new PostgreSQL database cloned from the one at ``template_url``."""
    template = sa.make_url(template_url).database
    name = services.unique_name("dsar_chinook")
    admin = sa.create_engine(services.POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return sa.make_url(services.POSTGRES_ADMIN_URL).set(database=name).render_as_string(
        hide_password=False)


def mariadb_copy(template_url: str) -> str:
    """A new MariaDB database with the tables (and foreign keys) and rows of the one at
    ``template_url`` — much faster than loading the script again."""
    source = sa.make_url(template_url).database
    url = services.create_mariadb_database("dsar_chinook")
    target = sa.make_url(url).database
    engine = sa.create_engine(template_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        names = [r[0] for r in conn.exec_driver_sql("SHOW FULL TABLES WHERE Table_type = "
                                                    "'BASE TABLE'")]
        for name in names:
            ddl = conn.exec_driver_sql(f"SHOW CREATE TABLE `{name}`").one()[1]
            conn.exec_driver_sql(ddl.replace(f"CREATE TABLE `{name}`",
                                              f"CREATE TABLE `{target}`.`{name}`", 1))
        for name in names:
            conn.exec_driver_sql(f"INSERT INTO `{target}`.`{name}` SELECT * FROM "
                                 f"`{source}`.`{name}`")
    engine.dispose()
    return url


def chinook_map(
    dialect: str,
    url_env: str = "CHINOOK_URL",
    customer: dict[str, Any] | None = None,
    invoice: dict[str, Any] | None = None,
    declare_invoice_reference: bool = True,
) -> str:
    """The Chinook data map for ``dialect`` as YAML. ``customer`` / ``invoice`` are erasure
    specs (default ``delete``); the invoice line always follows its invoice."""
    n = naming(dialect)
    customer_columns = {
        n(c): {"category": cat}
        for c, cat in [("first_name", "user.name"), ("last_name", "user.name"),
                       ("email", "user.contact.email"), ("phone", "user.contact.phone"),
                       ("address", "user.contact.address"), ("city", "user.contact.address"),
                       ("postal_code", "user.contact.address"), ("company", "user.workplace"),
                       ("fax", "user.contact.fax")]
    }
    invoice_refs = [{"columns": [n("customer_id")], "table": n("customer"),
                     "to": [n("customer_id")], "direction": "inbound"}]
    tables = [
        {
            "name": n("customer"),
            "primary_key": [n("customer_id")],
            "identities": {"email": n("email")},
            "provides": {"customer_id": n("customer_id")},
            "references": [{"columns": [n("support_rep_id")], "table": n("employee"),
                            "to": [n("employee_id")], "direction": "none"}],
            "columns": customer_columns,
            "erasure": customer or {"action": "delete"},
        },
        {
            "name": n("invoice"),
            "primary_key": [n("invoice_id")],
            "references": invoice_refs if declare_invoice_reference else [],
            "columns": {n("billing_address"): {"category": "user.contact.address"},
                        n("billing_city"): {"category": "user.contact.address"},
                        n("billing_postal_code"): {"category": "user.contact.address"}},
            "erasure": invoice or {"action": "delete"},
        },
        {
            "name": n("invoice_line"),
            "primary_key": [n("invoice_line_id")],
            "references": [{"columns": [n("invoice_id")], "table": n("invoice"),
                            "to": [n("invoice_id")], "direction": "inbound"}],
            "erasure": _line_erasure(invoice),
        },
        {
            "name": n("employee"),
            "primary_key": [n("employee_id")],
            "identities": {"staff_email": n("email")},
            "references": [{"columns": [n("reports_to")], "table": n("employee"),
                            "to": [n("employee_id")], "direction": "none"}],
            "erasure": {"action": "retain",
                        "retain": {"ground": "Art. 17(3)(b) employment records",
                                   "period": "10 years"}},
        },
    ]
    doc = {"version": 1, "controller": {"name": "Chinook Music Ltd"},
           "systems": [{"name": "chinook", "kind": "sql", "url_env": url_env,
                        "tables": tables}]}
    return yaml.safe_dump(doc, sort_keys=False)


def _line_erasure(invoice: dict[str, Any] | None) -> dict[str, Any]:
    """Invoice lines are kept when invoices are, and deleted otherwise."""
    if invoice and invoice.get("action") == "retain":
        return {"action": "retain", "retain": invoice["retain"]}
    return {"action": "delete"}


RETAIN_INVOICES = {"action": "retain",
                   "retain": {"ground": "Art. 17(3)(b) tax records", "period": "10 years"}}


def mask_customer(dialect: str) -> dict[str, Any]:
    """An erasure spec for customer that keeps the row (so retained invoices stay valid)."""
    n = naming(dialect)
    return {"action": "mask", "mask": {
        n("first_name"): {"strategy": "fixed", "value": "erased"},
        n("last_name"): {"strategy": "fixed", "value": "erased"},
        n("email"): {"strategy": "hash"},
        n("phone"): {"strategy": "null"},
        n("address"): {"strategy": "null"},
        n("city"): {"strategy": "random"},
        n("postal_code"): {"strategy": "null"},
        n("company"): {"strategy": "null"},
        n("fax"): {"strategy": "null"},
    }}


# -- fixtures: import the *_fixture functions into a test module to use them ------------


@dataclass
class ChinookDb:
    """A writable Chinook database of one dialect, and how to spell its names."""

    dialect: str
    url: str

    @property
    def n(self) -> Any:
        return naming(self.dialect)

    def scalar(self, sql: str, **params: Any) -> Any:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params).scalar()
        finally:
            engine.dispose()

    def q(self, name: str) -> str:
        """A quoted identifier in the dialect's spelling."""
        quote = "`" if self.dialect == "mariadb" else '"'
        return f"{quote}{self.n(name)}{quote}"


@pytest.fixture(scope="session", name="chinook_pg_template")
def chinook_pg_template_fixture(chinook_dir: Path) -> Iterator[str]:
    """Chinook loaded once per session into PostgreSQL, used only as a template."""
    url = services.create_postgres_database("dsar_chinook_tmpl")
    load_postgres(url, chinook_dir)
    yield url
    services.drop_postgres_database(url)


@pytest.fixture(scope="session", name="chinook_maria_template")
def chinook_maria_template_fixture(chinook_dir: Path) -> Iterator[str]:
    """Chinook loaded once per session into MariaDB, copied by :func:`mariadb_copy`."""
    url = services.create_mariadb_database("dsar_chinook_tmpl")
    load_mariadb(url, chinook_dir)
    yield url
    services.drop_mariadb_database(url)


@pytest.fixture(params=["postgresql", "mariadb", "sqlite"], name="chinook_db")
def chinook_db_fixture(request: pytest.FixtureRequest, tmp_path: Path,
               chinook_dir: Path) -> Iterator[ChinookDb]:
    """A fresh, writable Chinook for one test, in each dialect."""
    from connectors import sql_engine

    dialect = request.param
    if dialect == "postgresql":
        url = postgres_copy(request.getfixturevalue("chinook_pg_template"))
        drop = services.drop_postgres_database
    elif dialect == "mariadb":
        url = mariadb_copy(request.getfixturevalue("chinook_maria_template"))
        drop = services.drop_mariadb_database
    else:
        url = copy_sqlite(chinook_dir, tmp_path)

        def drop(_url: str) -> None:
            return None

    yield ChinookDb(dialect, url)
    sql_engine.dispose_all()
    drop(url)
