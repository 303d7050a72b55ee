"""The data map loader: valid maps load; mistakes name file:line and say what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsar.datamap.findings import Finding
from dsar.datamap.loader import load_datamap, parse_datamap
from dsar.errors import DataMapError
from tests.chinook import chinook_map

GOOD = """\
systems:
  - name: shop
    kind: sql
    url_env: SHOP_URL
    tables:
      - name: customer
        primary_key: [id]
        identities: {email: email}
        columns: {email: {category: user.contact.email}}
      - name: orders
        primary_key: [id]
        references:
          - {columns: [customer_id], table: customer, to: [id], direction: inbound}
"""


def error_of(text: str) -> DataMapError:
    with pytest.raises(DataMapError) as info:
        parse_datamap(text, "shop.yaml")
    return info.value


def test_a_valid_map_loads(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(GOOD)
    dm = load_datamap(path)
    assert dm.systems[0].name == "shop"
    assert parse_datamap(chinook_map("mariadb")).systems[0].tables[0].name == "Customer"


def test_unknown_field_names_line_path_and_suggests() -> None:
    err = error_of(GOOD.replace("direction: inbound", "directon: inbound"))
    assert "shop.yaml:13" in err.problem and "references[0]" in err.problem
    assert "'directon'" in err.problem and "direction" in err.one_line()


def test_wrong_value_names_the_choices() -> None:
    err = error_of(GOOD.replace("direction: inbound", "direction: sideways"))
    assert "shop.yaml:13" in err.problem and "inbound" in err.one_line()


def test_yaml_syntax_error_has_a_line() -> None:
    err = error_of(GOOD.replace("primary_key: [id]\n        identities", "primary_key: [id\n"
                                "        identities", 1))
    assert "shop.yaml:" in err.problem and "YAML" in err.problem


def test_duplicate_keys_and_secrets_are_refused() -> None:
    assert "twice" in error_of(GOOD.replace("    url_env: SHOP_URL\n",
                                            "    url_env: SHOP_URL\n    url_env: X\n")).problem
    err = error_of(GOOD.replace("url_env: SHOP_URL", "url: postgresql://u:secret@h/db"))
    assert "secret" not in err.one_line().replace("secrets", "")
    assert "url_env" in err.one_line()


def test_cross_references_are_checked() -> None:
    err = error_of(GOOD.replace("table: customer", "table: custmer"))
    assert "unknown table 'custmer'" in err.problem and "'customer'" in err.one_line()
    err = error_of(GOOD.replace("to: [id]", "to: [uid]"))
    assert "uid" in err.problem
    err = error_of(GOOD + "        erase_after: [nothing]\n")
    assert "erase_after" in err.problem and "shop.yaml:14" in err.problem
    masked = GOOD + "        erasure: {action: mask, mask: {name: {strategy: 'null'}}}\n"
    err = error_of(masked)
    assert "masked column 'name'" in err.problem and "columns" in (err.fix or "")


def test_keys_nobody_provides_are_warnings() -> None:
    warnings: list[Finding] = []
    parse_datamap(GOOD.replace("{email: email}", "{email: email, loyalty_no: card}"),
                  "m", warnings)
    assert [w.severity for w in warnings] == ["warning"]
    assert "loyalty_no" in warnings[0].problem and "--id" in warnings[0].problem


def test_several_problems_are_all_listed() -> None:
    err = error_of(GOOD.replace("kind: sql", "kind: sql\n    colour: red").replace(
        "direction: inbound", "direction: up"))
    assert "2 problems" in err.problem


@pytest.mark.parametrize("text", ["", "[]", "systems: []", "systems: [{}]", "- 1\n- 2",
                                  "systems: [{name: x, kind: s3}]", "a: &a [*a]"])
def test_degenerate_input_is_a_data_map_error(text: str) -> None:
    error_of(text)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DataMapError, match="does not exist") as info:
        load_datamap(tmp_path / "nope.yaml")
    assert "discover" in (info.value.fix or "")


def test_the_documented_example_is_valid() -> None:
    import re

    doc = (Path(__file__).resolve().parents[3] / "docs" / "datamap.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert example is not None
    dm = parse_datamap(example.group(1), "docs/datamap.md")
    assert [s.kind for s in dm.systems] == ["sql", "s3", "saas"]
