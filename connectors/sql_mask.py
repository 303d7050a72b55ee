"""Mask values for the SQL connector, and the type checks ``dsar datamap check`` applies.

Every strategy is *deterministic per row*, so erasure is idempotent (a second run computes the
same values, finds nothing to change and reports zero) and the recount can prove each masked
column holds its mask:

- ``null``: NULL. ``fixed``: the map's ``value``, converted to the column type.
- ``hash``: the keyed hash (HMAC-SHA256, the deployment's key) of the system, table, column and
  the row's primary key, as hex, truncated to the column's length. Unlinkable to the original
  value without the key; never derived from the personal data itself.
- ``random``: values drawn from a generator seeded by that same keyed hash, shaped to the column
  (text of the column's length, integers, decimals within precision, dates, booleans).
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import string
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from connectors.sql_query import pk_text
from dsar.datamap.schema import MaskRule

STRING_TYPES = (sa.String, sa.Text, sa.Unicode, sa.UnicodeText)


def column_length(column: sa.Column[Any]) -> int | None:
    return getattr(column.type, "length", None)


def is_textual(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, STRING_TYPES) and not isinstance(column.type, sa.Enum)


def fixed_problem(rule: MaskRule, column: sa.Column[Any]) -> str | None:
    """Why ``rule``'s fixed value cannot be written to ``column`` (None if it can)."""
    value = rule.value
    if is_textual(column):
        length = column_length(column)
        text = str(value)
        if length is not None and len(text) > length:
            return f"fixed mask value is {len(text)} characters; the column holds {length}"
        return None
    if isinstance(column.type, sa.Integer):
        try:
            int(str(value))
        except ValueError:
            return f"fixed mask value {value!r} is not an integer, the column's type"
    elif isinstance(column.type, sa.Numeric):
        try:
            decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            return f"fixed mask value {value!r} is not a number, the column's type"
    return None


def convert_fixed(rule: MaskRule, column: sa.Column[Any]) -> Any:
    if isinstance(column.type, sa.Boolean):
        return bool(rule.value)
    if isinstance(column.type, sa.Integer):
        return int(str(rule.value))
    if isinstance(column.type, sa.Numeric):
        return decimal.Decimal(str(rule.value))
    return rule.value if not is_textual(column) else str(rule.value)


def _random_value(rng: random.Random, column: sa.Column[Any]) -> Any:
    col_type = column.type
    if isinstance(col_type, sa.Boolean):
        return rng.random() < 0.5
    if isinstance(col_type, sa.SmallInteger):
        return rng.randint(0, 32767)
    if isinstance(col_type, sa.Integer):
        return rng.randint(0, 2**31 - 1)
    if isinstance(col_type, sa.Numeric):
        precision = col_type.precision or 10
        scale = col_type.scale or 0
        digits = max(precision - scale, 1)
        return decimal.Decimal(rng.randint(0, 10 ** min(digits, 9) - 1)).scaleb(0)
    if isinstance(col_type, sa.DateTime):
        return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=rng.randint(0, 1_500_000_000))
    if isinstance(col_type, sa.Date):
        return dt.date(1970, 1, 1) + dt.timedelta(days=rng.randint(0, 20000))
    length = column_length(column) or 16
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=min(length, 16)))


def mask_function(
    rule: MaskRule, column: sa.Column[Any], keyed_hash: Callable[[str], str], scope: str
) -> Callable[[Sequence[Any]], Any]:
    """A function from a row's primary-key values to the column's masked value."""
    if rule.strategy == "null":
        return lambda _pk: None
    if rule.strategy == "fixed":
        fixed = convert_fixed(rule, column)
        return lambda _pk: fixed
    length = column_length(column)

    def seed(pk: Sequence[Any]) -> str:
        return keyed_hash(f"mask:{scope}/{column.name}/{pk_text(pk)}")

    if rule.strategy == "hash":
        return lambda pk: seed(pk)[: length or 64]
    return lambda pk: _random_value(random.Random(seed(pk)), column)


def same(current: Any, expected: Any) -> bool:
    """Whether a stored value equals the mask value (tolerant of driver type round trips)."""
    if current is None or expected is None:
        return current is None and expected is None
    if isinstance(expected, dt.datetime) and isinstance(current, dt.datetime):
        return current.replace(tzinfo=None, microsecond=0) == expected.replace(microsecond=0)
    if isinstance(expected, bool):
        return bool(current) == expected
    if isinstance(expected, decimal.Decimal | int) and not isinstance(current, str):
        try:
            return decimal.Decimal(str(current)) == decimal.Decimal(str(expected))
        except decimal.InvalidOperation:
            return False
    return str(current) == str(expected)
