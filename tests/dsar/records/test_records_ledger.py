"""The ledger: serialised appends, checkpoints, proofs and the export, on both databases."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_records_record_setup import BACKENDS, complete_request, make_app

from dsar.app import App
from dsar.db.models import Checkpoint, LedgerEntry
from dsar.errors import InvalidInput
from dsar.records import keys, ledger, merkle
from dsar.records.checkpoint import parse_and_verify_checkpoint

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    yield from make_app(request.param, tmp_path)


def _public_key(app: App):  # type: ignore[no-untyped-def]
    return keys.active_signer(app.settings.signing_keys_dir).public_key


def test_appends_get_consecutive_indexes_and_leaf_hashes(app: App) -> None:
    with app.db.session() as session:
        assert ledger.size(session) == 0
        assert [ledger.append(session, b"leaf %d" % i, NOW) for i in range(5)] == list(range(5))
        assert ledger.leaf_hashes(session) == [merkle.leaf_hash(b"leaf %d" % i) for i in range(5)]
        assert ledger.root(session) == merkle.root([b"leaf %d" % i for i in range(5)])
        with pytest.raises(InvalidInput):
            ledger.append(session, b"", NOW)


def test_issue_checkpoint_signs_the_current_tree_and_is_a_no_op_when_current(app: App) -> None:
    with app.db.session() as session:
        for i in range(3):
            ledger.append(session, b"x%d" % i, NOW)
        first = ledger.issue_checkpoint(session, app)
        again = ledger.issue_checkpoint(session, app)
        assert again is first or again.size == first.size
        assert session.scalar(sa.select(sa.func.count()).select_from(Checkpoint)) == 1
        size, root = parse_and_verify_checkpoint(first.note, app.settings.ledger_origin,
                                                 _public_key(app))
        assert (size, root) == (3, ledger.root(session)) == (first.size, first.root)
        ledger.append(session, b"x3", NOW)
        second = ledger.issue_checkpoint(session, app)
        assert second.size == 4
        proof = ledger.consistency_proof(session, 3, 4)
        assert merkle.verify_consistency(3, 4, first.root, second.root, proof)
        assert ledger.checkpoint_covering(session, 2).size == 3
        assert ledger.checkpoint_covering(session, 3).size == 4
        assert ledger.checkpoint_covering(session, 4) is None


def test_a_checkpoint_hashes_only_the_entries_since_the_last_one(app: App) -> None:
    read: list[str] = []

    def count_reads(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
        if "leaf_hash" in statement and statement.lstrip().upper().startswith("SELECT"):
            read.append(statement)

    with app.db.session() as session:
        for i in range(5):
            ledger.append(session, b"y%d" % i, NOW)
        ledger.issue_checkpoint(session, app)
        # a checkpoint from before frontiers were stored: the next one hashes everything once
        session.scalars(sa.select(Checkpoint)).one().frontier = None
        session.flush()
        for i in range(5, 7):
            ledger.append(session, b"y%d" % i, NOW)
        full = ledger.issue_checkpoint(session, app)
        assert full.root == merkle.root_from_hashes(ledger.leaf_hashes(session))
        for i in range(7, 10):
            ledger.append(session, b"y%d" % i, NOW)
        sa.event.listen(app.db.engine, "before_cursor_execute", count_reads)
        try:
            latest = ledger.issue_checkpoint(session, app)
        finally:
            sa.event.remove(app.db.engine, "before_cursor_execute", count_reads)
        hashes = ledger.leaf_hashes(session)
        assert latest.size == 10 and latest.root == merkle.root_from_hashes(hashes)
        assert len(read) == 1 and ">=" in read[0]  # the three new entries only
        assert latest.frontier == b"".join(merkle.extend_frontier([], 0, hashes))


def test_concurrent_appends_never_collide(app: App) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(8):
                with app.db.session() as session:
                    ledger.append(session, f"w{n}-{i}".encode(), NOW)
                    ledger.issue_checkpoint(session, app)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.db.session() as session:
        indexes = list(session.scalars(sa.select(LedgerEntry.index).order_by(LedgerEntry.index)))
        assert indexes == list(range(32))
        assert ledger.latest_checkpoint(session).size == 32


def test_export_writes_entries_and_checkpoints(app: App, tmp_path: Path) -> None:
    complete_request(app)
    complete_request(app)
    out = tmp_path / "ledger.json"
    with app.db.session() as session:
        ledger.issue_checkpoint(session, app)
        summary = ledger.export_ledger(session, out)
        expected_root = ledger.root(session).hex()
    data = json.loads(out.read_text())
    assert data["format"] == "dsar-ledger/v1" and data["size"] == 2 == summary["size"]
    assert summary["root"] == expected_root
    exported = ledger.parse_export(data)
    assert merkle.root_from_hashes(exported.hashes).hex() == expected_root
    assert [size for size, _ in exported.checkpoints] == [2]
    assert json.loads(exported.leaves[0])["payloadType"] == "application/vnd.in-toto+json"


def test_parse_export_rejects_gaps_and_disorder() -> None:
    good = {"format": "dsar-ledger/v1", "size": 1, "checkpoints": [],
            "entries": [{"index": 0, "leaf": "YQ=="}]}
    assert ledger.parse_export(good).leaves == [b"a"]
    for bad in ({**good, "size": 2}, {**good, "entries": [{"index": 1, "leaf": "YQ=="}]},
                {**good, "entries": [{"index": 0, "leaf": "!!"}]}, {**good, "format": "x"},
                {**good, "checkpoints": [{"size": 1, "note": "n"}, {"size": 1, "note": "n"}]}):
        with pytest.raises(InvalidInput):
            ledger.parse_export(bad)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8))
def test_every_ledger_proof_verifies(batches: list[int]) -> None:
    """Append records in batches, checkpoint after each: every record's inclusion proof at
    every checkpoint, and every checkpoint pair's consistency proof, verify."""
    with tempfile.TemporaryDirectory() as tmp:
        for app in make_app("sqlite", Path(tmp)):
            with app.db.session() as session:
                n = 0
                for batch in batches:
                    for _ in range(batch):
                        ledger.append(session, b'{"record":%d}' % n, NOW)
                        n += 1
                    ledger.issue_checkpoint(session, app)
                checkpoints = list(session.scalars(sa.select(Checkpoint)
                                                   .order_by(Checkpoint.size)))
                hashes = ledger.leaf_hashes(session)
                for cp in checkpoints:
                    assert cp.root == merkle.root_from_hashes(hashes[:cp.size])
                    for index in range(cp.size):
                        proof = ledger.inclusion_proof(session, index, cp.size)
                        assert merkle.verify_inclusion(index, cp.size, hashes[index], proof,
                                                       cp.root)
                for i, old in enumerate(checkpoints):
                    for new in checkpoints[i:]:
                        proof = ledger.consistency_proof(session, old.size, new.size)
                        assert merkle.verify_consistency(old.size, new.size, old.root,
                                                         new.root, proof)
