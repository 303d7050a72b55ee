"""Fixtures for the foundation tests: an :class:`~dsar.app.App` on SQLite or PostgreSQL with a
clock the test controls, the CLI environment for the same database, and plain-SQL access to the
raw state database (no models) to check what is really stored.

Test modules load these with ``pytest_plugins = ["tests.state"]``. The PostgreSQL database is
created and migrated once per session and emptied before each test; each SQLite test gets a copy
of a file migrated once per session.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy import event

from cli import main
from dsar import requests
from dsar.app import App
from dsar.crypto import Keys
from dsar.db.engine import StateDB, state_db
from dsar.db.models import AuditEvent, Base, Request
from dsar.identities import parse_identities
from dsar.settings import Settings
from tests import services

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
#: The suite runs in the mode DSAR_SQL_FAST_PATH names (CI runs it in both; see infra/test.sh).
FAST_PATH = Settings.from_env({"DSAR_SQL_FAST_PATH": os.environ.get("DSAR_SQL_FAST_PATH", "")}
                              ).sql_fast_path
BACKENDS = ["sqlite", "postgresql"]
#: A Monday morning; tests that need another moment move the clock.
START = datetime(2025, 9, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A settable clock for ``App(clock=...)``."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@dataclass
class Backend:
    """One state database for one test."""

    name: str
    url: str
    data_dir: Path
    #: the DSAR_* environment the App and the CLI are built from
    env: dict[str, str] = field(default_factory=dict)

    def make_app(self, clock: Callable[[], datetime] | None = None, **env: str) -> App:
        """An App on this (migrated) database, with extra settings ``env`` and ``clock``."""
        settings = Settings.from_env({**self.env, **env})
        keys = Keys.load(settings.master_key, settings.data_dir)
        return App(settings=settings, keys=keys,
                   db=state_db(settings.database_url, settings.sql_fast_path),
                   clock=clock or Clock())

    # -- plain SQL, no models --------------------------------------------------------------

    def tables(self) -> list[str]:
        with self._raw() as cur:
            return self._tables(cur)

    def _tables(self, cur: Any) -> list[str]:
        if self.name == "sqlite":
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY name")
        else:
            cur.execute("SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'public' ORDER BY table_name")
        return [row[0] for row in cur.fetchall()]

    def row_counts(self) -> dict[str, int]:
        """Rows in every table of the database, found by the database, not by the models."""
        with self._raw() as cur:
            names = self._tables(cur)
            cur.execute("SELECT " + ", ".join(f'(SELECT count(*) FROM "{n}")' for n in names))
            return dict(zip(names, cur.fetchone(), strict=True))

    def all_values(self) -> Iterator[tuple[str, Any]]:
        """Every value of every column of every row: (table, value)."""
        names = self.tables()
        with self._raw() as cur:
            for name in names:
                cur.execute(f'SELECT * FROM "{name}"')
                for row in cur.fetchall():
                    for value in row:
                        yield name, value

    def file_bytes(self) -> bytes:
        """SQLite only: the database file and its WAL, as bytes."""
        assert self.name == "sqlite"
        path = Path(sa.make_url(self.url).database or "")
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())

    def _raw(self) -> Any:
        if self.name == "sqlite":
            return _SqliteCursor(sa.make_url(self.url).database or "")
        conninfo = sa.make_url(self.url).set(drivername="postgresql")
        return _PgCursor(conninfo.render_as_string(hide_password=False))


class _SqliteCursor:
    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)

    def __enter__(self) -> sqlite3.Cursor:
        return self.conn.cursor()

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


class _PgCursor:
    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo, autocommit=True)

    def __enter__(self) -> psycopg.Cursor[Any]:
        return self.conn.cursor()

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def submit(app: App, kind: str = "access", *, email: str | None = "jane@example.com",
           phone: str | None = None, ids: tuple[str, ...] = (), by: str = "alice",
           **options: Any) -> Request:
    """Submit a request through :func:`dsar.requests.submit` and return it."""
    identities = parse_identities([email] if email else [], [phone] if phone else [], ids)
    return requests.submit(app, kind, identities, submitted_by=by, **options).request


def set_state(app: App, request_id: str, state: str) -> None:
    """Put a request straight into ``state`` (e.g. completed, which the foundation has no
    command for), with its audit event, as the workers would."""
    with app.db.session() as session:
        request = session.get(Request, request_id)
        assert request is not None
        session.add(AuditEvent(request_id=request_id, at=app.now(), actor="test",
                               event="forced", from_state=request.state, to_state=state,
                               reason=None))
        request.state, request.updated_at = state, app.now()


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def session_postgres_url() -> Iterator[str]:
    """One PostgreSQL database for the session, migrated once."""
    url = services.create_postgres_database("dsar_foundation")
    name = sa.make_url(url).database
    with state_db(url).engine.connect() as conn:  # a throwaway database: skip the fsyncs
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        conn.commit()
    state_db(url).dispose()
    state_db(url).upgrade()
    yield url
    state_db(url).dispose()
    services.drop_postgres_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite state file, copied for each test (faster than migrating each)."""
    path = tmp_path_factory.mktemp("template") / "state.sqlite3"
    db = StateDB(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not Path(f"{path}-wal").exists()
    return path


def _no_sync(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA synchronous=OFF")


def _empty(url: str) -> None:
    """Delete every row (children first): much faster than TRUNCATE on near-empty tables."""
    with state_db(url).engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The state database of one test: a SQLite file in ``tmp_path``, or the session's
    PostgreSQL database emptied for this test."""
    data_dir = tmp_path / "data"
    env = {"DSAR_DATA_DIR": str(data_dir), "DSAR_MASTER_KEY": MASTER_KEY,
           "DSAR_SQL_FAST_PATH": str(FAST_PATH).lower()}
    if request.param == "sqlite":
        data_dir.mkdir()
        shutil.copyfile(request.getfixturevalue("sqlite_template"), data_dir / "state.sqlite3")
        url = f"sqlite:///{data_dir / 'state.sqlite3'}"
        # a throwaway file: skip the fsyncs (the CLI shares this cached engine)
        event.listen(state_db(url, FAST_PATH).engine, "connect", _no_sync)
    else:
        url = request.getfixturevalue("session_postgres_url")
        _empty(url)
        env["DSAR_DATABASE_URL"] = url
    return Backend(request.param, url, data_dir, env)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(backend: Backend, clock: Clock) -> App:
    """An App on the test's database (both backends) with the test's clock."""
    return backend.make_app(clock)


@dataclass
class Cli:
    """Runs ``dsar`` in-process with the backend's environment."""

    backend: Backend
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        full_env: dict[str, str | None] = {
            **self.backend.env, "DSAR_ACTOR": "tester", **(env or {})}
        for name in os.environ:  # the test's settings only, whatever the shell has
            if name.startswith("DSAR_") and name not in full_env:
                full_env[name] = None
        return self.runner.invoke(main, list(args), env=full_env, catch_exceptions=True,
                                  prog_name="dsar")


@pytest.fixture
def cli(backend: Backend) -> Cli:
    return Cli(backend)
