"""Write a first data map for a live database, for a person to review.

:func:`discover` reflects the database (tables, primary keys, foreign keys) and returns YAML
text that :func:`~dsar.datamap.loader.parse_datamap` accepts, annotated with ``# review:``
comments wherever it guessed. The guesses:

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
  personal columns and is referenced by nothing else is ``outbound`` (``customer.address_id ->
  address``); one to a shared lookup table (``invoice_line.track_id -> track``) is ``none``;
  self-references are ``none``.
- erasure ``delete`` for every reached table, with a hint where a legal duty to keep is likely.

The URL is used to connect and never written: the map names ``url_env`` instead.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
import yaml

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
]
KEEP_HINT = re.compile(r"invoice|payment|order|transaction|receipt|ledger|tax", re.IGNORECASE)


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


def discover(url: str, system_name: str = "main", url_env: str = "DATABASE_URL",
             schema: str | None = None) -> str:
    """Annotated data map YAML for the database at ``url`` (see the module docstring)."""
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise DataMapError(f"cannot use database URL ({type(exc).__name__})",
                           "give a SQLAlchemy URL such as postgresql+psycopg://user@host/db"
                           ) from None
    try:
        inspector = sa.inspect(engine)
        names = sorted(inspector.get_table_names(schema=schema))
        columns = {t: inspector.get_columns(t, schema=schema) for t in names}
        pks = {t: inspector.get_pk_constraint(t, schema=schema).get("constrained_columns") or []
               for t in names}
        fks = {t: inspector.get_foreign_keys(t, schema=schema) for t in names}
    except sa.exc.SQLAlchemyError as exc:
        raise DataMapError(f"cannot read the database schema ({type(exc).__name__})",
                           "check the URL, that the database runs and that the user may "
                           "read its catalog") from None
    finally:
        engine.dispose()
    return _render(system_name, url_env, schema, names, columns, pks, fks)


def _render(system: str, url_env: str, schema: str | None, names: list[str],
            columns: dict[str, list[dict[str, Any]]], pks: dict[str, list[str]],
            fks: dict[str, list[dict[str, Any]]]) -> str:
    identities = {t: {c["name"]: k for c in columns[t]
                      if (k := identity_of(c["name"], c["type"]))} for t in names}
    personal = {t: {c["name"]: cat for c in columns[t] if (cat := category_of(c["name"]))}
                for t in names}
    referenced_by: dict[str, set[str]] = defaultdict(set)
    for child in names:
        for fk in fks[child]:
            referenced_by[fk["referred_table"]].add(child)
    reached = [t for t in names if identities[t]]
    directions: dict[tuple[str, int], tuple[str, str]] = {}
    index = 0
    while index < len(reached):
        table = reached[index]
        index += 1
        for child in names:  # foreign keys into this table
            for i, fk in enumerate(fks[child]):
                if fk["referred_table"] != table or (child, i) in directions:
                    continue
                if child == table:
                    directions[(child, i)] = ("none", "self-reference: another row, another "
                                              "person or record")
                elif identities[child]:
                    directions[(child, i)] = ("none", f"{child} holds people of its own")
                else:
                    directions[(child, i)] = ("inbound", f"{child} rows belong to the {table} "
                                              "row they point at")
                    if child not in reached:
                        reached.append(child)
        for i, fk in enumerate(fks[table]):  # foreign keys out of this table
            parent = fk["referred_table"]
            if (table, i) in directions:
                continue
            if parent == table:
                directions[(table, i)] = ("none", "self-reference")
            elif identities[parent]:
                directions[(table, i)] = ("none", f"{parent} is another person (own identity "
                                          "columns)")
            elif personal[parent] and referenced_by[parent] <= set(reached) | {table}:
                directions[(table, i)] = ("outbound", f"{parent} looks owned by the subject's "
                                          f"{table} row")
                if parent not in reached:
                    reached.append(parent)
            else:
                directions[(table, i)] = ("none", f"{parent} looks like a lookup table shared "
                                          "by many subjects")
    out = [f"# Data map discovered from the {system} database. Review every '# review:' line.",
           "# The connection URL is read from the environment variable named by url_env;",
           "# never write it (or any password) into this file. Format: docs/datamap.md",
           "version: 1", "systems:", f"  - name: {_flow(system)}", "    kind: sql",
           f"    url_env: {url_env}", "    tables:"]
    for table in reached:
        out += _table(table, schema, identities[table], personal[table], pks[table],
                      fks[table], directions, set(reached))
    rest = [t for t in names if t not in reached]
    if rest:
        out.append("# review: not mapped (no identity or owned personal data found): "
                   + ", ".join(rest))
    return "\n".join(out) + "\n"


def _table(table: str, schema: str | None, idents: dict[str, str], personal: dict[str, str],
           pk: list[str], fks: list[dict[str, Any]],
           directions: dict[tuple[str, int], tuple[str, str]], mapped: set[str]) -> list[str]:
    lines = [f"      - name: {_flow(table)}"]
    if schema:
        lines.append(f"        schema: {_flow(schema)}")
    if pk:
        lines.append(f"        primary_key: {_flow(pk)}")
    else:
        lines.append("        # review: no primary key; declare one (primary_key: [...])")
    if idents:
        by_key: dict[str, str] = {}
        for column, key in idents.items():
            by_key.setdefault(key, column)
        lines.append(f"        identities: {_flow(by_key)}  # review: the columns requests match")
        if len(pk) == 1:
            key = f"{_singular(snake(table))}_id" if not snake(pk[0]).endswith("_id") \
                else snake(pk[0])
            lines.append(f"        provides: {_flow({key: pk[0]})}  # review: feeds other "
                         "systems that know the subject by this key")
    refs = [(i, fk) for i, fk in enumerate(fks)
            if (table, i) in directions and fk["referred_table"] in mapped]
    for i, fk in enumerate(fks):
        if fk["referred_table"] not in mapped:
            why = directions.get((table, i), ("none", "not mapped"))[1]
            lines.append(f"        # review: {', '.join(fk['constrained_columns'])} -> "
                         f"{fk['referred_table']} not followed: {why}")
    if refs:
        lines.append("        references:")
        for i, fk in refs:
            direction, why = directions[(table, i)]
            body = {"columns": fk["constrained_columns"], "table": fk["referred_table"],
                    "to": fk["referred_columns"], "direction": direction}
            lines.append(f"          - {_flow(body)}  # review: {why}")
    if personal:
        lines.append("        columns:")
        for column, category in personal.items():
            lines.append(f"          {_flow(column)}: {{category: {category}}}  # review")
    if KEEP_HINT.search(table):
        lines.append("        # review: if a law requires keeping these rows (e.g. tax records, "
                     "Art. 17(3)(b)), write")
        lines.append("        #   erasure: {action: retain, retain: {ground: 'Art. 17(3)(b) "
                     "…', period: 10 years}}")
        lines.append("        #   and mask (not delete) the rows they point at.")
    lines.append("        erasure: {action: delete}")
    return lines
