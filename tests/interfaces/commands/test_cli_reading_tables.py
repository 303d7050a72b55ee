"""At 80 columns (a piped command, a default terminal) `dsar report`'s per-request table,
`datamap check`'s findings and suggested fixes, and the demo's evidence table keep ids, states,
dates and the places they name whole (issue #23)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

import interfaces.commands.output  # noqa: F401  (its consoles made before a test sets COLUMNS)
from cli import main
from interfaces.demo.run import print_evidence
from tests.chinook import RETAIN_INVOICES, chinook_map, copy_sqlite

pytest.register_assert_rewrite("tests.state")
from tests.state import Cli  # noqa: E402

pytest_plugins = ["tests.state"]

NARROW = {"COLUMNS": "80"}
ID = re.compile(r"dsr_[0-9a-f]{12}")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def fits(text: str, width: int = 80) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, too_wide


def new(cli: Cli, *args: str) -> str:
    return json.loads(ok(cli("submit", *args, "--json")))["id"]


def test_report_at_80_columns_keeps_ids_kinds_and_dates_whole(cli: Cli) -> None:
    made = [new(cli, kind, "--email", f"{kind}@example.com", "--channel", channel)
            for kind, channel in (("access", "web"), ("erasure", "cli"), ("export", "api"))]
    ok(cli("cancel", made[0], "--reason", "withdrawn by the person"))
    ok(cli("reject", made[1], "--reason", "a repeat of last week's", "--ground", "excessive"))
    out = ok(cli("report", env=NARROW))
    # the tables fit; the summary sentences above them are prose the terminal wraps
    fits(out.split("by kind and regime", 1)[1])
    table_part = out.split("\nrequests", 1)[1]
    assert "denial basis, channel left out" in table_part  # a table still, not vertical
    rows = {rid: line for line in table_part.splitlines() for rid in ID.findall(line)}
    assert set(rows) == set(made), out
    for rid, kind in zip(made, ("access", "erasure", "export"), strict=True):
        assert re.search(rf"(^|\s){kind}(\s|$)", rows[rid]), rows[rid]
        assert DATE.search(rows[rid]), rows[rid]  # the received date, whole on the id's line
    assert "True" not in out and "False" not in out and "None" not in out
    as_json = json.loads(ok(cli("report", "--json")))
    assert {r["request_id"] for r in as_json["requests"]} == set(made)


def test_datamap_check_at_80_columns_keeps_places_and_fixes_whole(
        tmp_path: Path, chinook_dir: Path) -> None:
    url = copy_sqlite(chinook_dir, tmp_path)
    path = tmp_path / "map.yaml"
    path.write_text(chinook_map("sqlite", invoice=RETAIN_INVOICES,
                                declare_invoice_reference=False))
    env = {**NARROW, "CHINOOK_URL": url}
    result = CliRunner().invoke(main, ["datamap", "check", str(path)], env=env)
    assert result.exit_code == 1, result.output
    out = result.stdout
    fits(out)
    found = json.loads(CliRunner().invoke(main, ["datamap", "check", str(path), "--json"],
                                          env=env).stdout)["findings"]
    assert found
    lines = out.splitlines()
    start = lines[0].index(" fix") + 1  # the fix column, read down on its own
    fixes = re.sub(r"\s+", "", "".join(line[start:] for line in lines[2:]))
    for f in found:
        where = ".".join(p for p in (f["system"], f["table"], f["column"]) if p)
        # the place on one line, with its severity: never "chinook.Customer.Em…"
        assert re.search(rf"^{f['severity']}\s+{re.escape(where)}(\s|$)", out, re.M), where
        # the suggested fix is all there, wrapped at most
        assert re.sub(r"\s+", "", f["fix"]) in fixes, f["fix"]
    assert "…" not in out.replace("staff_email=…", "")  # nothing shortened by the table


@pytest.mark.parametrize("kind", ["access", "erasure"])
def test_demo_evidence_table_at_80_columns(kind: str) -> None:
    bodies = [{"system": "shop_database", "collection": f"customer_addresses_{i}", "found": 12,
               "collected": 12, "deleted": 10, "masked": 1, "retained": 1, "remaining": 0,
               "retained_ground": "Art. 17(3)(b) commercial and tax records, 10 years",
               "counts": {"object_versions": 3, "delete_markers": 2}} for i in range(3)]
    buffer = io.StringIO()
    print_evidence(Console(file=buffer, width=80), kind, bodies)
    out = buffer.getvalue()
    fits(out)
    for body in bodies:
        assert body["collection"] in out, out  # whole, never "customer_addr…"
    assert "shop_database" in out and "…" not in out
