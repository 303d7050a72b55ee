"""The form asks for what a request needs: kind, email, name, account id, place (the regime),
an authorised agent; it links the privacy notice and shows the controller's contact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from dsar.settings import REGIME_NAMES, Settings
from interfaces.portal import make_portal
from interfaces.portal.places import PLACES, regime_for
from tests.interfaces.portal.conftest import DEMO_MAP, Inbox
from tests.interfaces.portal.test_portal_flow import csrf, post_form


@pytest.fixture
def shown(tmp_path: Path, inbox: Inbox) -> TestClient:
    shutil.copyfile(DEMO_MAP, tmp_path / "datamap.yaml")
    app = App.from_env({"DSAR_DATA_DIR": str(tmp_path), "DSAR_SMTP_URL": inbox.url,  # type: ignore[attr-defined]
                        "DSAR_PRIVACY_NOTICE_URL": "https://northwind.example/privacy",
                        "DSAR_CONTROLLER_CONTACT": "dpo@northwind.example",
                        "DSAR_PORTAL_ACCOUNT_KEY": "customer_id"})
    with TestClient(make_portal(app, sweep_expired=False), base_url="https://portal.example",
                    follow_redirects=False) as client:
        client.app_state = app  # type: ignore[attr-defined]
        yield client


def test_the_form_links_the_notice_and_the_contact(shown: TestClient) -> None:
    page = shown.get("/").text
    assert 'href="https://northwind.example/privacy"' in page
    assert "dpo@northwind.example" in page
    for field in ('name="kind"', 'name="email"', 'name="name"', 'name="account"',
                  'name="place"', 'name="agent"'):
        assert field in page
    assert page.count("<option") == len(PLACES) + 2


def test_place_picks_the_regime_and_details_are_kept(shown: TestClient) -> None:
    app: App = shown.app_state  # type: ignore[attr-defined]
    response = post_form(shown, {"kind": "access", "email": "ca@example.org", "name": "Ann Lee",
                                 "account": "C-1042", "place": "US-CA", "agent": "yes"})
    assert response.status_code == 303
    [made] = requests.list_requests(app)
    assert made.regime == "ccpa" and made.submitted_by == "authorised agent (web portal)"
    names = {i.name: i.value for i in requests.identities_of(app, requests.load(app, made.id))}
    assert names == {"email": "ca@example.org", "customer_id": "C-1042", "full_name": "Ann Lee"}


def test_each_field_error_is_tied_to_its_field(shown: TestClient) -> None:
    response = shown.post("/requests", data={
        "csrf": csrf(shown),
        "kind": "access", "email": "x@example.org", "place": "ZZ", "account": "a" * 300,
        "name": "n" * 300})
    assert response.status_code == 400
    for name in ("place", "account", "name"):
        assert f'id="{name}-error"' in response.text
        assert f'aria-describedby="{name}-error' in response.text
    agent = post_form(shown, {"kind": "access", "email": "x@example.org", "place": "DE",
                              "agent": "yes"})
    assert agent.status_code == 400 and 'id="agent-error"' in agent.text
    assert "California" in agent.text


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.one_of(st.sampled_from([p.code for p in PLACES] + ["other"]), st.text(max_size=8)))
def test_every_place_gives_a_known_regime_or_none(code: str) -> None:
    chosen = Settings.from_env({"DSAR_DATA_DIR": "/nonexistent", "DSAR_DEFAULT_REGIME": "lgpd"})
    regime = regime_for(code, chosen)
    known = {p.code for p in PLACES} | {"other"}
    assert (regime is None) == (code not in known)
    assert regime is None or regime in REGIME_NAMES
    if code == "other":
        assert regime == "lgpd"


def test_bad_portal_settings_are_one_line_errors() -> None:
    from dsar.errors import InvalidInput

    with pytest.raises(InvalidInput, match="DSAR_PRIVACY_NOTICE_URL"):
        Settings.from_env({"DSAR_PRIVACY_NOTICE_URL": "javascript:alert(1)"})
    with pytest.raises(InvalidInput, match="DSAR_PORTAL_ACCOUNT_KEY"):
        Settings.from_env({"DSAR_PORTAL_ACCOUNT_KEY": "email"})
