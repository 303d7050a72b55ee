"""Vendor jobs through the fleet: an erasure task whose vendor answers with a job waits in the
state database (no worker held), is polled on the fleet's clock, and completes with the
vendor's final status in its record; a failed job needs attention and `retry` submits anew."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dsar.db.models import Request, VendorJob
from dsar.records import keys as keyring
from dsar.records.glance import collection_notes
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from tests.connectors.saas.harness import Harness
from tests.connectors.saas.harness_vendors import _segment, _zendesk, delay_jobs
from tests.workflows.fleet_helpers import Fleet
from workflows import runner, vendor_jobs
from workflows.task import TaskObservers

SUBJECT = "jenny.rosen@example.com"
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def datamap(segment: Harness, zendesk: Harness) -> dict[str, Any]:
    return {"version": 1, "systems": [
        {"name": "analytics", "kind": "saas", "vendor": "segment", "token_env": "SEGMENT_TOKEN",
         "base_url_env": "SEGMENT_URL", "identities": {"email": "user_id"},
         "resources": ["users"]},
        {"name": "support", "kind": "saas", "vendor": "zendesk", "token_env": "ZENDESK_TOKEN",
         "base_url_env": "ZENDESK_URL", "region": "example", "resources": ["users", "tickets"]},
    ]}


@pytest.fixture
def fleet(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[tuple[Fleet, Harness, Harness, Clock]]:
    segment, zendesk = _segment(), _zendesk()
    env = {"SEGMENT_TOKEN": segment.token, "SEGMENT_URL": segment.url,
           "ZENDESK_TOKEN": zendesk.token, "ZENDESK_URL": zendesk.url,
           "DSAR_RATE_LIMIT_URL": "memory://", "DSAR_VENDOR_JOB_POLL_MIN_SECONDS": "60",
           "DSAR_VENDOR_JOB_POLL_MAX_SECONDS": "1800"}
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap(segment, zendesk), env)
    fleet.apply_env(monkeypatch)
    clock = Clock()
    fleet.app.clock = clock
    yield fleet, segment, zendesk, clock
    fleet.close()
    segment.emulator.stop()
    zendesk.emulator.stop()


def run_ready(fleet: Fleet, request_id: str) -> list[str]:
    outcomes: list[str] = []
    observers = fleet.app.local(TaskObservers)
    observers.append(lambda _s, _a, outcome, _t: outcomes.append(outcome))
    try:
        for task in fleet.tasks(request_id):
            if task["state"] in ("ready", "running"):
                runner.run_task(fleet.app, task["id"])
    finally:
        observers.pop()
    return outcomes


def jobs(fleet: Fleet) -> list[VendorJob]:
    with fleet.app.db.session() as session:
        rows = list(session.scalars(sa.select(VendorJob).order_by(VendorJob.id)))
        session.expunge_all()
    return rows


def later(fleet: Fleet, clock: Clock, emulators: list[Any], by: timedelta) -> int:
    clock.now += by
    for em in emulators:
        em.advance(by.total_seconds())
    return vendor_jobs.poll_due(fleet.app)


def test_an_erasure_waits_for_jobs_that_finish_an_hour_later(fleet: Any) -> None:
    fleet_, segment, zendesk, clock = fleet
    segment.seed(SUBJECT)
    zendesk.seed(SUBJECT)
    zendesk.seed("max.mustermann@example.com")
    for harness in (segment, zendesk):
        delay_jobs(harness, 3600)
    ems = [segment.emulator, zendesk.emulator]
    request_id = fleet_.submit("erasure", SUBJECT)
    runner.plan(fleet_.app, request_id)
    assert run_ready(fleet_, request_id) == ["waiting", "waiting"]
    assert [t["state"] for t in fleet_.tasks(request_id)] == ["waiting_vendor"] * 2
    submitted = jobs(fleet_)
    assert [(j.system, j.state, j.attempts) for j in submitted] == [
        ("analytics", "pending", 0), ("support", "pending", 0)]
    assert submitted[0].last_status == "RUNNING"
    assert SUBJECT not in json.dumps([[j.job_id, j.reference, j.task_evidence]
                                      for j in submitted])
    assert vendor_jobs.poll_due(fleet_.app) == 0  # nothing due yet: no call is made
    calls = [em.calls for em in ems]
    # ten minutes on: Segment's file asks every 600 s, Zendesk's every 60 s (at least 60 here)
    assert later(fleet_, clock, ems, timedelta(minutes=10)) == 2
    assert [em.calls for em in ems] == [calls[0] + 1, calls[1] + 1]
    polled = jobs(fleet_)
    assert [j.state for j in polled] == ["pending", "pending"]
    assert polled[0].next_poll_at == clock.now + timedelta(seconds=1200)  # doubled
    assert polled[1].next_poll_at == clock.now + timedelta(seconds=120)
    assert fleet_.state(request_id) == "in_progress"
    assert run_ready(fleet_, request_id) == []  # nothing to run while the vendors work
    asked = later(fleet_, clock, ems, timedelta(minutes=51))  # 61 minutes after submission
    assert asked == 2 and [j.state for j in jobs(fleet_)] == ["done", "done"]
    assert [t["state"] for t in fleet_.tasks(request_id)] == ["ready", "ready"]
    assert run_ready(fleet_, request_id) == ["done", "done"]
    runner.assemble(fleet_.app, request_id)
    assert fleet_.state(request_id) == "completed"
    assert segment.holds(SUBJECT) == 0 and zendesk.holds(SUBJECT) == 0
    assert zendesk.holds("max.mustermann@example.com") == 3
    public = keyring.public_keys(fleet_.env["DSAR_SIGNING_KEYS_DIR"])
    with fleet_.app.db.session() as session:
        bundle = make_bundle(session, fleet_.app, request_id)
        events = [e.event for e in session.get_one(Request, request_id).events]
    check = verify_bundle(bundle, public_keys=public)
    assert check.ok, [c for c in check.checks if not c.ok]
    assert "waiting_for_vendor" in events and "vendor_jobs_ended" in events
    evidence = {(e["system"], e["collection"]): e for e in bundle["evidence"]}
    regulation = evidence[("analytics", "users")]
    assert regulation["counts"]["vendor_status"] == "FINISHED"
    assert regulation["counts"]["vendor_job"] == submitted[0].job_id  # Segment's regulateId
    assert regulation["remaining"] == 0 and regulation["deleted"] == 1
    assert (f"the vendor's erasure job {submitted[0].job_id} ended FINISHED"
            in collection_notes(regulation))  # what `dsar show` and the record page say
    users = evidence[("support", "users")]
    assert users["counts"]["vendor_status"] == "HTTP 404: gone"
    assert users["counts"]["vendor_job"].startswith("hmac:") and users["remaining"] == 0
    payload = base64.b64decode(bundle["envelope"]["payload"]).decode()
    assert SUBJECT not in json.dumps(bundle) and SUBJECT not in payload


def test_a_failed_job_needs_attention_and_retry_submits_again(fleet: Any) -> None:
    fleet_, segment, _, clock = fleet
    segment.seed(SUBJECT)
    delay_jobs(segment, 3600)
    segment.emulator.outcome = "FAILED"
    request_id = fleet_.submit("erasure", SUBJECT)
    runner.plan(fleet_.app, request_id)
    run_ready(fleet_, request_id)  # Zendesk has nothing: done; Segment waits
    later(fleet_, clock, [segment.emulator], timedelta(hours=2))
    assert run_ready(fleet_, request_id) == ["failed"]
    with fleet_.app.db.session() as session:
        request = session.get_one(Request, request_id)
        assert request.state == "needs_attention"
        reason = request.attention_reason or ""
    first = next(iter(segment.emulator.regulations))
    assert "saas_job_failed" in reason and "FAILED" in reason and first in reason
    assert jobs(fleet_) == []  # forgotten: a retry submits a new one
    segment.emulator.outcome = "FINISHED"
    runner.retry(fleet_.app, request_id, "privacy-team")
    assert run_ready(fleet_, request_id) == ["waiting"]
    assert len(segment.emulator.regulations) == 2
    later(fleet_, clock, [segment.emulator], timedelta(hours=2))
    assert run_ready(fleet_, request_id) == ["done"]
    runner.assemble(fleet_.app, request_id)
    assert fleet_.state(request_id) == "completed" and segment.holds(SUBJECT) == 0


def test_a_job_pending_too_long_gives_up(fleet: Any) -> None:
    fleet_, segment, _, clock = fleet
    segment.seed(SUBJECT)
    delay_jobs(segment, 90 * 86400)
    request_id = fleet_.submit("erasure", SUBJECT)
    runner.plan(fleet_.app, request_id)
    run_ready(fleet_, request_id)
    for _ in range(40):
        later(fleet_, clock, [segment.emulator], timedelta(days=1))
    (job,) = jobs(fleet_)
    assert job.state == "gave_up" and job.last_status == "RUNNING"
    assert run_ready(fleet_, request_id) == ["failed"]
    with fleet_.app.db.session() as session:
        reason = session.get_one(Request, request_id).attention_reason or ""
    assert "saas_job_gave_up" in reason and job.reference in reason


def test_submit_wait_and_show_say_the_request_waits_for_the_vendor(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli import main
    from interfaces.commands.exits import STILL_RUNNING

    segment = _segment()
    try:
        segment.seed(SUBJECT)
        delay_jobs(segment, 3600)
        path = tmp_path / "datamap.yaml"
        path.write_text(json.dumps({"version": 1, "systems": [{
            "name": "analytics", "kind": "saas", "vendor": "segment",
            "token_env": "SEGMENT_TOKEN", "base_url_env": "SEGMENT_URL",
            "identities": {"email": "user_id"}, "resources": ["users"]}]}))
        env = {"DSAR_DATA_DIR": str(tmp_path / "data"), "DSAR_DATAMAP": str(path),
               "SEGMENT_TOKEN": segment.token, "SEGMENT_URL": segment.url,
               "DSAR_RATE_LIMIT_URL": "memory://"}
        runner_ = CliRunner()
        submitted = runner_.invoke(main, ["submit", "erasure", "--email", SUBJECT,
                                          "--identity-verified", "account", "--wait"], env=env)
        assert submitted.exit_code == STILL_RUNNING, submitted.output
        assert "waiting for segment: 1 erasure job(s) still running" in submitted.output
        request_id = submitted.output.split()[0]
        shown = runner_.invoke(main, ["show", request_id, "--json"], env=env)
        data = json.loads(shown.stdout)
        assert data["state"] == "in_progress"
        assert [t["state"] for t in data["tasks"]] == ["waiting_vendor"]
        (job,) = data["vendor_jobs"]
        regulate_id = next(iter(segment.emulator.regulations))
        assert (job["system"], job["job"], job["state"], job["vendor_status"]) == (
            "analytics", regulate_id, "pending", "RUNNING")
        assert job["next_poll_at"] and job["submitted_at"]
        text = runner_.invoke(main, ["show", request_id], env={**env, "COLUMNS": "200"}).output
        assert "waiting for segment" in text and "vendor jobs" in text and regulate_id in text
    finally:
        segment.emulator.stop()
