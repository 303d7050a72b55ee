"""Shared pieces of the SQL connector tests: a database per dialect, filled and read back."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors import sql_engine
from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from dsar.datamap.loader import parse_datamap
from dsar.settings import Settings

#: The SQL connector's fast path as the suite runs (tests/state.py reads the same variable).
FAST_PATH = Settings.from_env({"DSAR_SQL_FAST_PATH": os.environ.get("DSAR_SQL_FAST_PATH", "")}
                              ).sql_fast_path

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


def filled_database(request: pytest.FixtureRequest, tmp_path: Path, name: str,
                    metadata: sa.MetaData,
                    rows: Mapping[sa.Table, Sequence[Mapping[str, Any]]]) -> Iterator[str]:
    """For a fixture parametrised over :data:`DIALECTS`: the URL of a database holding
    ``rows`` (see :func:`dialect_url`, :func:`fill`); the connectors' engines are disposed
    after the test."""
    url = dialect_url(request, tmp_path, name)
    fill(url, metadata, rows)
    yield url
    sql_engine.dispose_all()


def sql_connector(map_text: str, url_env: str, url: str, hash_key: bytes) -> SqlConnector:
    """The SQL connector for the first system of the data map ``map_text``, whose
    ``url_env`` names ``url``, with the fast path as the suite runs (DSAR_SQL_FAST_PATH)."""
    system = parse_datamap(map_text).systems[0]
    context = ConnectorContext(hash_key=hash_key, environ={url_env: url}, fast_path=FAST_PATH)
    return SqlConnector(system, context)  # type: ignore[arg-type]


def snapshot(url: str, tables: Sequence[sa.Table]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` at ``url``, sorted, by table name."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in tables}
    engine.dispose()
    return out
