"""Fleet benchmark: access and erasure requests through RabbitMQ and PostgreSQL state, against
two baselines run in the same process without queues.

    python -m bench.fleet --customers 100000 --requests 200

Builds a PostgreSQL shop database (customers, addresses, orders, order_items, payment_cards,
logins, visits, service_requests) with generate_series, a data map for it, a state database
and a RabbitMQ virtual host of their own, then for 1 and 2 worker processes (``dsar worker``)
submits N access and N erasure requests (distinct customers) and prints requests/s and the
p50/p95 end-to-end latency (receipt -> completed), with the CPU the workers and the whole
machine spent per request, the broker messages published per request and the peak resident
memory of the largest worker process (of the benchmark's own process for the loops). The
baselines, each on other customers:

* plain loop (connector only): the connector's collect, or count and erase, one subject after
  another — the data work alone;
* request loop (no queues): whole requests one after another in this process (intake, plan,
  task, bundle, signed record and ledger entry, handed from step to step as a worker that
  serves every queue does) — the fleet's work without the broker, so the difference to the
  fleet is what queueing and fan-out cost.

Every run, fleet and loops alike, is preceded by ``--warmup`` requests (20) on other customers
that are not measured, so the figures are those of a fleet that has been running: connection
pools filled, statements prepared, tables reflected, templates compiled.

Everything it creates is dropped at the end. Needs PostgreSQL, RabbitMQ and ``rabbitmqctl`` as
on the development machines.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from bench.procstats import (
    cpu_ticks,
    group_cpu_seconds,
    group_peak_rss_mib,
    machine_cpu_seconds,
    peak_rss_mib,
    percentile,
    reset_peak_rss,
    steal_percent,
)
from bench.shop import build_shop, shop_map

ADMIN = os.environ.get("DSAR_BENCH_POSTGRES_URL",
                       "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP = "amqp://guest:guest@127.0.0.1:5672/"

def create_db(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)


def drop_db(url: str) -> None:
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(
            f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def bench_app(tmp: Path, shop: str, state: str, broker: str,
              **settings: str) -> tuple[Any, dict[str, str]]:
    """The dsar App of a benchmark, and the environment its workers get: the shop's data map,
    signing keys and data folders under ``tmp``, ``state`` as the state database (migrated),
    ``broker`` as the broker, ``settings`` beside them. The environment is also this
    process's, for the connector's ``SHOP_URL``."""
    from dsar.app import App
    from dsar.records import keys as signing

    signing.generate(tmp / "signing-keys")
    (tmp / "map.yaml").write_text(yaml.safe_dump(shop_map(), sort_keys=False))
    env = {"DSAR_DATA_DIR": str(tmp / "data"), "DSAR_DATABASE_URL": state,
           "DSAR_BROKER_URL": broker, "DSAR_DATAMAP": str(tmp / "map.yaml"),
           "DSAR_SIGNING_KEYS_DIR": str(tmp / "signing-keys"),
           "DSAR_EXPORT_URL": str(tmp / "exports"),
           "DSAR_MASTER_KEY": "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMTI=",
           "SHOP_URL": shop, **settings}
    os.environ.update(env)
    app = App.from_env(env, migrate=False)
    app.db.upgrade()
    return app, env


def add_fast_path_option(parser: argparse.ArgumentParser) -> None:
    """``--sql-fast-path``: the run's ``DSAR_SQL_FAST_PATH``."""
    parser.add_argument("--sql-fast-path", choices=("true", "false"), default="true",
                        help="DSAR_SQL_FAST_PATH for the run: false sends every statement "
                        "through SQLAlchemy's ORM and Core (default true)")


class NullSink:
    """Collected rows go nowhere (the plain loop measures the connector alone)."""

    def write_rows(self, system: str, collection: str,
                   rows: Iterable[Mapping[str, Any]]) -> None:
        for _ in rows:
            pass

    def write_object(self, system: str, collection: str, name: str,
                     metadata: Mapping[str, str], chunks: Iterator[bytes]) -> None:
        for _ in chunks:
            pass


