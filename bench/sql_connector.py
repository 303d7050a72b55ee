"""Benchmark: dsar's SQL connector against hand-written SQL, per subject, on PostgreSQL.

    python -m bench.sql_connector --customers 1000000 [--subjects 200] [--keep]

Generates (server-side, with generate_series) a shop database: customers (each owning an
address), 3 orders per customer, 2 lines per order and 2 logins per customer, with the indexes
a real shop has (including the one on ``customers.address_id`` that deleting an address needs
for its foreign-key check). Then, for N random subjects, times ``collect`` and ``erase`` with
:class:`connectors.sql.SqlConnector` and with hand-written psycopg SQL doing the same work, and
prints p50/p95 of each, the ratio, the CPU time this process spends per collect (``(cpu)``: the
client-side cost alone, steadier than wall time on a busy machine), the statements each side
sends per erase (counted on one more subject each, untimed), and peak memory (process max RSS,
and the tracemalloc peak of dsar's collect).

The same work: the subject is looked up as dsar looks it up (the map matches email
case-insensitively, dsar's default: ``lower(email)``, which the ``customers_email_lower`` index
serves); collect fetches the same rows; erase deletes the same rows in one transaction, gets
back the key of every row it deletes (dsar's evidence holds a keyed hash per row) and ends, as
dsar must, with a recount in the same transaction — the subject's rows counted again in every
table, by the email and by the keys just deleted — rolling back if it finds any. Both sides
run the shared-row check: the address (reached by an outbound reference) is deleted only if no
other customer's row still points at it.

Like for like: every subject's rows are read once, untimed, before anything is timed (so
neither side pays for the other's cold pages), and that pass checks that dsar and the hand SQL
fetch the same number of rows per subject. Both sides talk to the same server session: the
hand SQL borrows, untimed, the one connection dsar's pool holds, so neither gets a luckier
backend process (on a small machine, where the backend runs relative to the client changes
every round trip's latency). The timed runs alternate between dsar and the hand SQL in blocks
of 20 subjects (dsar first, then hand first, …): drift in the server (checkpoints, autovacuum)
hits both alike, while each side runs mostly warm in its own loop (alternating every call
would charge the hand SQL for the CPU caches dsar's heavier code evicts).

The database is ``dsar_bench_<customers>`` on ``--admin-url`` (default: local PostgreSQL); it
is reused if a complete generation of that size is marked on it (each run erases
``2 * subjects`` customers of it, a negligible change) and dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import psycopg
import sqlalchemy as sa

from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from connectors.sql_engine import dispose_all
from dsar.datamap.loader import parse_datamap

SCHEMA = """
CREATE TABLE addresses (id bigint PRIMARY KEY, street text NOT NULL, city varchar(40));
CREATE TABLE customers (id bigint PRIMARY KEY, email varchar(120) NOT NULL,
  phone varchar(24), name varchar(80), address_id bigint REFERENCES addresses(id));
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  created timestamptz NOT NULL, total numeric(10,2) NOT NULL);
CREATE TABLE order_lines (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id),
  sku varchar(20) NOT NULL, qty int NOT NULL);
CREATE TABLE logins (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  ip varchar(45), at timestamptz NOT NULL);
INSERT INTO addresses SELECT i, i || ' Main Street', 'City ' || (i % 1000)
  FROM generate_series(1, %(n)s) i;
INSERT INTO customers SELECT i, 'user' || i || '@example.com', '+4930' || (1000000 + i),
  'Customer ' || i, i FROM generate_series(1, %(n)s) i;
INSERT INTO orders SELECT i, ((i - 1) %% %(n)s) + 1, now() - (i || ' minutes')::interval,
  (i %% 10000) / 100.0 FROM generate_series(1, 3 * %(n)s) i;
INSERT INTO order_lines SELECT i, ((i - 1) %% (3 * %(n)s)) + 1, 'SKU' || (i %% 5000), 1 + i %% 3
  FROM generate_series(1, 6 * %(n)s) i;
INSERT INTO logins SELECT i, ((i - 1) %% %(n)s) + 1, '10.0.' || (i %% 250) || '.1', now()
  FROM generate_series(1, 2 * %(n)s) i;
