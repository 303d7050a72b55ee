"""A request whose keys reach no collection of the data map is refused at intake (CLI and
portal), with nothing written; one that gets past intake (the map changed since) is never
planned as if it had been carried out: it needs attention, with the reason, and no record."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from dsar.datamap.loader import parse_datamap
from dsar.identities import parse_identities
from dsar.intake import KeysReachNothing
from dsar.planning import NothingReached, lookup_keys, plan_request
from dsar.records import keys as signing
from interfaces.portal import make_portal
from workflows import runner

pytest.register_assert_rewrite("tests.state")
from tests.state import Backend, Cli  # noqa: E402

pytest_plugins = ["tests.state"]


def shop_map(identities: dict[str, str]) -> dict[str, Any]:
    return {"systems": [
        {"name": "shop", "kind": "sql", "url_env": "SHOP_URL", "tables": [
            {"name": "customer", "primary_key": ["id"], "identities": identities,
             "provides": {"customer_id": "id"}},
            {"name": "orders", "primary_key": ["id"], "identities": {},
             "references": [{"columns": ["customer_id"], "table": "customer", "to": ["id"],
                             "direction": "inbound"}]}]},
        {"name": "files", "kind": "s3", "bucket": "files",
         "objects": [{"name": "invoices", "prefix": "invoices/{account_no}/",
                      "category": "user.financial"}]}]}


def write_map(folder: Path, identities: dict[str, str]) -> Path:
    path = folder / "map.yaml"
    path.write_text(yaml.safe_dump(shop_map(identities)))
    return path


def test_lookup_keys_are_every_kind_of_first_lookup() -> None:
    datamap = parse_datamap(yaml.safe_dump(shop_map({"email": "email", "phone": "phone"})))
    assert lookup_keys(datamap) == {"email", "phone", "account_no"}  # not customer_id
    with pytest.raises(NothingReached) as refused:
        plan_request(datamap, {"customer_id"}, "erasure")
    assert "looked up by customer_id" in refused.value.one_line()
    assert "account_no, email, phone" in refused.value.one_line()
    assert plan_request(datamap, {"account_no"}, "erasure").tasks  # S3 alone reaches


def test_cli_refuses_keys_the_map_does_not_look_up_and_writes_nothing(
        cli: Cli, backend: Backend, tmp_path: Path) -> None:
    env = {"DSAR_DATAMAP": str(write_map(tmp_path, {"email": "email"}))}
    before = backend.row_counts()
    result = cli("submit", "erasure", "--id", "customer_id=3", env=env)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: the data map looks nobody up by customer_id")
    assert "keys the map knows: account_no, email" in lines[0]
    assert "3" not in lines[0].replace("customer_id", "")  # key names only, never the value
    assert backend.row_counts() == before
    accepted = cli("submit", "erasure", "--id", "customer_id=3", "--email", "a@example.org",
                   env=env)
    assert accepted.exit_code == 0, accepted.output


def test_no_readable_map_leaves_the_check_to_the_planner(cli: Cli, tmp_path: Path) -> None:
    missing = {"DSAR_DATAMAP": str(tmp_path / "nowhere.yaml")}
    assert cli("submit", "access", "--id", "customer_id=3", env=missing).exit_code == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("systems: [")
    assert cli("submit", "access", "--id", "customer_id=3",
               env={"DSAR_DATAMAP": str(broken)}).exit_code == 0


def test_the_map_is_read_again_when_it_changes(backend: Backend, tmp_path: Path) -> None:
    path = write_map(tmp_path, {"email": "email"})
    app = backend.make_app(DSAR_DATAMAP=str(path))
    phone = parse_identities([], ["+49 30 123456"])
    with pytest.raises(KeysReachNothing):
        requests.submit(app, "access", phone, submitted_by="t")
    path.write_text(yaml.safe_dump(shop_map({"email": "email", "phone": "phone_no"})))
    assert requests.submit(app, "access", phone, submitted_by="t").request.id


def test_an_erasure_that_would_reach_nothing_needs_attention_and_is_never_signed(
        backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Accepted at intake, then the map changed: planning refuses to plan an empty erasure."""
    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT, phone TEXT)")
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER)")
    monkeypatch.setenv("SHOP_URL", f"sqlite:///{db}")
    signing.generate(tmp_path / "keys")
    path = write_map(tmp_path, {"email": "email"})
    app = backend.make_app(DSAR_DATAMAP=str(path), DSAR_SIGNING_KEYS_DIR=str(tmp_path / "keys"))
    made = requests.submit(app, "erasure", parse_identities(["a@example.org"]),
                           submitted_by="t", identity_method="test")
    write_map(tmp_path, {"phone": "phone"})  # the map no longer looks anyone up by email
    runner.plan(app, made.request.id)
    request = requests.load(app, made.request.id)
    assert request.state == "needs_attention"
    assert request.attention_reason is not None
    assert "no collection of the data map is looked up by email" in request.attention_reason
    assert request.plan is None
    with app.db.session() as session:
        from dsar.db.models import CompletionRecord, Task
        assert session.query(Task).filter_by(request_id=request.id).count() == 0
        assert session.query(CompletionRecord).filter_by(request_id=request.id).count() == 0


def test_the_portal_says_it_cannot_take_the_request_and_files_nothing(
        backend: Backend, tmp_path: Path) -> None:
    app: App = backend.make_app(DSAR_DATAMAP=str(write_map(tmp_path, {"phone": "phone"})),
                                DSAR_PUBLIC_URL="https://portal.example")
    with TestClient(make_portal(app, sweep_expired=False), base_url="https://portal.example",
                    follow_redirects=False) as client:
        page = client.get("/").text
        token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        answer = client.post("/requests", data={"csrf": token, "kind": "access", "place": "DE",
                                                "email": "jane@example.org"})
        german = client.post("/requests", headers={"Accept-Language": "de"},
                             data={"csrf": token, "kind": "access", "place": "DE",
                                   "email": "jane@example.org"})
    assert answer.status_code == 503
    assert "cannot be searched by email address" in answer.text
    assert "Nothing was recorded" in answer.text
    assert "jane@example.org" not in answer.text
    assert german.status_code == 503 and "Es wurde nichts gespeichert" in german.text
    assert requests.list_requests(app) == []


def test_dsar_plan_says_the_same_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli import main

    path = write_map(tmp_path, {"email": "email"})
    result = CliRunner().invoke(main, ["plan", "erasure", "--id", "customer_id=3", "--datamap",
                                       str(path)], prog_name="dsar")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no collection of the data map is looked up by "
                                    "customer_id; the map looks subjects up by account_no, email")
    assert len(result.stderr.splitlines()) == 1


def test_the_agents_api_refuses_it_too_and_files_nothing(backend: Backend, tmp_path: Path) -> None:
    from interfaces.portal import agents

    app: App = backend.make_app(DSAR_DATAMAP=str(write_map(tmp_path, {"phone": "phone"})),
                                DSAR_PUBLIC_URL="https://portal.example")
    token = agents.issue(app, "Acme Agents")
    with TestClient(make_portal(app, sweep_expired=False), base_url="https://portal.example",
                    follow_redirects=False) as client:
        answer = client.post("/api/v1/requests", headers={"Authorization": f"Bearer {token}"},
                             json={"kind": "access", "email": "pat@example.org",
                                   "place": "DE", "language": "en"})
    assert answer.status_code == 503, answer.text
    assert "nothing was recorded" in answer.text
    assert requests.list_requests(app) == []
