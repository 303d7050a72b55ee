"""Shared fixtures. Service fixtures create their own databases so runs never see each other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import services

REPO = Path(__file__).resolve().parent.parent
CHINOOK = REPO / "tests" / "data" / "chinook"  # the dataset and its licence, in the repository


#: Fixtures that need a running service, by the marker they give the tests that use them
#: (directly or through other fixtures). Every one of them also gives the marker ``services``,
#: so ``pytest -m "not services"`` is the fast tier: nothing needs to be running.
SERVICE_FIXTURES: dict[str, str] = {
    "postgres_url": "postgres",
    "session_postgres_url": "postgres",
    "mariadb_url": "mariadb",
    "moto_endpoint": "moto",
    "redis_url": "redis",
    "rabbitmq_url": "rabbitmq",
}
SERVICE_MARKERS = ("postgres", "mariadb", "redis", "rabbitmq", "moto")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the services its fixtures need, and ``services`` if any; a test
    marked by hand with a service marker gets ``services`` too."""
    for item in items:
        needed = {SERVICE_FIXTURES[name] for name in getattr(item, "fixturenames", ())
                  if name in SERVICE_FIXTURES}
        needed |= {name for name in SERVICE_MARKERS if item.get_closest_marker(name)}
        for marker in sorted(needed):
            item.add_marker(marker)
        if needed:
            item.add_marker("services")


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


@pytest.fixture(scope="session")
def chinook_dir() -> Path:
    if not (CHINOOK / "Chinook_Sqlite.sqlite").exists():
        raise RuntimeError(f"the Chinook dataset is missing at {CHINOOK}; restore tests/data/ "
                           "from git (git checkout tests/data)")
    return CHINOOK
