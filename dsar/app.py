"""The application context: settings, keys, the state database and the clock, built once.

Everything that reads or writes state takes an :class:`App`, so tests can give it a fixed clock
and a throwaway database, and the CLI and the workers build theirs from the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dsar.crypto import Keys
from dsar.db.engine import StateDB, state_db
from dsar.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    keys: Keys
    db: StateDB
    clock: Callable[[], datetime] = field(default=utc_now)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, migrate: bool = True) -> App:
        """Build the context. In the embedded default the schema is upgraded automatically
        (a single local file, nobody else using it); elsewhere ``dsar db upgrade`` does it."""
        settings = Settings.from_env(environ)
        keys = Keys.load(settings.master_key, settings.data_dir, settings.master_key_file)
        db = state_db(settings.database_url)
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
