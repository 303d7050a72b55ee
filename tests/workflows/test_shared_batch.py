"""Batched erasure of shared S3 files through the fleet (issue #25): requests wait for their
batch in the database, one pass removes every member, each record names its batch."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dsar.db.models import Request, SharedBatch, SharedBatchMember, Task
from dsar.lifecycle import TaskState
from dsar.records import keys as keyring
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from tests.s3server import ENDPOINT_ENV
from tests.workflows.fleet_helpers import Fleet
from workflows import runner, shared_batch
from workflows.task import TaskObservers

pytest_plugins = ["tests.s3server"]
pytestmark = pytest.mark.postgres

PEOPLE = ["ann@example.com", "bob@example.com", "cat@example.com"]
OTHERS = [f"other{i}@example.com" for i in range(20)]


def lines_for(emails: list[str], n: int) -> bytes:
    return b"".join(
        b'{"user": {"email": "%s"}, "n": %d, "pad": "x%s"}\n' % (e.encode(), i, b" " * (i % 3))
        for i in range(n) for e in emails)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def lake(postgres_url: str, tmp_path: Path, moto_endpoint: str, s3: Any, make_bucket: Any,
         monkeypatch: pytest.MonkeyPatch) -> Any:
    bucket = make_bucket(versioned=True)
    files = {f"events/part-{i}.jsonl": lines_for(PEOPLE + OTHERS, 3) for i in range(3)}
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    datamap = {"version": 1, "systems": [{
        "name": "files", "kind": "s3", "bucket": bucket, "endpoint_url_env": ENDPOINT_ENV,
        "region": "us-east-1",
        "shared": [{"name": "events", "prefix": "events/", "format": "jsonl",
                    "match": {"email": "user.email"}}]}]}
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap,
                  {ENDPOINT_ENV: moto_endpoint, "DSAR_SHARED_ERASURE_MAX_WAIT_HOURS": "48",
                   "DSAR_SHARED_ERASURE_MARGIN_DAYS": "3"})
    fleet.apply_env(monkeypatch)
    clock = Clock()
    fleet.app.clock = clock
    yield fleet, bucket, files, clock
    fleet.close()


def run_ready(fleet: Fleet, request_ids: list[str]) -> list[str]:
    """Run every task of the requests that may run now; the outcomes of the attempts."""
    outcomes: list[str] = []
    observers = fleet.app.local(TaskObservers)
    observers.append(lambda _s, _a, outcome, _t: outcomes.append(outcome))
    try:
        for request_id in request_ids:
            for task in fleet.tasks(request_id):
                if task["state"] in (TaskState.READY, TaskState.RUNNING):
                    runner.run_task(fleet.app, task["id"])
    finally:
        observers.pop()
    return outcomes


def settle(fleet: Fleet, request_ids: list[str]) -> None:
    for request_id in request_ids:
        if all(t["state"] == TaskState.DONE for t in fleet.tasks(request_id)):
            runner.assemble(fleet.app, request_id)


def submit_erasures(fleet: Fleet, emails: list[str]) -> list[str]:
    ids = [fleet.submit("erasure", email) for email in emails]
    for request_id in ids:
        runner.plan(fleet.app, request_id)
    return ids


def expected_lines(body: bytes, removed: list[str]) -> bytes:
    return b"".join(line for line in body.splitlines(keepends=True)
                    if not any(e.encode() in line for e in removed))


def current(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_three_erasures_one_pass_each_record_names_the_batch(lake: Any, s3: Any) -> None:
    fleet, bucket, files, clock = lake
    ids = submit_erasures(fleet, PEOPLE)
    puts: list[str] = []
    assert run_ready(fleet, ids) == ["waiting"] * 3  # each joined, nothing rewritten yet
    for key, body in files.items():
        assert current(s3, bucket, key) == body
    with fleet.app.db.session() as session:
        batches = list(session.scalars(sa.select(SharedBatch)))
        assert len(batches) == 1 and batches[0].state == "open"
        assert batches[0].run_at == clock.now + timedelta(hours=48)
    assert all(fleet.state(r) == "in_progress" for r in ids)  # not complete before the batch

    clock.now += timedelta(hours=49)
    from connectors import s3_batch

    real_rewrite = s3_batch._rewrite_batch

    def counted(b: Any, spec: Any, v: Any, *args: Any) -> None:
        puts.append(v.key)
        real_rewrite(b, spec, v, *args)

    s3_batch._rewrite_batch = counted  # type: ignore[assignment]
    try:
        outcomes = run_ready(fleet, ids)
    finally:
        s3_batch._rewrite_batch = real_rewrite  # type: ignore[assignment]
    assert sorted(puts) == sorted(files)  # one pass: each file once for all three
    assert outcomes.count("done") == 3
    settle(fleet, ids)
    for key, body in files.items():
        assert current(s3, bucket, key) == expected_lines(body, PEOPLE)
    public = keyring.public_keys(fleet.env["DSAR_SIGNING_KEYS_DIR"])
    with fleet.app.db.session() as session:
        batch = session.scalars(sa.select(SharedBatch)).one()
        assert batch.state == "done"
        for request_id in ids:
            assert session.get_one(Request, request_id).state == "completed"
            bundle = make_bundle(session, fleet.app, request_id)
            check = verify_bundle(bundle, public_keys=public)
            assert check.ok, [c for c in check.checks if not c.ok]
            payload = json.loads(base64.b64decode(bundle["envelope"]["payload"]))
            text = json.dumps([payload, bundle["evidence"]])
            assert all(email not in text for email in PEOPLE)
            assert '"batch_others": 2' in text and f'"batch": "{batch.id}"' in text
        bodies = [(m.request_id, m.shared_evidence) for m in
                  session.scalars(sa.select(SharedBatchMember))]
    hashes = []
    for _request_id, evidence in bodies:
        (events,) = evidence
        assert events["counts"]["batch"] == batch.id
        assert events["counts"]["batch_size"] == 3 and events["counts"]["batch_others"] == 2
        assert events["found"] == events["deleted"] == 9 and events["remaining"] == 0
        hashes.append(set(events["item_hashes"]))
    assert not (hashes[0] & hashes[1] or hashes[1] & hashes[2] or hashes[0] & hashes[2])


def test_near_deadline_forces_an_early_pass(lake: Any, s3: Any) -> None:
    fleet, bucket, files, clock = lake
    ids = submit_erasures(fleet, PEOPLE[:2])
    assert run_ready(fleet, ids) == ["waiting", "waiting"]
    with fleet.app.db.session() as session:
        run_at = session.scalars(sa.select(SharedBatch.run_at)).one()
        assert run_at == clock.now + timedelta(hours=48)
        # the third request is older: its deadline is 2 days away, inside the 3-day margin
        late = fleet.submit("erasure", PEOPLE[2])
        request = session.get_one(Request, late)
        request.due = (clock.now + timedelta(days=2)).date()
        request.extended_due = None
    runner.plan(fleet.app, late)
    ids.append(late)
    outcomes = run_ready(fleet, [late])
    assert outcomes == ["done"]  # joined, found the batch due at once, ran the pass
    assert run_ready(fleet, ids[:2]) == ["done", "done"]  # the others finish from its pass
    settle(fleet, ids)
    with fleet.app.db.session() as session:
        batch = session.scalars(sa.select(SharedBatch)).one()
        assert batch.state == "done" and batch.finished_at == clock.now
        assert all(session.get_one(Request, r).state == "completed" for r in ids)
    for key, body in files.items():
        assert current(s3, bucket, key) == expected_lines(body, PEOPLE)


def test_pass_killed_midway_resumes(lake: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    fleet, bucket, files, clock = lake
    ids = submit_erasures(fleet, PEOPLE)
    run_ready(fleet, ids)
    clock.now += timedelta(hours=49)
    from connectors import s3_batch

    real_rewrite = s3_batch._rewrite_batch
    done: list[str] = []

    def dies_after_one(b: Any, spec: Any, v: Any, *args: Any) -> None:
        if done:
            raise KeyboardInterrupt("worker killed")  # not an Exception: nothing catches it
        real_rewrite(b, spec, v, *args)
        done.append(v.key)

    monkeypatch.setattr(s3_batch, "_rewrite_batch", dies_after_one)
    first = fleet.tasks(ids[0])[0]["id"]
    with pytest.raises(KeyboardInterrupt):
        runner.run_task(fleet.app, first)
    (rewritten,) = done
    for key, body in files.items():  # each file old or new
        assert current(s3, bucket, key) == (
            expected_lines(body, PEOPLE) if key == rewritten else body)
    monkeypatch.setattr(s3_batch, "_rewrite_batch", real_rewrite)
    clock.now += timedelta(minutes=5)  # the dead worker's task and batch leases run out
    with fleet.app.db.session() as session:
        assert session.get_one(Task, first).state == TaskState.RUNNING
    outcomes = run_ready(fleet, ids)
    assert outcomes.count("done") == 3, outcomes
    settle(fleet, ids)
    with fleet.app.db.session() as session:
        batch = session.scalars(sa.select(SharedBatch)).one()
        assert batch.state == "done" and batch.attempts == 2
        for member in session.scalars(sa.select(SharedBatchMember)):
            (events,) = member.shared_evidence or []
            assert events["found"] == 9 and events["remaining"] == 0  # the first count holds
        assert all(session.get_one(Request, r).state == "completed" for r in ids)
    for key, body in files.items():
        assert current(s3, bucket, key) == expected_lines(body, PEOPLE)


def test_access_requests_never_wait(lake: Any, s3: Any) -> None:
    fleet, _bucket, _files, _clock = lake
    ids = [fleet.submit("access", PEOPLE[0])]
    runner.plan(fleet.app, ids[0])
    assert run_ready(fleet, ids) == ["done"]
    assert shared_batch.OPEN == "open"
    with fleet.app.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SharedBatch)) == 0


def test_a_request_cancelled_while_waiting_is_not_erased(lake: Any, s3: Any) -> None:
    from dsar import requests

    fleet, bucket, files, clock = lake
    ids = submit_erasures(fleet, PEOPLE)
    assert run_ready(fleet, ids) == ["waiting"] * 3
    requests.cancel(fleet.app, ids[2], "withdrawn by the person", "test")
    clock.now += timedelta(hours=49)
    assert run_ready(fleet, ids[:2]) == ["done", "done"]
    settle(fleet, ids[:2])
    with fleet.app.db.session() as session:
        (cancelled,) = session.scalars(sa.select(SharedBatchMember).where(
            SharedBatchMember.request_id == ids[2]))
        assert cancelled.shared_evidence is None
        sizes = {m.shared_evidence[0]["counts"]["batch_size"] for m in session.scalars(
            sa.select(SharedBatchMember).where(SharedBatchMember.request_id != ids[2]))}
        assert sizes == {2}
    for key, body in files.items():
        assert current(s3, bucket, key) == expected_lines(body, PEOPLE[:2])


def test_the_journal_keeps_an_earlier_attempts_count_of_a_file(lake: Any) -> None:
    from workflows.batch_journal import Journal

    fleet = lake[0]
    now = datetime.now(UTC)
    with fleet.app.db.session() as session:
        session.add(SharedBatch(id="b" * 32, system="files", state="running", created_at=now,
                                run_at=now, attempts=2))
    first, second = Journal(fleet.app, "b" * 32, 1), Journal(fleet.app, "b" * 32, 2)
    first.record("events", "events/a.jsonl", {"7": 3, "8": 1})
    first.record("events", "events/a.jsonl", {"7": 2})  # read again in the same attempt
    second.record("events", "events/a.jsonl", {"7": 5})  # the first attempt's count holds
    second.record("events", "events/b.jsonl", {"7": 1, "9": 4})
    second.record("lake", "lake/", {"9": 2})
    assert second.totals() == {"7": {"events|erase": 3}, "9": {"events|erase": 4, "lake|erase": 2}}