def plain_loop(app: Any, customers: Iterable[int], action: str) -> tuple[float, list[float]]:
    """The connector work of one request per customer, one after another, no queues."""
    from connectors.base import open_connector
    from dsar.datamap.current import load_map
    from dsar.identities import subject_keys
    from workflows.task import connector_context

    datamap, _ = load_map(app)
    system = datamap.system("shop")
    context = connector_context(app)
    latencies = []
    start = time.perf_counter()
    for number in customers:
        began = time.perf_counter()
        from dsar.identities import parse_identities

        keys = {k: frozenset(v) for k, v in
                subject_keys(parse_identities([f"customer{number}@example.com"])).items()}
        with open_connector(system, context) as connector:
            if action == "collect":
                connector.collect(keys, NullSink())
            else:
                connector.count(keys)
                connector.erase(keys)
        latencies.append(time.perf_counter() - began)
    return time.perf_counter() - start, latencies


def request_loop(app: Any, customers: Iterable[int], kind: str) -> tuple[float, list[float]]:
    """Whole requests one after another in this process, without a broker: submit, plan,
    each task, assemble (bundle, signed record, ledger) — the fleet's work minus the queues.
    The outbox rows this leaves are marked sent, so no worker runs them later."""
    from dsar import requests
    from dsar.db.models import OutboxMessage
    from dsar.identities import parse_identities
    from workflows import runner
    from workflows.broker import QUEUES

    latencies = []
    start = time.perf_counter()
    for number in customers:
        began = time.perf_counter()
        request_id = requests.submit(
            app, kind, parse_identities([f"customer{number}@example.com"]),
            submitted_by="bench", identity_method="bench").request.id
        # as a worker that serves every queue: plan, then the handed-off task and assembly
        runner.follow(app, runner.plan(app, request_id, run_here=QUEUES), QUEUES)
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    with app.db.session() as session:
        session.execute(sa.update(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
                        .values(sent_at=app.now()))
    return elapsed, latencies


def _submit(app: Any, kind: str, customers: Iterable[int]) -> list[str]:
    from dsar import requests
    from dsar.identities import parse_identities

    return [requests.submit(app, kind, parse_identities([f"customer{c}@example.com"]),
                            submitted_by="bench", identity_method="bench").request.id
            for c in customers]


def _wait(app: Any, ids: list[str], log: Path) -> list[Any]:
    """The requests' rows once none is still open; RuntimeError after 15 minutes or if one
    did not complete."""
    from dsar.db.models import Request

    deadline = time.monotonic() + 900
    while True:
        with app.db.session() as session:
            rows = session.execute(sa.select(Request.state, Request.received_at,
                                             Request.completed_at)
                                   .where(Request.id.in_(ids))).all()
        if all(r.state not in ("in_progress", "received", "verified") for r in rows):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the fleet did not finish within 15 minutes; see " + str(log))
        time.sleep(0.2)
    bad = [r.state for r in rows if r.state != "completed"]
    if bad:
        raise RuntimeError(f"{len(bad)} request(s) did not complete ({bad[0]}); see {log}")
    return rows


def run_fleet(env: dict[str, str], app: Any, processes: int, threads: int, kind: str,
              warmup: list[int], customers: list[int],
              log: Path) -> tuple[float, list[float], float, float, int, float | None, float]:
    """Run the requests through ``dsar worker``, after ``warmup`` requests that are not
    measured (as a fleet that has been running a while: pools filled, statements prepared,
    the data map's tables reflected); returns the elapsed seconds (first receipt to last
    completion), the end-to-end latencies, the CPU seconds the workers and the whole machine
    spent meanwhile, how many broker messages were published, the largest peak resident
    memory of a worker process (MiB) and the share of CPU time stolen meanwhile (%)."""
    from dsar.db.models import OutboxMessage

    published = (sa.select(sa.func.count()).select_from(OutboxMessage)
                 .where(OutboxMessage.sent_at.is_not(None)))
    dsar = str(Path(sys.executable).parent / "dsar")
    with open(log, "ab") as out:
        worker = subprocess.Popen([dsar, "worker", "-p", str(processes), "-t", str(threads)],
                                  env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        time.sleep(4)  # let the processes boot and connect
        _wait(app, _submit(app, kind, warmup), log)
        with app.db.session() as session:
            sent_before = session.scalar(published) or 0
        worker_cpu, machine_cpu = group_cpu_seconds(worker.pid), machine_cpu_seconds()
        ticks = cpu_ticks()
        rows = _wait(app, _submit(app, kind, customers), log)
        stolen = steal_percent(ticks, cpu_ticks())
        worker_cpu = group_cpu_seconds(worker.pid) - worker_cpu
        machine_cpu = machine_cpu_seconds() - machine_cpu
        first = min(r.received_at for r in rows)
        last = max(r.completed_at for r in rows)
        latencies = [(r.completed_at - r.received_at).total_seconds() for r in rows]
        with app.db.session() as session:
            messages = (session.scalar(published) or 0) - sent_before
        return ((last - first).total_seconds(), latencies, worker_cpu, machine_cpu, messages,
                group_peak_rss_mib(worker.pid), stolen)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)


@dataclass(frozen=True)
class Row:
    """One measured run: its requests per second, end-to-end latencies, the CPU seconds of the
    loop's process or the workers, of the whole machine (None for the plain loop), broker
    messages published (fleet only), the largest peak resident memory (MiB), and the share of
    the machine's CPU time a hypervisor stole meanwhile (%: figures taken while it is high
    say more about the host's other guests than about dsar)."""

    name: str
    rate: float
    latencies: list[float]
    cpu: float
    machine: float | None
    messages: int | None
    peak: float | None
    steal: float


def measure(app: Any, env: dict[str, str], n: int, warmup: int, counts: list[int], threads: int,
            take: Callable[[int], list[int]], log: Path) -> list[Row]:
    """Every row once: for access, then erasure, the plain loop, the request loop and the fleet
    with each process count, each after ``warmup`` unmeasured requests."""
    rows = []
    for kind, action in (("access", "collect"), ("erasure", "erase")):
        plain_loop(app, take(warmup), action)
        cpu, ticks = time.process_time(), cpu_ticks()
        reset_peak_rss()
        elapsed, lat = plain_loop(app, take(n), action)
        rows.append(Row(f"{kind}: plain loop (connector only)", n / elapsed, lat,
                        time.process_time() - cpu, None, None, peak_rss_mib(),
                        steal_percent(ticks, cpu_ticks())))
        request_loop(app, take(warmup), kind)
        cpu, machine, ticks = time.process_time(), machine_cpu_seconds(), cpu_ticks()
        reset_peak_rss()
        elapsed, lat = request_loop(app, take(n), kind)
        rows.append(Row(f"{kind}: request loop (no queues)", n / elapsed, lat,
                        time.process_time() - cpu, machine_cpu_seconds() - machine, None,
                        peak_rss_mib(), steal_percent(ticks, cpu_ticks())))
        for processes in counts:
            elapsed, lat, worker_cpu, machine_cpu, messages, peak, stolen = run_fleet(
                env, app, processes, threads, kind, take(warmup), take(n), log)
            rows.append(Row(f"{kind}: fleet, {processes} process(es) x {threads} threads",
                            n / elapsed, lat, worker_cpu, machine_cpu, messages, peak, stolen))
    return rows


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def print_table(rounds: list[list[Row]], n: int, customers: int) -> None:
    """One line per row: medians over the rounds (the range of req/s beside them when there
    were several), the largest peak memory."""
    print(f"\n{n} requests each, {customers} customers, {os.cpu_count()} CPUs"
          + (f", median of {len(rounds)} rounds" if len(rounds) > 1 else ""))
    print("CPU ms/req: the loop's own or the workers' CPU time per request; machine: all "
          "processes (PostgreSQL, RabbitMQ, the submitting loop, anything else running) "
          "per request; msgs/req: broker messages published per request; peak MiB: the "
          "largest peak resident memory of the loop's process or of a worker process; steal: "
          "the share of CPU time the host gave to other guests meanwhile (the largest of the "
          "rounds; where it is high, the figures are the host's, not dsar's)")
    spread = len(rounds) > 1
    print(f"{'run':<46} {'req/s':>7} " + (f"{'range':>13} " if spread else "")
          + f"{'p50 s':>7} {'p95 s':>7} {'CPU ms/req':>10} {'machine':>8} {'msgs/req':>8} "
          f"{'peak MiB':>8} {'steal %':>7}")
    for same in zip(*rounds, strict=True):
        rates = [r.rate for r in same]
        machine = _median([r.machine for r in same])
        messages = _median([r.messages for r in same])
        peaks = [r.peak for r in same if r.peak is not None]
        line = f"{same[0].name:<46} {statistics.median(rates):7.1f} "
        if spread:
            line += f"{f'{min(rates):.1f}-{max(rates):.1f}':>13} "
        line += (f"{statistics.median(percentile(r.latencies, 50) for r in same):7.3f} "
                 f"{statistics.median(percentile(r.latencies, 95) for r in same):7.3f} "
                 f"{1000 * statistics.median(r.cpu for r in same) / n:10.1f} "
                 + ("" if machine is None else f"{1000 * machine / n:8.1f}").rjust(8) + " "
                 + ("" if messages is None else f"{messages / n:8.2f}").rjust(8) + " "
                 + (f"{max(peaks):8.0f}" if peaks else "").rjust(8)
                 + f" {max(r.steal for r in same):7.1f}")
        print(line)


#: The aims of the fleet on two cores, in requests per second. Whole requests through the
#: fleet must also be at least as fast as the same requests run without queues (the request
#: loop); the plain loop (the connector alone) is shown for scale only, it is not an aim.
AIMS = {"access": 100.0, "erasure": 50.0}


def print_aims(rounds: list[list[Row]]) -> None:
    """Per kind: the best fleet run (by median) against its aim, and against the request loop
    measured in the same invocation (the same whole requests without queues: what queues and
    fan-out cost or buy, the figure that carries from machine to machine)."""
    medians = {same[0].name: statistics.median(r.rate for r in same)
               for same in zip(*rounds, strict=True)}
    for kind, aim in AIMS.items():
        fleets = {name: rate for name, rate in medians.items()
                  if name.startswith(f"{kind}: fleet")}
        if not fleets:
            continue
        best_name, best = max(fleets.items(), key=lambda item: item[1])
        whole = medians.get(f"{kind}: request loop (no queues)")
        plain = medians.get(f"{kind}: plain loop (connector only)")
        print(f"{kind}: best fleet {best:.1f} req/s ({best_name.split(': ', 1)[1]}), "
              f"{'at or above' if best >= aim else 'below'} the aim of {aim:.0f}"
              + ("" if not whole else
                 f"; whole requests {best / whole:.2f}x as fast as the request loop "
                 f"({'not slower' if best >= whole else 'SLOWER'} than the same work "
                 "without queues)")
              + ("" if not plain else f"; the connector alone runs {plain:.0f} req/s"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per worker process (default: dsar worker's)")
    parser.add_argument("--processes", default="1,2", help="worker process counts to run")
    parser.add_argument("--warmup", type=int, default=20,
                        help="requests run before each measured run, not counted (default 20)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every run, interleaved; medians are printed (default 1)")
    add_fast_path_option(parser)
    args = parser.parse_args(argv)
    n = args.requests
    tmp = Path(tempfile.mkdtemp(prefix="dsar-bench-fleet-"))
    vhost = f"dsar_bench_{uuid.uuid4().hex[:8]}"
    shop = state = None
    try:
        shop, state = create_db("dsar_bench_shop"), create_db("dsar_bench_state")
        started = time.perf_counter()
        build_shop(shop, args.customers)
        print(f"shop database: {args.customers} customers built in "
              f"{time.perf_counter() - started:.1f}s")
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True)
        app, env = bench_app(tmp, shop, state, AMQP + vhost, DSAR_WATCH_INTERVAL="5",
                             DSAR_SQL_FAST_PATH=args.sql_fast_path)
        print(f"DSAR_SQL_FAST_PATH={args.sql_fast_path}")
        counts = [int(p) for p in args.processes.split(",")]
        needed = (n + args.warmup) * 2 * (len(counts) + 2) * args.repeat
        if needed > args.customers:
            raise SystemExit(f"--customers must be at least {needed} for --requests {n}, "
                             f"--warmup {args.warmup} and --repeat {args.repeat}")
        pool = iter(range(1, args.customers + 1, max(1, args.customers // needed)))

        def take(count: int) -> list[int]:
            return [next(pool) for _ in range(count)]

        rounds = [measure(app, env, n, args.warmup, counts, args.threads, take,
                          tmp / "worker.log") for _ in range(args.repeat)]
        print_table(rounds, n, args.customers)
        print_aims(rounds)
        app.db.dispose()
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True)
        for url in (shop, state):
            if url:
                drop_db(url)


if __name__ == "__main__":
    main()
