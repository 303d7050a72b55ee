"""Messages that go out by themselves: completion, erasure confirmation, refusal, extension;
intake in one transaction; unsent messages queued again; the expiry of unverified requests."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from dsar.db.models import MessageRow, OutboxMessage, Request, Verification
from dsar.identities import parse_identities
from dsar.mail import verification as verify
from dsar.mail.queue import requeue_unsent
from interfaces.portal import intake
from tests.interfaces.portal.conftest import Inbox, deliver
from tests.interfaces.portal.test_portal_flow import csrf, post_form
from tests.workflows.fleet_helpers import CUSTOMER, Fleet, redis_db, several_chinooks, wait_until


class Clock:
    def __init__(self, app: App) -> None:
        self.now = app.now()

    def __call__(self):
        return self.now


def kinds_queued(app: App, request_id: str) -> list[str]:
    with app.db.session() as session:
        return sorted(session.scalars(sa.select(MessageRow.kind)
                                      .where(MessageRow.request_id == request_id)))


def test_reject_and_extend_tell_the_person_with_reasons(app: App, inbox: Inbox) -> None:
    made = requests.submit(app, "access", parse_identities(["ann@example.org"]),
                           submitted_by="test")
    requests.extend(app, made.request.id, "the data sits in many archives", "privacy team")
    assert kinds_queued(app, made.request.id) == ["extension"]
    requests.reject(app, made.request.id, "we hold no account for this address", "privacy team",
                    ground="other")
    assert kinds_queued(app, made.request.id) == ["extension", "refusal"]
    assert deliver(app) == 2 and deliver(app) == 0
    extension, refusal = (inbox.text(m) for m in inbox.messages)
    assert "the data sits in many archives" in extension
    assert "we hold no account for this address" in refusal
    assert "right to complain" in refusal and "Art. 12(4)" in refusal
    events = [e.event for e in requests.load(app, made.request.id).events]
    assert events.count("message_sent") == 2


def test_no_message_for_a_request_without_an_email(app: App) -> None:
    made = requests.submit(app, "access", parse_identities(ids=["customer_id=42"]),
                           submitted_by="test")
    requests.reject(app, made.request.id, "no such customer", "privacy team")
    assert kinds_queued(app, made.request.id) == []


def test_intake_writes_request_verification_and_email_in_one_transaction(
        client: TestClient, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(intake, "queue_message", crash)
    with pytest.raises(RuntimeError):
        post_form(client, {"kind": "access", "email": "crash@example.org"})
    with app.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Request)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(Verification)) == 0


def test_a_message_whose_retries_ran_out_is_queued_again_and_sent_once(
        app: App, inbox: Inbox) -> None:
    clock = Clock(app)
    app.clock = clock
    made = requests.submit(app, "access", parse_identities(["bo@example.org"]),
                           submitted_by="test", identity_method="test")
    requests.extend(app, made.request.id, "many archives", "privacy team")
    assert requeue_unsent(app) == 0  # queued a moment ago: its retries are still running
    clock.now += timedelta(hours=7)
    with app.db.session() as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    assert requeue_unsent(app) == 1 and requeue_unsent(app) == 0
    with app.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == before + 1
    assert deliver(app) == 1 and len(inbox.messages) == 1
    clock.now += timedelta(hours=7)
    assert requeue_unsent(app) == 0  # sent: never again
    events = requests.load(app, made.request.id).events
    [requeued] = [e for e in events if e.event == "message_requeued"]
    assert requeued.reason is not None and "extension" in requeued.reason
    assert "bo@" not in requeued.reason


def test_unverified_requests_expire_with_their_reason(
        client: TestClient, app: App, inbox: Inbox) -> None:
    clock = Clock(app)
    app.clock = clock
    post_form(client, {"kind": "erasure", "email": "late@example.org"})
    deliver(app)
    link = re.search(r"https://portal.example(/verify/\S+)",  # type: ignore[union-attr]
                     inbox.text(inbox.messages[-1])).group(1)
    [made] = requests.list_requests(app)
    clock.now += timedelta(hours=app.settings.verify_hours - 1)
    assert verify.expire_unverified(app) == []
    clock.now += timedelta(hours=2)
    assert verify.expire_unverified(app) == [made.id]
    assert verify.expire_unverified(app) == []
    closed = requests.load(app, made.id)
    assert closed.state == "cancelled"
    assert f"not confirmed within {app.settings.verify_hours} hours" in closed.closing_reason
    late = client.post(link, data={"csrf": csrf(client)})
    assert late.status_code == 400 and "has expired" in late.text
    assert requests.load(app, made.id).state == "cancelled"


@pytest.fixture
def redis_fleet(postgres_url: str, tmp_path: Path, chinook_dir: Path, inbox: Inbox,
                monkeypatch: pytest.MonkeyPatch):
    datamap, env = several_chinooks(chinook_dir, tmp_path)
    datamap["systems"] = datamap["systems"][:1]
    with redis_db() as broker_url:
        fleet = Fleet(tmp_path / "fleet", postgres_url, broker_url, datamap,
                      {**env, "DSAR_SMTP_URL": inbox.url,  # type: ignore[attr-defined]
                       "DSAR_MAIL_FROM": "privacy@chinook.example",
                       "DSAR_PUBLIC_URL": "https://portal.example"})
        fleet.apply_env(monkeypatch)
        yield fleet
        fleet.close()


def test_completion_and_erasure_emails_go_out_through_a_real_broker(
        redis_fleet: Fleet, inbox: Inbox) -> None:
    from interfaces.portal import make_portal
    from workflows.runtime import InProcessFleet

    app = redis_fleet.app
    with InProcessFleet(app, threads=2, watch_interval=3600):
        access = redis_fleet.submit("access")
        erasure_of = redis_fleet.submit("erasure", "leonekohler@surfeu.de")
        assert redis_fleet.wait_settled([access, erasure_of]) == {
            access: "completed", erasure_of: "completed"}
        wait_until(lambda: len(inbox.messages) == 2, 30, "the two emails")
    mails = {m["Subject"].split(" (")[0]: m for m in inbox.messages}
    mail, erased = mails["Your data is ready"], mails["Your data has been erased"]
    assert mail["To"] == CUSTOMER and erased["To"] == "leonekohler@surfeu.de"
    assert re.search(r"Some data we must keep|We kept nothing about you", inbox.text(erased))
    url = re.search(r"https://portal.example(/download/\S+)",  # type: ignore[union-attr]
                    inbox.text(mail)).group(1)
    with TestClient(make_portal(app, sweep_expired=False),
                    base_url="https://portal.example") as client:
        landing = client.get(url)
        assert landing.status_code == 200 and "What is inside" in landing.text
    events = [e.event for e in requests.load(app, access).events]
    assert events.count("message_sent") == 1 and "link_issued" in events
