"""Fixtures shared by the fleet tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workflows.fleet_helpers import Fleet, several_chinooks


@pytest.fixture
def one_system(postgres_url: str, tmp_path: Path, chinook_dir: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    """A fleet (in-process broker, PostgreSQL state) whose data map has one SQL system."""
    datamap, env = several_chinooks(chinook_dir, tmp_path)
    datamap["systems"] = datamap["systems"][:1]
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap, env)
    fleet.apply_env(monkeypatch)
    yield fleet
    fleet.close()
