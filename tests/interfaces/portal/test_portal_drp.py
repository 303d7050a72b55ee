"""The Data Rights Protocol's PIP side: discovery, signed exercise, status, signed revoke.

Agents sign with PyNaCl (libsodium's combined mode, as DRP's reference agent does), so these
tests show the PIP verifies what a real libsodium agent sends."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.encoding import Base64Encoder, HexEncoder
from nacl.signing import SigningKey
from starlette.testclient import TestClient

from cli import main
from dsar import requests
from dsar.app import App
from dsar.errors import InvalidInput
from interfaces.portal import agents, make_portal
from interfaces.portal.drp_signing import (
    SignatureRefused,
    check_claims,
    open_signed,
    parse_verify_key,
)
from tests.interfaces.portal.conftest import DEMO_MAP, Inbox, deliver

BUSINESS = "NORTHWIND_CB"
URL = "/drp/v1/data-rights-request"


@pytest.fixture
def app(tmp_path: Path, inbox: Inbox) -> App:
    shutil.copyfile(DEMO_MAP, tmp_path / "datamap.yaml")
    return App.from_env({"DSAR_DATA_DIR": str(tmp_path), "DSAR_TIMEZONE": "Europe/Berlin",
                         "DSAR_SMTP_URL": inbox.url,  # type: ignore[attr-defined]
                         "DSAR_MAIL_FROM": "privacy@northwind.example",
                         "DSAR_PUBLIC_URL": "https://portal.example",
                         "DSAR_DRP_BUSINESS_ID": BUSINESS})


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(make_portal(app, sweep_expired=False), base_url="https://portal.example",
                    follow_redirects=False) as test_client:
        yield test_client


def claims(agent: str, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"agent-id": agent, "business-id": BUSINESS,
            "issued-at": (now - timedelta(seconds=5)).isoformat(),
            "expires-at": (now + timedelta(minutes=10)).isoformat(),
            "drp.version": "0.9.4", "exercise": "deletion", "regime": "ccpa",
            "relationships": [], "email": "drp@example.org", "name": "Dee Arpee", **extra}


def sign(key: SigningKey, body: dict[str, Any]) -> bytes:
    """What a libsodium agent sends: base64(signature || JSON), as text/plain."""
    return base64.b64encode(key.sign(json.dumps(body).encode()))


def send(client: TestClient, method: str, url: str, token: str, body: bytes) -> Any:
    return client.request(method, url, content=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "text/plain"})


def agent(app: App, name: str) -> tuple[str, SigningKey]:
    key = SigningKey.generate()
    return agents.issue(app, name, key.verify_key.encode(Base64Encoder).decode()), key


def test_discovery_names_the_api_base_and_actions(client: TestClient) -> None:
    found = client.get("/.well-known/data-rights.json").json()
    assert found == {"version": "0.9", "api_base": "https://portal.example/drp",
                     "actions": ["access", "deletion"], "user_relationships": []}


def test_signed_exercise_status_and_revoke(client: TestClient, app: App, inbox: Inbox) -> None:
    token, key = agent(app, "ACME_AA")
    body = sign(key, claims("ACME_AA"))
    assert client.post(URL, content=body).status_code == 401
    made = send(client, "POST", URL, token, body)
    assert made.status_code == 200, made.text
    status = made.json()
    assert status["status"] == "in_progress" and status["reason"] == "need_user_verification"
    stored = requests.load(app, status["request_id"])
    assert (stored.kind, stored.regime, stored.channel) == ("erasure", "ccpa", "api")
    assert deliver(app) == 1 and "Dee Arpee" in inbox.text(inbox.messages[-1])
    url = f"{URL}/{status['request_id']}"
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get(url, headers=auth).json()["status"] == "in_progress"
    other, other_key = agent(app, "OTHER_AA")
    assert client.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 403
    assert send(client, "DELETE", url, other, sign(other_key, {})).status_code == 403
    assert send(client, "DELETE", url, token, b"").status_code == 400  # unsigned revoke
    revoked = send(client, "DELETE", url, token, sign(key, {"reason": "changed my mind"}))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    closed = requests.load(app, status["request_id"])
    assert closed.state == "cancelled" and "changed my mind" in (closed.closing_reason or "")
    again = send(client, "DELETE", url, token, sign(key, {}))
    assert again.status_code == 409 and again.json()["code"] == "409"


def test_unsigned_and_badly_signed_requests_are_refused(client: TestClient, app: App) -> None:
    token, key = agent(app, "ACME_AA")
    stranger = SigningKey.generate()
    good = claims("ACME_AA")
    signed = base64.b64decode(sign(key, good))
    tampered = base64.b64encode(signed[:-2] + b"0}")
    past = datetime.now(UTC) - timedelta(hours=2)
    for body, code in (
            (json.dumps(good).encode(), 400),                          # plain JSON, unsigned
            (b"not base64 at all!", 400),
            (base64.b64encode(b"short"), 400),
            (sign(stranger, good), 403),                               # another key
            (tampered, 403),                                           # body changed after
            (sign(key, claims("OTHER_AA")), 403),                      # another agent's id
            (sign(key, claims("ACME_AA", **{"business-id": "ELSE"})), 403),
            (sign(key, claims("ACME_AA", **{"issued-at": past.isoformat(),
                                            "expires-at": (past + timedelta(minutes=10))
                                            .isoformat()})), 400),     # expired (replay)
            (sign(key, claims("ACME_AA", **{"issued-at": (datetime.now(UTC) + timedelta(
                hours=1)).isoformat()})), 400),                       # issued in the future
            (sign(key, {k: v for k, v in good.items() if k != "expires-at"}), 400)):
        got = send(client, "POST", URL, token, body)
        assert got.status_code == code, (body[:40], got.text)
        error = got.json()
        assert error["code"] == str(code) and error["message"], error
    assert requests.list_requests(app) == []


def test_agent_without_a_verify_key_or_business_without_an_id_is_refused(
        client: TestClient, app: App, tmp_path: Path) -> None:
    token = agents.issue(app, "KEYLESS_AA")
    got = send(client, "POST", URL, token, sign(SigningKey.generate(), claims("KEYLESS_AA")))
    assert got.status_code == 403 and "dsar agents key" in got.json()["message"]
    key = SigningKey.generate()
    agents.set_verify_key(app, "KEYLESS_AA", key.verify_key.encode(HexEncoder).decode())
    assert send(client, "POST", URL, token, sign(key, claims("KEYLESS_AA"))).status_code == 200
    bare = App.from_env({"DSAR_DATA_DIR": str(tmp_path), "DSAR_PUBLIC_URL": "https://p.example"})
    with TestClient(make_portal(bare, sweep_expired=False)) as other:
        got = send(other, "POST", URL, token, sign(key, claims("KEYLESS_AA")))
        assert got.status_code == 503 and "DSAR_DRP_BUSINESS_ID" in got.json()["message"]


def test_bad_exercises_name_the_field(client: TestClient, app: App) -> None:
    token, key = agent(app, "ACME_AA")
    for extra, field in (({"exercise": "sale:opt_out"}, "exercise"),
                         ({"regime": "gdpr"}, "regime"),
                         ({"email": None}, "email"),
                         ({"email": "nope"}, "email")):
        got = send(client, "POST", URL, token, sign(key, claims("ACME_AA", **extra)))
        assert got.status_code == 422 and field in got.json()["errors"], got.text
    assert requests.list_requests(app) == []


def test_cli_registers_and_lists_verify_keys(app: App, tmp_path: Path) -> None:
    env = {"DSAR_DATA_DIR": str(tmp_path)}
    key = SigningKey.generate().verify_key.encode(Base64Encoder).decode()
    runner = CliRunner()
    issued = runner.invoke(main, ["agents", "issue", "CLI_AA", "--verify-key", key], env=env)
    assert issued.exit_code == 0, issued.output
    assert key in runner.invoke(main, ["agents", "list"], env=env).output
    bad = runner.invoke(main, ["agents", "key", "CLI_AA", "abc"], env=env)
    assert bad.exit_code != 0 and "32-byte" in bad.output and "Traceback" not in bad.output


@given(st.binary(min_size=0, max_size=80))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_only_real_32_byte_keys_register(raw: bytes) -> None:
    for text in (base64.b64encode(raw).decode(), raw.hex()):
        if len(raw) == 32:
            assert base64.b64decode(parse_verify_key(text)) == raw
        else:
            with pytest.raises(InvalidInput):
                parse_verify_key(text)


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=0, max_value=10**6))
@settings(max_examples=60)
def test_any_change_to_a_signed_body_is_refused(message: bytes, where: int) -> None:
    key = SigningKey.generate()
    stored = key.verify_key.encode(Base64Encoder).decode()
    signed = bytearray(key.sign(message))
    assert open_signed(base64.b64encode(bytes(signed)), stored) == message
    signed[where % len(signed)] ^= 1
    with pytest.raises(SignatureRefused):
        open_signed(base64.b64encode(bytes(signed)), stored)


def test_claims_window_longer_than_an_hour_is_refused() -> None:
    now = datetime.now(UTC)
    body = json.dumps({"agent-id": "A", "business-id": "B", "issued-at": now.isoformat(),
                       "expires-at": (now + timedelta(days=30)).isoformat()}).encode()
    with pytest.raises(SignatureRefused, match="more than an hour"):
        check_claims(body, "A", "B", now + timedelta(seconds=1))
