"""Batched erasure of a Delta Lake table through the fleet: the members' rows go in one
committed delete, each record names its batch and what older versions still hold."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from deltalake import DeltaTable, write_deltalake

from dsar.db.models import Request, SharedBatch
from dsar.records import keys as keyring
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from tests.s3server import ENDPOINT_ENV
from tests.workflows.fleet_helpers import Fleet
from tests.workflows.test_shared_batch import Clock, run_ready, settle, submit_erasures

pytest_plugins = ["tests.s3server"]
pytestmark = pytest.mark.postgres

PEOPLE = ["ann@example.com", "bob@example.com", "cat@example.com"]
OTHERS = [f"other{i}@example.com" for i in range(10)]


def test_three_erasures_one_delete_on_a_delta_table(
        postgres_url: str, tmp_path: Path, moto_endpoint: str, make_bucket: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = make_bucket()
    options = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ALLOW_HTTP": "true",
               "AWS_REGION": "us-east-1", "conditional_put": "etag"}
    uri = f"s3://{bucket}/lake/events"
    emails = [e.upper() if n % 2 else e for n, e in enumerate((PEOPLE + OTHERS) * 2)]
    write_deltalake(uri, pa.table({"email": emails, "n": list(range(len(emails)))}),
                    storage_options=options)
    datamap = {"version": 1, "systems": [{
        "name": "files", "kind": "s3", "bucket": bucket, "endpoint_url_env": ENDPOINT_ENV,
        "region": "us-east-1",
        "shared": [{"name": "events", "prefix": "lake/events/", "format": "delta",
                    "match": {"email": "email"}}]}]}
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap,
                  {ENDPOINT_ENV: moto_endpoint, "DSAR_SHARED_ERASURE_MAX_WAIT_HOURS": "48"})
    fleet.apply_env(monkeypatch)
    clock = Clock()
    fleet.app.clock = clock
    try:
        ids = submit_erasures(fleet, PEOPLE)
        assert run_ready(fleet, ids) == ["waiting"] * 3
        assert DeltaTable(uri, storage_options=options).version() == 0
        clock.now += timedelta(hours=49)
        assert run_ready(fleet, ids).count("done") == 3
        settle(fleet, ids)
        table = DeltaTable(uri, storage_options=options)
        assert table.version() == 1  # one delete for the three of them
        assert sorted(table.to_pyarrow_table()["email"].to_pylist()) == sorted(
            e for e in emails if e.lower() not in PEOPLE)
        public = keyring.public_keys(fleet.env["DSAR_SIGNING_KEYS_DIR"])
        with fleet.app.db.session() as session:
            batch = session.scalars(sa.select(SharedBatch)).one()
            for request_id in ids:
                assert session.get_one(Request, request_id).state == "completed"
                bundle = make_bundle(session, fleet.app, request_id)
                assert verify_bundle(bundle, public_keys=public).ok
                (events,) = [e for e in bundle["evidence"] if e.get("collection") == "events"]
                assert events["found"] == events["deleted"] == 2 and events["remaining"] == 0
                assert events["counts"]["batch"] == batch.id
                assert events["counts"]["batch_others"] == 2
                assert events["counts"]["table_version"] == 1
                assert events["retained"] == 2 and "versions 0" in events["retained_ground"]
                payload = base64.b64decode(bundle["envelope"]["payload"]).decode()
                assert not any(p in json.dumps([payload, bundle["evidence"]]).lower()
                               for p in PEOPLE)
    finally:
        fleet.close()
