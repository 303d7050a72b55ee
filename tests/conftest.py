"""Shared fixtures, and the service markers that make the fast tier.

Two tiers, chosen with markers:

* ``pytest`` runs everything, against real PostgreSQL, MariaDB, Redis, RabbitMQ, moto's S3
  server, a local SMTP server and Chromium (a missing service fails a test, never skips it).
* ``pytest -m "not services"`` is the fast tier: it needs nothing running. That is checked by
  running it where no service can be reached: every ``DSAR_TEST_*_URL`` of tests/services.py
  on a closed port, in a network namespace of its own (``unshare -rn``; the command is in
  README).

A test is marked from what it uses, by :func:`pytest_collection_modifyitems`:

* a fixture of :data:`SERVICE_FIXTURES`, directly or through other fixtures (pytest gives a
  test the closure of its fixtures), marks it with that service;
* a fixture parametrized over backends (``params=["sqlite", "postgresql", "mariadb"]``, or
  ``["amqp", "redis", "memory"]``) marks each parameter's test with the service that
  parameter names (:data:`BACKEND_PARAMS`); the ``sqlite`` and ``memory`` ones stay fast;
* every service marker adds ``services``;
* a fixture of :data:`SLOW_FIXTURES` (the whole demo) marks it ``slow``, like the tests that
  start the command line in a subprocess or wait out a vendor's rate limit, marked by hand.

``--fast`` makes the fast tier fast: ``pytest -m "not services" --fast`` deselects the
``slow`` tests and runs every hypothesis property test with at most :data:`FAST_EXAMPLES`
examples and no deadline (hypothesis profile ``fast``). Without it, every property test runs
the examples its ``@settings`` asks for.

A new test that needs a service reaches it through one of these fixtures (or a fixture built
on one), never by calling tests/services.py from its body. Some fleet tests in
tests/workflows/ still open a virtual host or a Redis database in their body and carry the
service's marker by hand; the hook adds ``services`` to those too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

from tests import services

REPO = Path(__file__).resolve().parent.parent
CHINOOK = REPO / "tests" / "data" / "chinook"  # the dataset and its licence, in the repository


#: Fixtures that need a running service (or a browser), by the marker they give the tests that
#: use them directly or through other fixtures.
SERVICE_FIXTURES: dict[str, str] = {
    "postgres_server": "postgres",
    "postgres_url": "postgres",
    "session_postgres_url": "postgres",
    "chinook_pg_template": "postgres",
    "mariadb_server": "mariadb",
    "mariadb_url": "mariadb",
    "chinook_maria_template": "mariadb",
    "redis_server": "redis",
    "redis_url": "redis",
    "rabbitmq_url": "rabbitmq",
    "moto_endpoint": "moto",
    "inbox": "smtp",
    "chromium": "browser",
}
#: Parameter values of backend-parametrized fixtures, by the service marker they stand for.
BACKEND_PARAMS: dict[str, str] = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mariadb": "mariadb",
    "mysql": "mariadb",
    "amqp": "rabbitmq",
    "rabbitmq": "rabbitmq",
    "redis": "redis",
}
#: Fixtures whose tests take seconds each (the whole demo): ``--fast`` leaves them out.
SLOW_FIXTURES = frozenset({"demo_run"})
#: The most examples a property test runs under ``--fast``.
FAST_EXAMPLES = 10
SERVICE_MARKERS = ("postgres", "mariadb", "redis", "rabbitmq", "moto", "smtp", "browser")


def services_needed(item: pytest.Item) -> set[str]:
    """The service markers ``item`` gets from its fixtures, its parameters and its marks."""
    needed = {SERVICE_FIXTURES[name] for name in getattr(item, "fixturenames", ())
              if name in SERVICE_FIXTURES}
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        needed |= {BACKEND_PARAMS[value] for value in callspec.params.values()
                   if isinstance(value, str) and value in BACKEND_PARAMS}
    needed |= {name for name in SERVICE_MARKERS if item.get_closest_marker(name)}
    return needed


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast", action="store_true",
        help="the fast tier's budget: leave out tests marked slow and run each hypothesis "
             f"property test with at most {FAST_EXAMPLES} examples and no deadline "
             '(use with -m "not services")')


def pytest_configure(config: pytest.Config) -> None:
    hypothesis.settings.register_profile("fast", max_examples=FAST_EXAMPLES, deadline=None)
    if config.getoption("--fast"):
        hypothesis.settings.load_profile("fast")


def cap_examples(item: pytest.Item) -> None:
    """Run ``item``'s property test with at most :data:`FAST_EXAMPLES` examples, no deadline.

    An explicit ``@settings(max_examples=N)`` outranks any profile, so the cap is applied to
    the settings hypothesis keeps on the test function (its one place for them)."""
    test = getattr(item, "obj", None)
    if not getattr(test, "is_hypothesis_test", False):
        return
    current = test._hypothesis_internal_use_settings
    test._hypothesis_internal_use_settings = hypothesis.settings(
        current, max_examples=min(current.max_examples, FAST_EXAMPLES), deadline=None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the services it needs (and ``services`` if any) and ``slow`` if it
    uses a slow fixture; under ``--fast``, leave out the slow tests and cap the property tests."""
    for item in items:
        needed = services_needed(item)
        for marker in sorted(needed):
            item.add_marker(marker)
        if needed:
            item.add_marker("services")
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("slow")
    if not config.getoption("--fast"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
    for item in items:
        cap_examples(item)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of the running PostgreSQL server (``DSAR_TEST_POSTGRES_URL``), for a test
    that needs the server but no database of its own."""
    services.require_url("PostgreSQL", services.POSTGRES_ADMIN_URL)
    return services.POSTGRES_ADMIN_URL


@pytest.fixture(scope="session")
def mariadb_server() -> str:
    """The admin URL of the running MariaDB server (``DSAR_TEST_MARIADB_URL``)."""
    services.require_url("MariaDB", services.MARIADB_ADMIN_URL)
    return services.MARIADB_ADMIN_URL


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The URL of the running Redis server's database 0 (``DSAR_TEST_REDIS_URL``), shared by
    every test that uses it: keys there must be unique to the test."""
    services.require_url("Redis", services.REDIS_URL)
    return services.REDIS_URL


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    url = services.create_postgres_database()
    yield url
    services.drop_postgres_database(url)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database for one test."""
    url = services.create_mariadb_database()
    yield url
    services.drop_mariadb_database(url)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of its own for one test (flushed after): ``redis://host:port/N``."""
    with services.redis_database() as url:
        yield url


@pytest.fixture
def rabbitmq_url() -> Iterator[str]:
    """A RabbitMQ virtual host of its own for one test (deleted after): ``amqp://…/vhost``."""
    with services.rabbitmq_vhost() as url:
        yield url


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary (``DSAR_CHROMIUM``, else Debian's /usr/bin/chromium)."""
    path = os.environ.get("DSAR_CHROMIUM", "/usr/bin/chromium")
    if not (Path(path).is_file() or shutil.which(path)):
        pytest.fail(f"Chromium is not installed at {path}; install it with: apt-get update && "
                    "apt-get install -y chromium (or run bash infra/browser.sh)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def chinook_dir() -> Path:
    if not (CHINOOK / "Chinook_Sqlite.sqlite").exists():
        raise RuntimeError(f"the Chinook dataset is missing at {CHINOOK}; restore tests/data/ "
                           "from git (git checkout tests/data)")
    return CHINOOK
