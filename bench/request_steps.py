"""Where an access or erasure request's time goes, step by step, beside the plain loop.

    python -m bench.request_steps --customers 100000 --requests 200

Builds the same shop database and data map as ``bench.fleet`` (PostgreSQL; the state
database is PostgreSQL too), then, in this process and on other customers each time, runs the
plain loop (the connector's work alone) and the request loop (whole requests without a broker)
of ``bench.fleet``, the latter with each step timed: the CPU time of this thread and the wall
time spent in the step itself, the steps it calls subtracted.

It ends with the part of a request that no change to the state database or the broker can
remove: the connector's work and the bundle, counted in this process's CPU alone (PostgreSQL's
share comes on top). ``bench.fleet`` compares the fleet with the request loop measured here.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.fleet import (
    add_fast_path_option,
    bench_app,
    create_db,
    drop_db,
    plain_loop,
    request_loop,
)
from bench.shop import build_shop

#: (module, attribute, step) in the order a request meets them; a step's time excludes the
#: time of the steps it calls.
STEPS = [
    ("dsar.requests", "submit", "intake (request, identities, outbox row)"),
    ("workflows.runner", "plan", "planning (plan, task rows, slot, handoff)"),
    ("workflows.task", "_call_connector", "connector (collect, or count and erase)"),
    ("workflows.assembly", "_make_bundle", "bundle (report, JSON, CSV, zip, encrypt, write)"),
    ("workflows.assembly", "build_record", "signed record and ledger entry"),
    ("workflows.runner", "follow", "task record, completion rows, commits"),
]
#: Steps whose cost does not depend on the state database or the broker.
OWN_WORK = ("connector", "bundle")


class StepClock:
    """Times named functions while active: per step, the calling thread's CPU seconds and the
    wall seconds spent in it, minus those of timed steps it called."""

    def __init__(self) -> None:
        self.cpu: Counter[str] = Counter()
        self.wall: Counter[str] = Counter()
        self._open: list[list[float]] = []

    def _timed(self, function: Callable[..., Any], step: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            self._open.append([0.0, 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                inner_cpu, inner_wall = self._open.pop()
                self.cpu[step] += cpu - inner_cpu
                self.wall[step] += wall - inner_wall
                if self._open:
                    self._open[-1][0] += cpu
                    self._open[-1][1] += wall
        return timed

    @contextmanager
    def timing(self, steps: list[tuple[str, str, str]]) -> Iterator[StepClock]:
        """Replace each ``module.attribute`` by its timed self for the block."""
        import importlib

        saved = []
        for module_name, attribute, step in steps:
            module = importlib.import_module(module_name)
            saved.append((module, attribute, getattr(module, attribute)))
            setattr(module, attribute, self._timed(getattr(module, attribute), step))
        try:
            yield self
        finally:
            for module, attribute, function in reversed(saved):
                setattr(module, attribute, function)


def report(kind: str, n: int, plain: float, loop: float, loop_cpu: float,
           clock: StepClock) -> None:
    """Print one kind's steps: CPU and wall milliseconds a request, and each step's share."""
    plain_ms = 1000 / plain
    print(f"\n{kind}: plain loop {plain:.1f} req/s ({plain_ms:.2f} ms a request); request loop "
          f"{loop:.1f} req/s, {1000 * loop_cpu / n:.2f} ms of this process's CPU a request")
    print(f"  {'step':<50} {'CPU ms':>7} {'wall ms':>8} {'CPU %':>6}")
    total = sum(clock.cpu.values())
    for _module, _attribute, step in STEPS:
        if step in clock.cpu:
            print(f"  {step:<50} {1000 * clock.cpu[step] / n:7.2f} "
                  f"{1000 * clock.wall[step] / n:8.2f} {100 * clock.cpu[step] / total:6.1f}")
    own_ms = 1000 * sum(cpu for step, cpu in clock.cpu.items() if step.startswith(OWN_WORK)) / n
    print(f"  the connector and the bundle alone take {own_ms:.1f} ms of this process's CPU "
          f"({100 * own_ms / (1000 * loop_cpu / n):.0f}% of the request loop's)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20,
                        help="requests run before each measured run, not counted (default 20)")
    add_fast_path_option(parser)
    args = parser.parse_args(argv)
    n, warmup = args.requests, args.warmup
    if 4 * (n + warmup) > args.customers:
        raise SystemExit(f"--customers must be at least {4 * (n + warmup)} for --requests {n}")
    tmp = Path(tempfile.mkdtemp(prefix="dsar-bench-steps-"))
    shop = state = None
    try:
        shop, state = create_db("dsar_bench_shop"), create_db("dsar_bench_state")
        build_shop(shop, args.customers)
        app, _ = bench_app(tmp, shop, state, "memory://", DSAR_SQL_FAST_PATH=args.sql_fast_path)
        print(f"DSAR_SQL_FAST_PATH={args.sql_fast_path}")
        pool = iter(range(1, args.customers + 1))

        def take(count: int) -> list[int]:
            return [next(pool) for _ in range(count)]

        for kind, action in (("access", "collect"), ("erasure", "erase")):
            plain_loop(app, take(warmup), action)
            elapsed, _ = plain_loop(app, take(n), action)
            plain = n / elapsed
            request_loop(app, take(warmup), kind)
            with StepClock().timing(STEPS) as clock:
                cpu = time.process_time()
                elapsed, _ = request_loop(app, take(n), kind)
                cpu = time.process_time() - cpu
            report(kind, n, plain, n / elapsed, cpu, clock)
        app.db.dispose()
    finally:
        for url in (shop, state):
            if url:
                drop_db(url)


if __name__ == "__main__":
    main()
