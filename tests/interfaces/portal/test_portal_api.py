"""The API beside the form: agents' tokens, intake, status and download links."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from dsar.db.models import AgentToken
from interfaces.portal import agents
from tests.interfaces.portal.conftest import Inbox, deliver
from tests.interfaces.portal.test_portal_flow import csrf


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BODY = {"kind": "access", "email": "pat@example.org", "place": "US-CA", "language": "fr"}


def test_tokens_are_issued_once_stored_as_hashes_and_revoked(app: App) -> None:
    token = agents.issue(app, "Acme Agents")
    assert token.startswith("dsar_agent_") and len(token) > 50
    with app.db.session() as session:
        row = session.get(AgentToken, "Acme Agents")
        assert row is not None and token not in row.token_hash and len(row.token_hash) == 64
    assert agents.authenticate(app, f"Bearer {token}") == "Acme Agents"
    assert agents.authenticate(app, f"Bearer {token}x") is None
    assert agents.authenticate(app, token) is None  # no scheme
    with pytest.raises(Exception, match="already has a token"):
        agents.issue(app, "Acme Agents")
    agents.revoke(app, "Acme Agents")
    assert agents.authenticate(app, f"Bearer {token}") is None


def test_the_cli_issues_lists_and_revokes(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import main

    env = {"DSAR_DATA_DIR": str(app.settings.data_dir)}
    issued = CliRunner().invoke(main, ["agents", "issue", "Helper Co"], env=env)
    assert issued.exit_code == 0, issued.output
    token = re.search(r"dsar_agent_\S+", issued.output).group(0)  # type: ignore[union-attr]
    listed = CliRunner().invoke(main, ["agents", "list"], env=env)
    assert "Helper Co" in listed.output and "active" in listed.output
    assert token not in listed.output
    assert CliRunner().invoke(main, ["agents", "revoke", "Helper Co"], env=env).exit_code == 0
    assert "revoked" in CliRunner().invoke(main, ["agents", "list"], env=env).output
    bad = CliRunner().invoke(main, ["agents", "revoke", "Nobody"], env=env)
    assert bad.exit_code != 0 and "no agent named" in bad.output and "Traceback" not in bad.output


def test_an_agent_files_follows_and_downloads(client: TestClient, app: App, inbox: Inbox) -> None:
    token = agents.issue(app, "Acme Agents")
    assert client.post("/api/v1/requests", json=BODY).status_code == 401
    filed = client.post("/api/v1/requests", json=BODY, headers=bearer(token))
    assert filed.status_code == 201, filed.text
    made = filed.json()
    assert made["regime"] == "ccpa" and made["state"] == "awaiting_identity"
    assert filed.headers["location"] == f"/api/v1/requests/{made['request_id']}"
    stored = requests.load(app, made["request_id"])
    assert (stored.channel, stored.submitted_by) == ("api", "agent:Acme Agents")
    assert deliver(app) == 1 and "Bonjour" in inbox.text(inbox.messages[-1])  # in French
    shown = client.get(filed.headers["location"], headers=bearer(token))
    assert shown.status_code == 200 and shown.json()["download_available"] is False
    early = client.post(f"{filed.headers['location']}/download-links", headers=bearer(token))
    assert early.status_code == 409
    other = agents.issue(app, "Other Agent")
    assert client.get(filed.headers["location"], headers=bearer(other)).status_code == 404


def test_bad_bodies_get_problems_naming_the_field(client: TestClient, app: App) -> None:
    token = agents.issue(app, "Acme Agents")
    cases = [({**BODY, "kind": "delete"}, 422, "kind"), ({**BODY, "place": "ZZ"}, 422, "place"),
             ({**BODY, "email": "no-at-sign"}, 422, "email"), ({**BODY, "x": 1}, 422, "x")]
    for body, status, field in cases:
        got = client.post("/api/v1/requests", json=body, headers=bearer(token))
        assert got.status_code == status and field in got.json()["errors"], got.text
        assert got.headers["content-type"] == "application/problem+json"
    assert client.post("/api/v1/requests", content=b"[1]", headers={
        **bearer(token), "Content-Type": "application/json"}).status_code == 400
    assert client.post("/api/v1/requests", data={"a": "b"},
                       headers=bearer(token)).status_code == 415
    assert client.get("/api/v1/nothing").json()["status"] == 404
    assert client.delete("/api/v1/requests").status_code == 405
    assert requests.list_requests(app) == []


def test_the_form_still_needs_csrf_but_the_api_never_sets_cookies(client: TestClient,
                                                                  app: App) -> None:
    token = agents.issue(app, "Acme Agents")
    response = client.post("/api/v1/requests", json=BODY, headers=bearer(token))
    assert "set-cookie" not in response.headers
    assert client.get("/api/v1/openapi.json").json()["openapi"].startswith("3.1")
    assert csrf(client)
