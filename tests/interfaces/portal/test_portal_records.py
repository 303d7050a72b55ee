"""The record check: "this record is about you, and it verifies", from the receipt code."""

from __future__ import annotations

import base64
import json

from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from tests.interfaces.portal.conftest import Inbox
from tests.interfaces.portal.test_portal_flow import file_and_confirm, post_form
from workflows.runtime import flag_request

ABOUT_YOU = "This record is about you, and it verifies."


def closed_request(client: TestClient, app: App, inbox: Inbox) -> tuple[str, str, str]:
    request_id, receipt = file_and_confirm(client, app, inbox, address="Rita@Example.org")
    assert flag_request(app, request_id, "a system needs a person")
    requests.reject(app, request_id, "we hold nothing under this address", "privacy team")
    shown = post_form(client, {"request": request_id, "receipt": receipt}, "/status")
    assert f'href="/records/{request_id}.json"' in shown.text
    record = client.get(f"/records/{request_id}.json")
    assert record.status_code == 200 and record.headers["content-type"] == "application/json"
    assert "rita" not in record.text.lower()  # no personal data in a record
    return request_id, receipt, record.text


def test_a_record_is_about_you_and_verifies(client: TestClient, app: App, inbox: Inbox) -> None:
    _, receipt, record = closed_request(client, app, inbox)
    page = client.get("/records/check")
    assert page.status_code == 200 and 'name="record"' in page.text
    checked = post_form(client, {"record": record, "receipt": receipt,
                                 "email": "rita@example.org"}, "/records/check")
    assert checked.status_code == 200 and ABOUT_YOU in checked.text


def test_the_wrong_receipt_or_address_is_not_you(
        client: TestClient, app: App, inbox: Inbox) -> None:
    _, receipt, record = closed_request(client, app, inbox)
    for receipt_given, email in ((receipt, "someone@example.org"), ("A" * 43, "rita@example.org"),
                                 ("short", "rita@example.org")):
        checked = post_form(client, {"record": record, "receipt": receipt_given,
                                     "email": email}, "/records/check")
        assert checked.status_code == 200
        assert "it is not about the details you gave" in checked.text


def test_a_changed_record_does_not_verify(client: TestClient, app: App, inbox: Inbox) -> None:
    _, receipt, record = closed_request(client, app, inbox)
    bundle = json.loads(record)
    statement = json.loads(base64.b64decode(bundle["envelope"]["payload"]))
    statement["predicate"]["result"]["closing_reason"] = "done as asked"
    bundle["envelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    checked = post_form(client, {"record": json.dumps(bundle), "receipt": receipt,
                                 "email": "rita@example.org"}, "/records/check")
    assert "This record does not verify." in checked.text and "signature" in checked.text
    garbage = post_form(client, {"record": "not json", "receipt": receipt}, "/records/check")
    assert garbage.status_code == 400 and 'id="record-error"' in garbage.text


def test_no_record_for_an_open_or_unknown_request(client: TestClient, app: App,
                                                  inbox: Inbox) -> None:
    request_id, _ = file_and_confirm(client, app, inbox)
    assert client.get(f"/records/{request_id}.json").status_code == 404
    assert client.get("/records/dsr_000000000000.json").status_code == 404


def test_the_check_page_speaks_german(client: TestClient) -> None:
    page = client.get("/records/check", headers={"Accept-Language": "de"})
    assert "Unseren Nachweis zu Ihrer Anfrage prüfen" in page.text
