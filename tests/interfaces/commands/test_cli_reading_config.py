"""`dsar config` shows every setting the code reads, with its source and typed values, and
reads at 80 columns."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

from click.testing import CliRunner, Result

import interfaces.commands.output  # noqa: F401  (its consoles made before a test sets COLUMNS)
from cli import main
from dsar.settings import SETTINGS_DOC, Settings, env_name

ROOT = Path(__file__).resolve().parents[3]
MASTER_KEY = "q2rTzPj0iLS6+Hxg5mQWcQ1l2e2xbYhGq1K7mQ8J7pE="
def run(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_every_setting_is_shown_by_dsar_config() -> None:
    """Every field of Settings has its variable in SETTINGS_DOC, which `dsar config` and the
    README show (that nothing else reads a DSAR_* variable: tests/test_hidden_state.py)."""
    assert set(SETTINGS_DOC) == {env_name(f.name) for f in fields(Settings)}


def test_config_at_80_columns_shows_every_setting_and_its_source_whole(tmp_path: Path) -> None:
    env = {"COLUMNS": "80", "DSAR_DATA_DIR": str(tmp_path), "DSAR_TASK_LEASE_SECONDS": "7",
           "DSAR_APPROVAL_REQUIRED": "erasure,export"}
    ok(run("db", "upgrade", env=env))  # generates the master key file
    out = ok(run("config", env=env))
    assert all(len(line) <= 80 for line in out.splitlines()), out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("DSAR_")}
    assert set(lines) == set(SETTINGS_DOC)
    assert lines["DSAR_TASK_LEASE_SECONDS"][1:] == ["7", "environment"]
    assert lines["DSAR_APPROVAL_REQUIRED"][1:] == ["erasure,export", "environment"]
    assert lines["DSAR_MASTER_KEY"][-1] == "file"
    assert lines["DSAR_SMTP_STARTTLS"][1:] == ["no", "default"]
    # a value longer than the room left wraps, but nothing of it is cut
    assert f"sqlite:///{tmp_path}/state.sqlite3" in re.sub(r"\s+(default\s*)?", "", out)
    wide = ok(run("config", env={**env, "COLUMNS": "200"}))
    assert "meaning" in wide and "the data map file" in wide


def test_config_json_has_typed_values_and_sources(tmp_path: Path) -> None:
    env = {"DSAR_DATA_DIR": str(tmp_path), "DSAR_MASTER_KEY": MASTER_KEY,
           "DSAR_WATCH_INTERVAL": "2.5", "DSAR_METRICS_PORT": "9191",
           "DSAR_SMTP_STARTTLS": "yes", "DSAR_APPROVAL_REQUIRED": "erasure",
           "DSAR_SMTP_PASSWORD": "smtp-Secret"}
    data = json.loads(ok(run("config", "--json", env=env)))
    assert set(data) == set(SETTINGS_DOC)
    value = {name: entry["value"] for name, entry in data.items()}
    assert value["DSAR_WATCH_INTERVAL"] == 2.5
    assert value["DSAR_METRICS_PORT"] == 9191
    assert value["DSAR_LINK_TTL_DAYS"] == 30
    assert value["DSAR_SMTP_STARTTLS"] is True
    assert value["DSAR_APPROVAL_REQUIRED"] == ["erasure"]
    assert value["DSAR_HOLIDAY_CALENDAR"] is None
    assert value["DSAR_MASTER_KEY"] == "(set)" and value["DSAR_SMTP_PASSWORD"] == "(set)"
    assert MASTER_KEY not in json.dumps(data) and "smtp-Secret" not in json.dumps(data)
    assert data["DSAR_WATCH_INTERVAL"]["source"] == "environment"
    assert data["DSAR_LOG_FORMAT"] == {**data["DSAR_LOG_FORMAT"], "source": "default",
                                       "field": "log_format", "value": "text"}


def test_a_bad_fleet_setting_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    for name, raw in (("DSAR_TASK_LEASE_SECONDS", "soon"), ("DSAR_WATCH_INTERVAL", "-1"),
                      ("DSAR_METRICS_PORT", "99999")):
        result = run("config", env={"DSAR_DATA_DIR": str(tmp_path), name: raw})
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "set " in lines[0], result.output
