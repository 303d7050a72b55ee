"""``datamap check`` on the shop of :mod:`tests.connectors.test_sql_erase_shared`: what a
mask leaves findable, ``keep``, ``none`` tables with personal data, deleting rows the subject's
own surviving rows point at, and tables hanging off rows reached outbound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from dsar.errors import DataMapError
from tests.connectors.sql_dialects import DIALECTS, filled_database
from tests.connectors.test_sql_erase_shared import (
    ALICE,
    MD,
    ROWS,
    ids,
    make,
    ref,
    shop_map,
    snapshot,
)


@pytest.fixture(params=DIALECTS)
def shop_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from filled_database(request, tmp_path, "shop", MD, ROWS)


def test_check_warns_about_none_with_personal_data_and_unmasked_categories(
        shop_url: str) -> None:
    doc = yaml.safe_load(shop_map({"action": "mask", "mask": {"email": {"strategy": "hash"}}}))
    tables = {t["name"]: t for t in doc["systems"][0]["tables"]}
    tables["addresses"]["erasure"] = {"action": "none"}
    findings = check_datamap(parse_datamap(yaml.safe_dump(doc)), {"SHOP_URL": shop_url})
    warnings = {(f.table, f.column) for f in findings if f.severity == "warning"}
    assert ("addresses", None) in warnings  # street is personal, none never changes it
    assert ("service_request", "body") in warnings  # user.content left unmasked
    assert not [f for f in findings if f.severity == "error"]


def test_check_refuses_deleting_what_the_subjects_own_masked_row_still_points_at(
        shop_url: str) -> None:
    """customers masked without nulling home_id, addresses deleted: the home address could
    never go (her own row keeps pointing at it), so check says so rather than erasure
    quietly keeping it."""
    doc = yaml.safe_load(shop_map())
    tables = {t["name"]: t for t in doc["systems"][0]["tables"]}
    tables["customers"]["erasure"] = {"action": "mask", "mask": {
        "email": {"strategy": "hash"}, "name": {"strategy": "fixed", "value": "erased"}}}
    findings = check_datamap(parse_datamap(yaml.safe_dump(doc)), {"SHOP_URL": shop_url})
    errors = [f for f in findings if f.severity == "error"]
    assert [f.table for f in errors] == ["customers"]
    assert "home_id" in errors[0].problem and "mask" in errors[0].fix
    tables["customers"]["erasure"]["mask"]["home_id"] = {"strategy": "null"}
    tables["customers"]["columns"]["home_id"] = {"category": "user.contact.address"}
    findings = check_datamap(parse_datamap(yaml.safe_dump(doc)), {"SHOP_URL": shop_url})
    assert [f for f in findings if f.severity == "error"] == []
    with make(shop_url, yaml.safe_dump(doc)) as conn:
        by = {e.collection: e for e in conn.erase(ALICE).evidence}
    assert (by["addresses"].deleted, by["addresses"].counts) == (2, {"kept_shared": 1})
    assert ids(snapshot(shop_url)["addresses"]) == [20, 30, 40]


def test_keep_is_read_with_mask_only_and_never_with_the_same_column() -> None:
    def load(erasure: dict[str, Any]) -> None:
        parse_datamap(shop_map(erasure))

    with pytest.raises(DataMapError, match="'keep' is only read with action 'mask'"):
        load({"action": "delete", "keep": {"email": "needed"}})
    with pytest.raises(DataMapError, match="both masked and kept"):
        load({"action": "mask", "mask": {"email": {"strategy": "hash"}},
              "keep": {"email": "needed"}})


def test_check_names_a_missing_kept_column_and_a_key_identity(shop_url: str) -> None:
    doc = yaml.safe_load(shop_map({"action": "mask", "mask": {"email": {"strategy": "hash"}},
                                   "keep": {"emial": "typo"}}))
    tables = {t["name"]: t for t in doc["systems"][0]["tables"]}
    tables["customers"]["identities"] = {"email": "email", "customer_id": "id"}
    tables["customers"]["erasure"] = {"action": "mask", "mask": {
        "email": {"strategy": "hash"}, "name": {"strategy": "null"}}}
    findings = check_datamap(parse_datamap(yaml.safe_dump(doc)), {"SHOP_URL": shop_url})
    errors = {(f.table, f.column): f for f in findings if f.severity == "error"}
    assert {("service_request", "emial"), ("customers", "id")} <= set(errors)
    assert "'email'" in errors[("service_request", "emial")].fix
    assert "primary key cannot be masked" in errors[("customers", "id")].fix


def test_check_refuses_rows_hanging_off_shared_rows(shop_url: str) -> None:
    """reviews hang off products (inbound), which the subject reaches only through her order
    lines (outbound): other people's reviews would be collected and erased as hers, so check
    refuses the map (and erasure with it) until the map says whose they are."""
    doc = yaml.safe_load(shop_map())
    doc["systems"][0]["tables"].append(
        {"name": "reviews", "primary_key": ["id"],
         "references": [ref(["product_id"], "products", ["id"], "inbound")]})
    findings = check_datamap(parse_datamap(yaml.safe_dump(doc)), {"SHOP_URL": shop_url})
    refused = [f for f in findings if f.table == "reviews" and f.severity == "error"]
    assert len(refused) == 1 and "products" in refused[0].problem
    assert "direction to none" in refused[0].fix
    doc["systems"][0]["tables"][-1]["references"][0]["direction"] = "none"
    fixed = check_datamap(parse_datamap(yaml.safe_dump(doc)), {"SHOP_URL": shop_url})
    assert not [f for f in fixed if f.table == "reviews" and f.severity == "error"]
    assert not [f for f in findings if f.table == "addresses" and "reached only" in f.problem]
