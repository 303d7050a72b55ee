"""The staff area: sign-in (argon2 hashes, lockout, rate limit, idle timeout), no page and no
action without a session or without the CSRF token, the queue's order and filters, and every
action through the same functions as the CLI, with their checks and audit events."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

from cli import main
from dsar import requests
from dsar.app import App
from dsar.db.models import AuditEvent, StaffSession, StaffUser
from dsar.identities import Identity
from interfaces.portal import staff_accounts as accounts
from interfaces.portal.guards import CSRF_COOKIE

PASSWORD = "correct horse battery staple"
EMAIL = "henri.gilles.1@example.org"


def submit(app: App, kind: str = "access", verified: bool = False,
           channel: str = "cli") -> str:
    made = requests.submit(app, kind, [Identity("email", "email", EMAIL)], channel=channel,
                           submitted_by="test",
                           identity_method="email-link" if verified else None)
    return made.request.id


def csrf(client: TestClient, path: str = "/staff/login") -> str:
    client.get(path)
    return client.cookies[CSRF_COOKIE]


def sign_in(client: TestClient, app: App, name: str = "alice") -> None:
    accounts.add_user(app, name, PASSWORD)
    answer = client.post("/staff/login", data={"name": name, "password": PASSWORD,
                                               "csrf": csrf(client)})
    assert answer.status_code == 303 and answer.headers["location"] == "/staff"


def post(client: TestClient, path: str, **fields: str) -> object:
    return client.post(path, data={**fields, "csrf": client.cookies[CSRF_COOKIE]})


def staff_events(app: App) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.event, e.request_id) for e in accounts.events(app)]


def request_events(app: App, request_id: str) -> list[tuple[str, str]]:
    return [(e.actor, e.event) for e in requests.load(app, request_id).events]


def test_passwords_are_argon2_hashes_and_the_cookie_is_strict(client: TestClient,
                                                              app: App) -> None:
    accounts.add_user(app, "alice", PASSWORD)
    with app.db.session() as session:
        stored = session.get(StaffUser, "alice").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    answer = client.post("/staff/login", data={"name": "alice", "password": PASSWORD,
                                               "csrf": csrf(client)})
    cookie = answer.headers["set-cookie"].lower()
    assert "dsar_staff=" in cookie and "httponly" in cookie and "secure" in cookie
    assert "samesite=strict" in cookie and "path=/staff" in cookie
    with app.db.session() as session:  # only the token's hash is kept
        token = client.cookies["dsar_staff"]
        assert session.scalars(sa.select(StaffSession.token_hash)).one() == \
            accounts.token_hash(token) != token
    assert staff_events(app)[-1] == ("alice", "signed_in", None)


def test_no_page_and_no_action_without_a_session(client: TestClient, app: App) -> None:
    request_id = submit(app)
    for path in ("/staff", f"/staff/requests/{request_id}"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/staff/login"
    answer = client.post(f"/staff/requests/{request_id}/cancel",
                         data={"reason": "x", "csrf": csrf(client)})
    assert answer.status_code == 303 and answer.headers["location"] == "/staff/login"
    assert requests.load(app, request_id).state == "awaiting_identity"
    client.cookies.set("dsar_staff", "forged-token", domain="portal.example")
    assert client.get("/staff").status_code == 303


def test_wrong_password_locks_after_five_failures_all_audited(client: TestClient,
                                                               app: App) -> None:
    accounts.add_user(app, "alice", PASSWORD)
    token = csrf(client)
    for _ in range(accounts.MAX_FAILURES):
        answer = client.post("/staff/login", data={"name": "alice", "password": "wrong" * 3,
                                                   "csrf": token})
        assert answer.status_code == 401 and "Wrong name or password" in answer.text
    answer = client.post("/staff/login", data={"name": "alice", "password": PASSWORD,
                                               "csrf": token})
    assert answer.status_code == 401 and "locked" in answer.text
    assert "dsar_staff" not in client.cookies
    events = [event for _, event, _ in staff_events(app)]
    assert events.count("sign_in_failed") == 5 and "account_locked" in events
    assert events[-1] == "sign_in_refused"
    client.post("/staff/login", data={"name": "nobody", "password": "x", "csrf": token})
    assert staff_events(app)[-1] == ("nobody", "sign_in_failed", None)
    later = app.now() + accounts.LOCK_FOR + timedelta(seconds=1)
    app.clock = lambda: later
    answer = client.post("/staff/login", data={"name": "alice", "password": PASSWORD,
                                               "csrf": token})
    assert answer.status_code == 303


def test_sign_in_is_rate_limited_per_address(client: TestClient, app: App) -> None:
    token = csrf(client)
    codes = [client.post("/staff/login", data={"name": f"u{i}", "password": "x",
                                               "csrf": token}).status_code for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]


def test_sign_in_needs_the_csrf_token(client: TestClient, app: App) -> None:
    accounts.add_user(app, "alice", PASSWORD)
    csrf(client)
    answer = client.post("/staff/login", data={"name": "alice", "password": PASSWORD,
                                               "csrf": "x" * 43})
    assert answer.status_code == 403 and "dsar_staff" not in client.cookies
    assert staff_events(app)[-1][1] == "user_added"  # not even an attempt


def test_idle_session_ends_and_sign_out_ends_it(client: TestClient, app: App) -> None:
    sign_in(client, app)
    assert client.get("/staff").status_code == 200
    start = app.now()
    app.clock = lambda: start + accounts.IDLE_TIMEOUT - timedelta(minutes=1)
    assert client.get("/staff").status_code == 200  # in use: the idle clock restarts
    app.clock = lambda: start + 2 * accounts.IDLE_TIMEOUT + timedelta(minutes=1)
    assert client.get("/staff").status_code == 303
    app.clock = lambda: start
    client.cookies.clear()
    sign_in(client, app, "bob")
    answer = post(client, "/staff/logout")
    assert answer.status_code == 303 and client.get("/staff").status_code == 303
    assert staff_events(app)[-1] == ("bob", "signed_out", None)


def test_password_change_and_removal_end_sessions(client: TestClient, app: App) -> None:
    sign_in(client, app)
    accounts.set_password(app, "alice", PASSWORD + "!")
    assert client.get("/staff").status_code == 303
    client.post("/staff/login", data={"name": "alice", "password": PASSWORD + "!",
                                      "csrf": client.cookies[CSRF_COOKIE]})
    assert client.get("/staff").status_code == 200
    accounts.remove_user(app, "alice")
    assert client.get("/staff").status_code == 303


def test_queue_sorted_by_due_date_with_filters(client: TestClient, app: App) -> None:
    old = app.now() - timedelta(days=20)
    app.clock = lambda: old
    first = submit(app, "erasure", verified=False, channel="web")
    app.clock = lambda: old + timedelta(days=20)
    second = submit(app, "access")
    sign_in(client, app)
    page = client.get("/staff").text
    assert page.index(first) < page.index(second)
    assert first not in client.get("/staff?kind=access").text
    only = client.get("/staff?channel=web&state=awaiting_identity&due_within=12").text
    assert first in only and second not in only
    assert "1 request(s)" in only
    answer = client.get("/staff?state=nonsense&due_within=soon")
    assert answer.status_code == 400 and "Unknown state" in answer.text
    assert "number of days" in answer.text


def test_the_dashboard_is_in_the_staff_area(client: TestClient, app: App) -> None:
    """The page ``dsar report --html`` writes, behind the same sign-in as the queue."""
    submit(app, "erasure", channel="web")
    submit(app, "access")
    assert client.get("/staff/dashboard", follow_redirects=False).status_code == 303
    sign_in(client, app)
    page = client.get("/staff/dashboard")
    assert page.status_code == 200 and "<svg" in page.text
    assert 'data-series="web"' in page.text and 'data-series="cli"' in page.text
    assert "/staff/dashboard" in client.get("/staff").text


def test_request_page_masks_identities_until_revealed_and_audits_it(client: TestClient,
                                                                     app: App) -> None:
    request_id = submit(app)
    sign_in(client, app)
    page = client.get(f"/staff/requests/{request_id}").text
    assert EMAIL not in page and "h***@example.org" in page and "submitted" in page
    assert client.get(f"/staff/requests/{request_id}/reveal").status_code == 405
    answer = post(client, f"/staff/requests/{request_id}/reveal")
    assert answer.status_code == 200 and EMAIL in answer.text
    assert ("staff:alice", "identities_revealed") in request_events(app, request_id)
    assert staff_events(app)[-1] == ("alice", "identities_revealed", request_id)
    assert client.get("/staff/requests/dsr_000000000000").status_code == 404


def test_confirm_identity_same_checks_and_events_as_the_cli(client: TestClient,
                                                            app: App) -> None:
    request_id = submit(app)
    sign_in(client, app)
    answer = post(client, f"/staff/requests/{request_id}/confirm-identity", method=" ")
    assert answer.status_code == 409 and "method is empty" in answer.text
    answer = post(client, f"/staff/requests/{request_id}/confirm-identity",
                  method="called back on their number")
    assert answer.status_code == 303
    assert "Identity confirmed" in client.get(answer.headers["location"]).text
    loaded = requests.load(app, request_id)
    assert loaded.state == "in_progress" and loaded.identity_method == \
        "called back on their number"
    assert ("staff:alice", "identity_verified") in request_events(app, request_id)
    again = post(client, f"/staff/requests/{request_id}/confirm-identity", method="again")
    assert again.status_code == 409 and "cannot confirm the identity" in again.text


def test_actions_need_the_csrf_token(client: TestClient, app: App) -> None:
    request_id = submit(app)
    sign_in(client, app)
    answer = client.post(f"/staff/requests/{request_id}/cancel",
                         data={"reason": "withdrawn", "csrf": "y" * 43})
    assert answer.status_code == 403
    answer = client.post(f"/staff/requests/{request_id}/cancel",
                         data={"reason": "withdrawn", "csrf": client.cookies[CSRF_COOKIE]},
                         headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403
    assert requests.load(app, request_id).state == "awaiting_identity"


def test_approve_extend_reject_cancel(client: TestClient, app: App) -> None:
    app.settings = dataclasses.replace(app.settings, approval_required=frozenset({"erasure"}))
    waiting = submit(app, "erasure", verified=True)
    sign_in(client, app)
    assert requests.load(app, waiting).state == "awaiting_approval"
    assert post(client, f"/staff/requests/{waiting}/approve").status_code == 303
    assert requests.load(app, waiting).approved_by == "staff:alice"
    assert ("staff:alice", "approved") in request_events(app, waiting)

    other = submit(app)
    assert post(client, f"/staff/requests/{other}/extend", reason=" ").status_code == 409
    assert post(client, f"/staff/requests/{other}/extend",
                reason="many systems to search").status_code == 303
    extended = requests.load(app, other)
    assert extended.extended_due is not None and extended.extension_reason == \
        "many systems to search"
    assert post(client, f"/staff/requests/{other}/reject", reason="repeated",
                ground="excessive").status_code == 303
    rejected = requests.load(app, other)
    assert rejected.state == "rejected" and rejected.closing_reason.startswith("Art. 12(5)(b)")
    assert [e for _, e in request_events(app, other)][-2:] == ["extended", "rejected"]

    third = submit(app)
    assert post(client, f"/staff/requests/{third}/reject", reason="x",
                ground="bogus").status_code == 409
    assert post(client, f"/staff/requests/{third}/cancel",
                reason="withdrawn by the person").status_code == 303
    assert requests.load(app, third).state == "cancelled"
    refused = post(client, f"/staff/requests/{third}/approve")
    assert refused.status_code == 409 and "which is final" in refused.text
    assert post(client, f"/staff/requests/{third}/explode").status_code == 404


def test_retry_restarts_a_request_that_needs_attention(client: TestClient, app: App) -> None:
    request_id = submit(app)
    sign_in(client, app)
    refused = post(client, f"/staff/requests/{request_id}/retry")
    assert refused.status_code == 409
    with app.db.session() as session:
        session.execute(sa.update(requests.Request).where(requests.Request.id == request_id)
                        .values(state="needs_attention", attention_reason="shop unreachable"))
    page = client.get(f"/staff/requests/{request_id}").text
    assert re.search(r'action="/staff/requests/dsr_\w+/retry"', page)
    assert post(client, f"/staff/requests/{request_id}/retry").status_code == 303
    assert requests.load(app, request_id).state == "in_progress"
    with app.db.session() as session:
        last = session.scalars(sa.select(AuditEvent).where(AuditEvent.request_id == request_id)
                               .order_by(AuditEvent.id.desc())).first()
    assert last.actor == "staff:alice"


@pytest.mark.parametrize("password", ["short", "x" * 11])
def test_cli_refuses_short_passwords_in_one_line(app: App, password: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSAR_DATA_DIR", str(app.settings.data_dir))
    result = CliRunner().invoke(main, ["staff", "add", "carol", "--password-stdin"],
                                input=password + "\n")
    assert result.exit_code == 2 and "fewer than 12" in result.output
    assert "Traceback" not in result.output


def test_cli_add_passwd_list_remove(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSAR_DATA_DIR", str(app.settings.data_dir))
    run = CliRunner().invoke
    assert run(main, ["staff", "add", "carol", "--password-stdin"],
               input=PASSWORD + "\n").exit_code == 0
    assert accounts.sign_in(app, "carol", PASSWORD)
    assert run(main, ["staff", "passwd", "carol", "--password-stdin"],
               input=PASSWORD + "?\n").exit_code == 0
    with pytest.raises(accounts.SignInRefused):
        accounts.sign_in(app, "carol", PASSWORD)
    assert "carol" in run(main, ["staff", "list"]).output
    assert run(main, ["staff", "remove", "carol"]).exit_code == 0
    gone = run(main, ["staff", "remove", "carol"])
    assert gone.exit_code != 0 and "no staff user 'carol'" in gone.output
