"""What the contract suite cannot say in general about the second slice's vendors: SOQL string
literals that no address can break out of (Salesforce), Zendesk's two-step deletion, and
Intercom's body paging, version header and order of deletion."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.connectors.saas.harness import Harness
from tests.connectors.saas.harness_vendors import HARNESSES
from tests.connectors.saas.salesforce_emulator import parse_soql

BYSTANDER = "max.mustermann@example.com"


@pytest.fixture(scope="module")
def salesforce() -> Iterator[Harness]:
    harness = HARNESSES["salesforce"]()
    harness.seed(BYSTANDER)
    yield harness
    harness.emulator.stop()


HOSTILE = ["o'brien@example.com", "x' OR Email != '", "a\\' OR Email != '\\",
           'q"uote@example.com', "back\\slash@example.com", "new\nline@example.com",
           "tab\t@example.com", "x\\", "'", "\\'"]


@pytest.mark.parametrize("email", HOSTILE)
def test_soql_literals_hold_any_address(salesforce: Harness, email: str) -> None:
    salesforce.emulator.add_contact(email, cases=1, lead=False)
    with salesforce.connector() as conn:
        result = conn.count({"email": frozenset({email})})
    assert {e.collection: e.found for e in result.evidence} == {
        "contacts": 1, "leads": 0, "cases": 1}  # the one contact: never the bystander's
    queries = [q for m, q in salesforce.emulator.log if q.endswith("/query")]
    assert queries  # every query was parsed as SOQL (a malformed one would have failed)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=30))
def test_soql_filter_round_trips(text: str) -> None:
    from connectors.saas.paging import render

    query = render("SELECT Id FROM Contact WHERE Email = '{value|soql}'", {"value": text},
                   path=False)
    assert parse_soql(query)[2] == [("Email", text)]


def test_zendesk_deletes_users_and_tickets_for_good() -> None:
    harness = HARNESSES["zendesk"]()
    try:
        harness.seed("jenny@example.com")
        with harness.connector() as conn:
            conn.erase({"email": frozenset({"jenny@example.com"})})
        writes = [p for m, p in harness.emulator.log if m == "DELETE"]
        assert sum(p.startswith("/api/v2/deleted_users/") for p in writes) == 1
        assert sum(p.startswith("/api/v2/deleted_tickets/") for p in writes) == 2
        assert not harness.emulator.users and not harness.emulator.tickets
        assert harness.emulator.purged
    finally:
        harness.emulator.stop()


def test_intercom_pages_in_the_body_sends_its_version_and_deletes_conversations_first() -> None:
    harness = HARNESSES["intercom"]()
    try:
        harness.seed("jenny@example.com", many=True)  # 320 conversations: three pages
        other = harness.emulator.add_contact("max@example.com", conversations=3)
        with harness.connector() as conn:
            result = conn.erase({"email": frozenset({"Jenny@Example.com"})})
        assert {e.collection: e.deleted for e in result.evidence} == {
            "contacts": 1, "conversations": 320}
        log = harness.emulator.log
        assert sum(p == "/conversations/search" for _, p in log) == 3 + 1  # pages, recount
        deletes = [p for m, p in log if m == "DELETE"]
        assert deletes[-1].startswith("/contacts/") and len(deletes) == 321
        assert harness.emulator.versions == {"2.13"}  # the definition's header, every call
        assert list(harness.emulator.contacts) == [other]
        assert len(harness.emulator.conversations) == 3
    finally:
        harness.emulator.stop()
