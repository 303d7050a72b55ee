"""``check`` on what the draft cannot see: the index behind case-insensitive email look-ups (with
the exact statement to run, which then silences the warning), a masked generated column; the
look-ups themselves (exactly lower()'s matches, also on a ``_ci`` or ``citext`` column); and
``dsar plan`` showing check's findings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from connectors import sql_engine
from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from interfaces.commands.datamap import plan
from tests.chinook import RETAIN_INVOICES, chinook_map, copy_sqlite
from tests.connectors.sql_dialects import DIALECTS, dialect_url
from tests.connectors.test_sql_chinook import ListSink


def people_map(mask: dict[str, Any] | None = None) -> str:
    erasure = {"action": "mask", "mask": mask} if mask else {"action": "delete"}
    return yaml.safe_dump({"version": 1, "systems": [{
        "name": "crm", "kind": "sql", "url_env": "CRM_URL", "tables": [{
            "name": "person", "primary_key": ["id"], "identities": {"email": "email"},
            "columns": {c: {"category": "user.name"} for c in mask or {}},
            "erasure": erasure}]}]})


@pytest.fixture(params=DIALECTS)
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = dialect_url(request, tmp_path, "crm")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE person (id INT PRIMARY KEY, email VARCHAR(120), "
                             "name VARCHAR(40), shout VARCHAR(40) GENERATED ALWAYS AS "
                             "(upper(name)) STORED)")
        conn.exec_driver_sql("CREATE INDEX person_email ON person (email)")
        conn.exec_driver_sql("CREATE UNIQUE INDEX person_name ON person (name)")
        conn.exec_driver_sql("INSERT INTO person (id, email, name) VALUES "
                             "(1, 'Ann@Example.org', 'Ann'), (2, 'ánn@example.org', 'Xa'), "
                             "(3, 'bob@example.org', 'Bob')")
    engine.dispose()
    yield request.param, url
    sql_engine.dispose_all()


def index_warnings(url: str) -> list[Any]:
    found = check_datamap(parse_datamap(people_map()), {"CRM_URL": url})
    return [f for f in found if f.column == "email" and "index" in f.problem + f.fix]


def test_the_warning_gives_the_statement_that_silences_it(crm: tuple[str, str]) -> None:
    dialect, url = crm
    warnings = index_warnings(url)
    if dialect == "mariadb":  # a _ci collation: the plain index on email serves
        assert warnings == []
        return
    [warning] = warnings
    assert warning.severity == "warning" and "lower(email)" in warning.problem
    statements = warning.fix.removeprefix("run: ").split(";")
    assert statements[0].startswith("CREATE INDEX") and "(lower(email))" in statements[0]
    if dialect == "postgresql":
        assert statements[1].strip() == "ANALYZE person"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements[:2 if dialect == "postgresql" else 1]:
            conn.exec_driver_sql(statement)
    engine.dispose()
    assert index_warnings(url) == []


def test_mariadb_names_the_missing_index_and_a_case_sensitive_collation(
        mariadb_url: str) -> None:
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE person (id INT PRIMARY KEY, email VARCHAR(120))")
    engine.dispose()
    [warning] = index_warnings(mariadb_url)
    assert warning.fix == "run: CREATE INDEX person_email_idx ON person (email);"
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE person MODIFY email VARCHAR(120) COLLATE "
                             "utf8mb4_bin")
    engine.dispose()
    [warning] = index_warnings(mariadb_url)
    assert "collation" in warning.problem and "utf8mb4_unicode_ci" in warning.fix
    sql_engine.dispose_all()


def test_look_ups_match_exactly_what_lower_matches(crm: tuple[str, str]) -> None:
    _dialect, url = crm
    system = parse_datamap(people_map()).systems[0]
    context = ConnectorContext(hash_key=b"k" * 32, environ={"CRM_URL": url})
    sink = ListSink()
    SqlConnector(system, context).collect({"email": frozenset({"ann@example.org"})}, sink)
    assert [r["id"] for r in sink.rows["person"]] == [1]  # not 'ánn' (equal under _ci)


def test_citext_is_compared_directly_and_still_finds_other_capitals(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS citext")
        conn.exec_driver_sql("CREATE TABLE person (id INT PRIMARY KEY, email citext UNIQUE)")
        conn.exec_driver_sql("INSERT INTO person VALUES (1, 'Ann@Example.org'), "
                             "(2, 'bob@example.org')")
    engine.dispose()
    assert index_warnings(postgres_url) == []  # the unique index on the citext column serves
    system = parse_datamap(people_map()).systems[0]
    context = ConnectorContext(hash_key=b"k" * 32, environ={"CRM_URL": postgres_url})
    sink = ListSink()
    SqlConnector(system, context).collect({"email": frozenset({"ann@example.org"})}, sink)
    assert [r["id"] for r in sink.rows["person"]] == [1]
    sql_engine.dispose_all()


def test_masking_a_generated_column_is_an_error(crm: tuple[str, str]) -> None:
    _dialect, url = crm
    text = people_map({"email": {"strategy": "hash"}, "shout": {"strategy": "null"}})
    found = check_datamap(parse_datamap(text), {"CRM_URL": url})
    assert [(f.column, f.problem.split(":")[0]) for f in found if f.severity == "error"] == [
        ("shout", "a generated column")]


def test_a_fixed_mask_on_a_unique_column_is_an_error(crm: tuple[str, str]) -> None:
    _dialect, url = crm
    text = people_map({"email": {"strategy": "hash"},
                       "name": {"strategy": "fixed", "value": "erased"}})
    found = check_datamap(parse_datamap(text), {"CRM_URL": url})
    assert [(f.column, f.problem.split(",")[0]) for f in found if f.severity == "error"] == [
        ("name", "the column is unique")]


def test_plan_shows_what_check_finds(tmp_path: Path, chinook_dir: Path) -> None:
    url = copy_sqlite(chinook_dir, tmp_path)
    path = tmp_path / "map.yaml"
    path.write_text(chinook_map("sqlite", invoice=RETAIN_INVOICES))
    runner = CliRunner()
    args = ["erasure", "--email", "jane@example.com", "--datamap", str(path)]
    checked = runner.invoke(plan, args, env={"CHINOOK_URL": url})
    assert checked.exit_code == 0, checked.output
    assert "error: chinook.Invoice: deleting Customer rows is refused" in checked.output
    assert "this erasure would be refused" in checked.output
    as_json = json.loads(runner.invoke(plan, [*args, "--json"], env={"CHINOOK_URL": url}).output)
    assert [f["table"] for f in as_json["findings"] if f["severity"] == "error"] == ["Invoice"]
    assert as_json["not_checked"] == []
    unchecked = runner.invoke(plan, args, env={"CHINOOK_URL": ""})
    assert "not checked against the database: chinook (set CHINOOK_URL)" in unchecked.output
    assert "error:" not in unchecked.output
