"""YAML alias bombs: a few hundred bytes of nested aliases are refused at once, in one line and
bounded memory, by every command that reads a map; honest aliases still load."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import main
from dsar.datamap.loader import ALIAS_EXPANSION_LIMIT, check_alias_expansion, parse_datamap
from dsar.errors import DataMapError


def laughs(levels: int = 9, width: int = 9, top: str = "systems") -> str:
    """The billion laughs: each level a list of ``width`` aliases to the level below."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    lines.append(f"{top}: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def laughs_sizes(levels: int, width: int) -> tuple[int, int]:
    """(expanded, written) node counts of :func:`laughs`: the root, a key and a list per
    level, the top key and its alias; list ``k`` expands to ``1 + width * size(k - 1)``."""
    sizes = [1 + width]
    for _ in range(1, levels):
        sizes.append(1 + width * sizes[-1])
    expanded = 1 + sum(1 + size for size in sizes) + 1 + sizes[-1]
    written = 1 + (levels + 1) + (1 + width) + (levels - 1)
    return expanded, written


MERGE_BOMB = "\n".join(
    ["m0: &m0 {a: 1, b: 2}"]
    + [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}, *m{i - 1}, *m{i - 1}]}}" for i in range(1, 14)]
    + ["systems: [*m13]"]) + "\n"

HONEST = """
systems:
  - name: shop
    kind: sql
    url_env: SHOP_URL
    tables:
      - name: customer
        primary_key: [id]
        identities: {email: email}
        columns: &contact
          email: {category: user.contact.email}
          phone: {category: user.contact.phone_number}
        erasure: &forget {action: delete}
      - {name: lead, primary_key: [id], identities: {email: email}, columns: *contact,
         erasure: *forget}
"""

def test_the_billion_laughs_is_refused_quickly_in_bounded_memory() -> None:
    text = laughs()
    assert len(text) < 500
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(DataMapError) as refused:
        parse_datamap(text, "bomb.yaml")
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5 * 1024 * 1024
    line = refused.value.one_line()
    assert "\n" not in line
    expanded, _ = laughs_sizes(9, 9)
    assert line.startswith(f"bomb.yaml: YAML aliases would expand this file to {expanded:,} ")
    assert "write the values out" in line


def test_merge_keys_that_multiply_are_refused_too() -> None:
    started = time.monotonic()
    with pytest.raises(DataMapError, match="YAML aliases would expand"):
        parse_datamap(MERGE_BOMB, "merge.yaml")
    assert time.monotonic() - started < 1.0


def test_a_self_referring_anchor_is_refused() -> None:
    with pytest.raises(DataMapError, match="a YAML alias refers to itself"):
        parse_datamap("systems: &s [*s]\n", "self.yaml")


def test_honest_aliases_still_load() -> None:
    datamap = parse_datamap(HONEST, "honest.yaml")
    assert [t.erasure.action for t in datamap.systems[0].tables] == ["delete", "delete"]


@settings(max_examples=40, deadline=2000)
@given(levels=st.integers(1, 40), width=st.integers(1, 12))
def test_expansion_is_counted_exactly_without_expanding(levels: int, width: int) -> None:
    node = yaml.compose(laughs(levels, width, top="x"), Loader=yaml.SafeLoader)
    expanded, written = laughs_sizes(levels, width)
    extra = expanded - written
    if extra > ALIAS_EXPANSION_LIMIT:
        with pytest.raises(DataMapError, match="YAML aliases would expand") as refused:
            check_alias_expansion(node, "x.yaml")
        if expanded < 10**12:
            assert f" to {expanded:,} nodes" in refused.value.one_line()
    else:
        check_alias_expansion(node, "x.yaml")


@pytest.mark.parametrize("args", [["datamap", "check"], ["plan", "access", "--email",
                                                          "a@example.org", "--datamap"]])
def test_commands_that_read_a_map_refuse_it_in_one_line(args: list[str], tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs())
    started = time.monotonic()
    result = CliRunner().invoke(main, [*args, str(bomb)], prog_name="dsar")
    assert time.monotonic() - started < 5
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1
    assert "YAML aliases would expand" in result.stderr


def test_import_fides_refuses_it_too(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(laughs(top="dataset"))
    started = time.monotonic()
    result = CliRunner().invoke(main, ["datamap", "import-fides", str(bomb), "--url-env", "DB"],
                                prog_name="dsar")
    assert time.monotonic() - started < 5
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1
    assert "alias" in result.stderr.lower()
