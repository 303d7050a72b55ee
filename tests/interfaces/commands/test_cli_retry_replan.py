"""``dsar retry ID --replan``: a request whose data map changed after it was planned is planned
again from the current map, through the fleet on the in-process broker; finished tasks whose
part of the plan is unchanged are kept, the rest runs anew; the audit trail says so."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from dsar.bundles import open_store
from dsar.bundles.aead import decrypt_stream
from dsar.bundles.reader import load_data
from dsar.db.models import Bundle
from tests.chinook import naming
from tests.workflows.fleet_helpers import Fleet, dsar_cli, several_chinooks
from workflows import runner
from workflows.runtime import InProcessFleet, wait_for

pytestmark = pytest.mark.postgres
n = naming("sqlite")  # several_chinooks copies Chinook's SQLite file


@pytest.fixture
def fleet(postgres_url: str, tmp_path: Path, chinook_dir: Path,
          monkeypatch: pytest.MonkeyPatch) -> Any:
    datamap, env = several_chinooks(chinook_dir, tmp_path)
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap, env)
    fleet.apply_env(monkeypatch)
    fleet.datamap = datamap  # type: ignore[attr-defined]
    yield fleet
    fleet.close()


def change_map(fleet: Fleet) -> None:
    """shop_d leaves the map; shop_b no longer lists invoice lines; shop_a and shop_c stay."""
    datamap = json.loads(json.dumps(fleet.datamap))  # type: ignore[attr-defined]
    datamap["systems"] = [s for s in datamap["systems"] if s["name"] != "shop_d"]
    shop_b = next(s for s in datamap["systems"] if s["name"] == "shop_b")
    shop_b["tables"] = [t for t in shop_b["tables"] if t["name"] != n("invoice_line")]
    Path(fleet.env["DSAR_DATAMAP"]).write_text(yaml.safe_dump(datamap))


def bundle_collections(fleet: Fleet, request_id: str) -> dict[tuple[str, str], int]:
    app = fleet.app
    with app.db.session() as session:
        bundle = session.scalars(sa.select(Bundle).where(Bundle.request_id == request_id)).one()
        blob = bundle.location.rsplit("/", 1)[1]
    store = open_store(fleet.env["DSAR_EXPORT_URL"])
    data = b"".join(decrypt_stream(store.open_stream(blob), app.keys.bundle_key))
    collections = load_data(zipfile.ZipFile(io.BytesIO(data)))["collections"]
    return {(c["system"], c["collection"]): c["row_count"] for c in collections}


def test_replan_after_the_map_changed_keeps_unchanged_work_and_redoes_the_rest(
        fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("access")
    runner.plan(app, request_id)
    tasks = {t["system"]: t for t in fleet.tasks(request_id)}
    for system in ("shop_a", "shop_b"):
        runner.run_task(app, tasks[system]["id"])
    finished = {t["system"]: t for t in fleet.tasks(request_id)}
    change_map(fleet)
    runner.run_task(app, tasks["shop_c"]["id"])  # refuses to run on a map it was not planned on
    shown = json.loads(dsar_cli(fleet.env, "show", request_id, "--json").stdout)
    assert shown["state"] == "needs_attention"
    assert f"dsar retry {request_id} --replan" in shown["attention"]

    replanned = dsar_cli(fleet.env, "retry", request_id, "--replan", "--json")
    assert replanned.returncode == 0, replanned.stderr
    answer = json.loads(replanned.stdout)
    assert answer["kept_tasks"] == ["shop_a:collect"]
    assert answer["planned_tasks"] == ["shop_b:collect", "shop_c:collect"]
    after = {t["system"]: t for t in fleet.tasks(request_id)}
    assert set(after) == {"shop_a", "shop_b", "shop_c"}  # shop_d's task is gone
    assert after["shop_a"] == finished["shop_a"]  # kept as it was: same row, same finish
    assert after["shop_b"]["id"] != tasks["shop_b"]["id"]  # its part of the plan changed

    with InProcessFleet(app, threads=2):
        assert wait_for(app, request_id, timeout=60).state == "completed"
    assert fleet.record_count(request_id) == 1
    found = bundle_collections(fleet, request_id)
    line, customer = n("invoice_line"), n("customer")
    assert found[("shop_a", line)] == found[("shop_c", line)] == 38
    assert ("shop_b", line) not in found  # collected on the new map only
    assert found[("shop_b", customer)] == 1  # not twice: the old attempt's data was dropped
    assert not any(system == "shop_d" for system, _ in found)

    timeline = json.loads(dsar_cli(fleet.env, "show", request_id, "--json").stdout)["timeline"]
    event = next(e for e in timeline if e["event"] == "replanned")
    assert (event["from"], event["to"]) == ("needs_attention", "in_progress")
    assert "1 finished task(s) kept, 2 planned" in event["reason"]
    assert event["reason"].startswith("planned again from data map sha256:")


def test_replan_is_refused_when_the_new_map_reaches_nothing_and_changes_nothing(
        fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("erasure")
    runner.plan(app, request_id)
    datamap = json.loads(json.dumps(fleet.datamap))  # type: ignore[attr-defined]
    for system in datamap["systems"]:
        for table in system["tables"]:
            table["identities"] = {k: v for k, v in table.get("identities", {}).items()
                                   if k != "email"}
    Path(fleet.env["DSAR_DATAMAP"]).write_text(yaml.safe_dump(datamap))
    first = fleet.tasks(request_id)[0]
    runner.run_task(app, first["id"])
    assert fleet.state(request_id) == "needs_attention"
    before = fleet.tasks(request_id)
    refused = dsar_cli(fleet.env, "retry", request_id, "--replan")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: no collection of the data map is looked up by email")
    assert len(refused.stderr.splitlines()) == 1
    assert fleet.tasks(request_id) == before and fleet.state(request_id) == "needs_attention"


def test_replan_needs_a_request_that_needs_attention(fleet: Fleet) -> None:
    request_id = fleet.submit("access")
    runner.plan(fleet.app, request_id)
    refused = dsar_cli(fleet.env, "retry", request_id, "--replan")
    assert refused.returncode == 4, refused.stderr
    assert "in_progress" in refused.stderr


def test_a_finished_task_a_new_task_waits_for_runs_again_so_its_keys_reach_it(
        fleet: Fleet) -> None:
    """shop_b is now looked up by the customer_id the other systems find: they ran before
    anyone waited for their keys (which were not kept), so they run again for shop_b."""
    app = fleet.app
    request_id = fleet.submit("access")
    runner.plan(app, request_id)
    tasks = {t["system"]: t for t in fleet.tasks(request_id)}
    for system in ("shop_a", "shop_c"):
        runner.run_task(app, tasks[system]["id"])
    datamap = json.loads(json.dumps(fleet.datamap))  # type: ignore[attr-defined]
    shop_b = next(s for s in datamap["systems"] if s["name"] == "shop_b")
    customer = next(t for t in shop_b["tables"] if t["name"] == n("customer"))
    customer["identities"] = {"customer_id": n("customer_id")}
    Path(fleet.env["DSAR_DATAMAP"]).write_text(yaml.safe_dump(datamap))
    runner.run_task(app, tasks["shop_d"]["id"])
    assert fleet.state(request_id) == "needs_attention"

    replanned = dsar_cli(fleet.env, "retry", request_id, "--replan", "--json")
    assert replanned.returncode == 0, replanned.stderr
    answer = json.loads(replanned.stdout)
    assert answer["kept_tasks"] == []
    assert sorted(answer["planned_tasks"]) == [f"{s}:collect" for s in
                                               ("shop_a", "shop_b", "shop_c", "shop_d")]
    with InProcessFleet(app, threads=2):
        assert wait_for(app, request_id, timeout=60).state == "completed"
    found = bundle_collections(fleet, request_id)
    assert found[("shop_b", n("customer"))] == 1  # found by the customer_id of the others
    assert found[("shop_b", n("invoice_line"))] == 38


def test_a_plain_retry_after_the_map_changed_points_to_replan(fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("access")
    runner.plan(app, request_id)
    change_map(fleet)
    runner.run_task(app, fleet.tasks(request_id)[0]["id"])
    before = fleet.tasks(request_id)
    refused = dsar_cli(fleet.env, "retry", request_id)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: the data map changed since request {request_id} was planned; restore it and "
        f"retry, or plan the request again from the current map: "
        f"`dsar retry {request_id} --replan`")
    assert fleet.tasks(request_id) == before and fleet.state(request_id) == "needs_attention"


def test_replan_never_drops_the_proof_of_an_erasure_already_done(fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("erasure")
    runner.plan(app, request_id)
    tasks = {t["system"]: t for t in fleet.tasks(request_id)}
    runner.run_task(app, tasks["shop_b"]["id"])  # shop_b erased, with its evidence
    evidence = fleet.evidence(request_id)
    change_map(fleet)  # which changes shop_b's part of the plan
    runner.run_task(app, tasks["shop_c"]["id"])
    assert fleet.state(request_id) == "needs_attention"
    before = fleet.tasks(request_id)
    refused = dsar_cli(fleet.env, "retry", request_id, "--replan")
    assert refused.returncode == 4, refused.stderr
    assert refused.stderr.startswith(f"error: request {request_id}: shop_b:erase erased under "
                                     "the old plan")
    assert len(refused.stderr.splitlines()) == 1
    assert fleet.tasks(request_id) == before and fleet.evidence(request_id) == evidence
    assert fleet.state(request_id) == "needs_attention"


def test_replan_after_a_failed_assembly_completes_the_request(fleet: Fleet) -> None:
    """Every task done, the assembly failed (the map broke in between): after replanning on the
    repaired, changed map, the task that runs again is followed by a new assembly."""
    app = fleet.app
    request_id = fleet.submit("access")
    runner.plan(app, request_id)
    for task in fleet.tasks(request_id):
        runner.run_task(app, task["id"])
    Path(fleet.env["DSAR_DATAMAP"]).write_text("systems: [")
    runner.assemble(app, request_id)
    assert fleet.state(request_id) == "needs_attention"
    change_map(fleet)
    replanned = dsar_cli(fleet.env, "retry", request_id, "--replan", "--json")
    assert replanned.returncode == 0, replanned.stderr
    assert json.loads(replanned.stdout)["planned_tasks"] == ["shop_b:collect"]
    with InProcessFleet(app, threads=2):
        assert wait_for(app, request_id, timeout=30).state == "completed"
    assert ("shop_b", n("invoice_line")) not in bundle_collections(fleet, request_id)
