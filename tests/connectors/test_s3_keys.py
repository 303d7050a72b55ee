"""Key templates: a filled template never selects more than the subject's own objects."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from connectors.s3_keys import (
    FORBIDDEN_CHARS,
    TemplateError,
    UnsafeKeyValue,
    check_value,
    parse_template,
)

PREFIXES = [
    "uploads/{customer_id}/", "t/{customer_id}-files/", "{customer_id}/", "a/b{customer_id}/c/"
]
KEYS = ["avatars/{customer_id}.png", "x/{customer_id}", "{customer_id}"]

any_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=()), min_size=0, max_size=12
)
nasty = st.text(alphabet=st.sampled_from(list("/\\.*?[]{}\x00\n\t %4a2é\u202e")), max_size=8)
values = st.one_of(any_text, nasty)
# Mostly acceptable ids, so the pairwise properties see many accepted values.
ids = st.text(alphabet=st.sampled_from(list("0124ab.-_@+%é~/*\x01")), min_size=1, max_size=6)


def filled(template: str, kind: str, value: str) -> str | None:
    try:
        return parse_template(template, kind).fill({"customer_id": value})  # type: ignore[arg-type]
    except UnsafeKeyValue:
        return None


@given(st.sampled_from(PREFIXES), ids, st.one_of(ids, values), ids)
def test_prefix_of_one_value_never_matches_another(
    template: str, a: str, b: str, suffix: str
) -> None:
    for other in (b, a + suffix, suffix + a):  # 4 vs 42: one id extending another
        assume(a != other)
        pa, pb = filled(template, "prefix", a), filled(template, "prefix", other)
        if pa is None or pb is None:
            continue
        assert pa.endswith("/")
        # Neither subject's prefix matches the other's objects (uploads/4/ vs uploads/42/).
        assert not pb.startswith(pa) and not pa.startswith(pb)


@given(st.sampled_from(KEYS + PREFIXES), values)
def test_filling_never_adds_segments_or_patterns(template: str, value: str) -> None:
    kind = "prefix" if template.endswith("/") else "key"
    out = filled(template, kind, value)
    if out is None:
        return
    assert out.count("/") == template.count("/")
    assert ".." not in value and value == value.strip() and value
    assert not set(value) & FORBIDDEN_CHARS
    assert all(ord(c) >= 32 and c != "\x7f" for c in out)
    literals = template.split("{customer_id}")
    assert out == literals[0] + value + literals[1]


@given(values)
def test_dangerous_values_are_refused(value: str) -> None:
    dangerous = (
        not value
        or ".." in value
        or bool(set(value) & FORBIDDEN_CHARS)
        or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value)
        or value != value.strip()
    )
    if dangerous:
        with pytest.raises(UnsafeKeyValue) as err:
            check_value("customer_id", value)
        assert value not in str(err.value) or len(value) < 3


@given(st.sampled_from(KEYS), ids, st.one_of(ids, values))
def test_key_templates_are_injective(template: str, a: str, b: str) -> None:
    assume(a != b)
    ka, kb = filled(template, "key", a), filled(template, "key", b)
    if ka is not None and kb is not None:
        assert ka != kb


def test_expand_takes_every_value_and_checks_all_first() -> None:
    template = parse_template("u/{customer_id}/{email}/", "prefix")
    keys = {"customer_id": frozenset({"1", "2"}), "email": frozenset({"a@x.org"})}
    assert list(template.expand(keys)) == ["u/1/a@x.org/", "u/2/a@x.org/"]
    assert list(template.expand({"customer_id": frozenset({"1"})})) == []
    with pytest.raises(UnsafeKeyValue):
        list(template.expand({"customer_id": frozenset({"1", "a/b"}), "email": frozenset({"e"})}))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("uploads/{customer_id}", "prefix"),  # does not end at a '/' boundary
        ("uploads/all/", "prefix"),  # no placeholder: everyone's objects
        ("static/logo.png", "key"),
        ("avatars/{customer_id}/", "key"),
        ("a/{Customer}/", "prefix"),
        ("a/{customer_id/", "prefix"),
        ("a/{customer_id}}/", "prefix"),
        ("a/{customer_id:>5}/", "prefix"),
    ],
)
def test_bad_templates(text: str, kind: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(text, kind)  # type: ignore[arg-type]
