"""Engines and sessions for the state database, and its migrations.

:func:`state_db` (one :class:`StateDB` per URL per process, reached through the App) is the
one way code gets at the state database. SQLite (the embedded default) runs in WAL mode with
foreign keys on and a busy timeout so worker threads and the CLI can share the file; PostgreSQL
goes through psycopg 3.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dsar.db.direct import without_fast_path
from dsar.errors import DsarError, InvalidInput

# Alembic announces each of its plugins at INFO whenever a migration context is set up (several
# lines per process start, in Alembic's words between dsar's): held at WARNING unless the
# process configured that logger itself.
if logging.getLogger("alembic.runtime.plugins").level == logging.NOTSET:
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).parent / "migrations"


_URL_EXAMPLES = "write e.g. postgresql+psycopg://user:password@host:5432/dsar or sqlite:///path"


def create_state_engine(url: str, fast_path: bool = True) -> Engine:
    """An engine for ``url`` with the settings the state database needs on each dialect; raises
    InvalidInput (one line, no password) when the URL cannot be parsed or names a driver that is
    not installed. Without ``fast_path`` every statement on it goes through SQLAlchemy
    (:func:`dsar.db.direct.without_fast_path`)."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise InvalidInput("DSAR_DATABASE_URL is not a database URL", _URL_EXAMPLES) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = _engine(parsed)
    except (sa.exc.NoSuchModuleError, ImportError, ValueError, TypeError) as exc:
        # ValueError, TypeError: a malformed driver name or query option
        raise InvalidInput(
            f"DSAR_DATABASE_URL names the driver {parsed.drivername!r}, which dsar cannot load "
            f"with its options ({type(exc).__name__})", _URL_EXAMPLES) from None
    return engine if fast_path else without_fast_path(engine)


class StateDatabaseUnreachable(DsarError):
    """The state database could not be reached: refused, unknown host, wrong password."""

    exit_code = 5


def unreachable(exc: BaseException) -> StateDatabaseUnreachable | None:
    """The one-line error for ``exc`` when it says the state database (``DSAR_DATABASE_URL``)
    could not be reached, else None. For the command line only: workers keep the original
    error, which their retries know for a transient one."""
    not_a_database = isinstance(exc, sa.exc.DatabaseError) and "file is not a database" in str(
        getattr(exc, "orig", ""))
    if not (not_a_database or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)):
        return None
    from dsar.settings import Settings

    try:
        url = sa.make_url(Settings.from_env().database_url)
        where = f" {url.render_as_string(hide_password=True)}"
    except Exception:  # the URL is shown as a courtesy only
        where = ""
    lines = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()
    return StateDatabaseUnreachable(
        f"cannot reach the state database{where}: {lines[0] if lines else type(exc).__name__}",
        "check DSAR_DATABASE_URL (host, port, user, password, database) and that the server "
        "is running; `dsar config` shows the URL in use",
    )


def _engine(parsed: sa.URL) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidInput(
                    f"the folder of the SQLite state database {parsed.database} cannot be "
                    f"made ({exc.strerror or type(exc).__name__})",
                    "set DSAR_DATABASE_URL (or DSAR_DATA_DIR) to a folder you can write") from None
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


WAKE_RELAY = "wake_relay"
"""The key of ``session.info`` that, set to True, asks :attr:`StateDB.committed` to be set once
the session's transaction commits (see :mod:`dsar.outbox`)."""


class StateDB:
    """The state database: an engine, a session factory and its migrations.

    :attr:`committed` is set after each commit of one of its sessions whose ``info`` asked for
    it (:data:`WAKE_RELAY`), so an outbox relay on this database publishes at once instead of
    at its next poll."""

    def __init__(self, url: str, fast_path: bool = True) -> None:
        self.url = url
        self.engine = create_state_engine(url, fast_path)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.committed = threading.Event()
        event.listen(self._sessions, "after_commit", self._after_commit)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(WAKE_RELAY, False):
            self.committed.set()

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
def state_db(url: str, fast_path: bool = True) -> StateDB:
    """One StateDB per URL (and ``fast_path``) per process (engines hold connection pools)."""
    return StateDB(url, fast_path)
