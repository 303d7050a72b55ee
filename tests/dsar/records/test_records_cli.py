"""The record commands end to end, and the openssl steps and script in docs/verify.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from test_records_record_setup import BACKENDS, complete_request, make_app

from cli import DsarGroup
from dsar.app import App
from interfaces.commands import records as commands
from interfaces.commands.context import CliState

DOCS = Path(__file__).resolve().parents[3] / "docs"


@click.group(cls=DsarGroup)
@click.pass_context
def root(ctx: click.Context) -> None:
    ctx.obj = CliState(actor="tester")


for _command in (commands.record, commands.verify, commands.keys, commands.ledger,
                 commands.report):
    root.add_command(_command)


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    yield from make_app(request.param, tmp_path)


def invoke(app: App | None, *args: str, env: dict[str, str] | None = None) -> Result:
    environ = {"DSAR_DATA_DIR": str(app.settings.data_dir),
               "DSAR_DATABASE_URL": app.db.url,
               "DSAR_LEDGER_ORIGIN": app.settings.ledger_origin} if app else {}
    return CliRunner().invoke(root, list(args), env={**environ, **(env or {})})


def test_record_ledger_keys_and_verify(app: App, tmp_path: Path) -> None:
    request_id = complete_request(app)
    complete_request(app)
    out = tmp_path / "record.json"
    assert invoke(app, "record", request_id, "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["request_id"] == request_id
    page = tmp_path / "record.html"
    result = invoke(app, "record", request_id, "--html", "-o", str(page))
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "All checks passed" in html and request_id in html and "<script" not in html
    assert invoke(app, "ledger", "checkpoint", "--json").exit_code == 0
    key = tmp_path / "keys.pem"
    assert invoke(app, "keys", "export-public", "-o", str(key)).exit_code == 0
    led = tmp_path / "ledger.json"
    result = invoke(app, "ledger", "export", "-o", str(led), "--json")
    assert result.exit_code == 0 and json.loads(result.output)["size"] == 2
    # offline: no database settings at all
    result = invoke(None, "verify", str(out), "--public-key", str(key), "--ledger", str(led),
                    env={"DSAR_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    assert result.exit_code == 0, result.output
    assert "record verified" in result.output and "pass  ledger-entry" in result.output
    result = invoke(None, "verify", str(out), "--json")  # no trust anchor: its own exit code
    assert result.exit_code == 9 and json.loads(result.output)["ok"] is True
    assert json.loads(result.output)["origin_checked"] is False


def test_errors_are_one_line_with_a_fix(app: App, tmp_path: Path) -> None:
    result = invoke(app, "record", "dsr_000000000000")
    assert result.exit_code == 3 and "no completion record" in result.output
    result = invoke(None, "verify", str(tmp_path / "missing.json"))
    assert result.exit_code == 3 and "does not exist" in result.output
    (tmp_path / "junk.json").write_text("{")
    result = invoke(None, "verify", str(tmp_path / "junk.json"))
    assert result.exit_code == 2 and "is not JSON" in result.output
    assert "Traceback" not in result.output


def test_keys_generate_rotate(tmp_path: Path) -> None:
    env = {"DSAR_SIGNING_KEYS_DIR": str(tmp_path / "ring"), "DSAR_DATA_DIR": str(tmp_path)}
    first = invoke(None, "keys", "generate", "--json", env=env)
    assert first.exit_code == 0, first.output
    again = invoke(None, "keys", "generate", env=env)
    assert again.exit_code == 2 and "keys rotate" in again.output
    second = invoke(None, "keys", "rotate", "--json", env=env)
    assert json.loads(second.output)["keyid"] != json.loads(first.output)["keyid"]
    exported = invoke(None, "keys", "export-public", env=env).output
    assert exported.count("BEGIN PUBLIC KEY") == 2 and "(retired)" in exported


def _openssl_block() -> str:
    text = (DOCS / "verify.md").read_text()
    section = text.split("## Verify the signature with openssl", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match
    return match.group(1)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_documented_openssl_steps_and_script_work(backend: str, tmp_path: Path) -> None:
    for app in make_app(backend, tmp_path):
        request_id = complete_request(app)
        work = tmp_path / "reviewer"
        work.mkdir()
        assert invoke(app, "record", request_id, "-o", str(work / "record.json")).exit_code == 0
        assert invoke(app, "keys", "export-public", "-o", str(work / "key.pem")).exit_code == 0
        script = "set -euo pipefail\n" + _openssl_block()
        done = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "Signature Verified Successfully" in done.stdout
        run = [sys.executable, str(DOCS / "verify_record.py"), "record.json", "key.pem"]
        done = subprocess.run(run, cwd=work, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "record verified" in done.stdout and "FAIL" not in done.stdout
        # both notice a tampered payload
        bundle = json.loads((work / "record.json").read_text())
        payload = bundle["envelope"]["payload"]
        bundle["envelope"]["payload"] = ("B" if payload[0] != "B" else "C") + payload[1:]
        (work / "record.json").write_text(json.dumps(bundle))
        done = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True)
        assert done.returncode != 0
        done = subprocess.run(run, cwd=work, capture_output=True, text=True)
        assert done.returncode == 1 and "FAIL  signature" in done.stdout
