"""Property: over generated schemas, data maps and data (SQLite), an erasure that completes
leaves the subject in nothing the map erases and changes no row outside the subject's rows.

Each generated table has an ``id`` key, maybe an ``email`` identity, a ``payload`` and links to
earlier tables: ``inbound`` (its ``up`` column holds a parent's id: its rows hang off the
parent's) or ``outbound`` (the parent's ``to_<table>`` column holds its id: the parent's rows
point at it, and other people's rows may point at the same row). Actions are drawn from
delete, mask (the identity hashed, the payload nulled), retain and none. Rows carry one of four
people's emails or none, and random links.

After the subject's erasure:

- no row of a ``delete`` or ``mask`` table holds the subject's email;
- a fresh look-up (``count``, with every key the erasure discovered) finds in ``delete`` tables
  only rows the evidence says were kept because other records point at them;
- every row that access did not find for the subject before is byte-identical, and so is every
  row of a ``retain`` or ``none`` table and every row kept as shared;
- a row another person's row points at is unchanged, and no row left behind points at a row
  erasure deleted — unless the subject's own email is in it (found as the subject's, erased
  whoever points at it); tables also hanging off a parent (``inbound``) are left out of these
  two, since whose rows they are depends on the walk.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import sql_engine
from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from dsar.datamap.loader import parse_datamap
from dsar.errors import DataMapError
from tests.connectors.test_sql_chinook import ListSink

PEOPLE = ["a@example.org", "b@example.org", "c@example.org", "d@example.org"]
SUBJECT = {"email": frozenset({PEOPLE[0]})}
ACTIONS = ["delete", "mask", "retain", "none"]


@st.composite
def shops(draw: Any) -> dict[str, Any]:
    """A schema (tables with identity, links, action) and rows for each table."""
    count = draw(st.integers(2, 5))
    tables: list[dict[str, Any]] = []
    for i in range(count):
        tables.append({
            "name": f"t{i}",
            "email": i == 0 or draw(st.booleans()),
            "action": draw(st.sampled_from(ACTIONS)),
            "up": None, "to": [],  # inbound parent; tables this one points at
        })
    for i in range(1, count):
        parent = draw(st.integers(0, i - 1))
        if draw(st.booleans()):
            tables[i]["up"] = parent
        else:
            tables[parent]["to"].append(i)
    ids = {t["name"]: list(range(1, draw(st.integers(1, 6)) + 1)) for t in tables}
    rows: dict[str, list[dict[str, Any]]] = {}
    for t in tables:
        rows[t["name"]] = [{
            "id": pk,
            "email": draw(st.sampled_from([*PEOPLE, None])) if t["email"] else None,
            "payload": f"p{pk}",
            "up": draw(st.sampled_from(ids[f"t{t['up']}"])) if t["up"] is not None else None,
            **{f"to_t{j}": draw(st.sampled_from([*ids[f"t{j}"], None])) for j in t["to"]},
        } for pk in ids[t["name"]]]
    return {"tables": tables, "rows": rows}


def schema(shop: dict[str, Any]) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    md = sa.MetaData()
    out = {}
    for t in shop["tables"]:
        out[t["name"]] = sa.Table(
            t["name"], md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("email", sa.String(80)), sa.Column("payload", sa.String(80)),
            sa.Column("up", sa.Integer), *[sa.Column(f"to_t{j}", sa.Integer) for j in t["to"]])
    return md, out


def datamap(shop: dict[str, Any]) -> str:
    entries = []
    for t in shop["tables"]:
        refs = [{"columns": [f"to_t{j}"], "table": f"t{j}", "to": ["id"],
                 "direction": "outbound"} for j in t["to"]]
        if t["up"] is not None:
            refs.append({"columns": ["up"], "table": f"t{t['up']}", "to": ["id"],
                         "direction": "inbound"})
        entry: dict[str, Any] = {"name": t["name"], "primary_key": ["id"], "references": refs,
                                 "columns": {"payload": {"category": "user.content"}}}
        if t["email"]:
            entry["identities"] = {"email": "email"}
            entry["columns"]["email"] = {"category": "user.contact.email"}
        action = t["action"]
        if action == "mask":
            mask = {"payload": {"strategy": "null"}}
            if t["email"]:
                mask["email"] = {"strategy": "hash"}
            entry["erasure"] = {"action": "mask", "mask": mask}
        elif action == "retain":
            entry["erasure"] = {"action": "retain",
                                "retain": {"ground": "Art. 17(3)(b) test", "period": "1 year"}}
        else:
            entry["erasure"] = {"action": action}
        entries.append(entry)
    return yaml.safe_dump({"systems": [{"name": "gen", "kind": "sql", "url_env": "GEN_URL",
                                        "tables": entries}]})


def read_all(url: str, tables: dict[str, sa.Table]) -> dict[str, dict[int, tuple[Any, ...]]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {name: {r[0]: tuple(r) for r in conn.execute(sa.select(t))}
               for name, t in tables.items()}
    engine.dispose()
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shops())
def test_an_erasure_that_completes_leaves_nothing_and_touches_no_one_else(
        shop: dict[str, Any]) -> None:
    md, tables = schema(shop)
    actions = {t["name"]: t["action"] for t in shop["tables"]}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'gen.sqlite'}"
        engine = sa.create_engine(url)
        md.create_all(engine)
        with engine.begin() as conn:
            for name, table_rows in shop["rows"].items():
                conn.execute(tables[name].insert(), table_rows)
        engine.dispose()
        system = parse_datamap(datamap(shop)).systems[0]
        conn_ = SqlConnector(system, ConnectorContext(  # type: ignore[arg-type]
            hash_key=b"g" * 32, environ={"GEN_URL": url}))
        try:
            before = read_all(url, tables)
            sink = ListSink()
            conn_.collect(SUBJECT, sink)
            subject = {name: {r["id"] for r in rows} for name, rows in sink.rows.items()}
            try:
                result = conn_.erase(SUBJECT)
            except DataMapError:
                return  # refused before changing anything: not an erasure that completed
            after = read_all(url, tables)
            kept = {e.collection: e.counts.get("kept_shared", 0) for e in result.evidence}
            keys = {**SUBJECT, **{k: frozenset(v) for k, v in result.discovered.items()}}
            fresh = {e.collection: e.found for e in conn_.count(keys).evidence}
        finally:
            sql_engine.dispose_all()
    for name, action in actions.items():
        if action in ("delete", "mask"):
            left = [r for r in after[name].values() if r[1] == PEOPLE[0]]
            assert left == [], (name, left)  # found by the email: the subject's own, never kept
        if action == "delete":
            assert fresh.get(name, 0) <= kept.get(name, 0), (name, fresh, kept)
        for pk, row in before[name].items():
            if pk not in subject.get(name, set()) or action in ("retain", "none"):
                assert after[name].get(pk) == row, (name, pk)
        gone_or_changed = [pk for pk in subject.get(name, set())
                           if after[name].get(pk) != before[name][pk]]
        assert len(gone_or_changed) <= len(subject.get(name, set())) - kept.get(name, 0)
    by_name = {t["name"]: t for t in shop["tables"]}
    for t in shop["tables"]:
        columns = list(tables[t["name"]].c.keys())
        for j in t["to"]:
            target, at = f"t{j}", columns.index(f"to_t{j}")
            own_ways = by_name[target]["up"] is None  # found by email alone, or pointed at
            for pk, row in before[t["name"]].items():
                value = row[at]
                if value is None:
                    continue
                other = pk not in subject.get(t["name"], set())
                if other and own_ways and before[target][value][1] != PEOPLE[0]:
                    # another person's row points at it: never changed
                    assert after[target].get(value) == before[target][value], (target, value)
                survivor = after[t["name"]].get(pk)
                if survivor is not None and survivor[at] == value and own_ways \
                        and before[target][value][1] != PEOPLE[0]:
                    assert value in after[target], ("dangling", t["name"], pk, target)
