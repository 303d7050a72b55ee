"""Batched erasure of shared files with real ``dsar worker`` processes (issue #25).

Three workers on PostgreSQL and RabbitMQ, twelve erasure requests whose people share six JSON
Lines files in S3 (moto's server). The requests join a batch and wait; the worker that runs the
pass is SIGKILLed after it rewrote some files and before it rewrote the rest. Throughout, every
file is either untouched or without every line of some people (never a partial rewrite); in
the end every request completes, every file is without every member's lines, and each
request's completion record verifies and says it was part of batch B with N others.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dsar.db.models import SharedBatch, SharedBatchMember
from dsar.records import keys as keyring
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from tests.s3server import ENDPOINT_ENV
from tests.workflows.fleet_helpers import Fleet, rabbit_vhost, wait_until

pytest_plugins = ["tests.s3server"]
pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

PEOPLE = [f"person{i}@example.com" for i in range(12)]
OTHERS = [f"other{i}@example.com" for i in range(30)]
FILES = 6


def body_for(part: int) -> bytes:
    return b"".join(b'{"user": {"email": "%s"}, "part": %d, "n": %d}\n' % (e.encode(), part, n)
                    for n in range(4) for e in PEOPLE + OTHERS)


def without(body: bytes, removed: list[str]) -> bytes:
    return b"".join(line for line in body.splitlines(keepends=True)
                    if not any(b'"%s"' % e.encode() in line for e in removed))


def whole(body: bytes, now: bytes) -> bool:
    """``now`` is ``body`` without every line of some people: never a partial rewrite."""
    gone = [p for p in PEOPLE if b'"%s"' % p.encode() not in now]
    return now == without(body, gone)


def test_batch_pass_with_a_worker_killed_midway(tmp_path: Path, postgres_url: str,
                                                moto_endpoint: str, s3: Any,
                                                make_bucket: Any) -> None:
    bucket = make_bucket(versioned=True)
    files = {f"events/part-{i}.jsonl": body_for(i) for i in range(FILES)}
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    datamap = {"version": 1, "systems": [{
        "name": "files", "kind": "s3", "bucket": bucket, "endpoint_url_env": ENDPOINT_ENV,
        "region": "us-east-1",
        "shared": [{"name": "events", "prefix": "events/", "format": "jsonl",
                    "match": {"email": "user.email"}}]}]}
    marks = tmp_path / "marks"
    marks.touch()
    hold = {"TEST_BATCH_HOLD": "1.5", "TEST_BATCH_MARKS": str(marks)}
    seen_bad: list[str] = []

    def look() -> dict[str, bytes]:
        now = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in files}
        seen_bad.extend(k for k, b in now.items() if not whole(files[k], b))
        return now

    with rabbit_vhost() as broker:
        fleet = Fleet(tmp_path / "fleet", postgres_url, broker, datamap, {
            ENDPOINT_ENV: moto_endpoint, "DSAR_TASK_LEASE_SECONDS": "4",
            "DSAR_SHARED_ERASURE_MAX_WAIT_HOURS": str(20 / 3600),  # 20 s after the first joins
            "DSAR_SHARED_ERASURE_MARGIN_DAYS": "3", **hold})
        try:
            workers = [fleet.start_worker(processes=1, threads=2,
                                          args=("--test-hook", "tests.workflows.batch_hold"),
                                          extra=hold) for _ in range(3)]
            ids = [fleet.submit("erasure", email) for email in PEOPLE]
            members = wait_until(lambda: fleet.scalar(sa.select(sa.func.count()).select_from(
                SharedBatchMember)) == len(ids) or None, 120, "every request to join a batch")
            assert members
            assert all(fleet.state(r) == "in_progress" for r in ids)
            assert look() == files  # nobody's lines removed before the batch runs

            def midway() -> int | None:
                look()
                lines = marks.read_text().split()
                rewritten = lines[1::2]
                return int(lines[0]) if 2 <= len(rewritten) < FILES else None

            pid = wait_until(midway, 120, "a batch pass to rewrite some files", poll=0.05)
            (victim,) = [w for w in workers if os.getpgid(pid) == w.pid]
            fleet.kill(victim)
            victim.wait(10)
            killed_at = time.monotonic()
            now = look()
            assert any(now[k] != files[k] for k in files)  # it was killed midway
            states = fleet.wait_settled(ids, timeout=300)
            assert set(states.values()) == {"completed"}, states
            print(f"\n{len(ids)} erasures completed {time.monotonic() - killed_at:.0f} s after "
                  "the batch's worker was killed")
            final = look()
            assert seen_bad == []
            assert final == {k: without(b, PEOPLE) for k, b in files.items()}

            public = keyring.public_keys(fleet.env["DSAR_SIGNING_KEYS_DIR"])
            with fleet.app.db.session() as session:
                batches = {b.id: b for b in session.scalars(sa.select(SharedBatch))}
                assert all(b.state == "done" for b in batches.values())
                assert sum(1 for b in batches.values() if b.attempts >= 2) >= 1
                by_batch: dict[str, list[str]] = {}
                for m in session.scalars(sa.select(SharedBatchMember)):
                    by_batch.setdefault(m.batch_id, []).append(m.request_id)
                assert sorted(r for rs in by_batch.values() for r in rs) == sorted(ids)
                credited = 0
                for batch_id, requests in by_batch.items():
                    for request_id in requests:
                        bundle = make_bundle(session, fleet.app, request_id)
                        check = verify_bundle(bundle, public_keys=public)
                        assert check.ok, [c for c in check.checks if not c.ok]
                        payload = json.loads(base64.b64decode(bundle["envelope"]["payload"]))
                        text = json.dumps([payload, bundle["evidence"]])
                        assert f'"batch": "{batch_id}"' in text
                        assert f'"batch_others": {len(requests) - 1}' in text
                        assert not any(p in text for p in PEOPLE)
                        (events,) = [e for e in bundle["evidence"]
                                     if e.get("collection") == "events"]
                        assert events["found"] == events["deleted"] == 4 * FILES
                        assert events["remaining"] == 0
                        killed = events["counts"].get("erased_by_earlier_attempt", 0)
                        assert events["counts"]["records_redacted"] == 4 * FILES
                        credited += killed
            assert credited > 0  # the killed pass's rewrites are in the members' evidence
        finally:
            fleet.close()
