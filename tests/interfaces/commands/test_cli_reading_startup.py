"""Start-up loads no command module, the listed help matches each command, errors under --json
are JSON, and `dsar verify` without a trust anchor has its own exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from cli import COMMANDS, SHORT_HELP, main

ROOT = Path(__file__).resolve().parents[3]


def test_every_command_loads_and_its_listed_help_is_its_own() -> None:
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None, name
        assert SHORT_HELP[name].startswith(command.get_short_help_str(limit=300).rstrip(".")), \
            name
    assert set(SHORT_HELP) == set(COMMANDS)


def test_help_and_version_import_nothing_heavy() -> None:
    probe = ("import sys, runpy; sys.argv = ['dsar', sys.argv[1]]\n"
             "try:\n    runpy.run_module('cli', run_name='__main__')\nexcept SystemExit:\n"
             "    pass\nprint('HEAVY:' + ','.join(m for m in ('sqlalchemy', 'rich', 'dramatiq',"
             " 'boto3', 'jinja2') if m in sys.modules))")
    for flag in ("--help", "--version"):
        out = subprocess.run([sys.executable, "-c", probe, flag], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        assert out.rsplit("HEAVY:", 1)[1].strip() == "", (flag, out)


def test_errors_under_json_are_json(tmp_path: Path) -> None:
    env = {"DSAR_DATA_DIR": str(tmp_path), "DSAR_DATABASE_URL": None}
    result = CliRunner().invoke(main, ["show", "dsr_000000000000", "--json"], env=env)
    assert result.exit_code == 3
    error = json.loads(result.stdout)
    assert error["exit_code"] == 3 and "dsr_000000000000" in error["error"] and error["fix"]
    usage = CliRunner().invoke(main, ["list", "--kind", "nope", "--json"], env=env)
    assert usage.exit_code == 2 and json.loads(usage.stdout)["exit_code"] == 2
    text = CliRunner().invoke(main, ["show", "dsr_000000000000"], env=env)
    assert text.exit_code == 3 and text.stdout == ""
    assert text.stderr.startswith("error: ") and len(text.stderr.splitlines()) == 1


def test_verify_refuses_deep_json_in_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = CliRunner().invoke(main, ["verify", str(deep)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.stderr.splitlines()) == 1
    as_json = CliRunner().invoke(main, ["verify", str(deep), "--json"])
    assert as_json.exit_code == 2 and "nested" in json.loads(as_json.stdout)["error"]
