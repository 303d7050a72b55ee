"""Worker child processes end when the process that started them dies.

``dsar worker`` becomes Dramatiq's parent process, which forks the worker processes (and the
metrics server). When the parent is killed outright (SIGKILL, the OOM killer) it cannot tell its
children to stop, and they would live on as orphans, still consuming from the broker. Each
child calls :func:`die_with_parent` as it starts:

- on Linux, the kernel's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``) sends it
  SIGTERM the moment its parent exits; Dramatiq's handler then finishes the messages in hand
  and stops, exactly as on ``kill -TERM`` (a parent that exits normally waits for its children
  first, so they never see this signal twice);
- elsewhere, a daemon thread polls :func:`os.getppid` every :data:`POLL_SECONDS` and sends the
  same SIGTERM when the parent has changed.

A parent that died before the call is caught too: the parent recorded by :mod:`multiprocessing`
is compared with the live one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def _expected_parent() -> int | None:
    """The pid of the process that started this one, as :mod:`multiprocessing` recorded it;
    None when this process is not a multiprocessing child (then there is nothing to follow)."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else None


def _set_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, sig: int) -> None:
    stop = threading.Event()
    while not stop.wait(POLL_SECONDS):
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)
            return


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> str:
    """Arrange for ``sig`` to reach this process when ``parent`` (default: the multiprocessing
    parent) dies. Returns how: ``"pdeathsig"``, ``"watchdog"``, or ``"none"`` when there is no
    parent to follow. If the parent is already gone, ``sig`` is sent at once."""
    parent = parent if parent is not None else _expected_parent()
    if parent is None:
        return "none"
    how = "pdeathsig" if _set_pdeathsig(sig) else "watchdog"
    if how == "watchdog":
        threading.Thread(target=_watch, args=(parent, sig), name="dsar-lifeline",
                         daemon=True).start()
    if os.getppid() != parent:  # died before the signal was armed
        os.kill(os.getpid(), sig)
    return how
