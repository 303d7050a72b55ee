"""The contract every SaaS vendor meets, run against each vendor's emulator over real HTTP.

find, collect, erase, recount, a second erase changes nothing, many pages, a 429 storm,
intermittent 500s, a refused credential, a missing credential, a vendor down for good. A vendor
with nothing to read (Segment) meets the same contract through its erasure; the jobs of
Segment, HubSpot and Zendesk are in test_vendor_jobs.py, test_vendor_job_fleet.py and
test_vendor_job_worker.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dsar.errors import ConnectorError
from tests.connectors.saas.harness import Harness, RecordingSink, make_harness
from tests.connectors.saas.harness_vendors import HARNESSES

SUBJECT = "jenny.rosen@example.com"
BYSTANDER = "max.mustermann@example.com"
KEYS = {"email": frozenset({SUBJECT})}


@pytest.fixture(params=["stripe", "mailchimp", "hubspot", *HARNESSES])
def vendor(request: pytest.FixtureRequest) -> Iterator[Harness]:
    new = HARNESSES.get(request.param)
    harness = new() if new else make_harness(request.param)
    yield harness
    harness.emulator.stop()


def found(result: object) -> dict[str, int]:
    return {e.collection: e.found for e in result.evidence}  # type: ignore[attr-defined]


def test_find_and_collect_only_the_subject(vendor: Harness) -> None:
    expected = vendor.seed(SUBJECT)
    vendor.seed(BYSTANDER)
    sink = RecordingSink()
    with vendor.connector() as conn:
        result = conn.collect(KEYS, sink)
    assert found(result) == expected
    for ev in result.evidence:
        assert ev.collected == ev.found == len(ev.item_hashes) and ev.digest
        assert ev.system == vendor.vendor and ev.action == "collect"
    rows = [r for (system, _), batch in sink.rows.items() for r in batch]
    assert len(rows) == sum(expected.values())
    text = repr(rows)
    assert BYSTANDER not in text
    assert all(not isinstance(v, dict) for r in rows for v in r.values())  # flat rows
    assert len(result.discovered[vendor.provides]) >= 1
    # evidence holds no personal data
    assert SUBJECT not in repr([e.to_dict() for e in result.evidence])


def test_erase_recount_and_a_second_erase_changes_nothing(vendor: Harness) -> None:
    expected = vendor.seed(SUBJECT)
    vendor.seed(BYSTANDER)
    before_other = vendor.holds(BYSTANDER)
    with vendor.connector() as conn:
        first = conn.erase(KEYS)
        by_name = {e.collection: e for e in first.evidence}
        for name in vendor.erased:
            ev = by_name[name]
            assert ev.found == expected[name] and ev.deleted == expected[name]
            assert ev.remaining == 0 and ev.action == "delete"
        for name in vendor.retained:
            ev = by_name[name]
            assert ev.action == "retain" and ev.retained == expected[name]
            assert ev.retained_ground and ev.deleted == 0
        assert vendor.holds(SUBJECT) == 0
        assert vendor.holds(BYSTANDER) == before_other
        recount = conn.count(KEYS)
        assert all(n == 0 for n in found(recount).values())
        reads = getattr(vendor, "read_paths", ())  # lookups sent as POST
        writes = sum(1 for m, p in vendor.emulator.log if m != "GET" and p not in reads)
        second = conn.erase(KEYS)
        assert all(e.found == e.deleted == 0 and e.remaining == 0 for e in second.evidence)
        assert sum(1 for m, p in vendor.emulator.log if m != "GET" and p not in reads) == writes


def test_many_pages(vendor: Harness) -> None:
    expected = vendor.seed(SUBJECT, many=True)
    sink = RecordingSink()
    with vendor.connector() as conn:
        assert found(conn.collect(KEYS, sink)) == expected
        assert found(conn.erase(KEYS)) == expected
    assert vendor.holds(SUBJECT) == 0


@pytest.mark.slow  # waits out the emulator's rate-limit window
def test_a_429_storm_is_waited_out(vendor: Harness) -> None:
    expected = vendor.seed(SUBJECT)
    # a window smaller than the count's calls (Zendesk counts in two)
    vendor.emulator.rate_limit = (getattr(vendor, "storm_calls", 2), 1.0)
    with vendor.connector() as conn:
        assert found(conn.count(KEYS)) == expected
        assert found(conn.count(KEYS)) == expected  # Braze counts in one call
        throttled = conn.client.throttled
    assert vendor.emulator.throttled >= 1 and throttled == vendor.emulator.throttled


def test_the_shared_limiter_avoids_429s(vendor: Harness) -> None:
    expected = vendor.seed(SUBJECT)
    vendor.emulator.rate_limit = (6, 1.0)
    system = vendor.system(rate_limit={"calls": 5, "seconds": 1})
    with vendor.connector(system) as conn:
        assert found(conn.count(KEYS)) == expected
    assert vendor.emulator.throttled == 0


def test_intermittent_500s_are_retried(vendor: Harness) -> None:
    expected = vendor.seed(SUBJECT)
    vendor.emulator.fail_every = 3
    with vendor.connector(sleep=lambda s: None) as conn:
        result = conn.erase(KEYS)
    assert found(result) == expected and vendor.emulator.failed >= 1
    assert vendor.holds(SUBJECT) == 0


def test_a_vendor_down_for_good_is_a_transient_error(vendor: Harness) -> None:
    vendor.seed(SUBJECT)
    vendor.emulator.fail_next = 10_000
    with vendor.connector(sleep=lambda s: None) as conn, pytest.raises(ConnectorError) as err:
        conn.count(KEYS)
    assert err.value.transient and err.value.code == "saas_unavailable"
    assert err.value.retry_after is not None and SUBJECT not in str(err.value)
    assert vendor.emulator.failed == 6  # the definition's attempts


def test_a_refused_credential_needs_attention(vendor: Harness) -> None:
    vendor.seed(SUBJECT)
    vendor.emulator.refuse = True
    with vendor.connector() as conn, pytest.raises(ConnectorError) as err:
        conn.erase(KEYS)
    assert err.value.code == "saas_refused_credential" and not err.value.transient
    assert vendor.token_env in str(err.value) and vendor.token_env in (err.value.fix or "")
    assert vendor.emulator.calls == 1  # never retried
    assert vendor.holds(SUBJECT) > 0


def test_a_missing_credential_is_named(vendor: Harness) -> None:
    environ = vendor.environ()
    del environ[vendor.token_env]
    with pytest.raises(ConnectorError) as err:
        vendor.connector(environ=environ)
    assert err.value.code == "saas_missing_credential" and not err.value.transient
    assert vendor.token_env in err.value.one_line()
    assert vendor.emulator.calls == 0


def test_all_resources_as_one_collection(vendor: Harness) -> None:
    expected = vendor.seed(SUBJECT)
    with vendor.connector(vendor.system(resources=[])) as conn:
        result = conn.count(KEYS)
    assert {e.collection for e in result.evidence} == {vendor.vendor}
    assert sum(e.found for e in result.evidence) == sum(expected.values())


def test_a_parent_walked_for_its_children_is_never_erased() -> None:
    harness = make_harness("stripe")
    try:
        harness.seed(SUBJECT)
        with harness.connector(harness.system(resources=["charges"])) as conn:
            result = conn.erase(KEYS)
        assert [(e.collection, e.retained) for e in result.evidence] == [("charges", 2)]
        assert harness.holds(SUBJECT) == 2  # the customer and its card are untouched
        assert not [m for m, _ in harness.emulator.log if m != "GET"]
        with pytest.raises(ConnectorError) as err:
            harness.connector(harness.system(resources=["payment_methods"]))
        assert "add customers to the system's resources" in err.value.one_line()
    finally:
        harness.emulator.stop()


def test_stripe_finds_another_capitalisation_and_never_a_deleted_hit() -> None:
    harness = make_harness("stripe")
    try:
        harness.seed("Jenny.Rosen@Example.com")
        stripe = harness.emulator
        with harness.connector() as conn:
            first = {e.collection: e for e in conn.erase(KEYS).evidence}
            assert first["customers"].deleted == 1 and first["customers"].remaining == 0
            # a search index that still lists the deleted customer (Stripe's lags a minute)
            stripe.deleted.clear()
            gone = next(iter(stripe.customers))
            stripe.route("GET", "/v1/customers/" + gone, lambda req: (
                200, {"id": gone, "object": "customer", "deleted": True}, {}))
            stripe.routes.insert(0, stripe.routes.pop())
            recount = conn.count(KEYS)
        assert {e.collection: e.found for e in recount.evidence}["customers"] == 0
    finally:
        harness.emulator.stop()


# -- a vendor with nothing to read (Segment): the contract through its erasure ---------------

@pytest.fixture
def write_only() -> Iterator[Harness]:
    from tests.connectors.saas.harness_vendors import _segment

    harness = _segment()
    yield harness
    harness.emulator.stop()


def test_write_only_collects_nothing_and_erases_by_job(write_only: Harness) -> None:
    write_only.seed(SUBJECT)
    write_only.seed(BYSTANDER)
    sink = RecordingSink()
    with write_only.connector() as conn:
        assert [e.collected for e in conn.collect(KEYS, sink).evidence] == [0]
        result = conn.erase(KEYS)
    assert sink.rows == {} and result.jobs == []
    (ev,) = result.evidence
    assert (ev.found, ev.deleted, ev.remaining) == (1, 1, 0)
    assert ev.counts["vendor_status"] == "FINISHED" and SUBJECT not in repr(ev.to_dict())
    assert write_only.holds(SUBJECT) == 0 and write_only.holds(BYSTANDER) == 1


def test_write_only_429_storm_and_500s_are_ridden_out(write_only: Harness) -> None:
    write_only.seed(SUBJECT)
    write_only.emulator.rate_limit = (1, 1.0)  # the submission and its first poll collide
    with write_only.connector() as conn:
        conn.erase(KEYS)
        assert conn.client.throttled == write_only.emulator.throttled >= 1
    write_only.emulator.rate_limit = None
    write_only.emulator.fail_every = 2
    with write_only.connector(sleep=lambda s: None) as conn:
        assert conn.erase(KEYS).evidence[0].remaining == 0
    assert write_only.emulator.failed >= 1 and write_only.holds(SUBJECT) == 0


def test_write_only_vendor_down_for_good_is_transient(write_only: Harness) -> None:
    write_only.seed(SUBJECT)
    write_only.emulator.fail_next = 10_000
    with write_only.connector(sleep=lambda s: None) as conn, \
            pytest.raises(ConnectorError) as err:
        conn.erase(KEYS)
    assert err.value.transient and err.value.code == "saas_unavailable"
    assert write_only.emulator.regulations == {} and write_only.holds(SUBJECT) == 1
