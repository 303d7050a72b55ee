"""Text output prints values as they are: square brackets are never read as rich markup."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cli import main
from dsar.datamap.findings import Finding
from dsar.db.models import Request
from interfaces.commands.output import console, styled, table

pytest.register_assert_rewrite("tests.state")
from tests.state import Backend, Cli, set_state, submit  # noqa: E402

pytest_plugins = ["tests.state"]

TRICKY = "use [rental_id] as the key; [bold]not bold[/] \\[x] [x]"


def test_plain_print_keeps_square_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    console.print(TRICKY)
    assert capsys.readouterr().out == TRICKY + "\n"


def test_styled_fills_values_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    text = styled("[red]needs attention:[/] {} and {}", "[x]", "[bold]y[/]")
    assert text.plain == "needs attention: [x] and [bold]y[/]"
    assert [(s.start, s.end, str(s.style)) for s in text.spans] == [(0, 16, "red")]
    console.print(text)
    assert capsys.readouterr().out == "needs attention: [x] and [bold]y[/]\n"


def test_table_cells_and_titles_keep_square_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    console.print(table("fix [x]", ["problem", "fix"], [["[bold]gone?[/]", "key on [rental_id]"]]))
    out = capsys.readouterr().out
    for part in ("fix [x]", "[bold]gone?[/]", "key on [rental_id]"):
        assert part in out


@given(st.text(alphabet=string.ascii_letters + string.digits + " []/\\#=:.-_", max_size=60))
def test_any_value_prints_verbatim(value: str) -> None:
    assert styled("[bold]{}[/]", value).plain == value
    with console.capture() as captured:
        console.print(value, end="")
    assert captured.get() == value


def test_needs_attention_line_keeps_square_brackets(cli: Cli, backend: Backend) -> None:
    app = backend.make_app()
    request = submit(app)
    set_state(app, request.id, "needs_attention")
    with app.db.session() as session:
        row = session.get(Request, request.id)
        assert row is not None
        row.attention_reason = "shop.rental: look it up by [rental_id] ([bold]x[/])"
    result = cli("show", request.id)
    assert result.exit_code == 0, result.output
    assert "needs attention: shop.rental: look it up by [rental_id] ([bold]x[/])" in result.stdout


def test_error_line_keeps_square_brackets(cli: Cli) -> None:
    result = cli("show", "dsr_[bold]x[/]")
    assert result.exit_code != 0
    assert "dsr_[bold]x[/]" in result.stderr
    assert result.stderr.startswith("error: ")


def test_datamap_check_shows_a_suggested_fix_with_square_brackets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dsar.datamap.check as check

    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump({"systems": [{
        "name": "shop", "kind": "sql", "url_env": "SHOP_URL", "tables": [
            {"name": "rental", "primary_key": ["rental_id"], "identities": {"email": "email"}}]}]}))
    finding = Finding("error", "shop", "rental", None, "no [bold]key[/] found",
                      "add primary_key: [rental_id]")
    monkeypatch.setattr(check, "check_datamap", lambda *_: [finding])
    result = CliRunner().invoke(main, ["datamap", "check", str(path)], prog_name="dsar",
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    text = " ".join(result.stdout.split())
    assert "add primary_key: [rental_id]" in text
    assert "no [bold]key[/] found" in text
