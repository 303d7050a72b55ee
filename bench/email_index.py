"""Benchmark: case-insensitive email look-ups with and without an index that serves them.

    python -m bench.email_index [--customers 100000] [--lookups 200]

For PostgreSQL, MariaDB and SQLite, creates a table of ``--customers`` customers whose email
addresses are stored as people typed them (capitals included) with the usual plain index on
``email``, and times ``--lookups`` access look-ups (``SqlConnector.collect`` by a lower-cased
address; each finds its one row) in two states:

- PostgreSQL and SQLite: before and after running the statements that ``dsar datamap check``
  prints (an index on ``lower(email)``; on PostgreSQL then ``ANALYZE``);
- MariaDB (a ``_ci`` collation, the default): comparing ``lower(email)`` only, as dsar did
  before, and comparing the column itself (with ``lower()`` in the binary collation on the rows
  the index found), as it does now.

Prints the median and 95th percentile per look-up, the check warning before the fix, and for
PostgreSQL the server's own time for the look-up statement (``EXPLAIN ANALYZE``: on a shared,
busy machine the wall time is mostly waiting for a CPU). The databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
import yaml

from connectors import sql_engine
from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from tests import services

MAP = yaml.safe_dump({"version": 1, "systems": [{
    "name": "crm", "kind": "sql", "url_env": "CRM_URL", "tables": [{
        "name": "customer", "primary_key": ["id"], "identities": {"email": "email"},
        "erasure": {"action": "delete"}}]}]})


class NullSink:
    def write_rows(self, system: str, collection: str, rows: Iterable[Mapping[str, Any]]) -> None:
        for _ in rows:
            pass

    def write_object(self, *args: Any) -> None:
        raise AssertionError("SQL writes rows")


def email(i: int) -> str:
    return f"Customer.{i}@Example.org" if i % 2 else f"customer.{i}@example.org"


def fill(url: str, customers: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customer (id INT PRIMARY KEY, email VARCHAR(120) "
                             "NOT NULL, name VARCHAR(40))")
        rows = [{"id": i, "email": email(i), "name": f"n{i}"} for i in range(customers)]
        table = sa.table("customer", sa.column("id"), sa.column("email"), sa.column("name"))
        for start in range(0, customers, 10_000):
            conn.execute(table.insert(), rows[start:start + 10_000])
        conn.exec_driver_sql("CREATE INDEX customer_email ON customer (email)")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE customer")
    engine.dispose()


def time_lookups(url: str, customers: int, lookups: int, plain_lower: bool = False
                 ) -> tuple[float, float]:
    """p50 and p95 milliseconds per look-up."""
    sql_engine.dispose_all()
    system = parse_datamap(MAP).systems[0]
    connector = SqlConnector(system, ConnectorContext(hash_key=b"k" * 32,  # type: ignore[arg-type]
                                                      environ={"CRM_URL": url}))
    picks = random.Random(7).sample(range(customers), lookups)
    with connector.engine.connect() as conn:  # reflect first (untimed)
        table = connector.catalog.table(conn, "customer")
    if plain_lower:  # forget that the column ignores case: lower(email) only, as before
        table.info[sql_engine.CASE_INSENSITIVE] = frozenset()
    connector.collect({"email": frozenset({"nobody@example.org"})}, NullSink())
    times = []
    for i in picks:
        keys = {"email": frozenset({email(i).lower()})}
        start = time.perf_counter()
        result = connector.collect(keys, NullSink())
        times.append((time.perf_counter() - start) * 1000)
        assert result.evidence[0].found == 1, "a look-up must find its one customer"
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def server_ms(url: str, customers: int, lookups: int) -> float:
    """PostgreSQL only: the median server time (planning + execution, from ``EXPLAIN
    ANALYZE``) of the look-up statement dsar sends — the figure a busy machine's scheduling
    does not blur."""
    sql_engine.dispose_all()
    system = parse_datamap(MAP).systems[0]
    connector = SqlConnector(system, ConnectorContext(hash_key=b"k" * 32,  # type: ignore[arg-type]
                                                      environ={"CRM_URL": url}))
    sent: list[tuple[str, Any]] = []
    sa.event.listen(connector.engine, "before_cursor_execute",
                    lambda *args: sent.append((args[2], args[3])))
    connector.collect({"email": frozenset({"nobody@example.org"})}, NullSink())
    statement = next(s for s, _ in sent if "lower" in s)
    out = []
    with connector.engine.connect() as conn:
        for i in random.Random(7).sample(range(customers), lookups):
            params = {k: (email(i).lower() if isinstance(v, str) else v)
                      for k, v in next(p for s, p in sent if s == statement).items()}
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement,
                                        params).scalar()
            out.append(plan[0]["Planning Time"] + plan[0]["Execution Time"])
    return statistics.median(out)


def warning(url: str) -> str:
    found = check_datamap(parse_datamap(MAP), {"CRM_URL": url})
    return "; ".join(f.fix for f in found if "index" in f.problem) or "(no warning)"


@contextmanager
def database(dialect: str) -> Iterator[str]:
    if dialect == "postgresql":
        url = services.create_postgres_database("dsar_bench_email")
        yield url
        sql_engine.dispose_all()
        services.drop_postgres_database(url)
    elif dialect == "mariadb":
        url = services.create_mariadb_database("dsar_bench_email")
        yield url
        sql_engine.dispose_all()
        services.drop_mariadb_database(url)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/crm.sqlite"
            sql_engine.dispose_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    print(f"{args.customers} customers, {args.lookups} look-ups each; ms per look-up p50 / p95")
    for dialect in ("postgresql", "mariadb", "sqlite"):
        with database(dialect) as url:
            fill(url, args.customers)
            if dialect == "mariadb":
                before = time_lookups(url, args.customers, args.lookups, plain_lower=True)
                after = time_lookups(url, args.customers, args.lookups)
                print(f"{dialect:10} lower(email) only: {before[0]:8.2f} / {before[1]:8.2f}   "
                      f"email (_ci, index) and lower() in utf8mb4_bin: "
                      f"{after[0]:6.2f} / {after[1]:6.2f}   check: {warning(url)}")
                continue
            before = time_lookups(url, args.customers, args.lookups)
            server = server_ms(url, args.customers, 50) if dialect == "postgresql" else None
            fix = warning(url)
            statements = fix.removeprefix("run: ").split(";")
            engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                for statement in statements:
                    if statement.strip().startswith(("CREATE", "ANALYZE")):
                        conn.exec_driver_sql(statement)
            engine.dispose()
            after = time_lookups(url, args.customers, args.lookups)
            print(f"{dialect:10} without lower() index: {before[0]:8.2f} / {before[1]:8.2f}   "
                  f"with it: {after[0]:6.2f} / {after[1]:6.2f}   check said: {fix}   "
                  f"then: {warning(url)}")
            if server is not None:
                print(f"{'':10} server time of the look-up statement (EXPLAIN ANALYZE, "
                      f"median): without {server:.2f} ms, with "
                      f"{server_ms(url, args.customers, 50):.2f} ms")


if __name__ == "__main__":
    main()
