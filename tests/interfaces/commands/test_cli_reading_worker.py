"""`dsar worker` on the in-process broker (memory://) says what it does, as the RabbitMQ and
Redis workers do: a request planned, its tasks done, the request completed, and a request that
needs attention. Request and task ids only, never an identity."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chinook import chinook_map, copy_sqlite

REPO = Path(__file__).resolve().parents[3]
EMAIL = "leonie@example.com"


def dsar(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from cli import main; main()", *args],
                          env=env, capture_output=True, text=True, timeout=120, cwd=REPO)


def wait_for_line(path: Path, pattern: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text()
        if re.search(pattern, text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"no line matching {pattern!r} in:\n{path.read_text()}")


@pytest.mark.slow  # starts a worker subprocess
def test_in_process_worker_says_what_it_does(tmp_path: Path, chinook_dir: Path) -> None:
    datamap = tmp_path / "datamap.yaml"
    datamap.write_text(chinook_map("sqlite"))
    env = {**os.environ, "DSAR_DATA_DIR": str(tmp_path / "data"), "DSAR_DATAMAP": str(datamap),
           "DSAR_BROKER_URL": "memory://", "CHINOOK_URL": copy_sqlite(chinook_dir, tmp_path),
           "DSAR_LOG_FORMAT": "text"}
    assert dsar(env, "db", "upgrade").returncode == 0
    log = tmp_path / "worker.log"
    with log.open("w") as err:
        worker = subprocess.Popen(
            [sys.executable, "-c", "from cli import main; main()", "worker", "-t", "2"],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        done = dsar(env, "submit", "access", "--email", EMAIL, "--identity-verified",
                    "test", "--json")
        assert done.returncode == 0, done.stderr
        rid = re.search(r"dsr_[0-9a-f]{12}", done.stdout).group(0)  # type: ignore[union-attr]
        text = wait_for_line(log, rf"request {rid} completed")
        assert re.search(rf"planned request {rid}: \d+ task\(s\)", text), text
        assert re.search(r"task \d+ done", text), text
        # a broken data map: planning cannot succeed, no retry can mend it
        datamap.write_text("systems: 42\n")
        bad = dsar(env, "submit", "access", "--email", EMAIL, "--identity-verified", "test",
                   "--json")
        assert bad.returncode == 0, bad.stderr
        bad_id = re.search(r"dsr_[0-9a-f]{12}", bad.stdout).group(0)  # type: ignore[union-attr]
        text = wait_for_line(log, rf"request {bad_id} needs attention")
        assert EMAIL not in text and "Traceback" not in text
    finally:
        worker.terminate()
        out, _ = worker.communicate(timeout=60)
    assert "in-process fleet running" in out
    shown = dsar(env, "show", bad_id, "--json")
    assert '"needs_attention"' in shown.stdout or "needs_attention" in log.read_text()