CREATE UNIQUE INDEX customers_email ON customers (email);
CREATE INDEX customers_email_lower ON customers (lower(email));
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX order_lines_order ON order_lines (order_id);
CREATE INDEX logins_customer ON logins (customer_id);
CREATE INDEX customers_address ON customers (address_id);
ANALYZE;
"""

DATAMAP = """
systems:
  - name: bench
    kind: sql
    url_env: BENCH_URL
    tables:
      - name: customers
        primary_key: [id]
        identities: {email: email}
        provides: {customer_id: id}
        references: [{columns: [address_id], table: addresses, to: [id], direction: outbound}]
      - name: addresses
        primary_key: [id]
      - name: orders
        primary_key: [id]
        references: [{columns: [customer_id], table: customers, to: [id], direction: inbound}]
      - name: order_lines
        primary_key: [id]
        references: [{columns: [order_id], table: orders, to: [id], direction: inbound}]
      - name: logins
        primary_key: [id]
        references: [{columns: [customer_id], table: customers, to: [id], direction: inbound}]
"""


class CountingSink:
    """Receives rows and keeps only their number."""

    def __init__(self) -> None:
        self.rows = 0

    def write_rows(self, system: str, collection: str, rows: Iterable[Mapping[str, Any]]) -> None:
        self.rows += sum(1 for _ in rows)

    def write_object(self, *args: Any) -> None:
        raise NotImplementedError


BLOCK = 20
"""Subjects timed in a row on one side before switching sides (see the module docstring)."""
SCHEMA_VERSION = 2  # bump when SCHEMA changes: an older database is regenerated


def prepare(admin_url: str, customers: int) -> str:
    name = f"dsar_bench_{customers}"
    marker = f"dsar bench schema {SCHEMA_VERSION}: {customers} customers generated"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    url = sa.make_url(admin_url).set(database=name)
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": name}).scalar()
        comment = conn.execute(sa.text(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
            {"n": name}).scalar()
    if exists:
        if comment == marker:  # set only once generation completed
            print(f"reusing {name}")
            admin.dispose()
            return url.render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    started = time.monotonic()
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        for statement in SCHEMA.split(";\n"):
            if statement.strip():
                conn.execute(statement.replace("%%", "%").replace("%(n)s", str(customers)))
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{marker}'")
    print(f"generated {name} ({customers:,} customers, {13 * customers:,} rows) "
          f"in {time.monotonic() - started:.1f} s")
    return url.render_as_string(hide_password=False)


def _libpq(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def hand_collect(conn: psycopg.Connection, email: str) -> int:
    rows = 0
    with conn.transaction():
        cur = conn.execute("SELECT * FROM customers WHERE lower(email) = %s",
                           (email.lower(),))
        customers = cur.fetchall()
        rows += len(customers)
        ids = [c[0] for c in customers]
        addresses = [c[4] for c in customers if c[4] is not None]
        rows += len(conn.execute("SELECT * FROM addresses WHERE id = ANY(%s)",
                                 (addresses,)).fetchall())
        orders = conn.execute("SELECT * FROM orders WHERE customer_id = ANY(%s)",
                              (ids,)).fetchall()
        rows += len(orders)
        rows += len(conn.execute("SELECT * FROM order_lines WHERE order_id = ANY(%s)",
                                 ([o[0] for o in orders],)).fetchall())
        rows += len(conn.execute("SELECT * FROM logins WHERE customer_id = ANY(%s)",
                                 (ids,)).fetchall())
    return rows


RECOUNT = """SELECT (SELECT count(*) FROM customers WHERE lower(email) = %(email)s),
  (SELECT count(*) FROM order_lines WHERE order_id = ANY(%(orders)s)),
  (SELECT count(*) FROM orders WHERE customer_id = ANY(%(customers)s)),
  (SELECT count(*) FROM logins WHERE customer_id = ANY(%(customers)s)),
  (SELECT count(*) FROM addresses WHERE id = ANY(%(addresses)s))"""


def hand_erase(conn: psycopg.Connection, email: str) -> int:
    """Delete the subject's rows children first, keeping every deleted row's key (for per-row
    evidence), then recount in the same transaction; rows deleted."""
    with conn.transaction():
        ids = [r[0] for r in conn.execute("SELECT id FROM customers WHERE lower(email) = %s",
                                          (email.lower(),))]
        lines = conn.execute("DELETE FROM order_lines WHERE order_id IN (SELECT id FROM "
                             "orders WHERE customer_id = ANY(%s)) RETURNING id", (ids,)).fetchall()
        orders = [r[0] for r in conn.execute(
            "DELETE FROM orders WHERE customer_id = ANY(%s) RETURNING id", (ids,))]
        logins = conn.execute("DELETE FROM logins WHERE customer_id = ANY(%s) RETURNING id",
                              (ids,)).fetchall()
        customers = conn.execute("DELETE FROM customers WHERE id = ANY(%s) RETURNING id, "
                                 "address_id", (ids,)).fetchall()
        addresses = [r[1] for r in customers if r[1] is not None]
        gone = conn.execute(  # the shared-row check: an address another customer still uses
            "DELETE FROM addresses WHERE id = ANY(%s) AND NOT EXISTS (SELECT 1 FROM customers "
            "c WHERE c.address_id = addresses.id) RETURNING id", (addresses,)).fetchall()
        left = conn.execute(RECOUNT, {"email": email.lower(), "orders": orders,
                                      "customers": ids, "addresses": addresses}).fetchone()
        if any(left or ()):
            raise RuntimeError(f"recount found rows left: {left}")  # rolls back
    return len(lines) + len(orders) + len(logins) + len(customers) + len(gone)


def statements_sent(fn: Callable[[], Any]) -> int:
    """How many statements ``fn()`` sends through psycopg cursors (BEGIN and COMMIT, which
    psycopg sends itself, not counted)."""
    sent = [0]
    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return execute(self, *args, **kwargs)

    def counted_many(self: Any, query: Any, params: Any, **kwargs: Any) -> Any:
        params = list(params)
        sent[0] += len(params)
        return executemany(self, query, params, **kwargs)

    psycopg.Cursor.execute, psycopg.Cursor.executemany = counted, counted_many  # type: ignore[method-assign]
    try:
        fn()
    finally:
        psycopg.Cursor.execute, psycopg.Cursor.executemany = execute, executemany  # type: ignore[method-assign]
    return sent[0]


Session = Callable[[], AbstractContextManager[Any]]


def timed(fn: Callable[[Any, str], int], session: Session, email: str, times: list[float],
          cpu: list[float] | None = None) -> int:
    """``fn(connection, email)`` inside ``session()`` (which yields the connection, untimed),
    its wall time in ms appended to ``times`` (and this process's CPU time to ``cpu``: the
    client-side cost, without the database's)."""
    with session() as conn:
        started, started_cpu = time.perf_counter(), time.process_time()
        out = fn(conn, email)
        times.append((time.perf_counter() - started) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - started_cpu) * 1000)
    return out


