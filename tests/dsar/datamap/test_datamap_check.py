"""``check_datamap`` against live Chinook databases: each kind of finding, with its fix."""

from __future__ import annotations

import yaml

from dsar.datamap.check import check_datamap
from dsar.datamap.findings import Finding
from dsar.datamap.loader import parse_datamap
from tests.chinook import (  # noqa: F401 - fixtures
    ChinookDb,
    chinook_db_fixture,
    chinook_map,
    chinook_maria_template_fixture,
    chinook_pg_template_fixture,
)


def findings_for(db: ChinookDb, edit: object = None, **erasure: object) -> list[Finding]:
    doc = yaml.safe_load(chinook_map(db.dialect, **erasure))  # type: ignore[arg-type]
    if callable(edit):
        edit(doc["systems"][0]["tables"], db.n)
    return check_datamap(parse_datamap(yaml.safe_dump(doc)), {"CHINOOK_URL": db.url})


def errors(found: list[Finding]) -> list[tuple[str | None, str | None, str]]:
    return [(f.table, f.column, f.problem) for f in found if f.severity == "error"]


def test_the_default_chinook_map_has_no_errors(chinook_db: ChinookDb) -> None:
    assert errors(findings_for(chinook_db)) == []


def test_schema_mistakes_are_found(chinook_db: ChinookDb) -> None:
    n = chinook_db.n

    def edit(tables: list[dict], n: object) -> None:
        tables[0]["identities"] = {"email": n("emial"), "phone": n("customer_id")}
        tables[1]["name"] = n("invoices")
        tables[2]["references"][0]["table"] = n("invoices")

    found = errors(findings_for(chinook_db, edit))
    assert (n("customer"), n("emial"), "column does not exist in the table") in found
    assert (n("invoices"), None, "table does not exist in the database") in found
    assert any(c == n("customer_id") and "identity 'phone'" in p for _, c, p in found)


def test_mask_rules_the_database_would_refuse(chinook_db: ChinookDb) -> None:
    n = chinook_db.n
    mask = {"action": "mask", "mask": {
        n("email"): {"strategy": "null"},  # NOT NULL
        n("first_name"): {"strategy": "fixed", "value": "x" * 41},  # VARCHAR(40)
        n("last_name"): {"strategy": "hash"},  # VARCHAR(20): 20 hex characters fit
    }}
    found = findings_for(chinook_db, customer=mask)
    problems = {(f.severity, f.column): f.problem for f in found}
    assert "NOT NULL" in problems[("error", n("email"))]
    assert "41 characters" in problems[("error", n("first_name"))]
    assert not any(column == n("last_name") for _, column in problems)


def test_foreign_key_declared_only_in_the_database_is_honoured(chinook_db: ChinookDb) -> None:
    n = chinook_db.n
    found = findings_for(chinook_db, declare_invoice_reference=False)
    assert any(t == n("invoice") and "does not reach" in p for t, _, p in errors(found))
