"""The command line reads at 80 columns: ids, states and dates appear whole, yes/no and — for
booleans and missing values, channel column and filter, no days left for finished requests."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

from interfaces.commands.output import console, table

pytest.register_assert_rewrite("tests.state")
from tests.state import Cli  # noqa: E402

pytest_plugins = ["tests.state"]

NARROW = {"COLUMNS": "80"}
ID = re.compile(r"dsr_[0-9a-f]{12}")


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def new(cli: Cli, *args: str) -> str:
    out = ok(cli("submit", *args, "--json"))
    return json.loads(out)["id"]


def fits(text: str, width: int = 80) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, too_wide


def test_list_at_80_columns_keeps_ids_states_and_dates_whole(cli: Cli) -> None:
    now = datetime.now(UTC)
    web = new(cli, "erasure", "--email", "a@example.com", "--channel", "web",
              "--identity-verified", "x", "--received-at", (now - timedelta(days=3)).isoformat())
    waiting = new(cli, "access", "--email", "b@example.com")
    done = new(cli, "export", "--email", "c@example.com")
    ok(cli("cancel", done, "--reason", "withdrawn by the person"))
    cli("confirm-identity", waiting, "--method", "email-link")  # awaiting approval or not
    out = ok(cli("list", env=NARROW))
    fits(out)
    assert set(ID.findall(out)) == {web, waiting, done}
    states = [json.loads(ok(cli("show", rid, "--json")))["state"] for rid in (web, done)]
    for state in states:
        assert re.search(rf"(^|\s){state}(\s|$)", out, re.M), state
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", out)
    cancelled_line = next(line for line in out.splitlines() if done in line)
    assert "—" in cancelled_line  # no days left for a finished request
    wide = ok(cli("list", env={"COLUMNS": "160"}))
    assert "channel" in wide and " web " in wide
    assert ID.findall(ok(cli("list", "--channel", "web", env=NARROW))) == [web]
    as_json = json.loads(ok(cli("list", "--channel", "web", "--json")))
    assert [r["id"] for r in as_json] == [web] and as_json[0]["channel"] == "web"


def test_show_at_80_columns(cli: Cli) -> None:
    rid = new(cli, "access", "--email", "a@example.com", "--identity-verified", "account-login")
    out = ok(cli("show", rid, env=NARROW))
    fits(out)
    assert rid in out and "identity verified" in out and "by account-login" in out
    assert "None" not in out and "True" not in out
    assert re.search(r"\d\d\d\d-\d\d-\d\d \d\d:\d\d UTC", out)


def test_the_transition_line_of_a_finished_request_has_no_days_left(cli: Cli) -> None:
    rid = new(cli, "access", "--email", "a@example.com")
    out = ok(cli("cancel", rid, "--reason", "withdrawn"))
    assert "days left" not in out and "cancelled" in out


@settings(max_examples=40, deadline=None)
@given(st.integers(40, 200), st.lists(st.tuples(
    st.from_regex(r"dsr_[0-9a-f]{12}", fullmatch=True),
    st.sampled_from(["awaiting_identity", "completed", "needs_attention"]),
    st.dates().map(lambda d: d.isoformat()),
    st.text(st.characters(codec="ascii", categories=("L", "N", "Zs")), max_size=120)),
    min_size=1, max_size=5))
def test_tables_never_cut_whole_values(width: int, rows: list[tuple[Any, ...]]) -> None:
    drawn = table("t", ["id", "state", "due", "why", "extra"],
                  [[*row, "low value"] for row in rows], optional=("extra",), width=width)
    with console.capture() as captured:
        console.width  # noqa: B018
        console.print(drawn, width=width)
    out = captured.get()
    for rid, state, due, _ in rows:
        assert rid in out and state in out and due in out
    fits(out, width)
