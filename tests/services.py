"""Real services for the test suite: throwaway databases, virtual hosts and Redis databases.

Every helper here talks to a real server, by default on its standard local port; the
environment variables below point the suite elsewhere (and pointing them at closed ports is how
the fast tier proves it needs none of them: see tests/conftest.py). A missing service is a test
failure, never a skip: the suite's promise is that it ran against the real thing.

* ``DSAR_TEST_POSTGRES_URL``: a superuser's URL, by default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``;
* ``DSAR_TEST_MARIADB_URL``: root's, by default ``mysql+pymysql://root@127.0.0.1:3306/``;
* ``DSAR_TEST_RABBITMQ_URL``: by default ``amqp://guest:guest@127.0.0.1:5672/``, the node that
  the local ``rabbitmqctl`` manages (it makes the tests' virtual hosts);
* ``DSAR_TEST_REDIS_URL``: by default ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get(
    "DSAR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get(
    "DSAR_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/"
)
RABBITMQ_URL = os.environ.get("DSAR_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("DSAR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "amqp": 5672, "redis": 6379}


def require_port(name: str, host: str, port: int) -> None:
    """Fail loudly, with the fix, when a service does not answer."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        raise RuntimeError(
            f"{name} is not answering on {host}:{port} ({exc}); start it with infra/services.sh"
        ) from exc


def host_port(url: str) -> tuple[str, int]:
    """The host and port a service URL names (the scheme's standard port when it names none)."""
    parsed = sa.make_url(url)
    scheme = parsed.get_backend_name()
    return parsed.host or "127.0.0.1", parsed.port or _DEFAULT_PORTS[scheme]


def require_url(name: str, url: str) -> None:
    """:func:`require_port` for the host and port of ``url``."""
    require_port(name, *host_port(url))


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def create_postgres_database(prefix: str = "dsar_test") -> str:
    """Create an empty PostgreSQL database and return its SQLAlchemy URL."""
    require_url("PostgreSQL", POSTGRES_ADMIN_URL)
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
    require_url("MariaDB", MARIADB_ADMIN_URL)
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


def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl`` against the local node; its output, or RuntimeError with stderr."""
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A fresh RabbitMQ virtual host for the URL's user; yields its amqp:// URL and deletes it
    after."""
    require_url("RabbitMQ", RABBITMQ_URL)
    base = sa.make_url(RABBITMQ_URL)
    name = unique_name("dsar_test")
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, base.username or "guest", ".*", ".*", ".*")
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        rabbitmqctl("delete_vhost", name)


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database number nobody else is using (claimed with a marker key); yields its
    URL and flushes it after."""
    import redis

    require_url("Redis", REDIS_URL)
    host, port = host_port(REDIS_URL)
    token = uuid.uuid4().hex
    for number in range(15, 0, -1):
        client = redis.Redis(host=host, port=port, db=number)
        if client.dbsize() == 0 and client.set("dsar_test_claim", token, nx=True, ex=3600):
            try:
                yield f"redis://{host}:{port}/{number}"
            finally:
                client.flushdb()
                client.close()
            return
        client.close()
    raise RuntimeError(f"every Redis database on {host}:{port} is in use; flush the stale ones")
