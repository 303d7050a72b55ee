"""Draft a first data map from a database's reflected schema, for a person to review.

:func:`draft` takes what the SQL connector read from a live database
(:func:`connectors.sql_discover.discover` reflects tables, primary keys, foreign keys,
partitions, inheritance, views and generated columns into a
:class:`~dsar.datamap.discover_erasure.Reflected`) and returns YAML text that
:func:`~dsar.datamap.loader.parse_datamap` accepts and that ``dsar datamap check`` passes
without an error, annotated with ``# review:`` comments wherever it guessed and ``# note:``
lines for what it left out. It reads no database itself. The guesses:

- identity columns from names and types: text columns named like ``email``/``e_mail``/``mail``
  (key ``email``) or ``phone``/``phone_number``/``mobile``/``telephone`` (key ``phone``);
- data categories from column names (``first_name`` -> ``user.name``, ``city`` ->
  ``user.contact.address`` …);
- a table with an identity column is a *subject root*; it ``provides`` its primary key;
- reference directions, so that rows owned by the subject are reached and other people's are
  not: a foreign key *into* a subject-reached table from a table without identities is
  ``inbound`` (``invoice.customer_id -> customer``, then ``invoice_line -> invoice``); a foreign
  key between two tables that both hold identities is ``none`` (``customer.support_rep_id ->
  employee``); a foreign key from a reached table to a table without identities that holds
  personal columns and is referenced by nothing else is ``outbound`` when it goes out of a
  subject root (``customer.address_id -> address``); any other (``invoice_line.track_id ->
  track``, ``customer.country_code -> country``: shared lookup or catalogue rows) is ``none``;
  self-references are ``none``;
- erasure, the safe choice first (see :func:`_erasure_actions`): ``none`` for a reached table
  without personal columns; ``retain`` (ground and period to review) for what looks like a
  financial record; ``mask`` where rows the erasure keeps, or other people's rows, may point at
  the row; ``delete`` otherwise.

PostgreSQL partitions are mapped as their partitioned parent (a look-up on it reaches every
partition; foreign keys declared on partitions count as the parent's); views are left out;
generated columns are never masked. Several schemas (``schema``) make one map whose tables
carry ``schema:``; a table name used in two of them is refused (a map names each table once).
The map names ``url_env``, never the URL.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
import yaml

from dsar.datamap.discover_erasure import FINANCIAL, Reflected, erasure_actions, mask_rules
from dsar.errors import DataMapError

EMAIL = re.compile(r"^(e_?mail|mail)(_?address)?$|_e_?mail$|^e_?mail_")
PHONE = re.compile(r"^(phone|phone_?number|mobile|mobile_?phone|telephone|tel|cell|"
                   r"cell_?phone)$|_phone$|^phone_")
CATEGORIES = [
    (EMAIL, "user.contact.email"),
    (PHONE, "user.contact.phone_number"),
    (re.compile(r"fax"), "user.contact.fax"),
    (re.compile(r"^(first|last|middle|given|family|full|sur|display|user)_?name$|^name$"),
     "user.name"),
    (re.compile(r"address|street|city|postal|zip|^state$|country|_state$|_country$"),
     "user.contact.address"),
    (re.compile(r"birth|dob"), "user.demographic.date_of_birth"),
    (re.compile(r"(^|_)ip(_address)?$"), "user.device.ip_address"),
    (re.compile(r"password|token|secret"), "user.authorization.credentials"),
    (re.compile(r"iban|card|account_?number"), "user.financial"),
    (re.compile(r"company|employer|job|title"), "user.workplace"),
    (re.compile(r"gender|nationality"), "user.demographic"),
    (re.compile(r"^(body|message|comments?|notes?|content|free_?text)$"), "user.content"),
]

LOOKUP = re.compile(r"countr|currenc|language|locale|status|type|kind|categor|genre|region|"
                    r"timezone|product|item|catalog|article|sku", re.IGNORECASE)
"""Names of tables shared by many subjects, never followed outbound."""


def _singular(name: str) -> str:
    """``customers`` -> ``customer``, ``addresses`` -> ``address``: key names read better."""
    if name.endswith(("sses", "xes", "ches", "shes")):
        return name[:-2]
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith(("ss", "us", "is")):
        return name[:-1]
    return name


def snake(name: str) -> str:
    """``SupportRepId`` -> ``support_rep_id``; ``EMail`` -> ``e_mail``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def category_of(column: str) -> str | None:
    name = snake(column)
    for pattern, category in CATEGORIES:
        if pattern.search(name):
            return category
    return None


