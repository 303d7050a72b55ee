"""``datamap check``'s rules for what a mask (or ``none``) leaves in a row.

"Erased" means a fresh look-up of the person finds nothing in what the map erases
(:mod:`connectors.sql_recount`). A masked row that keeps a column the person is looked up by is
still found, so the erasure would fail its recount — or, worse, the row would be the subject's
still. The rules, per table:

- ``mask``: every identity column, and every provided key column other than the primary key
  (a loyalty number other systems find the person by), is masked or kept on purpose
  (``keep: {column: reason}``); otherwise an **error** whose fix names both ways. A column kept
  on purpose leaves the row findable by it: the recount leaves that look-up out and the
  evidence counts the rows (``kept_findable``).
- ``mask``: a column with a personal data category (``columns:``) the mask neither masks nor
  keeps is a **warning** (it may be fine: a city without the street).
- ``none``: a table with identities or personal-category columns is a **warning**: erasure
  never changes it, so the person stays in it.
- ``keep`` naming a column the table does not have is an **error**.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from dsar.datamap.schema import SqlTable

Add = Callable[[str, str | None, str | None, str, str], None]


def check_mask(entry: SqlTable, table: sa.Table, add: Add) -> None:
    """Report the findings of the module docstring for ``entry`` (reflected as ``table``)
    through ``add(severity, table, column, problem, fix)``."""
    spec = entry.erasure
    names = list(table.c.keys())
    for column in sorted(set(spec.keep) - set(names)):
        close = difflib.get_close_matches(column, names, n=1)
        add("error", entry.name, column, "kept column does not exist in the table",
            f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(names)}")
    if spec.action == "mask":
        _check_masked(entry, table, add)
    elif spec.action == "none":
        _check_none(entry, add)


def _check_masked(entry: SqlTable, table: sa.Table, add: Add) -> None:
    spec = entry.erasure
    pk = set(entry.primary_key) or {c.name for c in table.primary_key.columns}
    left = set(spec.mask) | set(spec.keep)
    keys: dict[str, str] = {}
    for key, column in entry.identity_items():
        keys.setdefault(column, f"the subject is looked up by it (identity {key!r})")
    for key, column in entry.provides.items():
        if column not in pk:
            keys.setdefault(column, f"other tables and systems find the subject by it "
                            f"(provides {key!r})")
    for column, why in sorted(keys.items()):
        if column in left or column not in table.c:
            continue
        add("error", entry.name, column, f"erasure masks this table but leaves {column}, and "
            f"{why}: the row would still be found after erasure",
            f"mask it (mask: {{{column}: {{strategy: hash}}}}), or keep it on purpose "
            f"with the reason (keep: {{{column}: \"why it must stay\"}}), or delete the row"
            if column not in pk else f"keep it on purpose with the reason (keep: "
            f"{{{column}: \"why it must stay\"}}), or delete the row (a primary key cannot "
            "be masked)")
    for column, spec_column in sorted(entry.columns.items()):
        if column in left or column in keys or column in pk or column not in table.c:
            continue
        add("warning", entry.name, column, f"holds {spec_column.category}, which the mask "
            "leaves as it is", f"mask it too, or keep it on purpose with the reason "
            f"(keep: {{{column}: \"...\"}})")


def _check_none(entry: SqlTable, add: Any) -> None:
    personal = sorted(entry.columns)
    if entry.identities:
        add("warning", entry.name, None, "erasure action none, but the subject is looked up "
            f"here by {', '.join(sorted(entry.identities))}: erasure leaves those rows as they "
            "are", "delete or mask the table's rows, or retain them with a legal ground")
    elif personal:
        add("warning", entry.name, None, "erasure action none, but columns hold personal "
            f"data ({', '.join(personal)}): erasure never changes them",
            "mask those columns or delete the rows; or drop their categories if they hold "
            "no personal data")