def summary(label: str, dsar: list[float], hand: list[float]) -> None:
    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]

    d50, d95, h50, h95 = p(dsar, 50), p(dsar, 95), p(hand, 50), p(hand, 95)
    print(f"{label:8} dsar p50 {d50:7.2f} ms  p95 {d95:7.2f} ms | hand p50 {h50:7.2f} ms  "
          f"p95 {h95:7.2f} ms | ratio p50 {d50 / h50:4.2f}x  p95 {d95 / h95:4.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/"
                                                "postgres")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--sql-fast-path", choices=("true", "false"), default="true",
                        help="DSAR_SQL_FAST_PATH for dsar's side: false sends every statement "
                        "through SQLAlchemy (default true)")
    args = parser.parse_args(argv)
    url = prepare(args.admin_url, args.customers)
    engine = sa.create_engine(url)
    with engine.connect() as conn:  # subjects still present (the database may be reused)
        emails = list(conn.execute(sa.text("SELECT email FROM customers ORDER BY random() "
                                           "LIMIT :n"), {"n": 3 * args.subjects + 23}).scalars())
    engine.dispose()
    random.shuffle(emails)
    collect_set, erase_dsar, erase_hand = (emails[: args.subjects],
                                           emails[args.subjects: 2 * args.subjects],
                                           emails[2 * args.subjects: 3 * args.subjects])
    system = parse_datamap(DATAMAP).systems[0]
    ctx = ConnectorContext(hash_key=b"b" * 32, environ={"BENCH_URL": url},
                           fast_path=args.sql_fast_path == "true")
    connector = SqlConnector(system, ctx)  # type: ignore[arg-type]
    connector.count({"email": frozenset({emails[-1]})})  # warm the engine and the catalog

    def dsar_collect(_conn: Any, email: str) -> int:
        sink = CountingSink()
        connector.collect({"email": frozenset({email})}, sink)
        return sink.rows

    def dsar_erase(_conn: Any, email: str) -> int:
        result = connector.erase({"email": frozenset({email})})
        return sum(e.deleted for e in result.evidence)

    pool = connector.engine.pool

    @contextmanager
    def pooled() -> Iterator[psycopg.Connection[Any]]:
        """The psycopg connection dsar's pool holds (its only one: dsar checks it out in turn),
        so both sides talk to the same server session; checked out and in untimed."""
        raw = connector.engine.raw_connection()
        try:
            assert pool.checkedout() == 1 and pool.checkedin() == 0, "one pooled connection"
            yield raw.driver_connection  # type: ignore[misc]
        finally:
            raw.close()

    collect_dsar_ms: list[float] = []
    collect_hand_ms: list[float] = []
    erase_dsar_ms: list[float] = []
    erase_hand_ms: list[float] = []
    cpu_dsar: list[float] = []
    cpu_hand: list[float] = []
    erased = {"dsar": 0, "hand": 0}
    unused: list[float] = []
    for email in collect_set:  # untimed: warm both paths' pages, check like for like
        dsar_rows = timed(dsar_collect, nullcontext, email, unused)
        hand_rows = timed(hand_collect, pooled, email, unused)
        assert dsar_rows == hand_rows, (dsar_rows, hand_rows)
    for email in erase_dsar + erase_hand:
        timed(hand_collect, pooled, email, unused)
    for i, start in enumerate(range(0, len(collect_set), BLOCK)):
        block = collect_set[start: start + BLOCK]
        sides = [(dsar_collect, nullcontext, collect_dsar_ms, cpu_dsar),
                 (hand_collect, pooled, collect_hand_ms, cpu_hand)]
        for fn, session, times, cpu in sides if i % 2 == 0 else sides[::-1]:
            for email in block:
                timed(fn, session, email, times, cpu)
    for i, start in enumerate(range(0, len(erase_dsar), BLOCK)):
        runs = [("dsar", dsar_erase, nullcontext, erase_dsar, erase_dsar_ms),
                ("hand", hand_erase, pooled, erase_hand, erase_hand_ms)]
        for side, fn, session, emails_, times in runs if i % 2 == 0 else runs[::-1]:
            for email in emails_[start: start + BLOCK]:
                erased[side] += timed(fn, session, email, times)
    spare = emails[3 * args.subjects + 20: 3 * args.subjects + 22]
    sent_dsar = statements_sent(lambda: dsar_erase(None, spare[0]))

    def hand_once() -> None:
        with pooled() as conn:
            hand_erase(conn, spare[1])

    sent_hand = statements_sent(hand_once)
    tracemalloc.start()
    for email in emails[3 * args.subjects: 3 * args.subjects + 20]:
        dsar_collect(None, email)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\n{args.customers:,} customers, {args.subjects} subjects each "
          "(13 rows per subject in 5 tables)")
    summary("collect", collect_dsar_ms, collect_hand_ms)
    summary("  (cpu)", cpu_dsar, cpu_hand)
    summary("erase", erase_dsar_ms, erase_hand_ms)
    print(f"rows deleted: dsar {erased['dsar']}, hand {erased['hand']}")
    print(f"statements per erase (each side also sends BEGIN and COMMIT): dsar {sent_dsar}, "
          f"hand {sent_hand}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: process max RSS {rss:.0f} MiB; dsar collect tracemalloc peak "
          f"{traced_peak / 1024:.0f} KiB")
    dispose_all()
    if not args.keep:
        admin = sa.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "dsar_bench_{args.customers}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
