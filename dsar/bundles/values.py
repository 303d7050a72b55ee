"""How collected values are written to data.json and CSV, and how to read them back exactly.

A value that JSON can carry (``str``, ``int``, finite ``float``, ``bool``, ``None``, lists and
dicts of those) is written as itself. Anything else is written as a string, and its column gets
a *type* in ``data.json`` (``"types": {"created_at": "datetime"}``) so a reader can turn the
string back into the value:

=============  ===================================  ==============================
type           written as                           example
=============  ===================================  ==============================
``datetime``   ISO 8601, offset kept if present     ``2024-05-01T14:03:00+02:00``
``date``       ISO 8601                             ``2024-05-01``
``time``       ISO 8601                             ``14:03:00``
``decimal``    the decimal's exact text             ``12.50``
``bytes``      base64 (standard alphabet)           ``3q2+7w==``
``uuid``       canonical hex                        ``1b4e28ba-2fa1-...``
``float``      only non-finite floats are strings   ``NaN``, ``Infinity``
``json``       lists/dicts (native in data.json)    ``{"a": 1}``
``mixed``      several of the above in one column:  strings stay strings (lossy)
=============  ===================================  ==============================
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from typing import Any

NATIVE = (str, int, bool)


TEXT = "text"
"""What :func:`kind_of` says of a string: it needs no type, but a column that mixes strings
with values written *as* strings (a date, a non-finite float) is ``mixed``, never typed, so a
reader does not try to parse the column's own strings."""


def kind_of(value: Any) -> str | None:
    """The type name a value needs recorded: ``None`` for plain JSON scalars and nulls,
    :data:`TEXT` for strings (see :func:`merge_kind`)."""
    if isinstance(value, str):
        return TEXT
    if value is None or isinstance(value, NATIVE):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "float"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, uuid.UUID):
        return "uuid"
    if isinstance(value, list | tuple | dict):
        return "json"
    return "mixed"


def encode(value: Any) -> Any:
    """The JSON value written for ``value`` (see the table above)."""
    if value is None or isinstance(value, NATIVE):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return str(value)


def merge_kind(known: str | None, new: str | None) -> str | None:
    """A column's type after seeing one more value's type (strings and ``json`` values mix
    freely: lists and dicts stay native in JSON)."""
    if new is None or known == new:
        return known
    if known is None:
        return new
    if TEXT in (known, new) and "json" in (known, new):
        return "json"
    return "mixed"


def column_types(seen: dict[str, str | None]) -> dict[str, str]:
    """Only the columns that need a type."""
    return {column: kind for column, kind in seen.items() if kind not in (None, TEXT)}


def decode(value: Any, kind: str | None) -> Any:
    """The original value from its JSON form and its column's type (inverse of :func:`encode`)."""
    if value is None or kind is None or kind in {"mixed", "json", TEXT}:
        return value
    if not isinstance(value, str):
        return value
    match kind:
        case "datetime":
            return dt.datetime.fromisoformat(value)
        case "date":
            return dt.date.fromisoformat(value)
        case "time":
            return dt.time.fromisoformat(value)
        case "decimal":
            return Decimal(value)
        case "bytes":
            return base64.b64decode(value)
        case "uuid":
            return uuid.UUID(value)
        case "float":
            return float(value)
    raise ValueError(f"unknown column type {kind!r}")


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON text, UTF-8 kept readable, stable key order as given."""
    return _COMPACT.encode(value)
