"""The ``dsar datamap`` commands and ``dsar plan``, through click."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from interfaces.commands.datamap import datamap, plan
from tests.chinook import RETAIN_INVOICES, chinook_map, copy_sqlite

FIDES = Path(__file__).parent / "fides_shop.yml"


def test_discover_then_check(tmp_path: Path, chinook_dir: Path) -> None:
    url = copy_sqlite(chinook_dir, tmp_path)
    out = tmp_path / "map.yaml"
    runner = CliRunner()
    result = runner.invoke(datamap, ["discover", url, "--system", "chinook", "--url-env",
                                     "CHINOOK_URL", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "url_env: CHINOOK_URL" in out.read_text()
    checked = runner.invoke(datamap, ["check", str(out), "--json"], env={"CHINOOK_URL": url})
    report = json.loads(checked.output)
    assert checked.exit_code == (1 if report["errors"] else 0)


def test_check_exits_non_zero_on_errors(tmp_path: Path, chinook_dir: Path) -> None:
    url = copy_sqlite(chinook_dir, tmp_path)
    path = tmp_path / "map.yaml"
    path.write_text(chinook_map("sqlite", invoice=RETAIN_INVOICES))
    result = CliRunner().invoke(datamap, ["check", str(path)], env={"CHINOOK_URL": url})
    assert result.exit_code == 1
    assert "1 error(s)" in result.output


def test_import_fides_writes_a_map(tmp_path: Path) -> None:
    out = tmp_path / "imported.yaml"
    result = CliRunner().invoke(datamap, ["import-fides", str(FIDES), "--url-env", "SHOP_URL",
                                          "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "direction: outbound" in out.read_text()


def test_plan_prints_names_never_values(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(chinook_map("postgresql"))
    runner = CliRunner()
    result = runner.invoke(plan, ["erasure", "--email", "Jane@Example.com", "--json"],
                           env={"DSAR_DATAMAP": str(path)})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [s["collection"] for s in data["steps"]] == ["invoice_line", "invoice", "customer"]
    assert "jane" not in result.output.lower()
    text = runner.invoke(plan, ["access", "--email", "jane@example.com", "--datamap", str(path)])
    assert text.exit_code == 0 and "customer" in text.output


def test_plan_without_a_map_says_how_to_give_one() -> None:
    result = CliRunner().invoke(plan, ["access", "--email", "jane@example.com"],
                                env={"DSAR_DATAMAP": ""})
    assert result.exit_code != 0
    assert "DSAR_DATAMAP" in (result.exception.fix or "")  # type: ignore[union-attr]
