"""Lease renewal for the tasks running in this process, from one background thread.

While a task's connector works, its lease (and its system slot, and its handoff's fallback
message) is extended every third of a lease, so no other worker takes it over. One keeper per
App (``app.local(LeaseKeeper)``) serves every task it runs from one thread, started when a
lease is held and ended when none has been for a while; a task that ends stops being renewed
before its result is recorded, so a renewal never runs concurrently with that transaction.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger("dsar.worker")


@dataclass
class _Held:
    what: str
    renew: Callable[[], bool]
    interval: float
    due: float


class LeaseKeeper:
    """Calls each held task's ``renew`` every ``interval`` seconds until the task ends or
    ``renew`` returns False (the task was taken over). A ``renew`` that raises (the state
    database is briefly away) is tried again at the next interval."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[int, _Held] = {}
        self._tokens = itertools.count()
        self._renewing: int | None = None
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, what: str, renew: Callable[[], bool], interval: float) -> Iterator[None]:
        """Renew while the block runs; on leaving, wait for a renewal in progress. ``what``
        names the lease in the log (ids only)."""
        token = next(self._tokens)
        with self._cond:
            self._held[token] = _Held(what, renew, interval, time.monotonic() + interval)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease-keeper",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._held.pop(token, None)
                while self._renewing == token:
                    self._cond.wait()

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._next_due()
                if due is None:
                    self._thread = None
                    return
                token, held = due
                self._renewing = token
            try:
                still_held = held.renew()
            except Exception as exc:  # not logged whole: ids only in the log
                log.warning("could not renew the lease of %s (%s); trying again", held.what,
                            type(exc).__name__)
                still_held = True
            with self._cond:
                self._renewing = None
                if not still_held:
                    self._held.pop(token, None)
                self._cond.notify_all()

    def _next_due(self) -> tuple[int, _Held] | None:
        """Wait (holding the condition) until a held task's renewal is due; return it with its
        next renewal scheduled, or None when nothing was held for :data:`IDLE_SECONDS`."""
        while True:
            now = time.monotonic()
            if self._held:
                token, held = min(self._held.items(), key=lambda item: item[1].due)
                if held.due <= now:
                    held.due = now + held.interval
                    return token, held
                self._cond.wait(held.due - now)
            elif not self._cond.wait(IDLE_SECONDS) and not self._held:
                return None


IDLE_SECONDS = 60.0
"""How long the keeper's thread waits for a lease to hold before it ends (the next
:meth:`LeaseKeeper.hold` starts another)."""
