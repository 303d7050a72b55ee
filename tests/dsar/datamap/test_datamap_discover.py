"""``discover`` on Chinook in three dialects: a loadable map with the right directions."""

from __future__ import annotations

import pytest

from connectors.sql_discover import discover
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from dsar.datamap.schema import SqlSystem
from dsar.errors import DataMapError
from dsar.planning import plan_request
from tests.chinook import (  # noqa: F401 - fixtures
    ChinookDb,
    chinook_db_fixture,
    chinook_maria_template_fixture,
    chinook_pg_template_fixture,
)


def test_discovered_map_reaches_the_subject_and_not_the_support_rep(chinook_db: ChinookDb) -> None:
    n = chinook_db.n
    text = discover(chinook_db.url, "chinook", "CHINOOK_URL")
    assert chinook_db.url not in text and "# review:" in text
    dm = parse_datamap(text)
    system = dm.systems[0]
    assert isinstance(system, SqlSystem)
    customer = system.table(n("customer"))
    assert customer.identities["email"] == n("email")
    assert customer.columns[n("first_name")].category == "user.name"
    directions = {(t.name, r.table): r.direction for t in system.tables for r in t.references}
    assert directions[(n("customer"), n("employee"))] == "none"
    assert directions[(n("invoice"), n("customer"))] == "inbound"
    assert directions[(n("invoice_line"), n("invoice"))] == "inbound"
    assert directions[(n("employee"), n("employee"))] == "none"
    assert n("track") not in {t.name for t in system.tables}
    plan = plan_request(dm, {"email": frozenset({"x@y.z"})}, "erasure")
    order = [s.collection for s in plan.steps]
    assert order.index(n("invoice_line")) < order.index(n("invoice")) < order.index(
        n("customer"))
    findings = check_datamap(dm, {"CHINOOK_URL": chinook_db.url})
    assert [f.one_line() for f in findings if f.severity == "error"] == []


def test_discover_with_a_bad_url_is_a_data_map_error() -> None:
    with pytest.raises(DataMapError):
        discover("nosuchdialect://x/y")
    with pytest.raises(DataMapError):
        discover("postgresql+psycopg://postgres@127.0.0.1:1/x")
