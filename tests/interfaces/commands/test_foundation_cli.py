"""The ``dsar`` command line on both state databases: output, --json, exit codes, and bad input
refused in one line with nothing changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner, Result

from cli import main
from dsar import requests
from dsar.db.engine import state_db
from dsar.db.models import Base

pytest.register_assert_rewrite("tests.state")
from tests.state import MASTER_KEY, Backend, Cli, set_state  # noqa: E402

pytest_plugins = ["tests.state"]

EMAIL = "Zelda.Quux@Example.com"
PHONE = "+49 30 123456"


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.exception is None
    assert result.stderr == ""
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def new(cli: Cli, *args: str) -> str:
    """Submit through the CLI and return the request id."""
    return as_json(cli("submit", *args, "--json"))["id"]


# -- submit, list, show ------------------------------------------------------------------------


def test_submit_prints_id_and_due_date(cli: Cli) -> None:
    result = ok(cli("submit", "access", "--email", EMAIL, "--phone", PHONE))
    lines = result.stdout.splitlines()
    rid = lines[0].split()[0]
    assert rid.startswith("dsr_")
    assert lines[0] == f"{rid} access request, awaiting_identity"
    due = (datetime.now(UTC) + timedelta(days=40)).date()
    assert lines[1].startswith("due 20")
    assert date.fromisoformat(lines[1].split()[1]) <= due
    assert "receipt code for the requester: " in lines[2]
    assert "zelda" not in result.stdout.lower() and "123456" not in result.stdout
    shown = as_json(cli("show", rid, "--json"))
    assert shown["id"] == rid and shown["submitted_by"] == "tester"
    assert shown["due"] == lines[1].split()[1]


def test_submit_json(cli: Cli) -> None:
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    data = as_json(cli("submit", "erasure", "--id", "customer_id=42", "--regime", "ccpa",
                       "--channel", "web", "--received-at", iso(received),
                       "--identity-verified", "account-login", "--json"))
    assert data["kind"] == "erasure" and data["regime"] == "ccpa" and data["channel"] == "web"
    assert data["state"] == "in_progress"
    assert datetime.fromisoformat(data["received_at"]) == received
    assert data["due"] == (received.date() + timedelta(days=45)).isoformat()
    assert data["days_left"] == 42
    assert data["rule"] == "ccpa-11ccr-7021@2025.1"
    assert len(data["receipt_code"]) == 43


def test_list_soonest_first_with_filters(cli: Cli) -> None:
    now = datetime.now(UTC)
    late = new(cli, "access", "--email", "a@example.com", "--identity-verified", "x",
               "--received-at", iso(now - timedelta(days=40)))
    soon = new(cli, "erasure", "--email", "b@example.com", "--identity-verified", "x",
               "--received-at", iso(now - timedelta(days=27)))
    later = new(cli, "export", "--email", "c@example.com")
    cancelled = new(cli, "export", "--email", "d@example.com", "--received-at",
                    iso(now - timedelta(days=39)))
    ok(cli("cancel", cancelled, "--reason", "withdrawn"))

    def ids(*args: str) -> list[str]:
        return [row["id"] for row in as_json(cli("list", *args, "--json"))]

    assert ids() == [late, cancelled, soon, later]
    assert ids("--overdue") == [late]
    assert ids("--due-within", "7d") == [late, soon]
    assert ids("--due-within", "1w") == [late, soon]
    assert ids("--due-within", "8w") == [late, soon, later]
    assert ids("--kind", "export") == [cancelled, later]
    assert ids("--kind", "export", "--kind", "erasure") == [cancelled, soon, later]
    assert ids("--state", "awaiting_identity") == [later]
    assert ids("--state", "in_progress", "--state", "cancelled") == [late, cancelled, soon]
    rows = as_json(cli("list", "--json"))
    assert [r["days_left"] for r in rows] == sorted(r["days_left"] for r in rows)
    assert rows[0]["days_left"] < 0
    text = ok(cli("list")).stdout
    assert "4 request(s), due dates in UTC" in text
    assert "0 request(s)" in ok(cli("list", "--state", "rejected")).stdout


def test_show_masks_identities_and_prints_timeline(cli: Cli) -> None:
    rid = new(cli, "access", "--email", EMAIL, "--phone", PHONE, "--id", "customer_id=4242")
    text = ok(cli("show", rid)).stdout
    assert "identities: z***@example.com, customer_id=4***, +49***56" in text
    assert "zelda.quux" not in text.lower() and "4930123456" not in text
    assert "timeline" in text and "submitted" in text
    data = as_json(cli("show", rid, "--json"))
    assert data["identities"] == ["z***@example.com", "customer_id=4***", "+49***56"]
    assert [e["event"] for e in data["timeline"]] == ["submitted", "identity_requested"]
    assert data["timeline"][0]["actor"] == "tester"
    assert data["pauses"][0]["to"] is None


def test_show_reveal_is_audited(cli: Cli) -> None:
    rid = new(cli, "access", "--email", EMAIL, "--phone", PHONE)
    text = ok(cli("show", rid, "--reveal", env={"DSAR_ACTOR": "auditor"})).stdout
    assert "identities: zelda.quux@example.com, +4930123456" in text
    data = as_json(cli("show", rid, "--json"))
    assert data["timeline"][-1]["event"] == "identities_revealed"
    assert data["timeline"][-1]["actor"] == "auditor"
    data = as_json(cli("--actor", "dpo", "show", rid, "--reveal", "--json"))
    assert data["identities"] == ["zelda.quux@example.com", "+4930123456"]
    assert [(e["event"], e["actor"]) for e in data["timeline"][-2:]] == [
        ("identities_revealed", "auditor"), ("identities_revealed", "dpo")]


# -- lifecycle commands ------------------------------------------------------------------------


def test_lifecycle_commands(cli: Cli) -> None:
    env = {"DSAR_APPROVAL_REQUIRED": "erasure"}
    rid = new(cli, "erasure", "--email", EMAIL)
    data = as_json(cli("pause", rid, "--reason", "which account?", "--json", env=env))
    assert data["state"] == "awaiting_clarification"
    assert as_json(cli("resume", rid, "--json", env=env))["state"] == "awaiting_identity"
    text = ok(cli("confirm-identity", rid, "--method", "email-link", env=env)).stdout
    assert text.startswith(f"{rid} is awaiting_approval; due ")
    data = as_json(cli("extend", rid, "--reason", "many systems", "--json", env=env))
    assert data["extended_due"] is not None and data["state"] == "awaiting_approval"
    assert as_json(cli("approve", rid, "--json", env=env))["state"] == "in_progress"
    data = as_json(cli("cancel", rid, "--reason", "withdrawn", "--json", env=env))
    assert data["state"] == "cancelled"
    shown = as_json(cli("show", rid, "--json"))
    assert [(e["event"], e["to"]) for e in shown["timeline"]] == [
        ("submitted", "received"), ("identity_requested", "awaiting_identity"),
        ("paused", "awaiting_clarification"), ("resumed", "awaiting_identity"),
        ("identity_verified", "verified"), ("approval_requested", "awaiting_approval"),
        ("extended", "awaiting_approval"), ("approved", "in_progress"),
        ("cancelled", "cancelled")]
    assert shown["identity_method"] == "email-link"
    assert shown["extension_reason"] == "many systems"
    assert shown["closing_reason"] == "withdrawn"


def test_reject_command(cli: Cli) -> None:
    rid = new(cli, "access", "--email", EMAIL)
    data = as_json(cli("reject", rid, "--reason", "not our customer", "--ground",
                       "identity-not-verified", "--json"))
    assert data["state"] == "rejected"
    assert as_json(cli("show", rid, "--json"))["closing_reason"] == (
        "Art. 12(2) and 11(2): the subject could not be identified: not our customer")


# -- db upgrade and config ---------------------------------------------------------------------


def test_db_upgrade_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DSAR_DATA_DIR": str(tmp_path), "DSAR_DATABASE_URL": postgres_url,
           "DSAR_MASTER_KEY": MASTER_KEY}
    result = runner.invoke(main, ["list"], env=env)
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: the state database schema is at nothing, not the "
                                     "latest (0006); run `dsar db upgrade`")
    assert ok(runner.invoke(main, ["db", "upgrade"], env=env)).stdout == (
        "schema upgraded from empty to 0006\n")
    assert ok(runner.invoke(main, ["db", "upgrade"], env=env)).stdout == (
        "schema already at 0006\n")
    assert json.loads(ok(runner.invoke(main, ["db", "upgrade", "--json"], env=env)).stdout) == {
        "before": "0006", "after": "0006", "changed": False}
    with state_db(postgres_url).engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert json.loads(ok(runner.invoke(main, ["list", "--json"], env=env)).stdout) == []
    state_db(postgres_url).dispose()


def test_db_upgrade_from_the_first_schema_keeps_its_requests(postgres_url: str,
                                                             tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DSAR_DATA_DIR": str(tmp_path), "DSAR_DATABASE_URL": postgres_url,
           "DSAR_MASTER_KEY": MASTER_KEY}
    state_db(postgres_url).upgrade("0001")
    state_db(postgres_url).dispose()
    assert runner.invoke(main, ["submit", "access", "--email", "ada@example.com"],
                         env=env).exit_code == 2  # refused until the schema is upgraded
    assert ok(runner.invoke(main, ["db", "upgrade"], env=env)).stdout == (
        "schema upgraded from 0001 to 0006\n")
    with state_db(postgres_url).engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    state_db(postgres_url).dispose()
    ok(runner.invoke(main, ["submit", "access", "--email", "ada@example.com"], env=env))
    assert len(json.loads(ok(runner.invoke(main, ["list", "--json"], env=env)).stdout)) == 1


def test_db_upgrade_on_sqlite(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DSAR_DATA_DIR": str(tmp_path)}
    data = json.loads(ok(runner.invoke(main, ["db", "upgrade", "--json"], env=env)).stdout)
    assert data == {"before": None, "after": "0006", "changed": True}
    assert (tmp_path / "state.sqlite3").exists() and (tmp_path / "master.key").exists()


def test_config_hides_secrets(tmp_path: Path) -> None:
    password = "pg-Secret-Pw/1"
    env = {"DSAR_DATA_DIR": str(tmp_path), "DSAR_MASTER_KEY": MASTER_KEY,
           "DSAR_DATABASE_URL": f"postgresql+psycopg://dsar:{password}@db.example:5432/dsar",
           "DSAR_BROKER_URL": "amqp://worker:Broker-Pw@mq:5672/"}
    runner = CliRunner()
    text = ok(runner.invoke(main, ["config"], env=env)).stdout
    data = json.loads(ok(runner.invoke(main, ["config", "--json"], env=env)).stdout)
    for output in (text, json.dumps(data)):
        for secret in (MASTER_KEY, password, "Broker-Pw", "pg-Secret"):
            assert secret not in output
    assert data["DSAR_DATABASE_URL"]["value"] == (
        "postgresql+psycopg://dsar:***@db.example:5432/dsar")
    assert data["DSAR_MASTER_KEY"] == {**data["DSAR_MASTER_KEY"], "value": "(set)",
                                       "source": "environment"}
    assert "DSAR_MASTER_KEY" in text and "(set)" in text
    assert not (tmp_path / "master.key").exists()


def test_help_and_version() -> None:
    runner = CliRunner()
    assert "submit" in ok(runner.invoke(main, ["--help"])).stdout
    assert ok(runner.invoke(main, ["--version"])).stdout.startswith("dsar, version ")
    result = runner.invoke(main, ["db"])
    assert "upgrade" in result.output and "Traceback" not in result.output


# -- bad input ---------------------------------------------------------------------------------


def _submitted(cli: Cli, backend: Backend) -> str:
    return new(cli, "access", "--email", "x@example.com", "--identity-verified", "x")


def _in_state(state: str) -> Callable[[Cli, Backend], str]:
    def make(cli: Cli, backend: Backend) -> str:
        rid = _submitted(cli, backend)
        if state == "cancelled":
            ok(cli("cancel", rid, "--reason", "withdrawn"))
        else:
            set_state(backend.make_app(), rid, state)
        return rid
    return make


def _extended(cli: Cli, backend: Backend) -> str:
    rid = _submitted(cli, backend)
    ok(cli("extend", rid, "--reason", "complex"))
    return rid


def _old(cli: Cli, backend: Backend) -> str:
    received = datetime.now(UTC) - timedelta(days=100)
    return new(cli, "access", "--email", "x@example.com", "--identity-verified", "x",
               "--received-at", iso(received))


def _future() -> str:
    return iso(datetime.now(UTC) + timedelta(days=1))


BAD = {
    # name: (setup, args, extra env, exit code, words in the one line)
    "malformed email": (_submitted, ["submit", "access", "--email", "jane.example.com"], {}, 2,
                        "'jane.example.com' is not a valid email address"),
    "markup-like email": (_submitted, ["submit", "access", "--email", "[/x]@[b]"], {}, 2,
                          "'[/x]@[b]' is not a valid email address"),
    "phone without country code": (_submitted, ["submit", "access", "--phone", "030 123456"],
                                   {}, 2, "phone number '030 123456' has no country code"),
    "malformed phone": (_submitted, ["submit", "access", "--phone", "+49 1"], {}, 2,
                        "'+49 1' is not a valid phone number"),
    "bad named id": (_submitted, ["submit", "access", "--id", "Customer=1"], {}, 2,
                     "identifier name 'Customer' is not usable"),
    "no identity": (_submitted, ["submit", "access"], {}, 2,
                    "a request needs at least one identity"),
    "unknown regime": (_submitted, ["submit", "access", "--email", "a@example.com",
                                    "--regime", "hipaa"], {}, 2,
                       "'hipaa' is not one of 'gdpr', 'uk_gdpr'"),
    "unknown kind": (_submitted, ["submit", "delete", "--email", "a@example.com"], {}, 2,
                     "'delete' is not one of 'access', 'export', 'erasure'"),
    "future receipt": (_submitted, ["submit", "access", "--email", "a@example.com",
                                    "--received-at", "FUTURE"], {}, 2, "is in the future"),
    "receipt without zone": (_submitted, ["submit", "access", "--email", "a@example.com",
                                          "--received-at", "2025-09-01T10:00:00"], {}, 2,
                             "receipt time 2025-09-01T10:00:00 has no time zone"),
    "receipt in year 1": (_submitted, ["submit", "access", "--email", "a@example.com",
                                       "--received-at", "0001-01-01T00:00:00+01:00"], {}, 2,
                          "is before 2000-01-01"),
    "receipt not a time": (_submitted, ["submit", "access", "--email", "a@example.com",
                                        "--received-at", "yesterday"], {}, 2,
                           "--received-at 'yesterday' is not an ISO 8601 time"),
    "unknown id (show)": (_submitted, ["show", "dsr_000000000000"], {}, 3,
                          "no request with id 'dsr_000000000000'"),
    "unknown id (cancel)": (_submitted, ["cancel", "dsr_000000000000", "--reason", "x"], {}, 3,
                            "no request with id 'dsr_000000000000'"),
    "approve completed": (_in_state("completed"), ["approve", "ID"], {}, 4,
                          "cannot approve request ID while it is completed"),
    "approve cancelled": (_in_state("cancelled"), ["approve", "ID"], {}, 4,
                          "cannot approve request ID while it is cancelled"),
    "approve in progress": (_submitted, ["approve", "ID"], {}, 4,
                            "cannot approve request ID while it is in_progress"),
    "confirm cancelled": (_in_state("cancelled"), ["confirm-identity", "ID", "--method", "x"],
                          {}, 4, "cannot confirm the identity of request ID while it is "
                                 "cancelled"),
    "resume not paused": (_submitted, ["resume", "ID"], {}, 4,
                          "cannot resume request ID while it is in_progress"),
    "pause in progress": (_submitted, ["pause", "ID", "--reason", "x"], {}, 4,
                          "cannot pause request ID while it is in_progress"),
    "second extension": (_extended, ["extend", "ID", "--reason", "again"], {}, 4,
                         "the deadline was already extended"),
    "extension after first period": (_old, ["extend", "ID", "--reason", "late"], {}, 4,
                                     "the first period ended on"),
    "extension without reason": (_submitted, ["extend", "ID", "--reason", " "], {}, 2,
                                 "an extension needs a reason"),
    "reject without reason": (_submitted, ["reject", "ID"], {}, 2,
                              "Missing option '--reason'"),
    "cancel without reason": (_submitted, ["cancel", "ID"], {}, 2,
                              "Missing option '--reason'; see `dsar cancel --help`"),
    "reject with empty reason": (_submitted, ["reject", "ID", "--reason", ""], {}, 2,
                                 "a request cannot be rejected without a reason"),
    "bad due-within": (_submitted, ["list", "--due-within", "soon"], {}, 2,
                       "--due-within 'soon' is not a duration"),
    "bad DSAR_TIMEZONE": (_submitted, ["list"], {"DSAR_TIMEZONE": "Mars/Olympus"}, 2,
                          "DSAR_TIMEZONE='Mars/Olympus' is not a known time zone"),
    "bad DSAR_TIMEZONE on submit": (_submitted, ["submit", "access", "--email", "a@example.com"],
                                    {"DSAR_TIMEZONE": "Europe/Nowhere"}, 2,
                                    "is not a known time zone"),
    "bad DSAR_MASTER_KEY": (_submitted, ["submit", "access", "--email", "a@example.com"],
                            {"DSAR_MASTER_KEY": "c2hvcnQ="}, 2,
                            "the master key in DSAR_MASTER_KEY is not base64 of 32 bytes"),
    "bad DSAR_DEFAULT_REGIME": (_submitted, ["submit", "access", "--email", "a@example.com"],
                                {"DSAR_DEFAULT_REGIME": "hipaa"}, 2,
                                "DSAR_DEFAULT_REGIME='hipaa' is not a regime"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_one_line_nothing_changed(cli: Cli, backend: Backend, case: str) -> None:
    setup, args, env, code, words = BAD[case]
    rid = setup(cli, backend)
    args = [a.replace("ID", rid).replace("FUTURE", _future()) for a in args]
    words = words.replace("ID", rid)
    before = backend.row_counts()
    assert before["requests"] >= 1
    result = cli(*args, env=env)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ")
    assert words in line
    assert "; " in line.removeprefix("error: ")  # the problem, then how to fix it
    assert backend.row_counts() == before


def test_exit_code_zero_only_on_success(cli: Cli, backend: Backend) -> None:
    waiting = new(cli, "access", "--email", "x@example.com")
    data = as_json(cli("confirm-identity", waiting, "--method", "email-link", "--json"))
    assert (data["id"], data["state"]) == (waiting, "in_progress")
    rid = _submitted(cli, backend)
    assert cli("show", rid).exit_code == 0
    assert cli("show", rid + "x").exit_code != 0
    assert cli("cancel", rid, "--reason", "x").exit_code == 0
    assert cli("cancel", rid, "--reason", "x").exit_code != 0
    assert cli("frobnicate").exit_code != 0
    app = backend.make_app()
    assert requests.load(app, rid).state == "cancelled"
