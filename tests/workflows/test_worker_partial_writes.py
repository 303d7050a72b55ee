"""The ``.part`` file a killed bundle write leaves in a local store is swept, once it is old
enough that no write can still be under way; bundles and other files are never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dsar.bundles.store import LocalBundleStore
from tests.workflows.fleet_helpers import wait_until
from workflows.housekeeping import PARTIAL_GRACE, delete_partial_writes

WRITER = textwrap.dedent("""
    import sys, time
    from dsar.bundles.store import LocalBundleStore

    def chunks():
        yield b"x" * 4096
        print("writing", flush=True)
        time.sleep(60)
        yield b"never"

    LocalBundleStore(sys.argv[1]).write_stream("b_killed.zip.dsar", chunks())
""")


def killed_write(root: Path) -> Path:
    """Run a bundle write in a process and SIGKILL it halfway; return the file it left."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    return wait_until(lambda: next(iter(root.glob(".b_killed.zip.dsar.*.part")), None), 5,
                      "the partial file of the killed write")


def test_a_killed_writes_partial_file_is_swept_after_the_grace(tmp_path: Path) -> None:
    store = LocalBundleStore(tmp_path / "bundles")
    store.write_stream("b_kept.zip.dsar", [b"bundle"])
    left = killed_write(store.root)
    other = store.root / ".not-ours.part"
    other.write_bytes(b"")
    now = datetime.now(UTC)
    assert delete_partial_writes(store, now) == [], "a young one may be a write under way"
    assert left.exists()
    old = (now - PARTIAL_GRACE - timedelta(minutes=1)).timestamp()
    os.utime(left, (old, old))
    os.utime(other, (old, old))
    assert delete_partial_writes(store, now) == [left.name]
    assert not left.exists() and other.exists()
    assert sorted(store.names()) == ["b_kept.zip.dsar"]
    assert not store.exists("b_killed.zip.dsar")
