"""Rejected and cancelled requests get a completion record too: at once when a signing key is
at hand, else from the fleet's periodic work once one is."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from dsar import requests
from dsar.app import App
from dsar.db.models import CompletionRecord
from dsar.identities import parse_identities
from dsar.records import keys as keyring
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from workflows.housekeeping import sign_closed_requests


def _record_state(app: App, request_id: str) -> str | None:
    with app.db.session() as session:
        if session.get(CompletionRecord, request_id) is None:
            return None
        bundle = make_bundle(session, app, request_id)
    result = verify_bundle(bundle, public_keys=keyring.public_keys(app.settings.signing_keys_dir))
    assert result.ok, result.failed()
    import base64
    import json

    statement = json.loads(base64.b64decode(bundle["envelope"]["payload"]))
    return statement["predicate"]["result"]["state"]


def test_a_refusal_is_signed_with_its_reason(tmp_path: Path) -> None:
    app = App.from_env({"DSAR_DATA_DIR": str(tmp_path)})
    made = requests.submit(app, "erasure", parse_identities(["someone@example.org"]),
                           submitted_by="t")
    requests.reject(app, made.request.id, "third request this month", "t", "excessive")
    assert _record_state(app, made.request.id) == "rejected"


def test_closed_without_a_key_is_signed_later(tmp_path: Path, postgres_url: str) -> None:
    env = {"DSAR_DATA_DIR": str(tmp_path), "DSAR_DATABASE_URL": postgres_url}
    app = App.from_env(env, migrate=False)
    app.db.upgrade()
    made = requests.submit(app, "access", parse_identities(["someone@example.org"]),
                           submitted_by="t")
    requests.cancel(app, made.request.id, "withdrawn by the subject", "t")
    assert _record_state(app, made.request.id) is None
    assert sign_closed_requests(app) == 0  # still no key: nothing to sign with
    keyring.generate(app.settings.signing_keys_dir)
    assert sign_closed_requests(app) == 1
    assert sign_closed_requests(app) == 0
    assert _record_state(app, made.request.id) == "cancelled"
    with app.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CompletionRecord)) == 1
    app.db.dispose()


def test_identities_are_forgotten_after_retention_and_the_record_still_verifies(
        tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from dsar.db.models import IdentityRow
    from workflows.housekeeping import forget_identities

    app = App.from_env({"DSAR_DATA_DIR": str(tmp_path), "DSAR_IDENTITY_RETENTION_DAYS": "730"})
    start = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
    app.clock = lambda: start
    made = requests.submit(app, "erasure", parse_identities(["someone@example.org"],
                                                            ["+4930123456"]), submitted_by="t")
    kept = requests.submit(app, "access", parse_identities(["other@example.org"]),
                           submitted_by="t")
    requests.reject(app, made.request.id, "duplicate of an open request", "t")
    app.clock = lambda: start + timedelta(days=729)
    assert forget_identities(app) == 0
    app.clock = lambda: start + timedelta(days=731)
    assert forget_identities(app) == 2
    with app.db.session() as session:
        left = session.scalars(sa.select(IdentityRow.request_id)).all()
    assert left == [kept.request.id]  # an open request keeps its identities
    assert _record_state(app, made.request.id) == "rejected"
