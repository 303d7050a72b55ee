"""The fleet as it runs on many machines: each worker has only its own empty disk.

Three ``dsar worker`` processes, each with its own empty ``DSAR_DATA_DIR`` and its own copy of
the data map and of the signing keyring (as a mounted secret would be), the master key from the
environment, sharing only PostgreSQL (state, and the Chinook system the data map describes),
RabbitMQ and S3 (moto's server; bundles go there). 300 mixed requests; one worker is SIGKILLed
halfway. Every request completes, every completion record verifies with the public keys alone,
every bundle is in S3, and no worker's disk holds anything a request needed.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dsar.db.models import Bundle
from dsar.records import keys as keyring
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from tests.chinook import chinook_map, chinook_pg_template_fixture, postgres_copy
from tests.workflows.fleet_helpers import Fleet, rabbit_vhost, wait_until

pytest_plugins = ["tests.s3server"]
pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]
__all__ = ["chinook_pg_template_fixture"]
REQUESTS = int(os.environ.get("DSAR_HOSTS_REQUESTS", "300"))
HOSTS = 3


@pytest.fixture
def chinook_pg(chinook_pg_template: str) -> Iterator[str]:
    from connectors import sql_engine
    from tests import services

    url = postgres_copy(chinook_pg_template)
    yield url
    sql_engine.dispose_all()
    services.drop_postgres_database(url)


def host_env(fleet: Fleet, tmp: Path, index: int) -> dict[str, str]:
    """What one machine has: an empty data folder, and its copies of the configuration and the
    secrets (the data map, the signing keyring), as a deployment would mount them."""
    host = tmp / f"host-{index}"
    (host / "data").mkdir(parents=True)
    shutil.copytree(fleet.env["DSAR_SIGNING_KEYS_DIR"], host / "secrets" / "signing-keys")
    shutil.copyfile(fleet.env["DSAR_DATAMAP"], host / "datamap.yaml")
    return {"DSAR_DATA_DIR": str(host / "data"),
            "DSAR_SIGNING_KEYS_DIR": str(host / "secrets" / "signing-keys"),
            "DSAR_DATAMAP": str(host / "datamap.yaml")}


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_three_hosts_300_requests_one_killed(tmp_path: Path, postgres_url: str,
                                             chinook_pg: str, moto_endpoint: str,
                                             make_bucket: object) -> None:
    bucket = make_bucket()  # type: ignore[operator]
    emails = list(sa.create_engine(chinook_pg).connect().execute(
        sa.text("SELECT email FROM customer ORDER BY customer_id")).scalars())
    with rabbit_vhost() as broker:
        fleet = Fleet(tmp_path / "cli", postgres_url, broker, chinook_map("postgresql"),
                      {"CHINOOK_URL": chinook_pg,
                       "DSAR_EXPORT_URL": f"s3://{bucket}/bundles",
                       "DSAR_EXPORT_ENDPOINT_URL": moto_endpoint,
                       "DSAR_TASK_LEASE_SECONDS": "10"})
        hosts = [host_env(fleet, tmp_path, i) for i in range(HOSTS)]
        try:
            workers = [fleet.start_worker(processes=1, threads=2, extra=env) for env in hosts]
            rng = random.Random(22)
            kinds = ["access"] * 4 + ["export"] * 3 + ["erasure"] * 3
            started = time.monotonic()
            ids = [fleet.submit(rng.choice(kinds), rng.choice(emails)) for _ in range(REQUESTS)]
            first = ids[:REQUESTS // 3]
            wait_until(lambda: sum(fleet.state(r) == "completed" for r in first) >= len(first) // 2,
                       120, "a first part of the requests to complete")
            fleet.kill(workers[1])
            workers[1].wait(10)
            states = fleet.wait_settled(ids, timeout=600)
            assert set(states.values()) == {"completed"}, {
                s: sum(v == s for v in states.values()) for s in set(states.values())}
            print(f"\n{REQUESTS} requests on {HOSTS} hosts, one SIGKILLed: all completed in "
                  f"{time.monotonic() - started:.0f} s")
            public = keyring.public_keys(hosts[0]["DSAR_SIGNING_KEYS_DIR"])
            with fleet.app.db.session() as session:
                for request_id in ids:
                    check = verify_bundle(make_bundle(session, fleet.app, request_id),
                                          public_keys=public)
                    assert check.ok, (request_id, [c for c in check.checks if not c.ok])
                locations = list(session.scalars(sa.select(Bundle.location)))
            assert locations and all(loc.startswith(f"s3://{bucket}/") for loc in locations)
            for env in hosts:  # nothing a request needed was kept on a worker's own disk
                assert files_under(Path(env["DSAR_DATA_DIR"])) == []
        finally:
            fleet.close()
