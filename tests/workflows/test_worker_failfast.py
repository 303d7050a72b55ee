"""Workers that cannot succeed refuse to start, and errors no retry can mend stop at once.

- ``dsar worker`` without a signing key, or with a master key that cannot read the state
  database's data, exits non-zero with one line that names the fix (no traceback);
- a ``master.key`` file other users can read is refused, as signing keys are;
- a step that fails permanently (here: a request written with another master key) puts its
  request in ``needs attention`` at once, without Dramatiq's retries.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

from dsar.app import App
from dsar.crypto import Keys
from dsar.errors import InvalidInput
from tests.chinook import chinook_map, copy_sqlite
from tests.workflows.fleet_helpers import Fleet, dsar_cli, redis_db
from workflows.runtime import InProcessFleet

pytestmark = [pytest.mark.postgres]
OTHER_KEY = base64.b64encode(bytes(range(32))).decode()


def make_fleet(tmp_path: Path, chinook_dir: Path, postgres_url: str, broker: str) -> Fleet:
    chinook = copy_sqlite(chinook_dir, tmp_path)
    return Fleet(tmp_path / "fleet", postgres_url, broker, chinook_map("sqlite"),
                 {"CHINOOK_URL": chinook})


def refused(fleet: Fleet, **env: str) -> str:
    """Run ``dsar worker`` and return its one-line refusal (it must exit quickly, non-zero)."""
    _ = fleet.app  # migrated, as `dsar db upgrade` would have
    started = time.monotonic()
    done = dsar_cli({**fleet.env, **env}, "worker", "-p", "1", timeout=60)
    assert done.returncode != 0, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.redis
def test_worker_refuses_to_start_without_a_signing_key(tmp_path: Path, chinook_dir: Path,
                                                       postgres_url: str) -> None:
    with redis_db() as broker:
        fleet = make_fleet(tmp_path, chinook_dir, postgres_url, broker)
        try:
            empty = tmp_path / "no-keys"
            line = refused(fleet, DSAR_SIGNING_KEYS_DIR=str(empty))
            assert "no signing key" in line and "dsar keys generate" in line
            assert not empty.exists() or not any(empty.iterdir()), "a worker never makes one"
        finally:
            fleet.close()


@pytest.mark.redis
def test_worker_refuses_a_master_key_that_cannot_read_the_data(
        tmp_path: Path, chinook_dir: Path, postgres_url: str) -> None:
    with redis_db() as broker:
        fleet = make_fleet(tmp_path, chinook_dir, postgres_url, broker)
        try:
            fleet.submit("access")  # sealed with the fleet's key
            line = refused(fleet, DSAR_MASTER_KEY=OTHER_KEY)
            assert "master key cannot decrypt" in line and "DSAR_MASTER_KEY" in line
            assert OTHER_KEY not in line
        finally:
            fleet.close()


def test_master_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    Keys.load(None, tmp_path)  # generated 0600
    path = tmp_path / "master.key"
    for mode in (0o640, 0o604, 0o644):
        path.chmod(mode)
        with pytest.raises(InvalidInput) as err:
            Keys.load(None, tmp_path)
        assert "can be read by other users" in err.value.problem
        assert err.value.fix == f"run `chmod 600 {path}`"
    path.chmod(0o600)
    assert len(Keys.load(None, tmp_path).master) == 32


def test_permanent_error_needs_attention_at_once(tmp_path: Path, chinook_dir: Path,
                                                 postgres_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A request sealed with another master key than the worker's: planning cannot decrypt its
    identities, and no retry would. It goes to needs attention on the first attempt."""
    fleet = make_fleet(tmp_path, chinook_dir, postgres_url, "memory://")
    fleet.apply_env(monkeypatch)
    try:
        other = App.from_env({**os.environ, **fleet.env, "DSAR_MASTER_KEY": OTHER_KEY},
                             migrate=False)
        _ = fleet.app
        from dsar import requests
        from dsar.identities import parse_identities

        sub = requests.submit(other, "access", parse_identities(["luisg@embraer.com.br"]),
                              submitted_by="test", identity_method="test")
        other.db.dispose()
        started = time.monotonic()
        with InProcessFleet(fleet.app, threads=2):
            states = fleet.wait_settled([sub.request.id], timeout=20)
        assert states == {sub.request.id: "needs_attention"}
        assert time.monotonic() - started < 10, "not retried with Dramatiq's backoff"
        reason = requests.load(fleet.app, sub.request.id).attention_reason or ""
        assert reason.startswith("plan_request failed: ") and "could not be decrypted" in reason
        assert "luisg" not in reason
    finally:
        fleet.close()