def identity_of(column: str, col_type: Any) -> str | None:
    if not isinstance(col_type, sa.String | sa.Text):
        return None
    name = snake(column)
    if EMAIL.search(name):
        return "email"
    if PHONE.search(name):
        return "phone"
    return None


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def draft(system: str, url_env: str, db: Reflected) -> str:
    """Annotated data map YAML for the reflected database ``db`` (see the module docstring):
    one system named ``system`` whose URL is read from ``url_env``."""
    names = db.names
    identities = {t: {c["name"]: k for c in db.columns[t] if not c.get("computed")
                      and (k := identity_of(c["name"], c["type"]))} for t in names}
    personal = {t: {c["name"]: cat for c in db.columns[t] if (cat := category_of(c["name"]))}
                for t in names}
    fks = db.fks_by_table()
    referenced_by: dict[str, set[str]] = defaultdict(set)
    for child in names:
        for fk in fks[child]:
            referenced_by[fk.parent].add(child)
    keyless = [t for t in names if not db.pk[t]]
    reached = [t for t in names if identities[t] and t not in keyless]
    if not reached:
        raise DataMapError(
            f"found {len(names)} table(s) but no column that looks like an email address or a "
            "phone number, so no table where a request can find a person",
            "write the map by hand (docs/datamap.md), or discover the schema that holds the "
            "people (--schema)")
    directions: dict[tuple[str, int], tuple[str, str]] = {}
    index = 0
    while index < len(reached):
        table = reached[index]
        index += 1
        for child in names:  # foreign keys into this table
            for i, fk in enumerate(fks[child]):
                if fk.parent != table or (child, i) in directions:
                    continue
                if child == table:
                    directions[(child, i)] = ("none", "self-reference: another row, another "
                                              "person or record")
                elif identities[child]:
                    directions[(child, i)] = ("none", f"{child} holds people of its own")
                elif child in keyless:
                    directions[(child, i)] = ("none", f"{child} has no primary key")
                else:
                    directions[(child, i)] = ("inbound", f"{child} rows belong to the {table} "
                                              "row they point at")
                    if child not in reached:
                        reached.append(child)
        for i, fk in enumerate(fks[table]):  # foreign keys out of this table
            parent = fk.parent
            if (table, i) in directions:
                continue
            if parent == table:
                directions[(table, i)] = ("none", "self-reference")
            elif parent not in identities:
                directions[(table, i)] = ("none", "outside the discovered schemas")
            elif identities[parent]:
                directions[(table, i)] = ("none", f"{parent} is another person (own identity "
                                          "columns)")
            elif parent in keyless:
                directions[(table, i)] = ("none", f"{parent} has no primary key")
            elif identities[table] and personal[parent] and not LOOKUP.search(parent) and \
                    referenced_by[parent] <= set(reached) | {table}:
                directions[(table, i)] = ("outbound", f"{parent} looks owned by the subject's "
                                          f"{table} row")
                if parent not in reached:
                    reached.append(parent)
            else:
                directions[(table, i)] = ("none", f"{parent} looks like a lookup table shared "
                                          "by many subjects")
    actions = erasure_actions(db, reached, identities, personal, directions)
    out = [f"# Data map discovered from the {system} database. Review every '# review:' line.",
           "# The connection URL is read from the environment variable named by url_env;",
           "# never write it (or any password) into this file. Format: docs/datamap.md",
           *db.notes(), "version: 1", "systems:", f"  - name: {_flow(system)}", "    kind: sql",
           f"    url_env: {url_env}", "    tables:"]
    for table in reached:
        out += _table(table, db, identities[table], personal[table], fks[table], directions,
                      set(reached), actions[table])
    unkeyed = [t for t in keyless if identities[t] or personal[t]]
    if unkeyed:
        out.append("# review: not mapped, no primary key or unique NOT NULL key (rows are "
                   "erased and proven by their key; add one, then map them): "
                   + ", ".join(unkeyed))
    rest = [t for t in names if t not in reached and t not in unkeyed]
    if rest:
        out.append("# review: not mapped (no identity or owned personal data found): "
                   + ", ".join(rest))
    return "\n".join(out) + "\n"


