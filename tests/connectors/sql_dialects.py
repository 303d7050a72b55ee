"""Shared pieces of the SQL connector tests: a database per dialect, filled and read back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

DIALECTS = ["postgresql", "mariadb", "sqlite"]


def dialect_url(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    """A fresh database of the dialect in ``request.param``: the suite's PostgreSQL or MariaDB
    database, or a SQLite file ``<name>.sqlite`` in ``tmp_path``."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    if request.param == "mariadb":
        return str(request.getfixturevalue("mariadb_url"))
    return f"sqlite:///{tmp_path / f'{name}.sqlite'}"


def fill(url: str, metadata: sa.MetaData,
         rows: Mapping[sa.Table, Sequence[Mapping[str, Any]]]) -> None:
    """Create ``metadata``'s tables at ``url`` and insert ``rows``, in the mapping's order."""
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for table, table_rows in rows.items():
            conn.execute(table.insert(), list(table_rows))
    engine.dispose()


def snapshot(url: str, tables: Sequence[sa.Table]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` at ``url``, sorted, by table name."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in tables}
    engine.dispose()
    return out
