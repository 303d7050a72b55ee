"""What :mod:`connectors.sql_discover` read from the database, and the erasure it drafts.

The draft must pass ``dsar datamap check``, so where check would object the safe choice is
made and said (the caller writes each reason as a ``# review:`` line):

- a reached table that looks like a financial record (a name like invoice/payment/order and
  an amount-like column) is ``retain`` under Art. 17(3)(b), ground and period to review;
- a reached table with no personal columns is ``none`` (walked and collected, never changed);
- a table whose rows other rows may point at, when those rows are not deleted with it (other
  people's rows, the same table's rows, rows kept by retain/mask/none, rows no reference of
  the map reaches), is ``mask``: deleting it would be refused by the database (or cascade into
  kept rows). Decided until nothing changes, since masking a table keeps its rows, which then
  point at their own parents.
- everything else is ``delete``;
- a PostgreSQL inheritance child of a table erased by delete or mask is erased the same way (a
  statement on the parent changes the child's rows too), never kept.

Masks never touch primary-key, foreign-key or generated columns; nullable columns are nulled,
NOT NULL text gets a keyed hash (random for short columns), other NOT NULL columns of a type
the connector can draw at random get ``random``, and the rest are listed as not masked.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

FINANCIAL = re.compile(r"invoice|payment|order|transaction|receipt|ledger|tax|billing|charge|"
                       r"refund", re.IGNORECASE)
MONEY = re.compile(r"amount|total|price|fee|cost|balance|sum$", re.IGNORECASE)
RANDOM_TYPES = (sa.Integer, sa.Numeric, sa.Date, sa.DateTime, sa.Boolean)


@dataclass
class Reflected:
    """Tables (by name, unique across the discovered schemas) and what is known of them."""

    names: list[str] = field(default_factory=list)
    schema: dict[str, str | None] = field(default_factory=dict)
    columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pk: dict[str, list[str]] = field(default_factory=dict)
    key_notes: dict[str, str] = field(default_factory=dict)
    fks: list[Any] = field(default_factory=list)
    layouts: dict[str | None, Any] = field(default_factory=dict)
    outside: set[int] = field(default_factory=set)
    explicit_schema: bool = False
    _by_table: dict[str, list[Any]] | None = None

    def fks_by_table(self) -> dict[str, list[Any]]:
        """Each table's foreign keys; a parent outside the discovered schemas is named
        ``schema.table`` (so it never matches a discovered table)."""
        if self._by_table is None:
            out: dict[str, list[Any]] = {name: [] for name in self.names}
            for fk in self.fks:
                if id(fk) in self.outside:
                    fk = dataclasses.replace(fk, parent=f"{fk.parent_schema or '?'}.{fk.parent}")
                out.setdefault(fk.table, []).append(fk)
            self._by_table = out
        return self._by_table

    def qualified(self, name: str) -> str:
        schema = self.schema.get(name)
        return f"{schema}.{name}" if self.explicit_schema and schema else name

    def notes(self) -> list[str]:
        """``# note:`` lines on what the map leaves out or treats specially."""
        out = []
        for schema, layout in self.layouts.items():
            prefix = f"{schema}." if schema else ""
            if layout.views:
                out.append(f"# note: views are not mapped (their rows are in their base "
                           f"tables): {', '.join(prefix + v for v in layout.views)}")
            for root in sorted(layout.partitioned):
                parts = sorted(p for p, r in layout.partitions.items() if r == root)
                what = f"{len(parts)} partitions" if parts else "partitions"
                out.append(f"# note: {prefix}{root} is partitioned ({what}): mapped as one "
                           "table; look-ups and erasure on it reach every partition, and "
                           "foreign keys declared on a partition count as its own")
            for child, parent in sorted(layout.inherits.items()):
                out.append(f"# note: {prefix}{child} inherits from {prefix}{parent}: a look-up "
                           f"in {parent} also returns {child}'s rows, and erasure there also "
                           f"removes or masks them; {child} is mapped on its own only where "
                           "it is reached")
        generated = [f"{self.qualified(t)}.{c['name']}" for t in self.names
                     for c in self.columns[t] if c.get("computed")]
        if generated:
            out.append("# note: generated columns (computed by the database; never masked, "
                       f"mask what they are computed from): {', '.join(generated)}")
        return out


def _financial(db: Reflected, table: str) -> bool:
    return bool(FINANCIAL.search(table)) and any(
        MONEY.search(c["name"]) or (isinstance(c["type"], sa.Numeric)
                                    and not isinstance(c["type"], sa.Integer | sa.Float))
        for c in db.columns[table])


