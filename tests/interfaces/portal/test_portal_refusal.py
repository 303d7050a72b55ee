"""A refusal goes only to an address someone showed to be theirs: a web request never verified
is refused without an email (the audit trail says so); a verified one gets the reasons."""

from __future__ import annotations

from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from tests.interfaces.portal.conftest import Inbox, deliver
from tests.interfaces.portal.test_portal_flow import file_and_confirm, post_form

REASON = "account 4711 belongs to a different person"


def test_an_unverified_web_request_is_refused_without_an_email(
        client: TestClient, app: App, inbox: Inbox) -> None:
    assert post_form(client, {"kind": "access", "email": "someone@example.org"}).status_code == 303
    [made] = requests.list_requests(app)
    requests.reject(app, made.id, REASON, "privacy team", ground="other")
    assert deliver(app) == 1 and deliver(app) == 0  # the verification email only
    assert all(REASON not in inbox.text(m) for m in inbox.messages)
    events = requests.load(app, made.id).events
    [withheld] = [e for e in events if e.event == "message_withheld"]
    assert withheld.reason == "refusal: the email address was never verified"
    assert requests.load(app, made.id).state == "rejected"


def test_a_verified_web_request_is_refused_with_its_reasons(
        client: TestClient, app: App, inbox: Inbox) -> None:
    from workflows.fanout import flag_attention

    request_id, _ = file_and_confirm(client, app, inbox)
    deliver(app)  # the acknowledgement
    flag_attention(app, request_id, "a system could not be searched",  # rejectable again
                   event="step_failed")
    requests.reject(app, request_id, REASON, "privacy team", ground="other")
    assert deliver(app) == 1
    refusal = inbox.text(inbox.messages[-1])
    assert REASON in refusal and "Art. 12(4)" in refusal
    assert "message_withheld" not in [e.event for e in requests.load(app, request_id).events]
