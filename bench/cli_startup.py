"""How long ``dsar --help`` and ``dsar --version`` take to start, in fresh processes.

    python -m bench.cli_startup [--runs 10]

Each run starts a new interpreter (``python -m cli ARGS``, so the measured time includes
Python's own start-up) and the median and best wall-clock times are printed, beside a bare
``python -c pass`` for comparison. Also prints which heavy packages (sqlalchemy, rich, dramatiq,
boto3) the command imported: none should be, since commands load on use. A benchmark, not a
test: times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sqlalchemy", "rich", "dramatiq", "boto3", "jinja2", "cryptography")


def _time(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def _heavy(args: list[str]) -> list[str]:
    probe = ("import sys, runpy; sys.argv = ['dsar', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('cli', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    found = out.rsplit("HEAVY:", 1)[-1].strip()
    return [m for m in found.split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    base = _time(["-c", "pass"], runs)
    print(f"{'python -c pass':<22} median {statistics.median(base):.3f} s  "
          f"best {min(base):.3f} s")
    for args in (["--help"], ["--version"]):
        times = _time(["-m", "cli", *args], runs)
        print(f"{'dsar ' + ' '.join(args):<22} median {statistics.median(times):.3f} s  "
              f"best {min(times):.3f} s  heavy imports: {', '.join(_heavy(args)) or 'none'}")


if __name__ == "__main__":
    main()
