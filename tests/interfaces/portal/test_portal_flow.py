"""The portal as a person uses it: form, email, confirmation, status; and its abuse guards."""

from __future__ import annotations

import logging
import re
import secrets

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from dsar.db.models import AuditEvent, MessageRow
from interfaces.portal.guards import RedactTokens
from tests import services
from tests.interfaces.portal.conftest import Inbox, deliver


def csrf(client: TestClient, path: str = "/") -> str:
    page = client.get(path).text
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def post_form(client: TestClient, fields: dict[str, str], path: str = "/requests"):
    """Post ``fields`` with a CSRF token; a request form lives in Germany unless it says."""
    place = {"place": "DE"} if path == "/requests" else {}
    return client.post(path, data={"csrf": csrf(client), **place, **fields})


def file_and_confirm(client: TestClient, app: App, inbox: Inbox, kind: str = "access",
                     address: str = "Jane@Example.org") -> tuple[str, str]:
    response = post_form(client, {"kind": kind, "email": address})
    assert response.status_code == 303 and response.headers["location"] == "/requests/sent"
    assert deliver(app) == 1
    body = inbox.text(inbox.messages[-1])
    link = re.search(r"https://portal.example(/verify/\S+)", body).group(1)  # type: ignore[union-attr]
    page = client.get(link)
    assert page.status_code == 200 and "Yes, this is my request" in page.text
    done = client.post(link, data={"csrf": csrf(client)})
    assert done.status_code == 200, done.text
    receipt = re.search(r"<code>([A-Za-z0-9_-]{43})</code>", done.text).group(1)  # type: ignore[union-attr]
    request_id = re.search(r"(dsr_[0-9a-f]{12})", done.text).group(1)  # type: ignore[union-attr]
    return request_id, receipt


def test_a_request_is_verified_by_the_emailed_link_before_any_work(
        client: TestClient, app: App, inbox: Inbox) -> None:
    response = post_form(client, {"kind": "erasure", "email": "Jane@Example.org "})
    assert response.status_code == 303
    [made] = requests.list_requests(app)
    assert (made.channel, made.state) == ("web", "awaiting_identity")
    assert client.get("/requests/sent").status_code == 200
    assert deliver(app) == 1 and deliver(app) == 0  # sent once, never again
    [mail] = inbox.messages
    assert mail["To"] == "jane@example.org" and "confirm" in mail["Subject"].lower()
    assert {p.get_content_type() for p in mail.walk()} >= {"text/plain", "text/html"}
    body = inbox.text(mail)
    link = re.search(r"https://portal.example(/verify/\S+)", body).group(1)  # type: ignore[union-attr]
    assert requests.load(app, made.id).state == "awaiting_identity"  # GET alone changes nothing
    client.get(link)
    done = client.post(link, data={"csrf": csrf(client)})
    assert "Your receipt code is" in done.text
    assert requests.load(app, made.id).state == "in_progress"
    again = client.post(link, data={"csrf": csrf(client)})  # a reload: shown once only
    assert again.status_code == 200 and "<code>" not in again.text
    assert deliver(app) == 1  # the acknowledgement with the due date
    ack = inbox.text(inbox.messages[-1])
    assert made.id in ack and "Europe/Berlin" in ack
    events = [e.event for e in requests.load(app, made.id).events]
    assert events.count("message_sent") == 2 and "identity_verified" in events
    with app.db.session() as session:
        reasons = session.scalars(sa.select(AuditEvent.reason)).all()
    assert not [r for r in reasons if r and "jane" in r.lower()]


def test_the_one_time_code_verifies_too_and_wrong_codes_run_out(
        client: TestClient, app: App, inbox: Inbox) -> None:
    post_form(client, {"kind": "access", "email": "code@example.org"})
    deliver(app)
    body = inbox.text(inbox.messages[-1])
    code = re.search(r"code on our page: (\d{6})", body).group(1)  # type: ignore[union-attr]
    [made] = requests.list_requests(app)
    wrong = post_form(client, {"request": made.id, "code": "000000" if code != "000000"
                               else "111111"}, "/verify")
    assert wrong.status_code == 400 and 'class="field-error"' in wrong.text
    right = post_form(client, {"request": made.id, "code": code}, "/verify")
    assert right.status_code == 200 and "Your receipt code is" in right.text
    assert requests.load(app, made.id).identity_method == "email address confirmed (code)"


def test_status_page_needs_the_receipt_code(client: TestClient, app: App, inbox: Inbox) -> None:
    request_id, receipt = file_and_confirm(client, app, inbox)
    shown = post_form(client, {"request": request_id, "receipt": receipt}, "/status")
    assert shown.status_code == 200
    assert "We are working on it." in shown.text and "Europe/Berlin" in shown.text
    wrong = post_form(client, {"request": request_id, "receipt": "A" * 43}, "/status")
    unknown = post_form(client, {"request": "dsr_000000000000", "receipt": receipt}, "/status")
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.text.split("<main>")[1].replace(request_id, "X") == \
        unknown.text.split("<main>")[1].replace("dsr_000000000000", "X")


def test_an_open_request_is_pointed_to_not_filed_again(
        client: TestClient, app: App, inbox: Inbox) -> None:
    request_id, _ = file_and_confirm(client, app, inbox)
    deliver(app)
    again = post_form(client, {"kind": "access", "email": "jane@example.org"})
    assert again.status_code == 303 and again.headers["location"] == "/requests/sent"
    assert [r.id for r in requests.list_requests(app)] == [request_id]
    assert deliver(app) == 1
    assert "already open" in inbox.messages[-1]["Subject"]