def _table(table: str, db: Reflected, idents: dict[str, str], personal: dict[str, str],
           fks: list[Any], directions: dict[tuple[str, int], tuple[str, str]],
           mapped: set[str], action: tuple[str, str]) -> list[str]:
    lines = [f"      - name: {_flow(table)}"]
    pk = db.pk[table]
    if db.explicit_schema and db.schema[table]:
        lines.append(f"        schema: {_flow(db.schema[table])}")
    if table in db.key_notes:
        lines.append(f"        # review: {db.key_notes[table]}")
    lines.append(f"        primary_key: {_flow(pk)}")
    if idents:
        by_key: dict[str, list[str]] = {}
        for column, key in idents.items():
            by_key.setdefault(key, []).append(column)
        flat = {k: c[0] if len(c) == 1 else c for k, c in by_key.items()}
        lines.append(f"        identities: {_flow(flat)}  # review: the columns requests match")
        if len(pk) == 1:
            key = f"{_singular(snake(table))}_id" if not snake(pk[0]).endswith("_id") \
                else snake(pk[0])
            lines.append(f"        provides: {_flow({key: pk[0]})}  # review: feeds other "
                         "systems that know the subject by this key")
    refs = [(i, fk) for i, fk in enumerate(fks)
            if (table, i) in directions and fk.parent in mapped]
    for i, fk in enumerate(fks):
        if fk.parent not in mapped:
            why = directions.get((table, i), ("none", "not mapped"))[1]
            lines.append(f"        # review: {', '.join(fk.columns)} -> "
                         f"{fk.parent} not followed: {why}")
    if refs:
        lines.append("        references:")
        for i, fk in refs:
            direction, why = directions[(table, i)]
            body = {"columns": list(fk.columns), "table": fk.parent,
                    "to": list(fk.parent_columns), "direction": direction}
            lines.append(f"          - {_flow(body)}  # review: {why}")
    if personal:
        lines.append("        columns:")
        for column, category in personal.items():
            lines.append(f"          {_flow(column)}: {{category: {category}}}  # review")
    kind, why = action
    if kind == "retain":
        lines.append(f"        # review: {why}; if no law requires keeping them, write "
                     "erasure: {action: delete}")
        lines.append("        erasure: {action: retain, retain: {ground: 'Art. 17(3)(b) GDPR: "
                     "legal duty to keep accounting records (review)', period: 10 years}}")
    elif kind == "mask":
        rules, skipped = mask_rules(db, table, set(personal), fks)
        lines.append(f"        # review: masked, not deleted: {why}")
        if skipped:
            lines.append(f"        # review: not masked: {'; '.join(skipped)}")
        lines += ["        erasure:", "          action: mask", "          mask:"]
        lines += [f"            {_flow(column)}: {_flow(rule)}" for column, rule in rules.items()]
    elif kind == "none":
        lines.append(f"        # review: {why}")
        lines.append("        erasure: {action: none}")
    else:
        if why:
            lines.append(f"        # review: {why}")
        elif FINANCIAL.search(table):
            lines.append("        # review: if a law requires keeping these rows (e.g. tax "
                         "records, Art. 17(3)(b)), use action retain and mask the rows they "
                         "point at")
        lines.append("        erasure: {action: delete}")
    return lines
