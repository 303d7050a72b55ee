"""What the contract suite cannot say in general about four vendors: Mailchimp activity beyond
one page, what Salesforce keeps in its Recycle Bin (and until when), Braze's queued deletions,
and Intercom's conversation delete, which exists only from the API version the file sends."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import mailchimp_marketing
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simple_salesforce import Salesforce

from connectors.saas.loading import parse_definition
from dsar.errors import ConnectorError, DataMapError
from interfaces.demo.emulators.mailchimp import subscriber_hash
from tests.connectors.saas.harness import Harness, RecordingSink, make_harness
from tests.connectors.saas.harness_vendors import HARNESSES
from tests.connectors.saas.salesforce_emulator import RECYCLE_DAYS

SUBJECT = "jenny.rosen@example.com"
BYSTANDER = "max.mustermann@example.com"
KEYS = {"email": frozenset({SUBJECT})}


class SimulatedClock:
    """A clock a test moves: the emulator reads it, the connector's sleep advances it."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _harness(vendor: str) -> Iterator[Harness]:
    harness = HARNESSES[vendor]() if vendor in HARNESSES else make_harness(vendor)
    yield harness
    harness.emulator.stop()


@pytest.fixture
def mailchimp() -> Iterator[Harness]:
    yield from _harness("mailchimp")


@pytest.fixture
def salesforce() -> Iterator[Harness]:
    yield from _harness("salesforce")


@pytest.fixture(scope="module")
def braze() -> Iterator[Harness]:
    yield from _harness("braze")


# -- Mailchimp ---------------------------------------------------------------------------------


def test_mailchimp_activity_is_read_page_by_page_in_every_audience(mailchimp: Harness) -> None:
    em = mailchimp.emulator
    lists = [em.add_list(f"Audience {i}") for i in range(3)]
    for list_id, events in ((lists[0], 2345), (lists[2], 1000)):
        em.add_member(list_id, SUBJECT, events=events)
    em.add_member(lists[1], BYSTANDER, events=5)
    sink = RecordingSink()
    with mailchimp.connector() as conn:
        collected = {e.collection: e for e in conn.collect(KEYS, sink).evidence}
    assert {n: e.found for n, e in collected.items()} == {"members": 2, "activity": 3345}
    # events have no id: each is named in evidence by a keyed hash of its content
    assert len(set(collected["activity"].item_hashes)) == 3345
    rows = sink.rows[("mailchimp", "activity")]
    assert len({r["campaign_id"] for r in rows}) == 3345
    feed = [p for m, p in em.log if p.endswith("/activity-feed")]
    assert len(feed) == 3 + 1  # 1000 a page; total_items ends the other's one full page
    assert not [p for _, p in em.log if p.endswith("/activity")]  # never the last-50 endpoint
    with mailchimp.connector() as conn:
        erased = {e.collection: e for e in conn.erase(KEYS).evidence}
    assert erased["activity"].deleted == 3345 and erased["activity"].remaining == 0
    assert mailchimp.holds(SUBJECT) == 0 and mailchimp.holds(BYSTANDER) == 1


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.integers(0, 2100), count=st.one_of(st.none(), st.integers(1, 1000)))
def test_mailchimp_emulator_pages_activity_like_mailchimp(
        mailchimp: Harness, events: int, count: int | None) -> None:
    em = mailchimp.emulator
    list_id = em.add_list("Newsletter")
    email = f"p{len(em.lists)}@example.com"
    em.add_member(list_id, email, events=events)
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": mailchimp.token, "server": "us6"})
    client.api_client.host = f"{mailchimp.url}/3.0"
    size = count or 10  # Mailchimp: default 10 (its client refuses more than 1000)
    seen: list[dict[str, Any]] = []
    offset = 0
    while True:
        kw = {"offset": offset} if count is None else {"offset": offset, "count": count}
        page = client.lists.get_list_member_activity_feed(list_id, subscriber_hash(email), **kw)
        assert page["total_items"] == events and len(page["activity"]) <= size
        seen += page["activity"]
        offset += size
        if offset >= events:
            break
    assert len(seen) == events == len({a["campaign_id"] for a in seen})
    stamps = [a["created_at_timestamp"] for a in seen]
    assert stamps == sorted(stamps, reverse=True)  # newest first


# -- Salesforce --------------------------------------------------------------------------------


def _salesforce_client(harness: Harness) -> Salesforce:
    em = harness.emulator
    em.tokens.add("00Dxx0000001gPL!test")
    session = requests.Session()
    host = "https://example.my.salesforce.com"
    send = session.request
    session.request = lambda method, url, *a, **kw: send(  # type: ignore[method-assign]
        method, url.replace(host, harness.url), *a, **kw)
    return Salesforce(instance_url=host, session_id="00Dxx0000001gPL!test", version="62.0",
                      session=session)


