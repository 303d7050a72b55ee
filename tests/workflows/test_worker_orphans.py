"""A ``dsar worker`` whose parent process is killed outright leaves no orphans behind.

Its Dramatiq worker processes (and the metrics server process) carry the parent-death signal
(:mod:`workflows.lifeline`): SIGKILL on the parent alone, and every child is gone within
seconds instead of consuming from the broker for as long as nobody notices.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.chinook import chinook_map, copy_sqlite
from tests.workflows.fleet_helpers import Fleet, redis_db, wait_until
from tests.workflows.private_rabbit import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def children_of(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_children_exit_when_the_parent_is_killed(tmp_path: Path, chinook_dir: Path,
                                                 postgres_url: str) -> None:
    with redis_db() as broker:
        fleet = Fleet(tmp_path / "fleet", postgres_url, broker, chinook_map("sqlite"),
                      {"CHINOOK_URL": copy_sqlite(chinook_dir, tmp_path)})
        children: set[int] = set()
        try:
            parent = fleet.start_worker(processes=2, threads=1,
                                        args=("--metrics-port", str(free_port())))
            children = wait_until(lambda: (c := children_of(parent.pid)) and len(c) >= 3 and c,
                                  30, "two worker processes and the metrics server")
            os.kill(parent.pid, signal.SIGKILL)  # the parent only, as the OOM killer would
            parent.wait(10)
            started = time.monotonic()
            wait_until(lambda: not any(alive(c) for c in children), 15,
                       "the children of the killed parent to exit")
            print(f"children gone {time.monotonic() - started:.1f} s after the parent's SIGKILL")
        finally:
            for child in children:
                if alive(child):
                    os.kill(child, signal.SIGKILL)
            fleet.close()
