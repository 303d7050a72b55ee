"""Through the fleet (in-process broker): an erasure on the shop with a shared address and shared
catalogue rows completes, its record says what was kept and why, and it verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsar.records import keys as signing
from tests.connectors.sql_dialects import fill
from tests.connectors.test_sql_erase_shared import (
    ALICE_ROWS,
    MD,
    ROWS,
    checksums,
    shop_map,
    snapshot,
)

pytest.register_assert_rewrite("tests.state")
from tests.state import Cli  # noqa: E402

pytest_plugins = ["tests.state"]


def test_the_record_of_an_erasure_that_kept_shared_rows_verifies(cli: Cli,
                                                                  tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    fill(url, MD, ROWS)
    (tmp_path / "map.yaml").write_text(shop_map())
    signing.generate(tmp_path / "keys")
    env = {"DSAR_DATAMAP": str(tmp_path / "map.yaml"), "SHOP_URL": url,
           "DSAR_BROKER_URL": "memory://", "DSAR_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
           "DSAR_EXPORT_URL": str(tmp_path / "exports")}
    before = snapshot(url)
    done = cli("submit", "erasure", "--email", "a@example.org", "--identity-verified", "test",
               "--wait", "--json", env=env)
    assert done.exit_code == 0, (done.output, done.exception)
    request = json.loads(done.stdout)
    assert request["state"] == "completed", request
    record = tmp_path / "record.json"
    assert cli("record", request["id"], "-o", str(record), env=env).exit_code == 0
    verified = cli("verify", str(record), env=env)
    assert verified.exit_code == 9, verified.output  # intact; origin not checked (no key)
    bodies = {e["collection"]: e for e in _evidence(json.loads(record.read_text()))}
    assert bodies["addresses"]["counts"] == {"kept_shared": 1}
    assert bodies["products"]["counts"] == {"kept_shared": 2}
    assert all(b["remaining"] == 0 for b in bodies.values() if b["action"] in ("delete", "mask"))
    page = tmp_path / "record.html"
    assert cli("record", request["id"], "--html", "-o", str(page), env=env).exit_code == 0
    html = page.read_text()
    assert "kept: shared with other records (1)" in html
    assert "kept: shared with other records (2)" in html
    after = snapshot(url)
    assert [r[0] for r in after["addresses"]] == [20, 30, 40]
    changed = {t: set(keys) for t, keys in ALICE_ROWS.items()}
    changed["addresses"] -= {40}  # shared: kept as they were
    changed["products"] -= {500, 503}
    assert checksums(before, changed) == checksums(after, changed)


def _evidence(bundle: dict[str, object]) -> list[dict[str, object]]:
    """Every evidence body in the bundle, wherever the format keeps them."""
    found: list[dict[str, object]] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if "collection" in value and "counts" in value:
                found.append(value)  # type: ignore[arg-type]
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(bundle)
    return found

