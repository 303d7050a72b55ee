"""Benchmark: SaaS erasures under a vendor rate limit, and a subject with many pages.

``python -m bench.saas [--requests 500] [--calls 100] [--window 10] [--workers 2]
[--objects 10000]`` starts the Stripe emulator (interfaces/demo/emulators) on 127.0.0.1
limited to ``--calls`` per ``--window`` seconds (a 429 with ``Retry-After`` beyond that), then:

1. **Erasures under the limit.** ``--workers`` processes share ``--requests`` subjects and run
   each subject's erasure as a worker task does (:meth:`Connector.erase_counted`: a count, then
   the erasure and its recount) on the ``customers`` resource, with the account's limit shared
   through Redis (``DSAR_RATE_LIMIT_URL``, default the local Redis). Prints the calls made,
   the 429s received (and how many came after the first second) and the elapsed time against
   the minimum the limit allows: with N calls, ``(ceil(N / calls) - 1) · window`` (the first
   window's calls can all go at once). Aims: no 429 after the first second, within 10 %.
   The processes call the connector directly, not through the broker: the figure is the
   runtime's and the limiter's, not the fleet's.
2. **Flat memory over many pages.** One subject with ``--objects`` charges (100 a page),
   collected into a sink that drops rows, under ``tracemalloc`` in this process (the emulator
   runs in its own process), beside the same with a tenth of the objects. Peak memory should
   grow far slower than the objects (only per-item evidence hashes accumulate).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time
import tracemalloc
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tests.services import REDIS_URL

KEY = "sk_test_bench"


def _system(resources: list[str], calls: int, window: float) -> Any:
    from dsar.datamap.schema import SaaSSystem

    return SaaSSystem(name="payments", kind="saas", vendor="stripe", token_env="STRIPE_API_KEY",
                      base_url_env="STRIPE_URL", resources=resources,
                      rate_limit={"calls": calls, "seconds": window})


def _erase_worker(url: str, limiter_url: str, emails: list[str], calls: int, window: float,
                  hash_key: bytes, out: Any) -> None:
    from connectors.base import ConnectorContext
    from connectors.saas.connector import SaaSConnector

    env = {"STRIPE_API_KEY": KEY, "STRIPE_URL": url, "DSAR_RATE_LIMIT_URL": limiter_url}
    conn = SaaSConnector(_system(["customers"], calls, window),
                         ConnectorContext(hash_key=hash_key, environ=env))
    deleted = 0
    for email in emails:
        result = conn.erase_counted({"email": frozenset({email})}, lambda found: None)
        deleted += sum(e.deleted for e in result.evidence)
    out.send((conn.client.calls, conn.client.throttled, deleted, conn.client.limiter.waited))
    conn.close()


def erasures(requests: int, calls: int, window: float, workers: int, limiter_url: str) -> None:
    from interfaces.demo.emulators.stripe import StripeEmulator

    emulator = StripeEmulator(KEY)
    url = emulator.start()
    emails = [f"subject{i}@example.com" for i in range(requests)]
    for email in emails:
        emulator.add_customer(email, charges=0, invoices=0, payment_methods=0, subscriptions=0)
    times: list[float] = []
    original = emulator.handle

    seen: list[float] = []

    def timed(req: Any) -> Any:
        answer = original(req)
        now = time.monotonic()
        seen[1:] = [now] if seen else []
        if not seen:
            seen.append(now)
        if answer[0] == 429:
            times.append(now)
        return answer

    emulator.handle = timed  # type: ignore[method-assign]
    emulator.rate_limit = (calls, window)
    spawn = multiprocessing.get_context("spawn")
    hash_key = uuid.uuid4().bytes * 2  # a fresh account key in the shared limiter
    pipes, procs = [], []
    started = time.monotonic()
    for w in range(workers):
        parent, child = spawn.Pipe()
        proc = spawn.Process(target=_erase_worker, args=(
            url, limiter_url, emails[w::workers], calls, window, hash_key, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    results = [p.recv() for p in pipes]
    elapsed = time.monotonic() - started
    for proc in procs:
        proc.join()
    emulator.stop()
    made = emulator.calls
    first, last = seen[0], seen[-1]
    late = sum(1 for t in times if t - first > 1.0)
    minimum = (math.ceil(made / calls) - 1) * window
    print(f"erasures: {requests} subjects, {workers} worker processes, limit {calls} calls "
          f"per {window:g} s, limiter state in {limiter_url.split('://')[0]}")
    print(f"  calls made            {made} ({made / requests:.1f} per erasure)")
    print(f"  deleted               {sum(r[2] for r in results)}")
    print(f"  429s received         {emulator.throttled} ({late} after the first second)")
    span = last - first
    print(f"  first to last call    {span:.1f} s; minimum the limit allows {minimum:.1f} s "
          f"({(span / minimum - 1) * 100 if minimum else 0:+.1f} %)")
    print(f"  elapsed with start-up {elapsed:.1f} s (two processes spawned and imported)")
    print(f"  waited in the limiter {sum(r[3] for r in results):.1f} s over the workers")


class NullSink:
    def __init__(self) -> None:
        self.rows = 0

    def write_rows(self, system: str, collection: str,
                   rows: Iterable[Mapping[str, Any]]) -> None:
        self.rows += sum(1 for _ in rows)

    def write_object(self, system: str, collection: str, name: str,
                     metadata: Mapping[str, str], chunks: Iterator[bytes]) -> None:
        pass


def _serve_many(objects: int, conn: Any) -> None:
    from interfaces.demo.emulators.stripe import StripeEmulator

    emulator = StripeEmulator(KEY)
    url = emulator.start()
    emulator.add_customer("many@example.com", charges=objects)
    conn.send(url)
    conn.recv()  # until the parent is done
    emulator.stop()


def peak_collect(objects: int) -> tuple[int, float, int]:
    from connectors.base import ConnectorContext
    from connectors.saas.connector import SaaSConnector

    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    server = spawn.Process(target=_serve_many, args=(objects, child))
    server.start()
    url = parent.recv()
    env = {"STRIPE_API_KEY": KEY, "STRIPE_URL": url, "DSAR_RATE_LIMIT_URL": "memory://"}
    conn = SaaSConnector(_system(["customers", "charges"], 100_000, 1),
                         ConnectorContext(hash_key=b"b" * 32, environ=env))
    sink = NullSink()
    tracemalloc.start()
    started = time.monotonic()
    conn.collect({"email": frozenset({"many@example.com"})}, sink)
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    conn.close()
    parent.send("done")
    server.join()
    return sink.rows, elapsed, peak


def memory(objects: int) -> None:
    print("many pages: one subject's charges, 100 a page, collected into a sink that drops rows")
    for n in (max(objects // 10, 1), objects):
        rows, elapsed, peak = peak_collect(n)
        print(f"  {n:>7} charges: {rows} rows in {elapsed:.1f} s, peak Python memory "
              f"{peak / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--limiter", default=REDIS_URL,
                        help="where the shared limit lives (redis://… or memory://)")
    parser.add_argument("--skip-erasures", action="store_true")
    args = parser.parse_args()
    if not args.skip_erasures:
        erasures(args.requests, args.calls, args.window, args.workers, args.limiter)
    memory(args.objects)


if __name__ == "__main__":
    main()
