"""build_record: content, signature, idempotency, keys, and no personal data."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_records_record_setup import BACKENDS, complete_request, count_rows, make_app

from dsar.app import App
from dsar.db.models import CompletionRecord, LedgerEntry, Request
from dsar.errors import NotFound
from dsar.records import keys, merkle
from dsar.records.canonical import canonical_json
from dsar.records.dsse import verify_statement
from dsar.records.record import PREDICATE_TYPE, build_record, predicate_digest


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    yield from make_app(request.param, tmp_path)


def _statement(app: App, request_id: str) -> dict[str, Any]:
    with app.db.session() as session:
        record = session.get(CompletionRecord, request_id)
        assert record is not None
        envelope = record.envelope
    return verify_statement(envelope, keys.public_keys(app.settings.signing_keys_dir))


def test_record_is_a_signed_in_toto_statement_about_the_request(app: App) -> None:
    request_id = complete_request(app, pause_first=True, extend=True, export_bundle=True)
    statement = _statement(app, request_id)
    predicate = statement["predicate"]
    assert statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [{"name": f"dsar-request:{request_id}",
                                     "digest": {"sha256": predicate_digest(predicate)}}]
    assert predicate["request"] == {"id": request_id, "kind": "erasure", "regime": "gdpr",
                                    "channel": "cli"}
    assert predicate["rule"]["id"] == "gdpr-art12-3"
    assert len(predicate["timeline"]["paused"]) == 1
    assert predicate["deadline"]["extension_reason"] == "complex request: many systems"
    assert predicate["deadline"]["effective_due"] == predicate["deadline"]["extended_due"]
    assert predicate["deadline"]["on_time"] is True
    assert predicate["export_bundle"] == {"sha256": "ab" * 32, "size": 1234}
    assert [s["system"] for s in predicate["systems"]] == ["crm", "s3"]
    crm = predicate["systems"][0]
    assert [c["collection"] for c in crm["collections"]] == ["customers", "orders"]
    assert crm["collections"][0]["retained_ground"] == "Art. 17(3)(b)"
    assert crm["outcome"] == "ok" and crm["tasks"][0]["state"] == "done"
    assert predicate["evidence"]["leaves"] == 3
    assert predicate["subject_commitment"].startswith("sha256:")


def test_record_is_stored_and_appended_to_the_ledger_in_the_same_transaction(app: App) -> None:
    first = complete_request(app)
    second = complete_request(app)
    with app.db.session() as session:
        records = {r.request_id: r for r in session.scalars(sa.select(CompletionRecord))}
        entries = list(session.scalars(sa.select(LedgerEntry).order_by(LedgerEntry.index)))
    assert [records[first].ledger_index, records[second].ledger_index] == [0, 1]
    for entry in entries:
        assert entry.leaf_hash == merkle.leaf_hash(entry.leaf)
    assert entries[0].leaf == canonical_json(records[first].envelope)


def test_build_record_is_idempotent(app: App) -> None:
    request_id = complete_request(app)
    with app.db.session() as session:
        stored = session.get(CompletionRecord, request_id)
        assert stored is not None
        request = session.get(Request, request_id)
        assert request is not None
        again = build_record(session, app, request)
    assert again == stored.envelope
    assert count_rows(app, "ledger_entries") == count_rows(app, "completion_records") == 1


def test_late_completion_is_recorded_as_not_on_time(app: App) -> None:
    request_id = complete_request(app, days=60)
    deadline = _statement(app, request_id)["predicate"]["deadline"]
    assert deadline["on_time"] is False
    assert deadline["completed_local_date"] > deadline["effective_due"]


def test_record_holds_no_personal_data(app: App) -> None:
    request_id = complete_request(app)
    with app.db.session() as session:
        leaf = session.scalars(sa.select(LedgerEntry.leaf)).one()
    payload = base64.b64decode(json.loads(leaf)["payload"])
    for text in (leaf, payload):
        assert b"jane" not in text.lower() and b"example.com" not in text
    assert request_id.encode() in payload


def test_a_failed_task_marks_its_system_failed(app: App) -> None:
    items = (("crm", "customers", "erase", {"outcome": "failed", "error_code": "timeout"}),)
    request_id = complete_request(app, items=items)
    system = _statement(app, request_id)["predicate"]["systems"][0]
    assert system["outcome"] == "failed"
    assert system["collections"][0]["error_code"] == "timeout"


@pytest.mark.parametrize("backend", BACKENDS)
def test_signing_key_is_generated_only_in_the_embedded_default(backend: str,
                                                               tmp_path: Path) -> None:
    for app in make_app(backend, tmp_path, generate_key=False):
        if backend == "sqlite":
            complete_request(app)
            assert keys.active_keyid(app.settings.signing_keys_dir)
        else:
            with pytest.raises(NotFound, match="no signing key") as err:
                complete_request(app)
            assert "dsar keys generate" in (err.value.fix or "")
            assert count_rows(app, "ledger_entries") == 0