def test_cross_site_and_tokenless_posts_are_refused(client: TestClient, app: App) -> None:
    assert client.post("/requests", data={"kind": "access", "email": "a@example.org"}
                       ).status_code == 403
    token = csrf(client)
    cross = client.post("/requests", data={"csrf": token, "kind": "access",
                                           "email": "a@example.org"},
                        headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert requests.list_requests(app) == []


def test_the_honeypot_files_nothing(client: TestClient, app: App) -> None:
    response = post_form(client, {"kind": "access", "email": "bot@example.org",
                                  "website": "http://spam.example"})
    assert response.status_code == 303
    assert requests.list_requests(app) == []


def test_field_errors_are_tied_to_their_field(client: TestClient, app: App) -> None:
    token = csrf(client)
    bad_utf8 = client.post("/requests", content=f"csrf={token}&kind=access&email=%ff%fe@x.org",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert bad_utf8.status_code == 400
    assert 'id="email-error">This contains characters we cannot read' in bad_utf8.text
    assert "\ufffd" not in bad_utf8.text
    missing = post_form(client, {"email": "not-an-address"})
    assert 'id="kind-error">Please choose what you would like us to do.' in missing.text
    assert 'id="email-error">This does not look like an email address' in missing.text
    assert requests.list_requests(app) == []


def test_size_limits_cannot_be_skipped(client: TestClient, app: App) -> None:
    negative = client.post("/requests", content=b"kind=access",
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "Content-Length": "-1"})
    assert negative.status_code == 400

    def chunks():
        for _ in range(64):
            yield b"x" * 1024

    chunked = client.post("/requests", content=chunks(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert chunked.status_code == 413
    assert requests.list_requests(app) == []


def test_rate_limit_per_address(tmp_path, inbox: Inbox) -> None:
    from interfaces.portal import make_portal

    app = App.from_env({"DSAR_DATA_DIR": str(tmp_path), "DSAR_RATE_LIMIT_ADDRESS": "3/minute"})
    with TestClient(make_portal(app, sweep_expired=False), follow_redirects=False) as client:
        codes = [post_form(client, {"kind": "access", "email": f"p{i}@example.org"}).status_code
                 for i in range(5)]
    assert codes == [303, 303, 303, 429, 429]


@pytest.mark.usefixtures("redis_server")
def test_rate_limits_are_shared_by_portal_processes_through_redis(tmp_path, inbox: Inbox) -> None:
    """Two portal applications (two processes behind one proxy) count one address together
    when DSAR_RATE_LIMIT_STORAGE names Redis; a per-process count would let 3 + 3 through."""
    from interfaces.portal import make_portal

    env = {"DSAR_DATA_DIR": str(tmp_path), "DSAR_RATE_LIMIT_ADDRESS": "3/minute",
           "DSAR_RATE_LIMIT_STORAGE": services.REDIS_URL}
    address = (f"127.{secrets.randbelow(250)}.{secrets.randbelow(250)}."
               f"{secrets.randbelow(250) + 1}", 50000)  # a label only: this run's own count
    one, two = App.from_env(env), App.from_env(env)
    with TestClient(make_portal(one, sweep_expired=False), follow_redirects=False,
                    client=address) as first, \
            TestClient(make_portal(two, sweep_expired=False), follow_redirects=False,
                       client=address) as second:
        codes = [post_form((first, second)[i % 2], {"kind": "access",
                                                    "email": f"r{i}@example.org"}).status_code
                 for i in range(6)]
    assert codes == [303, 303, 303, 429, 429, 429]


def test_rate_limit_per_email_gives_the_same_answer(client: TestClient, app: App) -> None:
    codes = [post_form(client, {"kind": "erasure", "email": "same@example.org"}).status_code
             for _ in range(7)]
    assert codes == [303] * 7
    assert len(requests.list_requests(app)) == 5  # DSAR_RATE_LIMIT_EMAIL 5/hour


def test_wrong_methods_get_405_and_health_answers(client: TestClient) -> None:
    assert client.put("/").status_code == 405
    assert client.get("/requests").status_code == 405
    assert client.get("/nowhere").status_code == 404
    health = client.get("/healthz")
    assert health.status_code == 200 and health.text == "ok\n"
    page = client.get("/")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in page.text


def test_access_log_lines_carry_no_tokens() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0,
                               '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET",
                               "/download/eyJhYmMi.c2lnbmF0dXJl/file", "1.1", 200), None)
    RedactTokens().filter(record)
    line = record.getMessage()
    assert "eyJhYmMi" not in line and "/download/…" in line
    record = logging.LogRecord("x", logging.INFO, "", 0, "POST /verify/dsr_1/abcdef0123 200",
                               None, None)
    RedactTokens().filter(record)
    assert "abcdef0123" not in record.getMessage()


def test_messages_are_unique_per_request_and_kind(client: TestClient, app: App) -> None:
    post_form(client, {"kind": "access", "email": "u@example.org"})
    from dsar.mail import queue_message

    [made] = requests.list_requests(app)
    with app.db.session() as session:
        stored = requests.get(session, made.id)
        first = queue_message(session, app, stored, "verification").id
        second = queue_message(session, app, stored, "verification").id
    assert first == second
    with app.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(MessageRow)) == 1
