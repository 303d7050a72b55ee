"""``dsar datamap …`` (write, check and import data maps) and ``dsar plan`` (show a plan).

Thin commands over :mod:`dsar.datamap` and :mod:`dsar.planning`; every failure a person can fix
is a :class:`~dsar.errors.DsarError`, printed by the CLI as one line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.table import Table

from dsar.datamap.findings import Finding
from dsar.datamap.loader import load_datamap
from dsar.errors import InvalidInput
from dsar.settings import raw_setting
from interfaces.commands.output import console, json_option, print_json, table

DATAMAP_HELP = "The data map file. Default: the DSAR_DATAMAP environment variable."


def _write(text: str, output: str | None) -> None:
    if output in (None, "-"):
        sys.stdout.write(text)
        return
    Path(output).write_text(text, encoding="utf-8")
    console.print(f"wrote {output}")


def _datamap_path(path: str | None) -> str:
    path = path or raw_setting("datamap_path")
    if not path:
        raise InvalidInput("no data map given", "pass --datamap FILE or set DSAR_DATAMAP")
    return path


@click.group("datamap")
def datamap() -> None:
    """Write, check and import data maps.

    \b
    The data map (YAML) lists every system that holds personal data, how a subject is found in
    each table (identities, references and their direction), and what erasure does there
    (delete, mask, or retain under a legal ground). The format: docs/datamap.md.

    \b
    Typical start:
      dsar datamap discover "$SHOP_DB_URL" --system shop --url-env SHOP_DB_URL -o datamap.yaml
      (review every '# review:' line)
      dsar datamap check datamap.yaml
    """


@datamap.command("discover")
@click.argument("url")
@click.option("--system", "system_name", default="main", show_default=True,
              help="The system's name in the map (lower-case letters, digits, - and _).")
@click.option("--url-env", default="DATABASE_URL", show_default=True,
              help="The environment variable that will hold the URL when dsar runs. The URL "
                   "itself is never written to the file.")
@click.option("--schema", "schemas", multiple=True,
              help="Database schema to read (repeatable; default: the connection's default "
                   "schema). Tables of several schemas carry 'schema:' in the map.")
@click.option("-o", "--output", default=None, help="Write to this file instead of stdout.")
def discover_command(url: str, system_name: str, url_env: str, schemas: tuple[str, ...],
                     output: str | None) -> None:
    """Write a first data map for the database at URL.

    \b
    Reads tables, primary and foreign keys (never rows) and guesses identity columns, data
    categories and which way each foreign key may be followed so that the subject's own rows
    are reached and other people's are not. Every guess is marked '# review:'.
    The draft passes 'dsar datamap check': financial-looking tables are retained, tables
    without personal columns are never changed (action none), and rows that other rows
    point at are masked instead of deleted, each with its reason. PostgreSQL partitions are
    mapped as their parent; views are left out, generated columns never masked ('# note:').
    An empty database or schema is refused.
    """
    from connectors.sql_discover import discover

    _write(discover(url, system_name, url_env, list(schemas) or None), output)


@datamap.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def check_command(file: str, as_json: bool) -> None:
    """Check FILE against the live databases it names.

    \b
    Errors: missing tables and columns, identity columns of the wrong type, a PostgreSQL
    partition or a view in the map, and every erasure a database would refuse (deleting a
    row that a kept row, another person's row, the table's own rows or an unmapped table's
    rows point at; nulling a NOT NULL column; masking a key or generated column; a fixed
    mask too long for its column). Warnings: tables no key reaches, and email columns no
    index serves the case-insensitive look-up of, with the CREATE INDEX to run.
    URLs come from the environment variables the map names. Reads schemas only.
    Exits 1 when there are errors, 0 when there are only warnings or nothing.
    """
    from dsar.datamap.check import check_datamap

    load_warnings: list[Finding] = []
    dm = load_datamap(file, load_warnings)
    findings = check_datamap(dm, os.environ)
    seen = {(f.system, f.table, f.column, f.problem) for f in findings}
    findings += [w for w in load_warnings if (w.system, w.table, w.column, w.problem) not in seen]
    errors = [f for f in findings if f.severity == "error"]
    if as_json:
        print_json({"file": file, "errors": len(errors), "findings": [f.to_dict() for f in
                                                                        findings]})
    elif not findings:
        console.print(f"{file}: no problems found")
    else:
        # Where and the suggested fix are copied: table() keeps "where" whole and wraps the
        # rest at spaces; a row too wide for that is shown as "column value" lines.
        console.print(table(None, ["severity", "where", "problem", "fix"], [
            [f.severity, ".".join(p for p in (f.system, f.table, f.column) if p), f.problem,
             f.fix] for f in findings]))
        console.print(f"{len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    if errors:
        raise SystemExit(1)


@datamap.command("import-fides")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--url-env", required=True,
              help="Environment variable for the database URL (with several datasets, "
                   "<VAR>_<DATASET> each).")
@click.option("--erase-category", "targets", multiple=True, default=("user",),
              show_default=True, metavar="CATEGORY",
              help="A data category your Fides erasure policy targets (repeatable); it covers "
                   "its sub-categories. Fields with a targeted category are masked.")
@click.option("-o", "--output", default=None, help="Write to this file instead of stdout.")
def import_fides_command(file: str, url_env: str, targets: tuple[str, ...],
                         output: str | None) -> None:
    """Convert a Fides (fideslang) dataset FILE into a dsar data map.

    \b
    Erasure runs as Fides runs it: fields whose data categories the erasure policy targets
    (--erase-category) are masked (null, or the field's masking_strategy_override), identity
    fields always; a collection is deleted only with masking_strategy_override: {strategy:
    delete}; one with nothing targeted gets action none (never changed). Every identity field,
    primary keys, categories, references (Fides 'from' becomes inbound, 'to' outbound, none
    the way Fides traverses it), keys across datasets, erase_after and skip_processing are
    carried over. What has no equivalent is a '# note:' line at the top, and `dsar datamap
    check` warns about each until it is deleted. The mapping: docs/datamap.md, "Importing
    from Fides".
    """
    from dsar.datamap.fides import import_fides

    _write(import_fides(Path(file).read_text(encoding="utf-8"), url_env, file, targets), output)


def _keys(email: tuple[str, ...], phone: tuple[str, ...], ids: tuple[str, ...]) -> dict:
    from dsar.identities import parse_identities, subject_keys

    return dict(subject_keys(parse_identities(email, phone, ids)))


@click.command("plan")
@click.argument("action", type=click.Choice(["access", "export", "erasure"]))
@click.option("--email", multiple=True, help="The subject's email address (repeatable).")
@click.option("--phone", multiple=True, help="The subject's phone number, international "
                                              "form (repeatable).")
@click.option("--id", "ids", multiple=True, metavar="NAME=VALUE",
              help="A named key, e.g. customer_id=42 (repeatable).")
@click.option("--datamap", "datamap_file", default=None, help=DATAMAP_HELP)
@json_option
def plan(action: str, email: tuple[str, ...], phone: tuple[str, ...], ids: tuple[str, ...],
         datamap_file: str | None, as_json: bool) -> None:
    """Show what a request of ACTION would do, without touching any data.

    \b
    Lists, in order, every collection the subject's keys reach and how (the key or the
    reference path), what happens there (collect, delete, mask, or retain with its legal
    ground and period), and the task graph the worker fleet would run: one task per system,
    waiting for keys other systems provide. Key names only are printed, never their values.
    Then the problems 'dsar datamap check' finds: for each SQL system whose URL variable is
    set, against its database (schemas only, never rows); the others are named as not
    checked.
    """
    from dsar.datamap.check import check_datamap
    from dsar.datamap.schema import SqlSystem
    from dsar.planning import plan_request

    keys = _keys(email, phone, ids)
    dm = load_datamap(_datamap_path(datamap_file))
    result = plan_request(dm, keys, action)
    findings = check_datamap(dm, os.environ, configured_only=True)
    unchecked = [f"{s.name} (set {s.url_env})" for s in dm.systems
                 if isinstance(s, SqlSystem) and not os.environ.get(s.url_env)]
    if as_json:
        print_json({**result.to_dict(), "findings": [f.to_dict() for f in findings],
                    "not_checked": unchecked})
        return
    steps = Table("#", "system", "collection", "action", "found by")
    for step in result.steps:
        how = " | ".join(" → ".join(m.path) for m in step.matches)
        action_text = step.action + (f" ({step.retain_ground}, {step.retain_period})"
                                     if step.retain_ground else "")
        steps.add_row(str(step.order + 1), step.system, step.collection, action_text, how)
    console.print(steps)
    tasks = Table("task", "needs keys", "after")
    for task in result.tasks:
        tasks.add_row(task.id, ", ".join(task.needs) or "-", ", ".join(task.depends_on) or "-")
    console.print(tasks)
    if result.unreachable:
        console.print("not reached: " + ", ".join(f"{s}.{c}" for s, c in result.unreachable))
    for note in result.notes:
        console.print(f"note: {note}")
    errors = [f for f in findings if f.severity == "error"]
    for f in findings:
        console.print(f"{f.severity}: {f.one_line()}", markup=False)
    if errors and action == "erasure":
        console.print(f"{len(errors)} error(s): this erasure would be refused before any change",
                      markup=False)
    if unchecked:
        console.print("not checked against the database: " + ", ".join(unchecked),
                      markup=False)


__all__ = ["datamap", "plan"]
