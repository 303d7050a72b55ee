"""Real services for the test suite: one throwaway database per test session.

Every fixture here talks to a real server on its standard local port (override with the
environment variables below). A missing service is a test failure, never a skip: the suite's
promise is that it ran against the real thing.
"""

from __future__ import annotations

import os
import socket
import uuid

import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get(
    "DSAR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get(
    "DSAR_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/"
)
RABBITMQ_URL = os.environ.get("DSAR_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("DSAR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_port(name: str, host: str, port: int) -> None:
    """Fail loudly, with the fix, when a service does not answer."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        raise RuntimeError(
            f"{name} is not answering on {host}:{port} ({exc}); start it with infra/services.sh"
        ) from exc


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def create_postgres_database(prefix: str = "dsar_test") -> str:
    """Create an empty PostgreSQL database and return its SQLAlchemy URL."""
    require_port("PostgreSQL", "127.0.0.1", 5432)
    name = unique_name(prefix)
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = sa.make_url(url).database
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def create_mariadb_database(prefix: str = "dsar_test") -> str:
    """Create an empty MariaDB database and return its SQLAlchemy URL."""
    require_port("MariaDB", "127.0.0.1", 3306)
    name = unique_name(prefix)
    admin = sa.create_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    admin.dispose()
    return sa.make_url(MARIADB_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_mariadb_database(url: str) -> None:
    name = sa.make_url(url).database
    admin = sa.create_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()
