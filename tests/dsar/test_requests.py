"""Requests on the state database (SQLite and PostgreSQL): intake, identities at rest, queries,
and the schema the migrations build."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dsar import requests
from dsar.app import App
from dsar.db.engine import state_db
from dsar.db.models import Base, IdentityRow, OutboxMessage
from dsar.errors import DsarError, InvalidInput
from dsar.identities import Identity

pytest.register_assert_rewrite("tests.state")
from tests.state import START, Backend, Clock, submit  # noqa: E402

pytest_plugins = ["tests.state"]

EMAIL = "Zelda.Quux@Example.COM"
EMAIL_NORMAL = "zelda.quux@example.com"
PHONE = "+49 30 123456"
PHONE_E164 = "+4930123456"


def events(request_id: str, app: App) -> list[tuple[str, str | None, str | None]]:
    return [(e.event, e.from_state, e.to_state) for e in requests.load(app, request_id).events]


# -- intake ------------------------------------------------------------------------------------


def test_submit_records_the_request(app: App) -> None:
    received = datetime(2025, 8, 31, 23, 30, tzinfo=timezone(timedelta(hours=2)))
    made = submit(app, "erasure", email=EMAIL, phone=PHONE, ids=("customer_id=42",),
                  regime="uk_gdpr", channel="web", received_at=received, by="alice")
    r = requests.load(app, made.id)
    assert r.id.startswith("dsr_") and len(r.id) == 16
    assert (r.kind, r.regime, r.channel, r.submitted_by) == ("erasure", "uk_gdpr", "web", "alice")
    assert r.received_at == received
    assert r.received_at.tzinfo is not None and r.received_at.utcoffset() == timedelta(0)
    assert r.created_at == START
    assert r.state == "awaiting_identity"
    assert (r.rule_id, r.rule_version, r.timezone) == ("uk-gdpr-art12-3-12a", "2025.1", "UTC")
    # UK GDPR, identity not yet confirmed: counted from receipt (2025-08-31 in UTC)
    assert r.due == date(2025, 9, 30)
    assert r.subject_commitment.startswith("sha256:")
    assert events(r.id, app) == [("submitted", None, "received"),
                                 ("identity_requested", "received", "awaiting_identity")]
    assert [(p.started_at, p.ended_at) for p in r.pauses] == [(START, None)]
    assert requests.identities_of(app, r) == [
        Identity("email", "email", EMAIL_NORMAL), Identity("id", "customer_id", "42"),
        Identity("phone", "phone", PHONE_E164)]


def test_receipt_time_defaults_to_now_and_regime_to_setting(backend: Backend) -> None:
    clock = Clock(datetime(2025, 3, 3, 12, 0, tzinfo=UTC))
    app = backend.make_app(clock, DSAR_DEFAULT_REGIME="ccpa")
    r = requests.load(app, submit(app, identity_method="account-login").id)
    assert r.received_at == clock.at
    assert r.regime == "ccpa"
    assert r.due == date(2025, 3, 3) + timedelta(days=45)
    assert r.acknowledge_by == date(2025, 3, 17)  # 10 business days


def test_verified_at_submit_starts_work(app: App) -> None:
    r = requests.load(app, submit(app, "export", identity_method=" email-link ").id)
    assert r.state == "in_progress"
    assert (r.identity_method, r.identity_verified_at) == ("email-link", START)
    assert r.pauses == []
    assert events(r.id, app) == [
        ("submitted", None, "received"), ("identity_verified", "received", "verified"),
        ("work_started", "verified", "in_progress")]
    assert r.events[1].reason == "method: email-link"
    with app.db.session() as session:
        sent = session.scalars(sa.select(OutboxMessage)).all()
        assert [(m.actor, m.args, m.queue) for m in sent] == [("plan_request", [r.id], "control")]


def test_identities_not_in_the_database_in_clear(backend: Backend, app: App) -> None:
    made = submit(app, email=EMAIL, phone=PHONE, ids=("customer_id=42",))
    r = requests.load(app, made.id)
    assert [row.kind for row in r.identities] == ["email", "id", "phone"]
    for row in r.identities:
        value = {"email": EMAIL_NORMAL, "phone": PHONE_E164, "id": "42"}[row.kind]
        assert row.lookup_hash == app.keys.lookup_hash(row.name, value)
    needles = [EMAIL, EMAIL_NORMAL, "zelda", "Zelda", PHONE, PHONE_E164, "4930123456",
               "30123456"]
    seen = 0
    for table, value in backend.all_values():
        seen += 1
        if isinstance(value, memoryview):
            value = value.tobytes()
        if isinstance(value, bytes):
            blob = value
        elif isinstance(value, dict | list):
            blob = json.dumps(value).encode()
        else:
            blob = str(value).encode()
        for needle in needles:
            assert needle.encode() not in blob.lower() and needle.encode() not in blob, (
                f"{needle!r} found in table {table}")
    assert seen > 30
    if backend.name == "sqlite":
        raw = backend.file_bytes()
        assert made.id.encode() in raw  # the scan does see the rows
        for needle in needles:
            assert needle.encode() not in raw


def test_identity_cannot_be_read_under_another_key(backend: Backend, app: App) -> None:
    made = submit(app, email=EMAIL)
    other = backend.make_app(DSAR_MASTER_KEY="AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
    with pytest.raises(DsarError, match="could not be decrypted"):
        requests.identities_of(other, requests.load(other, made.id))


def test_lookup_by_hash(app: App) -> None:
    made = submit(app, email=EMAIL)
    submit(app, email="someone@example.com")
    with app.db.session() as session:
        found = session.scalars(sa.select(IdentityRow.request_id).where(
            IdentityRow.lookup_hash == app.keys.lookup_hash("email", EMAIL_NORMAL))).all()
    assert found == [made.id]


def test_logs_name_requests_by_id_only(app: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    made = submit(app, email=EMAIL, phone=PHONE)
    requests.confirm_identity(app, made.id, "email-link", "bob")
    requests.cancel(app, made.id, "withdrawn", "bob")
    text = "\n".join(r.getMessage() for r in caplog.records)
    for needle in (EMAIL_NORMAL, "zelda", PHONE_E164, "30123456"):
        assert needle not in text.lower()


@pytest.mark.parametrize(("change", "words"), [
    ({"kind": "delete"}, "unknown request kind 'delete'"),
    ({"channel": "fax"}, "unknown channel 'fax'"),
    ({"regime": "hipaa"}, "unknown regime 'hipaa'"),
    ({"received_at": START + timedelta(hours=1)}, "is in the future"),
    ({"received_at": datetime(2025, 8, 1, 9, 0)}, "has no time zone"),
    ({"received_at": datetime(1999, 12, 31, 23, 0, tzinfo=UTC)}, "is before 2000-01-01"),
    ({"identities": []}, "at least one identity"),
    ({"identity_method": "  "}, "verification method is empty"),
])
def test_bad_submission_refused_before_writing(backend: Backend, app: App, change: dict,
                                               words: str) -> None:
    submit(app)
    before = backend.row_counts()
    args = {"kind": "access", "identities": [Identity("email", "email", EMAIL_NORMAL)],
            "submitted_by": "alice", **change}
    with pytest.raises(InvalidInput) as err:
        requests.submit(app, **args)
    assert words in err.value.problem
    assert err.value.fix
    assert backend.row_counts() == before


def test_receipt_within_clock_skew_accepted(app: App) -> None:
    r = submit(app, received_at=START + timedelta(minutes=4))
    assert r.received_at == START + timedelta(minutes=4)


# -- queries -----------------------------------------------------------------------------------


def test_list_soonest_due_first_and_filters(app: App, clock: Clock) -> None:
    clock.set(datetime(2025, 10, 20, 9, 0, tzinfo=UTC))
    received = lambda d: datetime(2025, 9, d, 9, 0, tzinfo=UTC)  # noqa: E731
    late = submit(app, "access", identity_method="x", received_at=received(1))  # due 10-01
    soon = submit(app, "erasure", identity_method="x", received_at=received(22))  # due 10-22
    later = submit(app, "export", regime="ccpa", identity_method="x",
                   received_at=received(15))  # due 10-30
    waiting = submit(app, "access", received_at=received(25))  # due 10-27, awaiting identity
    closed = submit(app, "access", identity_method="x", received_at=received(2))  # due 10-02
    requests.cancel(app, closed.id, "withdrawn", "bob")
    requests.extend(app, soon.id, "many systems", "bob")  # due 12-22

    def ids(**filters: object) -> list[str]:
        return [r.id for r in requests.list_requests(app, **filters)]

    assert ids() == [late.id, closed.id, waiting.id, later.id, soon.id]
    assert ids(overdue=True) == [late.id]
    assert ids(due_within=timedelta(days=7)) == [late.id, waiting.id]
    assert ids(due_within=timedelta(days=10)) == [late.id, waiting.id, later.id]
    assert ids(states=["awaiting_identity"]) == [waiting.id]
    assert ids(states=["cancelled", "awaiting_identity"]) == [closed.id, waiting.id]
    assert ids(kinds=["erasure", "export"]) == [later.id, soon.id]
    assert ids(kinds=["access"], overdue=True) == [late.id]


def test_load_unknown_request(app: App) -> None:
    with pytest.raises(DsarError) as err:
        requests.load(app, "dsr_000000000000")
    assert err.value.exit_code == 3
    assert err.value.one_line() == ("no request with id 'dsr_000000000000'; see `dsar list` for "
                                    "the ids")


# -- schema ------------------------------------------------------------------------------------


def test_migrated_schema_equals_models(app: App) -> None:
    with app.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert app.db.current_revision() == app.db.head_revision()


def test_sqlite_upgrades_itself(tmp_path: object) -> None:
    app = App.from_env({"DSAR_DATA_DIR": str(tmp_path)})
    assert app.db.dialect == "sqlite"
    assert app.db.current_revision() == app.db.head_revision()
    assert (app.settings.data_dir / "master.key").exists()


def test_postgres_needs_db_upgrade(postgres_url: str, tmp_path: object) -> None:
    env = {"DSAR_DATA_DIR": str(tmp_path), "DSAR_DATABASE_URL": postgres_url}
    with pytest.raises(DsarError) as err:
        App.from_env(env)
    assert "run `dsar db upgrade`" in err.value.one_line()
    app = App.from_env(env, migrate=False)
    app.db.upgrade()
    app = App.from_env(env)
    with app.db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert sa.inspect(app.db.engine).get_table_names() != []
    state_db(postgres_url).dispose()
