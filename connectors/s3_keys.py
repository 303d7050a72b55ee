"""Key templates: turning ``uploads/{customer_id}/`` and a subject's keys into S3 keys and prefixes.

A template is literal text with ``{name}`` placeholders, where ``name`` is a key name of the
data map (``customer_id``, ``email`` …). Filling it must never select another person's objects,
so the rules are strict:

- a template has at least one placeholder (a template without one would name the same objects
  for every subject);
- a *prefix* template ends with ``/`` after its last placeholder, so after substitution the
  prefix ends at a ``/`` boundary: ``uploads/4/`` can never match ``uploads/42/``;
- a *key* template does not end with ``/``;
- a value put into a template is refused (:class:`UnsafeKeyValue`) when it is empty, longer than
  S3 allows, contains ``/`` or ``\\``, ``..``, the wildcard characters ``* ? [ ] { }``, or any
  control, format or unpaired-surrogate character. A refused value is an error, never silently
  skipped: an erasure that quietly ignored one of the subject's ids would not be complete.

Together these make filling injective per segment: a value cannot add a path segment, climb
out of one, or turn a key into a pattern.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
KEY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
FORBIDDEN_CHARS = frozenset("/\\*?[]{}")
MAX_KEY_BYTES = 1024


class TemplateError(ValueError):
    """A key or prefix template in the data map breaks the rules above."""


class UnsafeKeyValue(ValueError):
    """A subject's key value cannot be put into a template without widening the match.

    The message names the key and the reason, never the value itself (it is personal data).
    """

    def __init__(self, key_name: str, reason: str) -> None:
        super().__init__(f"a {key_name} value {reason}")
        self.key_name = key_name
        self.reason = reason


@dataclass(frozen=True)
class KeyTemplate:
    """A parsed template: literal parts interleaved with placeholder names.

    ``literals`` has one more element than ``names``; the filled text is
    ``literals[0] + v0 + literals[1] + v1 + … + literals[-1]``.
    """

    text: str
    kind: Literal["key", "prefix"]
    literals: tuple[str, ...]
    names: tuple[str, ...]

    def fill(self, values: Mapping[str, str]) -> str:
        """The template with every placeholder replaced; values must pass :func:`check_value`."""
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            value = values[name]
            check_value(name, value)
            out.append(value)
            out.append(literal)
        filled = "".join(out)
        if len(filled.encode("utf-8")) > MAX_KEY_BYTES:
            raise UnsafeKeyValue(self.names[0], f"makes {self.text!r} longer than 1024 bytes")
        return filled

    def expand(self, keys: Mapping[str, frozenset[str]]) -> Iterator[str]:
        """Every filled key or prefix for the subject, in a stable order.

        With several values per name the cartesian product is produced; a name without values
        produces nothing (the subject has nothing stored under this template). Every value is
        checked before the first result is produced, so a refused value fails the whole call.
        """
        choices = [sorted(keys.get(name, frozenset())) for name in dict.fromkeys(self.names)]
        for name, values in zip(dict.fromkeys(self.names), choices, strict=True):
            for value in values:
                check_value(name, value)
        for combo in itertools.product(*choices):
            yield self.fill(dict(zip(dict.fromkeys(self.names), combo, strict=True)))


def parse_template(text: str, kind: Literal["key", "prefix"]) -> KeyTemplate:
    """Parse and check a template, raising :class:`TemplateError` with what to write instead."""
    names: list[str] = []
    literals: list[str] = []
    pos = 0
    for match in PLACEHOLDER.finditer(text):
        literals.append(text[pos : match.start()])
        name = match.group(1)
        if not KEY_NAME.match(name):
            raise TemplateError(
                f"placeholder {{{name}}} in {text!r} is not a key name (lower case, digits, _)"
            )
        names.append(name)
        pos = match.end()
    literals.append(text[pos:])
    if any("{" in part or "}" in part for part in literals):
        raise TemplateError(f"unbalanced '{{' or '}}' in {text!r}")
    if not names:
        raise TemplateError(
            f"{kind} template {text!r} has no placeholder such as {{customer_id}}; it would name "
            "the same objects for every subject"
        )
    if kind == "prefix" and not literals[-1].endswith("/"):
        raise TemplateError(
            f"prefix template {text!r} must end with '/' after its last placeholder, "
            "e.g. 'uploads/{customer_id}/', so 'uploads/4/' never matches 'uploads/42/'"
        )
    if kind == "key" and text.endswith("/"):
        raise TemplateError(f"key template {text!r} ends with '/'; use 'prefix:' for a folder")
    return KeyTemplate(text=text, kind=kind, literals=tuple(literals), names=tuple(names))


def check_value(name: str, value: str) -> None:
    """Raise :class:`UnsafeKeyValue` unless ``value`` can be substituted without widening."""
    if not value:
        raise UnsafeKeyValue(name, "is empty")
    if value != value.strip():
        raise UnsafeKeyValue(name, "has leading or trailing white space")
    if ".." in value:
        raise UnsafeKeyValue(name, "contains '..'")
    if value == ".":
        raise UnsafeKeyValue(name, "is '.'")
    bad = FORBIDDEN_CHARS.intersection(value)
    if bad:
        shown = " ".join(repr(c) for c in sorted(bad))
        raise UnsafeKeyValue(name, f"contains {shown}, which could widen an S3 key match")
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise UnsafeKeyValue(name, f"contains a control or unassigned character ({category})")
    if len(value.encode("utf-8")) > MAX_KEY_BYTES:
        raise UnsafeKeyValue(name, "is longer than an S3 key may be")
