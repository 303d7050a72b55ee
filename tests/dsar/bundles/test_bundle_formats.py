"""Value encoding, the CSV dialect, safe entry names and category labels."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsar.bundles import csvfmt
from dsar.bundles.labels import category_label
from dsar.bundles.names import UniqueNames, entry, safe_path
from dsar.bundles.values import column_types, decode, encode, kind_of, merge_kind

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
typed = {
    "datetime": st.datetimes(timezones=st.sampled_from([None, dt.UTC, dt.timezone(
        dt.timedelta(hours=-3, minutes=-30))])),
    "date": st.dates(),
    "time": st.times(),
    "decimal": st.decimals(allow_nan=False, allow_infinity=False),
    "bytes": st.binary(),
    "uuid": st.uuids(),
    "json": st.dictionaries(st.text(), st.integers() | st.text(), max_size=3),
}


@st.composite
def tables(draw):
    """Rows whose columns each hold one typed kind or plain JSON scalars, plus nulls."""
    columns = draw(st.lists(st.text(min_size=1), min_size=1, max_size=5, unique=True))
    strategies = {c: draw(st.sampled_from([scalars, *typed.values()])) for c in columns}
    count = draw(st.integers(0, 5))
    return columns, [
        {c: draw(st.none() | strategies[c]) for c in columns} for _ in range(count)
    ]


def _types(rows):
    kinds: dict[str, str | None] = {}
    for row in rows:
        for c, v in row.items():
            kinds[c] = merge_kind(kinds.get(c), kind_of(v))
    return column_types(kinds)


def test_a_column_of_strings_and_values_written_as_strings_is_mixed() -> None:
    """A string next to a date or an infinite float makes the column mixed, not typed, so a
    reader leaves its strings as they are instead of failing to parse them."""
    for other in (math.inf, dt.date(2024, 5, 1), uuid.UUID(int=7)):
        rows = [{"c": ""}, {"c": other}, {"c": "plain"}]
        types = _types(rows)
        assert types == {"c": "mixed"}
        back = [decode(encode(r["c"]), types["c"]) for r in rows]
        assert back == ["", encode(other), "plain"]
    assert _types([{"c": "a"}, {"c": [1, 2]}]) == {"c": "json"}
    assert _types([{"c": "a"}, {"c": 1}]) == {}


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and type(a) is type(b)


@given(tables())
@settings(max_examples=200, deadline=None)
def test_bundle_json_and_csv_round_trip(table) -> None:
    columns, rows = table
    types = _types(rows)
    json_text = json.dumps([{c: encode(v) for c, v in r.items()} for r in rows])
    from_json = [{c: decode(v, types.get(c)) for c, v in r.items()} for r in json.loads(json_text)]
    text = "".join(csvfmt.lines(json.loads(json_text), columns, types))
    got_columns, from_csv = csvfmt.parse(text, types)
    assert got_columns == columns
    for original, j, c in zip(rows, from_json, from_csv, strict=True):
        for column in columns:
            assert _same(j[column], original[column]), (column, original[column], j[column])
            assert _same(c[column], original[column]), (column, original[column], c[column])


def test_bundle_non_finite_floats() -> None:
    rows = [{"x": math.inf}, {"x": -math.inf}, {"x": 1.0}, {"x": math.nan}]
    types = _types(rows)
    assert types == {"x": "float"}
    text = "".join(csvfmt.lines([{k: encode(v) for k, v in r.items()} for r in rows], ["x"], types))
    values = [r["x"] for r in csvfmt.parse(text, types)[1]]
    assert values[:3] == [math.inf, -math.inf, 1.0] and math.isnan(values[3])


def test_bundle_value_types() -> None:
    assert kind_of(Decimal("1")) == "decimal" and kind_of(uuid.uuid4()) == "uuid"
    assert kind_of(True) is None and kind_of(memoryview(b"x")) == "bytes"
    assert merge_kind("date", "datetime") == "mixed" and merge_kind(None, "date") == "date"
    assert encode(object()).startswith("<object")  # unknown types become their text


def test_bundle_csv_null_vs_empty_and_quoting() -> None:
    text = "".join(csvfmt.lines([{"a": None, "b": "", "c": 'x,"y"\r\nz', "d": 7}],
                                ["a", "b", "c", "d"], {}))
    assert text == '"a","b","c","d"\r\n,"","x,""y""\r\nz",7\r\n'
    assert csvfmt.parse(text)[1] == [{"a": None, "b": "", "c": 'x,"y"\r\nz', "d": 7}]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "etc/passwd"),
        ("/etc/shadow", "etc/shadow"),
        ("..\\..\\windows\\system32", "windows/system32"),
        ("C:\\boot.ini", "C_/boot.ini"),
        ("a/./b/../c", "a/b/c"),
        ("..", "_"),
        ("", "_"),
        ("con.txt", "_con.txt"),
        ("bad\x00name\x1f.txt", "bad_name_.txt"),
        (" spaced. ", "spaced"),
        ("résumé café.pdf", "résumé café.pdf"),
        ('a<b>c:"d"|e?f*g', "a_b_c__d__e_f_g"),
    ],
)
def test_bundle_safe_path(name: str, expected: str) -> None:
    assert safe_path(name) == expected


@given(st.text())
def test_bundle_safe_path_never_escapes(name: str) -> None:
    path = entry("files", "sys", "coll", name)
    parts = path.split("/")
    assert path.startswith("files/sys/coll/") and "\\" not in path and ":" not in path
    assert all(p and p not in {".", ".."} for p in parts)
    assert all(len(p.encode()) <= 120 for p in parts)


def test_bundle_unique_names() -> None:
    names = UniqueNames()
    assert [names.claim(n) for n in ["a.txt", "A.TXT", "a.txt", "dir/x"]] == [
        "a.txt", "A~2.TXT", "a~3.txt", "dir/x"
    ]


def test_bundle_long_names_are_shortened_stably() -> None:
    long = "x" * 500 + ".png"
    assert safe_path(long) == safe_path(long) and safe_path(long).endswith(".png")
    assert safe_path(long) != safe_path("y" + long)


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("user.contact.email", "Email address"),
        ("contact.email", "Email address"),
        ("user.provided.identifiable.contact.phone_number", "Phone number"),
        ("user.financial.bank_account", "Bank account"),
        ("user.contact.address.street", "Street address"),
        ("user.device.ip_address", "IP address"),
        ("user.contact.fax", "Contact details: Fax"),
        ("user.gaming.high_score", "Gaming: High score"),
        ("", "Other data"),
    ],
)
def test_bundle_category_labels(code: str, label: str) -> None:
    assert category_label(code) == label


@pytest.mark.parametrize(
    ("bases", "listed"),
    [
        ([None], {"Art. 16", "Art. 17", "Art. 18", "Art. 21", "Art. 20", "Art. 7(3)"}),
        (["Art. 6(1)(f) legitimate interests"], {"Art. 16", "Art. 17", "Art. 18", "Art. 21"}),
        (["contract"], {"Art. 16", "Art. 17", "Art. 18", "Art. 20"}),
        (["Art. 6(1)(a) consent", "Art. 6(1)(c) legal obligation"],
         {"Art. 16", "Art. 17", "Art. 18", "Art. 20", "Art. 7(3)"}),
    ],
)
def test_bundle_rights_follow_legal_bases(bases, listed) -> None:
    from dsar.bundles.describe import rights
    from dsar.datamap.schema import Art15Info

    assert {r.article for r in rights([Art15Info(legal_basis=b) for b in bases])} == listed
