"""A bounded load run of the portal's form on loopback: posts per second, latency, and the rate
limits holding under load.

    python -m bench.portal_load [--seconds 15] [--concurrency 16] [--database-url URL]

Starts ``dsar serve --proxy-headers`` on a free loopback port (embedded SQLite state in a
temporary folder unless ``--database-url`` names another; the demo data map; no mail server,
so messages wait in the outbox) and then runs three phases with httpx:

1. throughput: for ``--seconds``, ``--concurrency`` clients each fetch the form (its CSRF
   token) and post a request, every post from its own address (``X-Forwarded-For``) and email,
   so no limit applies; reports posts/s and the latency of the posts (p50, p95, p99, max);
2. per-address limit: 3 x DSAR_RATE_LIMIT_ADDRESS posts from one address at once; exactly the
   limit must be answered 303, the rest 429;
3. per-email limit: 3 x DSAR_RATE_LIMIT_EMAIL posts for one email from different addresses;
   every one is answered 303 (the same answer whether filed or not: no enumeration), but only
   the limit's number of requests may be filed.

Exits 1 if a limit did not hold or a post failed. Figures are printed; nothing is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r'name="csrf" value="([^"]+)"')
ADDRESS_LIMIT, EMAIL_LIMIT = 10, 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _post(client: httpx.AsyncClient, address: str, email: str) -> tuple[int, float]:
    """GET the form (its CSRF cookie and token), then POST it; (status, seconds of the POST)."""
    page = await client.get("/", headers={"X-Forwarded-For": address})
    token = TOKEN.search(page.text)
    if token is None:
        return page.status_code, 0.0
    started = time.perf_counter()
    response = await client.post("/requests", headers={"X-Forwarded-For": address}, data={
        "csrf": token.group(1), "kind": "access", "email": email, "place": "DE"})
    return response.status_code, time.perf_counter() - started


async def throughput(base: str, seconds: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))

    async def client_loop() -> None:
        nonlocal failures
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while time.monotonic() < deadline:
                n = next(counter)
                status, took = await _post(client, f"10.{n >> 16 & 255}.{n >> 8 & 255}."
                                           f"{n & 255}", f"load{n}@example.org")
                if status == 303:
                    latencies.append(took)
                else:
                    failures += 1

    started = time.monotonic()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [0.0] * 99
    return {"posts": len(latencies), "failed": failures, "seconds": elapsed,
            "per_second": len(latencies) / elapsed, "p50_ms": q[49] * 1000,
            "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000,
            "max_ms": max(latencies, default=0.0) * 1000}


async def address_limit(base: str) -> dict[str, int]:
    clients = [httpx.AsyncClient(base_url=base, timeout=30) for _ in range(3 * ADDRESS_LIMIT)]
    try:  # one client (cookie jar) each: their CSRF cookies must not overwrite each other
        results = await asyncio.gather(*(_post(c, "192.0.2.7", f"addr{i}@example.org")
                                         for i, c in enumerate(clients)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    codes = [status for status, _ in results]
    return {"accepted": codes.count(303), "refused_429": codes.count(429),
            "other": len(codes) - codes.count(303) - codes.count(429)}


async def email_limit(base: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        results = [await _post(client, f"198.51.100.{i + 1}", "same.person@example.org")
                   for i in range(3 * EMAIL_LIMIT)]
    codes = [status for status, _ in results]
    return {"answered_303": codes.count(303), "other": len(codes) - codes.count(303)}


def _filed(env: dict[str, str], email: str) -> int:
    from dsar.app import App
    from dsar.db.models import IdentityRow

    app = App.from_env(env, migrate=False)
    lookup = app.keys.lookup_hash("email", email)
    with app.db.session() as session:
        return session.query(IdentityRow).filter(IdentityRow.lookup_hash == lookup).count()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="state database (default: SQLite in a temp dir)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="dsar-portal-load-"))
    shutil.copyfile(REPO / "interfaces" / "demo" / "datamap.yaml", folder / "datamap.yaml")
    env = {**os.environ, "DSAR_DATA_DIR": str(folder), "DSAR_LOG_FORMAT": "json",
           "DSAR_RATE_LIMIT_ADDRESS": f"{ADDRESS_LIMIT}/minute",
           "DSAR_RATE_LIMIT_EMAIL": f"{EMAIL_LIMIT}/hour"}
    env.pop("DSAR_SMTP_URL", None)
    if args.database_url:
        env["DSAR_DATABASE_URL"] = args.database_url
    subprocess.run([sys.executable, "-m", "cli", "db", "upgrade"], env=env, cwd=REPO,
                   check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port),
                               "--proxy-headers"], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print("the portal did not start:", server.stderr.read().decode()[-2000:]
                      if server.stderr else "", file=sys.stderr)
                return 1
            time.sleep(0.2)
        load = asyncio.run(throughput(base, args.seconds, args.concurrency))
        by_address = asyncio.run(address_limit(base))
        by_email = asyncio.run(email_limit(base))
        filed = _filed(env, "same.person@example.org")
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"portal load on loopback, {args.concurrency} clients for {load['seconds']:.1f} s "
          f"(1 uvicorn process, {'given database' if args.database_url else 'SQLite'} state)")
    print(f"  form posts accepted: {load['posts']} ({load['per_second']:.1f}/s), "
          f"failed: {load['failed']}")
    print(f"  POST latency ms: p50 {load['p50_ms']:.1f}  p95 {load['p95_ms']:.1f}  "
          f"p99 {load['p99_ms']:.1f}  max {load['max_ms']:.1f}")
    print(f"  one address, {3 * ADDRESS_LIMIT} posts at once: {by_address['accepted']} accepted, "
          f"{by_address['refused_429']} refused 429, {by_address['other']} other "
          f"(limit {ADDRESS_LIMIT}/minute)")
    print(f"  one email, {3 * EMAIL_LIMIT} posts from different addresses: "
          f"{by_email['answered_303']} answered alike, {filed} filed (limit {EMAIL_LIMIT}/hour)")
    held = (by_address["accepted"] == ADDRESS_LIMIT and by_address["other"] == 0
            and by_email["other"] == 0 and filed == EMAIL_LIMIT and load["failed"] == 0)
    print("  rate limits held" if held else "  RATE LIMITS DID NOT HOLD (or posts failed)")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
