"""Engines and sessions for the state database, and its migrations.

``open_state(settings)`` is the one way code gets at the state database. SQLite (the embedded
default) runs in WAL mode with foreign keys on and a busy timeout so worker threads and the CLI
can share the file; PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dsar.errors import DsarError

MIGRATIONS = Path(__file__).parent / "migrations"


def create_state_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings the state database needs on each dialect."""
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below take over
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front, so two writers never deadlock on upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pre-ping: it costs a round trip per transaction. A connection that died while pooled
    # fails its first statement instead, SQLAlchemy then discards the whole pool, and the
    # caller's retry (task retries, relay and watch loops) runs on fresh connections.
    # Connections open lazily and up to 20 stay pooled: enough for a worker process's threads,
    # relay, watch and lease renewals (-t up to 16) to never close and reopen connections,
    # which costs a PostgreSQL backend start each time.
    return sa.create_engine(parsed, pool_size=20, max_overflow=20)


class StateDB:
    """The state database: an engine, a session factory and its migrations."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_state_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision``."""
        from alembic import command

        with self.engine.begin() as conn:
            cfg = _alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_alembic_config(self.url)).get_current_head()
        assert head is not None
        return head

    def require_current(self) -> None:
        """Raise a DsarError naming the fix unless the schema is at the latest migration."""
        current = self.current_revision()
        if current != self.head_revision():
            raise DsarError(
                f"the state database schema is at {current or 'nothing'}, not the latest "
                f"({self.head_revision()})",
                "run `dsar db upgrade`",
            )

    def dispose(self) -> None:
        self.engine.dispose()


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@cache
def state_db(url: str) -> StateDB:
    """One StateDB per URL per process (engines hold connection pools)."""
    return StateDB(url)
