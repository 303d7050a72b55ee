"""``dsar lake expire``: remove old versions of a Delta Lake or Iceberg shared collection.

A thin command over :meth:`connectors.s3.S3Connector.expire` (logic in
:mod:`connectors.s3_tables`); every failure a person can fix is a
:class:`~dsar.errors.DsarError`, printed by the CLI as one line.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta

import click

from dsar.datamap.loader import load_datamap
from dsar.errors import InvalidInput, NotFound
from interfaces.commands.datamap import DATAMAP_HELP, _datamap_path
from interfaces.commands.output import console, json_option, print_json

UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_age(_ctx: click.Context, _param: click.Parameter, value: str | None
              ) -> timedelta | None:
    """``7d`` / ``12h`` / ``2w`` / ``0`` as a timedelta (None when not given); InvalidInput
    otherwise."""
    if value is None:
        return None
    found = re.fullmatch(r"\s*(\d+)\s*([hdw]?)\s*", value or "")
    if not found or (found.group(1) != "0" and not found.group(2)):
        raise InvalidInput(f"--older-than {value!r} is not an age", "write 12h, 7d, 2w or 0")
    return timedelta(**{UNITS.get(found.group(2) or "h", "hours"): int(found.group(1))})


@click.group("lake")
def lake() -> None:
    """Maintain Delta Lake and Iceberg tables that hold shared collections.

    \b
    Erasure deletes a person's rows from a table by committing a new version; older versions
    (Delta) or snapshots (Iceberg) still hold the rows until they are expired, and the erasure's
    evidence says which ones and the table's retention. `dsar lake expire` expires them now.
    """


@lake.command("expire")
@click.argument("system")
@click.argument("collection")
@click.option("--older-than", "older_than", callback=parse_age, metavar="AGE",
              help="Expire versions older than this (12h, 7d, 2w; 0: every version but the "
                   "current one). Default: the table's own retention "
                   "(delta.deletedFileRetentionDuration, history.expire.max-snapshot-age-ms).")
@click.option("--datamap", "datamap_file", metavar="FILE", help=DATAMAP_HELP)
@json_option
def expire(system: str, collection: str, older_than: timedelta | None,
           datamap_file: str | None, as_json: bool) -> None:
    """Expire old versions of table COLLECTION of S3 system SYSTEM and delete their files.

    \b
    Without --older-than, versions older than the table's own retention are expired, which a
    table's maintenance would do anyway; --older-than 0 expires every older version now, so
    that no time travel reaches an erased person's rows.

    \b
    Delta Lake: vacuum the data files that versions older than AGE removed, then checkpoint
    and drop log entries past the table's delta.logRetentionDuration (the log's per-file
    statistics can hold values until then). Iceberg: expire the snapshots older than AGE and
    delete the manifest lists, manifests and data files no remaining snapshot references.
    The current version is always kept; time travel to an expired version no longer works.

    \b
    Example:
      dsar lake expire files events --older-than 0 --json
    """
    from connectors.base import ConnectorContext
    from connectors.s3 import S3Connector

    dm = load_datamap(_datamap_path(datamap_file))
    try:
        spec = dm.system(system)
    except KeyError:
        names = ", ".join(s.name for s in dm.systems)
        raise NotFound(f"the data map has no system {system!r}",
                       f"name one of its systems: {names}") from None
    if spec.kind != "s3":
        raise InvalidInput(f"system {system!r} is {spec.kind}, not s3",
                           "name an S3 system with a delta or iceberg shared collection")
    # expiry hashes nothing, so a throwaway key stands in for the evidence key
    context = ConnectorContext(hash_key=os.urandom(32), environ=dict(os.environ))
    connector = S3Connector(spec, context)  # type: ignore[arg-type]
    try:
        done = connector.expire(collection, older_than)
    finally:
        connector.close()
    result = {"system": system, "collection": collection,
              "older_than_hours": None if older_than is None
              else older_than.total_seconds() / 3600,
              "expired": done.versions, "files_deleted": done.files_deleted,
              "kept": done.kept, "at": datetime.now(UTC)}
    if as_json:
        print_json(result)
        return
    console.print(f"{system}/{collection}: expired {len(done.versions)} version(s) "
                  f"{', '.join(map(str, done.versions)) or ''}".rstrip())
    console.print(f"deleted {done.files_deleted} file(s); older versions still present: "
                  f"{', '.join(map(str, done.kept)) or 'none'}")
