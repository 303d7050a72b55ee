"""The application context: settings, keys, the state database and the clock, built once.

Everything that reads or writes state takes an :class:`App`, so tests can give it a fixed clock
and a throwaway database, and the CLI and the workers build theirs from the environment. What
an App's work keeps between calls (the parsed data map, the lease keeper's thread, the
housekeeping's last sweeps) lives on the App too (:meth:`App.local`), and ends with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from dsar.crypto import Keys
from dsar.db.engine import StateDB, state_db
from dsar.settings import Settings

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _nothing(_task_id: int) -> None:
    return None


@dataclass
class Hooks:
    """Where a test injects a fault or a delay into the fleet's work; no-ops unless a test sets
    them (on the App it gives the fleet, or in a worker process through ``dsar worker
    --test-hook``)."""

    #: Called with a task's id after its connector call returned (an erasure committed, the
    #: collected data staged) and before its result is recorded.
    after_connector: Callable[[int], None] = _nothing


@dataclass
class App:
    """The context of one process's work. ``environ`` holds the variables the data map's
    ``*_env`` names (database URLs, API keys) are read from; None reads the process's
    environment when a connector opens."""

    settings: Settings
    keys: Keys
    db: StateDB
    clock: Callable[[], datetime] = field(default=utc_now)
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    hooks: Hooks = field(default_factory=Hooks)
    _locals: dict[Callable[[], Any], Any] = field(default_factory=dict, init=False, repr=False,
                                                  compare=False)
    _locals_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                         repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, migrate: bool = True) -> App:
        """Build the context with the settings of ``environ`` (None: the process's
        environment); connectors still read the process's environment unless
        :attr:`environ` is set. In the embedded default the schema is upgraded automatically
        (a single local file, nobody else using it); elsewhere ``dsar db upgrade`` does it."""
        settings = Settings.from_env(environ)
        keys = Keys.load(settings.master_key, settings.data_dir, settings.master_key_file)
        db = state_db(settings.database_url, fast_path=settings.sql_fast_path)
        app = cls(settings=settings, keys=keys, db=db)
        if migrate:
            if settings.database_url.startswith("sqlite"):
                if db.current_revision() != db.head_revision():
                    db.upgrade()
            else:
                db.require_current()
        return app

    def now(self) -> datetime:
        return self.clock()

    def local(self, factory: Callable[[], T]) -> T:
        """The one object ``factory()`` made for this App, made on first use (thread-safe).
        Caches and helpers that outlive a call belong here, so they live as long as the App
        and two Apps (two tests, two data maps) never share them. ``factory`` is the key: pass
        the same callable (a class) every time."""
        try:
            return self._locals[factory]  # type: ignore[no-any-return]
        except KeyError:
            pass
        with self._locals_lock:
            if factory not in self._locals:
                self._locals[factory] = factory()
            return self._locals[factory]  # type: ignore[no-any-return]
