"""A worker killed while a vendor's erasure job is pending: a real `dsar worker` (PostgreSQL
state, RabbitMQ) submits a Segment regulation and parks the task; it is SIGKILLed while the
regulation runs; a new worker's watch polls it from the state database, finishes the request,
and its record verifies with the vendor's final status."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from dsar.db.models import Request, Task, VendorJob
from dsar.records import keys as keyring
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from tests.saas.harness_vendors import _segment, delay_jobs
from tests.workflows.fleet_helpers import Fleet, wait_until

SUBJECT = "jenny.rosen@example.com"


def test_a_worker_killed_while_a_job_is_pending(postgres_url: str, rabbitmq_url: str,
                                                 tmp_path: Path) -> None:
    segment = _segment()
    try:
        segment.seed(SUBJECT)
        delay_jobs(segment, 3600)  # the regulation runs an hour on Segment's clock
        datamap = {"version": 1, "systems": [{
            "name": "analytics", "kind": "saas", "vendor": "segment",
            "token_env": "SEGMENT_TOKEN", "base_url_env": "SEGMENT_URL",
            "identities": {"email": "user_id"}, "resources": ["users"]}]}
        fleet = Fleet(tmp_path / "fleet", postgres_url, rabbitmq_url, datamap, {
            "SEGMENT_TOKEN": segment.token, "SEGMENT_URL": segment.url,
            "DSAR_RATE_LIMIT_URL": "memory://", "DSAR_VENDOR_JOB_POLL_MIN_SECONDS": "0.5",
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

            job = wait_until(polled, 90, "the worker to submit the regulation and poll it")
            assert job.state == "pending" and job.last_status == "RUNNING"
            assert fleet.scalar(sa.select(Task.state)) == "waiting_vendor"
            fleet.kill(first)  # SIGKILL, whole process group
            first.wait(10)
            assert fleet.state(request_id) == "in_progress"
            segment.emulator.advance(3600)  # the regulation finished while no worker ran
            fleet.start_worker(processes=1, threads=2)
            assert fleet.wait_settled([request_id], timeout=90) == {request_id: "completed"}
            assert len(segment.emulator.regulations) == 1  # polled, never submitted again
            assert segment.holds(SUBJECT) == 0
            with fleet.app.db.session() as session:
                done = session.scalars(sa.select(VendorJob)).one()
                assert (done.state, done.last_status) == ("done", "FINISHED")
                bundle = make_bundle(session, fleet.app, request_id)
                assert session.get_one(Request, request_id).completed_at is not None
            public = keyring.public_keys(fleet.env["DSAR_SIGNING_KEYS_DIR"])
            check = verify_bundle(bundle, public_keys=public)
            assert check.ok, [c for c in check.checks if not c.ok]
            (evidence,) = bundle["evidence"]
            assert evidence["counts"]["vendor_status"] == "FINISHED"
            assert evidence["counts"]["vendor_job"] == job.job_id
            assert evidence["remaining"] == 0 and SUBJECT not in json.dumps(bundle)
        finally:
            fleet.close()
    finally:
        segment.emulator.stop()
