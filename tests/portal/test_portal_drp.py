"""The Data Rights Protocol's PIP side: discovery, exercise, status, revoke."""

from __future__ import annotations

from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from dsar.portal import agents
from tests.portal.conftest import Inbox, deliver

EXERCISE = {"meta": {"version": "0.9"}, "regime": "ccpa", "exercise": ["deletion"],
            "relationships": [], "identity": {"email": "drp@example.org", "name": "Dee Arpee"}}


def test_discovery_names_the_api_base_and_actions(client: TestClient) -> None:
    found = client.get("/.well-known/data-rights.json").json()
    assert found == {"version": "0.9", "api_base": "https://portal.example/drp",
                     "actions": ["access", "deletion"], "user_relationships": []}


def test_exercise_status_and_revoke(client: TestClient, app: App, inbox: Inbox) -> None:
    token = {"Authorization": f"Bearer {agents.issue(app, 'DRP Agent')}"}
    assert client.post("/drp/v1/data-rights-request", json=EXERCISE).status_code == 401
    made = client.post("/drp/v1/data-rights-request", json=EXERCISE, headers=token)
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["status"] == "in_progress" and body["reason"] == "need_user_verification"
    stored = requests.load(app, body["request_id"])
    assert (stored.kind, stored.regime, stored.channel) == ("erasure", "ccpa", "api")
    assert deliver(app) == 1 and "Dee Arpee" in inbox.text(inbox.messages[-1])
    url = f"/drp/v1/data-rights-request/{body['request_id']}"
    assert client.get(url, headers=token).json()["status"] == "in_progress"
    other = {"Authorization": f"Bearer {agents.issue(app, 'Other')}"}
    assert client.get(url, headers=other).status_code == 403
    assert client.delete(url, headers=other).status_code == 403
    revoked = client.request("DELETE", url, headers=token, json={"reason": "changed my mind"})
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    closed = requests.load(app, body["request_id"])
    assert closed.state == "cancelled" and "changed my mind" in (closed.closing_reason or "")
    assert client.request("DELETE", url, headers=token).status_code == 409


def test_bad_exercises_name_the_field(client: TestClient, app: App) -> None:
    token = {"Authorization": f"Bearer {agents.issue(app, 'DRP Agent')}"}
    for body, field in (({**EXERCISE, "exercise": ["sale:opt_out"]}, "exercise"),
                        ({**EXERCISE, "regime": "gdpr"}, "regime"),
                        ({**EXERCISE, "identity": {"name": "x"}}, "identity.email"),
                        ({**EXERCISE, "identity": {"email": "nope"}}, "identity.email")):
        got = client.post("/drp/v1/data-rights-request", json=body, headers=token)
        assert got.status_code == 422 and field in got.json()["errors"], got.text
    assert requests.list_requests(app) == []
