"""Planning: steps, orders and the cross-system task graph, from key names only."""

from __future__ import annotations

import json

import pytest
import yaml

from dsar.datamap.loader import parse_datamap
from dsar.errors import InvalidInput
from dsar.planning import plan_request, walk_sql_system
from tests.chinook import RETAIN_INVOICES, chinook_map, mask_customer

KEYS = {"email": frozenset({"someone@example.org"})}


def test_access_plan_walks_customer_invoice_lines_and_never_the_employee() -> None:
    dm = parse_datamap(chinook_map("postgresql"))
    plan = plan_request(dm, KEYS, "access")
    assert [(s.collection, s.action) for s in plan.steps] == [
        ("customer", "collect"), ("invoice", "collect"), ("invoice_line", "collect")]
    line = plan.steps[2]
    assert line.matches[0].path == ("email", "customer", "invoice", "invoice_line")
    assert ("chinook", "employee") in plan.unreachable
    assert plan.tasks[0].id == "chinook:collect" and plan.tasks[0].depends_on == ()
    text = json.dumps(plan.to_dict())
    assert "someone@example.org" not in text and '"email"' in text


def test_erasure_plan_orders_children_first_and_carries_the_legal_ground() -> None:
    erasure = {"invoice": RETAIN_INVOICES, "customer": mask_customer("postgresql")}
    plan = plan_request(parse_datamap(chinook_map("postgresql", **erasure)), KEYS, "erasure")
    assert [(s.collection, s.action) for s in plan.steps] == [
        ("invoice_line", "retain"), ("invoice", "retain"), ("customer", "mask")]
    assert plan.steps[1].retain_ground == "Art. 17(3)(b) tax records"
    assert plan.steps[1].retain_period == "10 years"
    assert plan.tasks[0].action == "erase"


MULTI = """
systems:
  - name: shop
    kind: sql
    url_env: SHOP_URL
    tables:
      - name: customer
        primary_key: [id]
        identities: {email: email}
        provides: {customer_id: id}
      - name: audit
        primary_key: [id]
        erase_after: [customer]
        identities: {customer_id: customer_id}
  - name: files
    kind: s3
    bucket: uploads
    objects:
      - {name: avatar, key: "avatars/{customer_id}.png", category: user.image}
      - {name: uploads, prefix: "uploads/{customer_id}/{ticket_id}/", category: user.content}
  - name: crm
    kind: saas
    vendor: hubspot
    token_env: HUBSPOT_TOKEN
    identities: {email: email}
"""


def test_tasks_wait_for_keys_other_systems_provide() -> None:
    dm = parse_datamap(MULTI)
    plan = plan_request(dm, KEYS, "erasure")
    tasks = {t.id: t for t in plan.tasks}
    assert tasks["shop:erase"].depends_on == () and tasks["crm:erase"].depends_on == ()
    assert tasks["files:erase"].needs == ("customer_id",)
    assert tasks["files:erase"].depends_on == ("shop:erase",)
    assert [s.collection for s in plan.steps_for("shop")] == ["customer", "audit"]
    assert ("files", "uploads") in plan.unreachable  # ticket_id is never known
    given = plan_request(dm, {"customer_id": frozenset({"7"})}, "access")
    assert given.task("files:collect").depends_on == ()
    assert [s.collection for s in given.steps_for("shop")] == ["audit"]


def test_cycles_terminate_and_each_table_is_visited_once() -> None:
    doc = {"systems": [{"name": "db", "kind": "sql", "url_env": "DB_URL", "tables": [
        {"name": "a", "primary_key": ["id"], "identities": {"email": "email"},
         "references": [{"columns": ["b_id"], "table": "b", "to": ["id"],
                         "direction": "outbound"}]},
        {"name": "b", "primary_key": ["id"],
         "references": [{"columns": ["c_id"], "table": "c", "to": ["id"],
                         "direction": "outbound"}]},
        {"name": "c", "primary_key": ["id"],
         "references": [{"columns": ["a_id"], "table": "a", "to": ["id"],
                         "direction": "outbound"},
                        {"columns": ["parent_id"], "table": "c", "to": ["id"],
                         "direction": "inbound"}]},
    ]}]}
    dm = parse_datamap(yaml.safe_dump(doc))
    walk = walk_sql_system(dm.systems[0], {"email"})  # type: ignore[arg-type]
    assert walk.discovery == ("a", "b", "c")
    assert sorted(walk.erase_order) == ["a", "b", "c"]
    assert any("cycle" in note for note in walk.notes)
    assert any("self-reference" in note for note in walk.notes)


def test_systems_waiting_on_each_other_do_not_deadlock() -> None:
    doc = {"systems": [
        {"name": "one", "kind": "sql", "url_env": "ONE", "tables": [
            {"name": "t", "identities": {"email": "email"}, "provides": {"k1": "id"}},
            {"name": "u", "identities": {"k2": "k2"}}]},
        {"name": "two", "kind": "sql", "url_env": "TWO", "tables": [
            {"name": "v", "identities": {"k1": "k1"}, "provides": {"k2": "id"}}]},
    ]}
    plan = plan_request(parse_datamap(yaml.safe_dump(doc)), KEYS, "access")
    tasks = {t.id: t for t in plan.tasks}
    assert tasks["two:collect"].depends_on == ("one:collect",)
    assert tasks["one:collect"].depends_on == ()
    assert plan.notes


def test_unknown_action_is_refused() -> None:
    with pytest.raises(InvalidInput):
        plan_request(parse_datamap(MULTI), KEYS, "delete-everything")


def test_a_system_reached_by_email_still_waits_for_the_keys_it_needs_from_another() -> None:
    """files finds event-log lines by email at once, but its avatars need the customer id that
    shop provides: the files task must wait for shop, not run without the id."""
    doc = {"systems": [
        {"name": "shop", "kind": "sql", "url_env": "SHOP", "tables": [
            {"name": "customers", "identities": {"email": "email"},
             "provides": {"customer_id": "id"}}]},
        {"name": "files", "kind": "s3", "bucket": "b",
         "objects": [{"name": "avatars", "key": "avatars/{customer_id}.png",
                      "category": "user.photo"}],
         "shared": [{"name": "events", "prefix": "events/", "format": "jsonl",
                     "match": {"email": "user.email"}}]},
    ]}
    plan = plan_request(parse_datamap(yaml.safe_dump(doc)), KEYS, "erasure")
    tasks = {t.id: t for t in plan.tasks}
    assert tasks["files:erase"].depends_on == ("shop:erase",)
    assert tasks["files:erase"].needs == ("customer_id",)
    assert [t.id for t in plan.tasks] == ["shop:erase", "files:erase"]
    assert not plan.notes
