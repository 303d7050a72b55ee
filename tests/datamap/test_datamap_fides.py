"""Importing a Fides dataset file: identities, directions, keys across datasets, erasure."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsar.datamap.fides import import_fides, import_fides_map
from dsar.datamap.schema import SqlSystem
from dsar.errors import DataMapError
from dsar.planning import plan_request

FIXTURE = (Path(__file__).parent / "fides_shop.yml").read_text()


def test_fides_dataset_becomes_a_valid_map_with_directions_mapped() -> None:
    dm = import_fides_map(FIXTURE, "SHOP_URL", "fides_shop.yml")
    shop, tickets = dm.systems
    assert isinstance(shop, SqlSystem) and isinstance(tickets, SqlSystem)
    assert (shop.url_env, tickets.url_env) == ("SHOP_URL_POSTGRES_SHOP", "SHOP_URL_MONGO_TICKETS")
    customer = shop.table("customer")
    assert customer.identities == {"email": "email"} and customer.primary_key == ["id"]
    assert customer.references[0].direction == "outbound"  # fides "to": address from customer
    assert shop.table("orders").references[0].direction == "inbound"  # fides "from"
    assert shop.table("login").identities == {"phone": "phone"}
    assert shop.table("login").references[0].direction == "none"  # no direction given
    assert customer.columns["email"].category == "user.contact.email"
    assert customer.erasure.action == "mask" and set(customer.erasure.mask) == {"email", "name"}
    assert shop.table("orders").erasure.action == "delete"
    assert shop.table("orders").erase_after == ["order_item"]
    # a reference into another dataset becomes a shared key
    assert customer.provides == {"customer_id": "id"}
    assert tickets.table("ticket").identities == {"customer_id": "customer_id"}


def test_imported_map_plans_as_fides_would_traverse() -> None:
    dm = import_fides_map(FIXTURE, "SHOP_URL")
    plan = plan_request(dm, {"email": frozenset({"x@example.org"})}, "access")
    assert [s.collection for s in plan.steps_for("postgres_shop")] == [
        "customer", "address", "orders", "order_item"]
    assert plan.task("mongo_tickets:collect").depends_on == ("postgres_shop:collect",)


def test_notes_are_kept_as_comments() -> None:
    text = import_fides(FIXTURE, "SHOP_URL", "fides_shop.yml")
    assert "# note: postgres_shop.customer: 'after: postgres_shop.address' dropped" in text
    assert "choose inbound or outbound" in text


@pytest.mark.parametrize("bad", ["", "dataset: 3", "dataset: [{name: x}]", "{{", "- 1"])
def test_bad_fides_files_are_data_map_errors(bad: str) -> None:
    with pytest.raises(DataMapError):
        import_fides(bad, "X_URL")
