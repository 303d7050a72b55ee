"""Shared fixtures. Service fixtures create their own databases so runs never see each other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import services

REPO = Path(__file__).resolve().parent.parent
CHINOOK = REPO / "tests" / "data" / "chinook"  # the dataset and its licence, in the repository


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
