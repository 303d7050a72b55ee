"""Importing a Fides dataset file: each fideslang construct, what it becomes, and the notes for
what has no equivalent (which `dsar datamap check` then reports as warnings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsar.datamap.fides import import_fides, import_fides_map
from dsar.datamap.findings import Finding
from dsar.datamap.loader import parse_datamap
from dsar.datamap.schema import SqlSystem, SqlTable
from dsar.errors import DataMapError
from dsar.planning import plan_request
from interfaces.commands.datamap import datamap

HERE = Path(__file__).parent
SHOP = (HERE / "fides_shop.yml").read_text()
SEMANTICS = (HERE / "fides_semantics.yml").read_text()


def tables(text: str, targets: tuple[str, ...] = ("user",)) -> dict[str, SqlTable]:
    dm = import_fides_map(text, "APP_URL", "f.yml", targets)
    return {t.name: t for s in dm.systems if isinstance(s, SqlSystem) for t in s.tables}


def mask_of(table: SqlTable) -> dict[str, dict[str, object]]:
    return {c: r.model_dump(exclude_none=True) for c, r in table.erasure.mask.items()}


def test_fides_dataset_becomes_a_valid_map_with_directions_mapped() -> None:
    dm = import_fides_map(SHOP, "SHOP_URL", "fides_shop.yml")
    shop, tickets = dm.systems
    assert isinstance(shop, SqlSystem) and isinstance(tickets, SqlSystem)
    assert (shop.url_env, tickets.url_env) == ("SHOP_URL_POSTGRES_SHOP", "SHOP_URL_MONGO_TICKETS")
    customer = shop.table("customer")
    assert customer.identities == {"email": "email"} and customer.primary_key == ["id"]
    assert customer.references[0].direction == "outbound"  # fides "to": address from customer
    assert shop.table("orders").references[0].direction == "inbound"  # fides "from"
    assert shop.table("login").identities == {"phone": "phone"}
    # no direction given, and both ends have identities: Fides' way depends on the request
    assert shop.table("login").references[0].direction == "none"
    assert ("# note: postgres_shop.login.customer_id: reference without direction imported as "
            "'none'") in import_fides(SHOP, "SHOP_URL", "fides_shop.yml")
    assert customer.columns["email"].category == "user.contact.email"
    assert customer.erasure.action == "mask" and set(customer.erasure.mask) == {"email", "name"}
    assert shop.table("orders").erasure.action == "delete"  # masking_strategy_override delete
    assert shop.table("orders").erase_after == ["order_item"]
    # a reference into another dataset becomes a shared key
    assert customer.provides == {"customer_id": "id"}
    assert tickets.table("ticket").identities == {"customer_id": "customer_id"}


def test_imported_map_plans_as_fides_would_traverse() -> None:
    dm = import_fides_map(SHOP, "SHOP_URL")
    plan = plan_request(dm, {"email": frozenset({"x@example.org"})}, "access")
    assert [s.collection for s in plan.steps_for("postgres_shop")] == [
        "customer", "address", "orders", "order_item"]
    assert plan.task("mongo_tickets:collect").depends_on == ("postgres_shop:collect",)


def test_every_identity_field_and_the_identity_outside_the_targets() -> None:
    users = tables(SEMANTICS)["users"]
    assert users.identities == {"email": ["email", "backup_email"], "username": "login_name"}
    assert {"email", "backup_email", "login_name"} <= set(users.erasure.mask)  # never findable


def test_directions_to_from_and_none() -> None:
    t = tables(SEMANTICS)
    refs = {r.table: r.direction for r in t["users"].references}
    assert refs == {"addresses": "outbound", "teams": "outbound"}  # none given: as Fides goes
    assert [(r.table, r.direction) for r in t["sessions"].references] == [("users", "inbound")]
    assert [(r.table, r.direction) for r in t["events"].references] == [("sessions", "inbound")]


def test_erasure_masks_what_the_policy_targets_and_deletes_only_when_asked() -> None:
    t = tables(SEMANTICS)
    assert t["teams"].erasure.action == "none"  # no personal field: never changed
    assert t["addresses"].erasure.action == "mask"
    assert mask_of(t["addresses"]) == {"street": {"strategy": "null"}}
    assert t["sessions"].erasure.action == "delete"  # masking_strategy_override: delete
    # collection-level categories reach every field; the primary key is never masked
    assert set(t["events"].erasure.mask) == {"page", "clicked_at"}
    # a narrower policy target: only contact data is masked, the rest is left alone
    narrow = tables(SEMANTICS, ("user.contact",))
    assert narrow["events"].erasure.action == "none"
    assert set(narrow["users"].erasure.mask) == {"email", "backup_email", "login_name",
                                                 "preferences"}
    assert all(t.erasure.action != "delete" for n, t in narrow.items() if n != "sessions")


def test_field_masking_overrides_data_type_length_and_read_only() -> None:
    users = tables(SEMANTICS)["users"]
    mask = mask_of(users)
    assert mask["nickname"] == {"strategy": "fixed", "value": "REDACT"}  # cut to length 6
    assert mask["birth_year"] == {"strategy": "random"}  # a hash would not fit an integer
    assert mask["shoe_size"] == {"strategy": "random"}  # nor would the text 'MASKED'
    assert mask["signup_ip"] == {"strategy": "hash"}  # aes_encrypt: irreversible instead
    assert "legal_name" not in mask and "legal_name" in users.columns  # read_only


def test_nested_fields_map_to_their_column_masked_whole() -> None:
    users = tables(SEMANTICS)["users"]
    assert users.columns["preferences"].category == "user.contact.phone_number"
    assert mask_of(users)["preferences"] == {"strategy": "null"}
    assert "phone" not in users.identities  # an identity inside a JSON value: noted, dropped


def test_skip_processing_erase_after_schema_and_other_datasets() -> None:
    t = tables(SEMANTICS)
    assert "audit_log" not in t
    assert t["sessions"].erase_after == ["events"]
    assert {t[n].db_schema for n in ("users", "sessions")} == {"app"}
    assert t["invoices"].db_schema is None
    assert t["users"].provides == {"users_id": "id"}  # billing finds invoices by it
    assert t["invoices"].identities == {"users_id": "customer_ref"}


def test_what_cannot_be_translated_is_a_note_and_a_check_warning() -> None:
    text = import_fides(SEMANTICS, "APP_URL", "f.yml")
    notes = [line for line in text.splitlines() if line.startswith("# note: ")]
    for expected in ("users.login_name: identity field outside the erasure targets",
                     "users.nickname: rewrite_value cut", "users.birth_year: a hash is text",
                     "users.shoe_size: rewrite_value 'MASKED' does not fit data_type integer",
                     "users.signup_ip: aes_encrypt", "users.legal_name: read_only",
                     "preferences.contact.phone: identity or reference inside a nested field",
                     "users.preferences: nested fields map to the whole column",
                     "erase_after billing.invoices is in another dataset",
                     "audit_log: skip_processing",
                     "users.team_id: reference without direction imported as 'outbound'"):
        assert any(expected in n for n in notes), expected
    warnings: list[Finding] = []
    parse_datamap(text, "map.yaml", warnings)
    opened = [w for w in warnings if w.problem.startswith("open note")]
    assert len(opened) == len(notes) and all(w.severity == "warning" for w in opened)
    first = text.splitlines().index(notes[0]) + 1
    assert opened[0].where == f"map.yaml:{first}" and notes[0][8:] in opened[0].problem
    resolved = "\n".join(line for line in text.splitlines() if not line.startswith("# note"))
    later: list[Finding] = []
    parse_datamap(resolved, "map.yaml", later)
    assert not [w for w in later if w.problem.startswith("open note")]


def test_check_on_the_cli_lists_the_notes(tmp_path: Path) -> None:
    out = tmp_path / "imported.yaml"
    runner = CliRunner()
    made = runner.invoke(datamap, ["import-fides", str(HERE / "fides_semantics.yml"),
                                   "--url-env", "APP_URL", "--erase-category", "user.contact",
                                   "-o", str(out)])
    assert made.exit_code == 0, made.output
    assert "action: none" in out.read_text()
    checked = runner.invoke(datamap, ["check", str(out), "--json"])  # no URLs: errors too
    report = json.loads(checked.output)
    assert sum(f["problem"].startswith("open note") for f in report["findings"]) >= 5


@pytest.mark.parametrize(("bad", "says"), [
    ("", "the file is empty"),
    ("dataset: 3", "f.yml:1: no 'dataset:' list"),
    ("dataset:\n  - name: x\n", "f.yml:2: a dataset has no fides_key"),
    ("{{", "f.yml:1: not valid YAML"),
    ("- 1", "no 'dataset:' list"),
    ("dataset:\n- fides_key: d\n  collections:\n  - fields: []\n", "f.yml:4: a collection"),
    ("dataset:\n- fides_key: d\n  collections:\n  - name: t\n    fields:\n    - x: 1\n",
     "f.yml:6: a field of d.t has no name"),
    ("dataset:\n- fides_key: d\n  collections:\n  - name: t\n    fields:\n    - name: a\n"
     "      fides_meta:\n        references:\n        - {field: t.b, direction: sideways}\n",
     "f.yml:9: reference direction 'sideways'"),
    ("dataset:\n- fides_key: d\n  collections:\n  - name: t\n    fides_meta:\n"
     "      erase_after: [u]\n    fields: []\n", "f.yml:6: erase_after entry 'u'"),
    ("dataset:\n- fides_key: d\n  collections:\n  - {name: t, fields: []}\n"
     "  - {name: t, fields: []}\n", "f.yml:5: collection 't' is listed twice"),
    ("a: &a [*a]", "YAML"),
    ("a: &x [1,1,1,1,1,1,1,1,1]\nb: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x]\n"
     "c: &z [*y,*y,*y,*y,*y,*y,*y,*y,*y]\nd: &w [*z,*z,*z,*z,*z,*z,*z,*z,*z]\n"
     "e: [*w,*w,*w,*w,*w,*w,*w,*w,*w,*w,*w,*w,*w,*w,*w,*w,*w,*w]\n", "aliases expand"),
])
def test_malformed_fides_files_are_one_line_errors_with_the_line(bad: str, says: str) -> None:
    with pytest.raises(DataMapError, match=None) as caught:
        import_fides(bad, "X_URL", "f.yml")
    assert says in caught.value.problem and caught.value.fix
    assert "\n" not in caught.value.one_line()


def test_text_from_the_file_never_breaks_out_of_a_note() -> None:
    text = ("dataset:\n- fides_key: d\n  collections:\n  - name: t\n    fides_meta:\n"
            "      after: [\"d.x\\nsystems: []\"]\n    fields:\n"
            "    - {name: id, fides_meta: {primary_key: true}}\n")
    out = import_fides(text, "X_URL", "f.yml")
    assert "# note: d.t: 'after: d.x systems: []' dropped" in out
    assert parse_datamap(out).systems[0].name == "d"


def test_the_url_variable_must_be_a_variable_name() -> None:
    with pytest.raises(DataMapError, match="not an environment variable name"):
        import_fides(SHOP, "postgresql://shop", "f.yml")


NAMES = st.sampled_from(["id", "email", "alt", "user_id", "data", "x-y", "2nd", "t", "u"])
CATEGORIES = st.lists(st.sampled_from(["user.contact.email", "user.name", "system.operations",
                                       "user", "user.unique_id"]), max_size=2)
META = st.fixed_dictionaries({}, optional={
    "primary_key": st.booleans(), "identity": st.sampled_from(["email", "phone_number", "x"]),
    "read_only": st.booleans(), "data_type": st.sampled_from(["string", "integer", "object"]),
    "length": st.integers(1, 10),
    "masking_strategy_override": st.fixed_dictionaries(
        {"strategy": st.sampled_from(["null_rewrite", "hash", "string_rewrite", "zzz"])},
        optional={"configuration": st.just({"rewrite_value": "MASKEDVALUE"})}),
    "references": st.lists(st.fixed_dictionaries(
        {"field": st.builds("{}.{}".format, NAMES, NAMES)},
        optional={"dataset": st.sampled_from(["a", "b", "c"]),
                  "direction": st.sampled_from(["to", "from"])}), max_size=2)})
FIELDS = st.recursive(
    st.fixed_dictionaries({"name": NAMES}, optional={"data_categories": CATEGORIES,
                                                     "fides_meta": META}),
    lambda inner: st.fixed_dictionaries({"name": NAMES, "fields": st.lists(inner, max_size=2)}),
    max_leaves=4)
COLLECTIONS = st.fixed_dictionaries(
    {"name": NAMES, "fields": st.lists(FIELDS, max_size=4)},
    optional={"fides_meta": st.fixed_dictionaries({}, optional={
        "skip_processing": st.booleans(),
        "masking_strategy_override": st.just({"strategy": "delete"}),
        "erase_after": st.lists(st.builds("{}.{}".format, st.sampled_from(["a", "b"]), NAMES),
                                max_size=2)}),
        "data_categories": CATEGORIES})
DATASETS = st.lists(st.fixed_dictionaries(
    {"fides_key": st.sampled_from(["a", "b", "c"]),
     "collections": st.lists(COLLECTIONS, max_size=4, unique_by=lambda c: c["name"])}),
    min_size=1, max_size=3, unique_by=lambda d: d["fides_key"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DATASETS)
def test_any_fides_file_imports_to_a_map_that_loads_or_to_a_one_line_error(
        datasets: list[dict[str, object]]) -> None:
    text = yaml.safe_dump({"dataset": datasets})
    try:
        out = import_fides(text, "X_URL", "f.yml")
    except DataMapError as exc:  # the importer's own, never the final load's
        assert exc.problem.startswith("f.yml") and "(imported)" not in exc.problem
        assert exc.fix and "\n" not in exc.one_line()
        return
    dm = parse_datamap(out, "out.yaml")
    for system in dm.systems:
        assert isinstance(system, SqlSystem)
        for table in system.tables:
            assert table.erasure.action in ("mask", "delete", "none")
            if table.erasure.action == "mask":
                assert not set(table.erasure.mask) & set(table.primary_key)