def erasure_actions(db: Reflected, reached: list[str], identities: dict[str, dict[str, str]],
                    personal: dict[str, dict[str, str]],
                    directions: dict[tuple[str, int], tuple[str, str]]
                    ) -> dict[str, tuple[str, str]]:
    """``(action, reason)`` per reached table (see the module docstring)."""
    actions: dict[str, tuple[str, str]] = {}
    for table in reached:
        if _financial(db, table):
            actions[table] = ("retain", "looks like a financial record (a legal duty to keep "
                              "it is likely)")
        elif not personal[table] and not identities[table]:
            actions[table] = ("none", "no personal columns found: walked and collected, "
                              "never changed by erasure")
        else:
            actions[table] = ("delete", "")
    by_table = db.fks_by_table()
    inherits = {child: parent for layout in db.layouts.values()
                for child, parent in layout.inherits.items()}
    owned = {t for t in reached if identities[t] or any(
        directions.get((t, i), ("none",))[0] == "inbound" for i in range(len(by_table[t])))}
    changed = True
    while changed:
        changed = False
        for table in reached:
            if actions[table][0] != "delete":
                continue
            reason = _blocker(table, reached, actions, by_table, directions, owned)
            if reason is None:
                continue
            rules, _skipped = mask_rules(db, table, set(personal[table]), by_table[table])
            actions[table] = ("mask", reason) if rules else (
                "none", f"{reason}, and no column can be masked: review")
            changed = True
        for child in reached:  # PostgreSQL changes a child's rows with its parent's
            parent = inherits.get(child)
            kind = actions[parent][0] if parent in actions else None
            if kind in ("delete", "mask") and actions[child][0] in ("retain", "none"):
                rules, _skipped = mask_rules(db, child, set(personal[child]), by_table[child])
                why = f"inherits from {parent}, whose erasure ({kind}) changes these rows too"
                actions[child] = ("mask" if kind == "mask" and rules else "delete", why)
                changed = True
    return actions


def _blocker(table: str, reached: list[str], actions: dict[str, tuple[str, str]],
             by_table: dict[str, list[Any]],
             directions: dict[tuple[str, int], tuple[str, str]],
             owned: set[str]) -> str | None:
    """Why deleting ``table``'s rows may be refused, or cascade into kept rows (None: safe).

    ``owned``: tables whose rows are found as the subject's own (an identity, or an inbound
    reference); such rows are erased whoever points at them, so a child found *from* them
    only by an outbound reference (other people's rows pointing at the subject's) blocks a
    delete. Rows reached only outbound are guarded at run time instead (connectors.sql_shared)."""
    for child, fks in by_table.items():
        for i, fk in enumerate(fks):
            if fk.parent != table:
                continue
            rule = (fk.ondelete or "").upper()
            cols = ", ".join(fk.columns)
            kept = child in actions and actions[child][0] != "delete"
            if child == table and rule != "SET NULL":  # other people's rows of this table
                return f"other {table} rows may point at the subject's ({cols})" + (
                    ", and deleting it would delete them too (ON DELETE CASCADE)"
                    if rule == "CASCADE" else "")
            if rule == "SET NULL" or (rule == "CASCADE" and not kept):
                continue
            if child not in reached:
                return f"{child} rows ({cols}) point at it and are not erased with it"
            if kept:
                return f"{child} rows ({cols}) point at it and erasure keeps them " \
                       f"({actions[child][0]})"
            direction = directions.get((child, i), ("none",))[0]
            if direction == "none" or (direction == "outbound" and table in owned):
                return f"{child} rows of other people ({cols}) may point at it"
    return None


def mask_rules(db: Reflected, table: str, personal: set[str],
               fks: list[Any]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Mask rules for ``table``'s personal columns, and why the others are not masked."""
    keys = set(db.pk[table]) | {c for fk in fks for c in fk.columns}
    rules: dict[str, dict[str, str]] = {}
    skipped: list[str] = []
    for column in db.columns[table]:
        name, col_type = column["name"], column["type"]
        if name not in personal:
            continue
        if name in keys:
            skipped.append(f"{name} (a key)")
        elif column.get("computed"):
            skipped.append(f"{name} (generated by the database)")
        elif column.get("nullable", True):
            rules[name] = {"strategy": "null"}
        elif isinstance(col_type, sa.String | sa.Text) and not isinstance(col_type, sa.Enum):
            length = getattr(col_type, "length", None)
            rules[name] = {"strategy": "hash" if length is None or length >= 16 else "random"}
        elif isinstance(col_type, RANDOM_TYPES):
            rules[name] = {"strategy": "random"}
        else:
            skipped.append(f"{name} (NOT NULL {col_type})")
    return rules, skipped
