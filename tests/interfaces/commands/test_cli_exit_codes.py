"""The command line's exit codes: one table (``interfaces.commands.exits``) that ``dsar --help``
prints and the errors use, and ``submit --wait`` telling how the request ended."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import main
from dsar.bundles.errors import BundleCorrupted
from dsar.errors import ConnectorError, DsarError, IllegalTransition, InvalidInput, NotFound
from dsar.records import keys as signing
from interfaces.commands import exits

pytest.register_assert_rewrite("tests.state")
from tests.state import Backend, Cli  # noqa: E402

pytest_plugins = ["tests.state"]


def test_every_code_is_distinct_and_in_the_help() -> None:
    codes = [code for code, _ in exits.TABLE]
    assert codes == sorted(set(codes)) == list(range(len(codes)))
    text = CliRunner().invoke(main, ["--help"], prog_name="dsar").output
    assert "Exit codes:" in text
    for code, meaning in exits.TABLE:
        assert f"  {code}  {meaning.splitlines()[0]}" in text


def test_errors_exit_with_the_documented_codes() -> None:
    assert DsarError("x").exit_code == InvalidInput("x").exit_code == exits.BAD_INPUT
    assert NotFound("x").exit_code == exits.NOT_FOUND
    assert IllegalTransition("x").exit_code == exits.NOT_ALLOWED
    assert ConnectorError("x").exit_code == exits.CONNECTOR_FAILED
    assert BundleCorrupted("x").exit_code == exits.BUNDLE_CORRUPTED


@pytest.mark.parametrize(("state", "code"), [
    ("completed", 0), ("awaiting_identity", 0), ("awaiting_approval", 0), ("rejected", 0),
    ("needs_attention", exits.NEEDS_ATTENTION), ("in_progress", exits.STILL_RUNNING),
])
def test_waited_state_codes(state: str, code: int) -> None:
    assert exits.for_waited_state(state) == code


def shop(tmp_path: Path, with_orders: bool) -> dict[str, str]:
    """A shop database (``orders`` missing unless ``with_orders``) and a map that needs it."""
    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)")
        conn.execute("INSERT INTO customer VALUES (1, 'a@example.org')")
        if with_orders:
            conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER)")
    datamap = {"systems": [{"name": "shop", "kind": "sql", "url_env": "SHOP_URL", "tables": [
        {"name": "customer", "primary_key": ["id"], "identities": {"email": "email"}},
        {"name": "orders", "primary_key": ["id"],
         "references": [{"columns": ["customer_id"], "table": "customer", "to": ["id"],
                         "direction": "inbound"}]}]}]}
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(datamap))
    signing.generate(tmp_path / "keys")
    return {"DSAR_DATAMAP": str(tmp_path / "map.yaml"), "SHOP_URL": f"sqlite:///{db}",
            "DSAR_BROKER_URL": "memory://", "DSAR_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
            "DSAR_EXPORT_URL": str(tmp_path / "exports")}


def test_submit_wait_exits_non_zero_when_the_request_needs_attention(
        cli: Cli, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = shop(tmp_path, with_orders=False)
    monkeypatch.setenv("SHOP_URL", env["SHOP_URL"])
    result = cli("submit", "erasure", "--email", "a@example.org", "--identity-verified", "test",
                 "--wait", env=env)
    assert result.exit_code == exits.NEEDS_ATTENTION, (result.output, result.exception)
    assert "needs_attention" in result.stdout.splitlines()[0]
    assert "needs attention: " in result.stdout and "orders" in result.stdout
    as_json = cli("submit", "access", "--email", "a@example.org", "--identity-verified", "test",
                  "--wait", "--json", env=env)
    assert as_json.exit_code == exits.NEEDS_ATTENTION
    assert json.loads(as_json.stdout)["state"] == "needs_attention"


def test_submit_wait_exits_zero_when_completed_or_waiting_for_a_step(
        cli: Cli, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = shop(tmp_path, with_orders=True)
    monkeypatch.setenv("SHOP_URL", env["SHOP_URL"])
    done = cli("submit", "access", "--email", "a@example.org", "--identity-verified", "test",
               "--wait", "--json", env=env)
    assert done.exit_code == 0, (done.output, done.exception)
    assert json.loads(done.stdout)["state"] == "completed"
    waiting = cli("submit", "access", "--email", "a@example.org", "--wait", env=env)
    assert waiting.exit_code == 0, (waiting.output, waiting.exception)
    assert "awaiting_identity" in waiting.stdout


def test_submit_wait_exits_8_when_the_wait_ends_before_the_request_settles(
        cli: Cli, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker serves this broker: the request stays in progress and the wait gives up."""
    from interfaces.commands import fleet

    env = {**shop(tmp_path, with_orders=True), "DSAR_BROKER_URL": "redis://127.0.0.1:6379/15"}
    monkeypatch.setattr(fleet.wait_with_progress, "__defaults__", (0.3,))
    result = cli("submit", "access", "--email", "a@example.org", "--identity-verified", "test",
                 "--wait", "--json", env=env)
    assert result.exit_code == exits.STILL_RUNNING, (result.output, result.exception)
    assert json.loads(result.stdout)["state"] == "in_progress"
