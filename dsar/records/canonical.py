"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme).

Everything that gets hashed or signed in a completion record is serialized with
:func:`canonical_json`, so the same value always produces the same bytes, in any language
that implements RFC 8785.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from dsar.errors import InvalidInput

__all__ = ["canonical_json", "is_canonical"]


_MAX_INT = 2**53 - 1
_dumps_plain = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def canonical_json(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 serialization of ``obj``.

    ``obj`` may contain ``dict`` (string keys), ``list``/``tuple``, ``str``, ``int`` (within
    ±(2**53 - 1), the range JSON numbers hold exactly), finite ``float``, ``bool`` and ``None``.
    Anything else raises :class:`~dsar.errors.InvalidInput`.
    """
    if _plain(obj):
        try:
            return _dumps_plain(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference implementation below names it
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as err:
        raise InvalidInput(
            f"value cannot be written as canonical JSON: {err}",
            "use only objects with string keys, lists, strings, booleans, null, "
            "finite floats and integers within ±(2**53 - 1)",
        ) from err


def _plain(obj: Any) -> bool:
    """Whether ``json`` alone writes ``obj`` exactly as RFC 8785 does: no floats (whose
    spelling differs), integers within ±(2**53 - 1), and object keys below U+E000 (where
    code-point order, which ``sort_keys`` uses, equals RFC 8785's UTF-16 code-unit order).
    String escapes agree: both escape only ``"``, ``\\`` and control characters, with the
    same short forms and lowercase ``\\u00xx``."""
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if kind is int:
            if -_MAX_INT <= value <= _MAX_INT:
                continue
            return False
        if kind is dict:
            for key in value:
                if type(key) is not str or not (key.isascii() or max(key) < "\ue000"):
                    return False
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        else:
            return False
    return True


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate object key")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is exactly the RFC 8785 serialization of the JSON value it encodes.

    False for anything that is not valid UTF-8 JSON, for duplicate object keys, for
    ``NaN``/``Infinity``, for values outside the canonicalizable domain, and for any
    difference from the canonical form (whitespace, key order, escapes, number spelling).
    Never raises.
    """
    try:
        text = data.decode("utf-8")
        # RFC 8785 numbers are IEEE 754 doubles: read every number as one, so an integral
        # double such as 2**53 (written "9007199254740992") is recognized as canonical.
        value = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_int=float,
        )
        return rfc8785.dumps(value) == data
    except (UnicodeDecodeError, ValueError, RecursionError):
        # json.JSONDecodeError and rfc8785.CanonicalizationError are both ValueErrors.
        return False
