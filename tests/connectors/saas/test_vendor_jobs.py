"""Vendor jobs at the connector: an erasure the vendor finishes later (Segment's regulations,
HubSpot's GDPR delete, Zendesk's permanent deletion) is submitted, polled and settled, against
each vendor's emulator over real HTTP, with the emulator's clock moved instead of sleeping."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dsar.errors import ConnectorError
from tests.connectors.saas.harness import Harness, RecordingSink
from tests.connectors.saas.harness_vendors import JOB_HARNESSES, _segment, delay_jobs

SUBJECT = "jenny.rosen@example.com"
BYSTANDER = "max.mustermann@example.com"
KEYS = {"email": frozenset({SUBJECT})}
HOUR = 3600.0


@pytest.fixture(params=list(JOB_HARNESSES))
def vendor(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = JOB_HARNESSES[request.param]()
    yield harness
    harness.emulator.stop()


@pytest.fixture
def segment() -> Iterator[Harness]:
    harness = _segment()
    yield harness
    harness.emulator.stop()


def test_a_job_that_finishes_an_hour_later(vendor: Harness) -> None:
    vendor.seed(SUBJECT)
    vendor.seed(BYSTANDER)
    bystander = vendor.holds(BYSTANDER)
    delay_jobs(vendor, HOUR)
    em = vendor.emulator
    with vendor.connector() as conn:
        submitted = conn.erase(KEYS)
        (job,) = submitted.jobs
        ev = {e.collection: e for e in submitted.evidence}[job.collection]
        assert ev.remaining is None and ev.counts["vendor_jobs_pending"] == 1
        assert ev.deleted == ev.found == 1
        assert vendor.holds(SUBJECT) > 0  # the vendor has not run it yet
        text = json.dumps([[e.to_dict() for e in submitted.evidence], job.reference])
        assert SUBJECT not in text
        if vendor.vendor == "segment":
            assert job.reference == job.job_id  # the vendor's regulateId
        else:  # the job id is the person's record at the vendor: only a keyed hash shows
            assert job.reference.startswith("hmac:") and job.job_id not in job.reference
        assert conn.poll_job(job.resource, job.job_id).state == "pending"
        em.advance(HOUR - 1)  # type: ignore[attr-defined]
        assert conn.poll_job(job.resource, job.job_id).state == "pending"
        em.advance(2)  # type: ignore[attr-defined]
        status = conn.poll_job(job.resource, job.job_id)
        assert status.state == "done"
        final = conn.settle(KEYS, submitted.evidence, [(job, status)])
    settled = {e.collection: e for e in final.evidence}[job.collection]
    assert settled.remaining == 0 and "vendor_jobs_pending" not in settled.counts
    assert settled.counts["vendor_status"] == status.status
    assert settled.counts["vendor_job"] == job.reference and settled.counts["vendor_jobs"] == 1
    assert all(e.remaining == 0 for e in final.evidence if e.action == "delete")
    assert vendor.holds(SUBJECT) == 0 and vendor.holds(BYSTANDER) == bystander


def test_a_job_finished_at_once_needs_no_waiting(vendor: Harness) -> None:
    vendor.seed(SUBJECT)
    with vendor.connector() as conn:
        result = conn.erase(KEYS)
    assert result.jobs == []
    for ev in result.evidence:
        assert ev.remaining == 0
    (noted,) = [e for e in result.evidence if "vendor_status" in e.counts]
    assert noted.counts["vendor_jobs"] == 1
    assert vendor.holds(SUBJECT) == 0


def test_polling_rides_out_500s_and_says_when_the_vendor_is_down(vendor: Harness) -> None:
    vendor.seed(SUBJECT)
    delay_jobs(vendor, HOUR)
    with vendor.connector(sleep=lambda s: None) as conn:
        (job,) = conn.erase(KEYS).jobs
        vendor.emulator.fail_next = 2
        assert conn.poll_job(job.resource, job.job_id).state == "pending"
        vendor.emulator.fail_next = 10_000
        with pytest.raises(ConnectorError) as err:
            conn.poll_job(job.resource, job.job_id)
    assert err.value.transient and SUBJECT not in str(err.value)


def test_a_failed_regulation_needs_attention(segment: Harness) -> None:
    segment.seed(SUBJECT)
    em = segment.emulator
    em.outcome = "FAILED"  # type: ignore[attr-defined]
    with segment.connector() as conn, pytest.raises(ConnectorError) as at_once:
        conn.erase(KEYS)
    assert at_once.value.code == "saas_job_failed" and not at_once.value.transient
    assert "FAILED" in str(at_once.value) and SUBJECT not in str(at_once.value)
    delay_jobs(segment, HOUR)
    with segment.connector() as conn:
        submitted = conn.erase(KEYS)
        (job,) = submitted.jobs
        em.advance(HOUR)  # type: ignore[attr-defined]
        status = conn.poll_job(job.resource, job.job_id)
        assert (status.state, status.status) == ("failed", "FAILED")
        with pytest.raises(ConnectorError) as later:
            conn.settle(KEYS, submitted.evidence, [(job, status)])
    assert later.value.code == "saas_job_failed" and job.reference in str(later.value)
    assert segment.holds(SUBJECT) == 1


def test_segment_regulations_follow_the_documented_shape(segment: Harness) -> None:
    segment.seed(SUBJECT)
    em = segment.emulator
    with segment.connector() as conn:
        sink = RecordingSink()
        collected = conn.collect(KEYS, sink)
        assert sink.rows == {} and em.calls == 0  # Segment has nothing to read
        assert [e.counts for e in collected.evidence] == [{"no_read_api": 1}]
        conn.erase(KEYS)
    system = segment.system(resources=["users_delete_only"])
    with segment.connector(system) as conn:
        conn.erase(KEYS)
    with segment.connector(segment.system(resources=[])) as conn:  # opt-in stays out
        result = conn.erase(KEYS)
    assert [e.collection for e in result.evidence] == ["segment"]
    kinds = [(r["type"], r["subjectType"], r["subjectIds"]) for r in em.regulations.values()]
    assert kinds == [("SUPPRESS_WITH_DELETE", "USER_ID", [SUBJECT]),
                     ("DELETE_ONLY", "USER_ID", [SUBJECT]),
                     ("SUPPRESS_WITH_DELETE", "USER_ID", [SUBJECT])]
    assert SUBJECT in em.suppressed and segment.holds(SUBJECT) == 0
    assert [m for m, _ in em.log].count("POST") == 3


def test_segment_refused_and_missing_credentials(segment: Harness) -> None:
    segment.seed(SUBJECT)
    segment.emulator.refuse = True
    with segment.connector() as conn, pytest.raises(ConnectorError) as err:
        conn.erase(KEYS)
    assert err.value.code == "saas_refused_credential" and "SEGMENT_TOKEN" in str(err.value)
    environ = segment.environ()
    del environ["SEGMENT_TOKEN"]
    with pytest.raises(ConnectorError) as missing:
        segment.connector(environ=environ)
    assert missing.value.code == "saas_missing_credential"
    assert segment.holds(SUBJECT) == 1


def test_hubspot_phone_search_pages() -> None:
    harness = JOB_HARNESSES["hubspot"]()
    try:
        em = harness.emulator
        for i in range(230):
            em.add_contact(f"shared{i}@example.com", phone="+49 30 5550100",  # type: ignore
                           deals=0, tickets=0, notes=0)
        em.add_contact("other@example.com", phone="+49 30 5550199",  # type: ignore
                       deals=0, tickets=0, notes=0)
        system = harness.system(identities={"phone": "phone"}, resources=["contacts"])
        with harness.connector(system) as conn:
            result = conn.count({"phone": frozenset({"+49 30 5550100"})})
        assert [e.found for e in result.evidence] == [230]
        assert em.log.count(("POST", "/crm/v3/objects/contacts/search")) == 3
    finally:
        harness.emulator.stop()


def test_a_job_settles_when_all_resources_are_one_collection(vendor: Harness) -> None:
    expected = sum(vendor.seed(SUBJECT).values())
    delay_jobs(vendor, HOUR)
    with vendor.connector(vendor.system(resources=[])) as conn:
        submitted = conn.erase(KEYS)
        (job,) = submitted.jobs
        vendor.emulator.advance(HOUR + 1)  # type: ignore[attr-defined]
        final = conn.settle(KEYS, submitted.evidence,
                            [(job, conn.poll_job(job.resource, job.job_id))])
    (ev,) = final.evidence
    assert (ev.collection, ev.found, ev.deleted, ev.remaining) == (
        vendor.vendor, expected, expected, 0)
    assert ev.counts["vendor_job"] == job.reference and vendor.holds(SUBJECT) == 0