def test_salesforce_evidence_says_what_the_recycle_bin_keeps_and_until_when(
        salesforce: Harness) -> None:
    em = salesforce.emulator
    clock = SimulatedClock()
    em.clock = clock
    expected = salesforce.seed(SUBJECT)
    salesforce.seed(BYSTANDER)
    with salesforce.connector() as conn:
        evidence = {e.collection: e for e in conn.erase(KEYS).evidence}
    today = datetime.now(UTC).date()
    purge_dates = {(today + timedelta(days=RECYCLE_DAYS + d)).isoformat() for d in (0, 1)}
    for name, n in expected.items():
        ev = evidence[name]
        assert ev.action == "delete" and ev.found == ev.deleted == ev.retained == n
        assert ev.remaining == 0 and ev.counts["kept_by_vendor_after_delete"] == n
        assert "Recycle Bin" in (ev.retained_ground or "")
        days, _, until = (ev.retained_period or "").partition(" days, until ")
        assert days == str(RECYCLE_DAYS) and until.removesuffix(" (UTC)") in purge_dates
    # what the evidence says is kept is what Salesforce's own client still finds there
    client = _salesforce_client(salesforce)
    soql = f"SELECT Id, IsDeleted FROM Contact WHERE Email = '{SUBJECT}'"
    assert client.query(soql)["totalSize"] == 0
    binned = client.query_all(soql, include_deleted=True)["records"]
    assert [r["IsDeleted"] for r in binned] == [True]
    cases = client.query_all(f"SELECT Id FROM Case WHERE ContactId = '{binned[0]['Id']}' "
                             "AND IsDeleted = true", include_deleted=True)
    assert cases["totalSize"] == expected["cases"]
    clock.advance(RECYCLE_DAYS * 86_400 - 60)
    assert client.query_all(soql, include_deleted=True)["totalSize"] == 1  # not yet purged
    clock.advance(60)
    assert client.query_all(soql, include_deleted=True)["totalSize"] == 0  # purged for good
    assert salesforce.holds(BYSTANDER) == sum(expected.values())


def test_a_second_salesforce_erasure_reports_nothing_kept(salesforce: Harness) -> None:
    salesforce.seed(SUBJECT)
    with salesforce.connector() as conn:
        conn.erase(KEYS)
        again = conn.erase(KEYS).evidence
    assert all(e.found == e.retained == 0 and e.retained_period is None for e in again)


# -- Braze -------------------------------------------------------------------------------------


def _waits_until(delay: float) -> float:
    """What the recount waits for a deletion applied ``delay`` seconds late: 1, 2, 4, 8, then
    10 seconds at a time (braze.yaml's settle)."""
    waited, step = 0.0, 1.0
    while waited < delay:
        waited, step = waited + step, min(step * 2, 10.0)
    return waited


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delay=st.integers(0, 580).map(lambda n: n / 2), profiles=st.integers(1, 4))
def test_braze_recount_waits_for_the_queued_deletion(braze: Harness, delay: float,
                                                     profiles: int) -> None:
    em = braze.emulator
    clock = SimulatedClock()
    em.clock, em.delete_delay = clock, delay
    email = f"p{len(em.users)}@example.com"
    for _ in range(profiles):
        em.add_user(email)
    other = em.add_user(BYSTANDER)
    start = clock.now
    with braze.connector(sleep=clock.advance) as conn:
        ev = conn.erase({"email": frozenset({email})}).evidence[0]
    assert ev.found == ev.deleted == profiles and ev.remaining == 0
    assert clock.now - start == _waits_until(delay)
    assert ev.counts.get("recount_waited_s", 0) == math.ceil(_waits_until(delay))
    assert braze.holds(email) == 0 and other in em.users
    em.users.pop(other)


def test_braze_profiles_still_exported_after_five_minutes_fail_the_task_for_a_retry(
        braze: Harness) -> None:
    em = braze.emulator
    clock = SimulatedClock()
    em.clock, em.delete_delay = clock, 400.0
    em.add_user(SUBJECT)
    with braze.connector(sleep=clock.advance) as conn, pytest.raises(ConnectorError) as err:
        conn.erase(KEYS)
    assert err.value.code == "saas_not_erased" and err.value.transient
    assert clock.now - 1_000_000.0 == 300.0  # braze.yaml: settle within 300 seconds
    assert "1 users" in str(err.value) and SUBJECT not in str(err.value)
    clock.advance(100)
    with braze.connector(sleep=clock.advance) as conn:  # the retry finds the deletion done
        assert conn.count(KEYS).evidence[0].found == 0


def test_braze_delete_takes_one_kind_of_identifier(braze: Harness) -> None:
    body = {"braze_ids": ["x"], "external_ids": ["y"]}
    answer = httpx.post(f"{braze.url}/users/delete", json=body,
                        headers={"Authorization": f"Bearer {braze.token}"})
    assert answer.status_code == 400


# -- Intercom ----------------------------------------------------------------------------------


def test_intercom_conversations_need_the_api_version_that_can_delete_them(
        tmp_path: Path) -> None:
    harness = HARNESSES["intercom"]()
    try:
        shipped = Path("connectors/saas/vendors/intercom.yaml").read_text()
        assert 'Intercom-Version: "2.13"' in shipped
        old = tmp_path / "intercom.yaml"
        old.write_text(shipped.replace('Intercom-Version: "2.13"', 'Intercom-Version: "2.12"'))
        harness.seed(SUBJECT)
        system = harness.system(vendor_file=str(old))
        with harness.connector(system) as conn, pytest.raises(ConnectorError) as err:
            conn.erase(KEYS)  # 2.12 has no DELETE /conversations/{id}: the recount says so
        assert err.value.code == "saas_not_erased" and "2 conversations" in str(err.value)
        assert len(harness.emulator.conversations) == 2
        assert harness.emulator.versions == {"2.12"}
    finally:
        harness.emulator.stop()


# -- the format --------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", ["settle: {within: 60}", "kept_after_delete: {ground: bin, "
                                   "days: 15}"])
def test_settle_and_kept_after_delete_follow_a_call(extra: str) -> None:
    text = f"""name: acme
label: Acme
base_url: https://api.acme.example
auth: {{type: bearer}}
check: {{path: /me}}
rate_limit: {{calls: 10, seconds: 1}}
resources:
  users:
    find: {{email: {{path: /users}}}}
    erase: {{retained_by_vendor: kept for fraud checks, {extra}}}
"""
    with pytest.raises(DataMapError) as err:
        parse_definition(text, "acme.yaml")
    assert err.value.problem.startswith("acme.yaml:10: resources.users.erase")
    assert "follows a 'call'" in err.value.problem
