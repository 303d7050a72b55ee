"""A worker killed while a vendor's erasure job is pending, for every vendor with jobs: a real
`dsar worker` (PostgreSQL state, RabbitMQ) submits the job (a Segment regulation, HubSpot's GDPR
delete, Zendesk's permanent deletion) and parks the task; it is SIGKILLed while the job runs; a
new worker's watch polls the job from the state database, finishes the request, and its record
verifies with the vendor's final status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from dsar.db.models import Request, Task, VendorJob
from dsar.records import keys as keyring
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from tests.connectors.saas.harness_vendors import JOB_HARNESSES, delay_jobs
from tests.workflows.fleet_helpers import Fleet, wait_until

SUBJECT = "jenny.rosen@example.com"
FINAL = {"segment": "FINISHED", "hubspot": "HTTP 404: gone", "zendesk": "HTTP 404: gone"}


@pytest.mark.parametrize("vendor", list(JOB_HARNESSES))
def test_a_worker_killed_while_a_job_is_pending(vendor: str, postgres_url: str,
                                                 rabbitmq_url: str, tmp_path: Path) -> None:
    harness = JOB_HARNESSES[vendor]()
    try:
        harness.seed(SUBJECT)
        delay_jobs(harness, 3600)  # the vendor runs the job an hour on its clock
        system = harness.system().model_dump(mode="json", exclude_defaults=True, by_alias=True)
        fleet = Fleet(tmp_path / "fleet", postgres_url, rabbitmq_url,
                      {"version": 1, "systems": [system]}, {
                          **harness.environ(), "DSAR_VENDOR_JOB_POLL_MIN_SECONDS": "0.5",
                          "DSAR_VENDOR_JOB_POLL_MAX_SECONDS": "1"})
        try:
            first = fleet.start_worker(processes=1, threads=2)
            request_id = fleet.submit("erasure", SUBJECT)

            def polled() -> VendorJob | None:
                with fleet.app.db.session() as session:
                    job = session.scalars(sa.select(VendorJob)).first()
                    if job is not None and job.attempts >= 2:
                        session.expunge(job)
                        return job
                    return None

            job = wait_until(polled, 90, "the worker to submit the job and poll it")
            assert job.state == "pending" and job.last_status != FINAL[vendor]
            assert fleet.scalar(sa.select(Task.state)) == "waiting_vendor"
            assert harness.holds(SUBJECT) > 0
            fleet.kill(first)  # SIGKILL, whole process group
            first.wait(10)
            assert fleet.state(request_id) == "in_progress"
            harness.emulator.advance(3600)  # type: ignore[attr-defined]
            writes = [m for m, _ in harness.emulator.log if m != "GET"]
            fleet.start_worker(processes=1, threads=2)
            assert fleet.wait_settled([request_id], timeout=90) == {request_id: "completed"}
            # polled, never submitted again
            assert [m for m, _ in harness.emulator.log if m != "GET"] == writes
            assert harness.holds(SUBJECT) == 0
            with fleet.app.db.session() as session:
                done = session.scalars(sa.select(VendorJob)).one()
                assert (done.state, done.last_status) == ("done", FINAL[vendor])
                bundle = make_bundle(session, fleet.app, request_id)
                assert session.get_one(Request, request_id).completed_at is not None
            public = keyring.public_keys(fleet.env["DSAR_SIGNING_KEYS_DIR"])
            check = verify_bundle(bundle, public_keys=public)
            assert check.ok, [c for c in check.checks if not c.ok]
            (evidence,) = [e for e in bundle["evidence"] if e["collection"] == job.collection]
            assert evidence["counts"]["vendor_status"] == FINAL[vendor]
            assert evidence["counts"]["vendor_job"] == job.reference
            assert all(e["remaining"] == 0 for e in bundle["evidence"])
            assert SUBJECT not in json.dumps(bundle)
        finally:
            fleet.close()
    finally:
        harness.emulator.stop()
