"""Delta Lake and Apache Iceberg tables as shared collections: erased through the table format.

A shared collection with ``format: delta`` or ``format: iceberg`` is a table, not a set of
files: its rows are deleted by a predicate committed as a new table version (delta-rs'
``DeltaTable.delete``, pyiceberg's ``Table.delete``), so readers and time travel stay
consistent and a crash leaves the table at the old version or the new one, never between.

For every operation the live data files are read with only the key columns
(:meth:`LakeTable.files`), candidate rows are picked with Arrow compute and each is confirmed
by the :class:`~connectors.s3_records.Matcher`, exactly as for Parquet files. A delete then
names the *stored spellings* of the matched values (``email IN ('Ann@x.org')``), so the
predicate removes exactly the rows the matcher accepted, including case variants of an email
address, and nothing else.

Older versions (Delta) or snapshots (Iceberg) still hold the erased rows until they are
expired. The erasure's evidence says so: ``retained`` is the number of erased rows still held
by that history, ``retained_ground`` names the versions, ``retained_period`` the table's
retention and the command that expires them (``dsar lake expire``); :func:`expire_table`
does it. The evidence holds counts, version numbers and keyed hashes, never values.

A batch (:mod:`connectors.s3_batch`) makes one delete with the union of every member's
spellings; each member is credited with the rows its own matcher accepts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from connectors.base import CollectionSink
from connectors.s3_client import Bucket
from connectors.s3_objects import _elapsed
from connectors.s3_owners import Owners
from connectors.s3_records import Matcher
from dsar.datamap.schema import S3SharedSpec
from dsar.errors import ConnectorError

TABLE_FORMATS = ("delta", "iceberg")
Spellings = dict[str, set[Any]]


@dataclass
class History:
    """What older versions of a table still hold: ``older`` names them (Delta versions or
    Iceberg snapshot ids), ``retention`` states the table's own retention setting, and
    ``retention_hours`` is that setting in hours."""

    older: list[int]
    retention: str
    retention_hours: int


@dataclass
class Expired:
    """What an expiry removed: versions/snapshots and data files no longer reachable."""

    versions: list[int] = field(default_factory=list)
    files_deleted: int = 0
    kept: list[int] = field(default_factory=list)


class LakeTable(Protocol):
    """One table, opened at its current version (see :mod:`connectors.s3_delta`,
    :mod:`connectors.s3_iceberg`)."""

    kind: str  # "Delta Lake" or "Iceberg": for messages and evidence
    conflicts: tuple[type[Exception], ...]  # what a commit raises when another writer won

    def version(self) -> int:
        """The current version (Delta) or snapshot sequence number (Iceberg); 0 if empty."""

    def files(self, columns: list[str], skip: AbstractSet[str] = frozenset()
              ) -> Iterator[tuple[str, Any]]:
        """``(data file, Arrow table of ``columns``)`` for every live data file not in
        ``skip`` (those are not read)."""

    def rows(self, data_file: str) -> Any:
        """Every column of one live data file's rows, in the order :meth:`files` gave."""

    def delete(self, spellings: Spellings) -> int:
        """Delete the rows where any column holds one of its values; commit a new version.
        Returns the number of rows deleted."""

    def history(self) -> History:
        """The older versions still present, and the table's retention."""

    def expire(self, older_than: timedelta) -> Expired:
        """Remove versions older than ``older_than`` (never the current one) and the data
        files only they reference."""

    def close(self) -> None:
        """Release what the table holds open (a catalog's database connections)."""


def open_table(b: Bucket, spec: S3SharedSpec, storage: Mapping[str, Any]) -> LakeTable:
    """The table of a ``delta`` or ``iceberg`` collection; ConnectorError when its library
    is missing or the table cannot be opened."""
    if any("." in column for column in spec.match.values()):
        raise ConnectorError(
            f"shared collection {spec.name!r} is a {spec.format} table and its 'match' names a "
            "nested field; tables are matched on top-level columns",
            f"name top-level columns in 'match' of {spec.name!r} in the data map",
            system=b.system, collection=spec.name, code="s3_bad_template")
    try:
        if spec.format == "delta":
            from connectors.s3_delta import DeltaLakeTable as Opener
        else:
            from connectors.s3_iceberg import IcebergTable as Opener  # type: ignore[assignment]
    except ImportError:
        raise ConnectorError(
            f"shared collection {spec.name!r} is a {spec.format} table, and its library is not "
            "installed", "install the 'lake' extra (pip install 'dsar[lake]') on the workers",
            system=b.system, collection=spec.name, code="s3_parquet_unavailable") from None
    with b.guard(spec.name, f"opening the {spec.format} table at {spec.prefix!r}"):
        return Opener(b, spec, storage)


def matched_rows(table: Any, matcher: Matcher) -> list[tuple[int, dict[str, Any]]]:
    """``(row, key columns)`` of the rows ``matcher`` accepts in one file's key columns."""
    import pyarrow.compute as pc

    from connectors.s3_parquet import _candidates

    mask = _candidates(table, matcher)
    if mask is None:
        return []
    rows = pc.indices_nonzero(mask).to_pylist()
    if not rows:
        return []
    records = table.take(rows).to_pylist()
    return [(row, rec) for row, rec in zip(rows, records, strict=True) if matcher(rec)]


def spellings_of(matcher: Matcher, record: Mapping[str, Any], into: Spellings) -> bool:
    """Add to ``into`` each column value of ``record`` that one of the matcher's rules
    accepts: the exact stored spelling a delete predicate must name. False when the record
    matched through no scalar value (a list column), which no predicate can name."""
    added = False
    for path, name, values in matcher.rules:
        value = record.get(path[0])
        if value is not None and Matcher._hit(value, name, values):
            into.setdefault(path[0], set()).add(value)
            added = True
    return added


def _columns(matcher: Matcher) -> list[str]:
    return sorted({path[0] for path, _name, _values in matcher.rules})


@dataclass
class _Scan:
    """One read of the key columns: each member's rows, and the union's spellings."""

    found: dict[str, int]
    hashes: dict[str, list[str]]
    spellings: Spellings
    rows: int = 0
    clean: set[str] = field(default_factory=set)  # data files read with no matching row


def _scan(b: Bucket, spec: S3SharedSpec, table: LakeTable, members: Mapping[str, Matcher],
          union: Matcher, skip: AbstractSet[str] = frozenset()) -> _Scan:
    """Read the key columns of every live data file but those in ``skip``."""
    version = str(table.version())
    owners = Owners(members, union)
    out = _Scan(dict.fromkeys(members, 0), {m: [] for m in members}, {})
    with b.guard(spec.name, f"reading the {spec.format} table at {spec.prefix!r}"):
        for data_file, keys in table.files(_columns(union), skip):
            matched = matched_rows(keys, union)
            if not matched:
                out.clean.add(data_file)
            for row, record in matched:
                out.rows += 1
                if not spellings_of(union, record, out.spellings):
                    raise ConnectorError(
                        f"a row of the {spec.format} table {spec.name!r} matched through a list "
                        "column, and a delete can only name single values; nothing was changed",
                        f"map {spec.name!r} to columns holding single values in 'match'",
                        system=b.system, collection=spec.name, code="s3_bad_template")
                for member in owners.of(record):
                    out.found[member] += 1
                    out.hashes[member].append(b.item_hash(
                        f"{spec.prefix}{data_file}", version, row + 1))
    return out


def collect_table(b: Bucket, spec: S3SharedSpec, table: LakeTable, matcher: Matcher,
                  sink: CollectionSink) -> Any:
    """Send the subject's rows of the current version to ``sink``: ``{"object": data file,
    "line": row in that file (1-based), "record": {...}}``."""
    import hashlib
    import json

    from connectors.s3_parquet import jsonable

    start = time.monotonic()
    ev = b.evidence(spec.name, "collect")
    digest, version = hashlib.sha256(), str(table.version())
    batch: list[dict[str, Any]] = []
    files = 0
    with b.guard(spec.name, f"reading the {spec.format} table at {spec.prefix!r}"):
        for data_file, keys in ([] if matcher.empty else table.files(_columns(matcher))):
            hits = [row for row, _record in matched_rows(keys, matcher)]
            files += 1
            if not hits:
                continue
            full = table.rows(data_file).take(hits).to_pylist()
            for row, record in zip(hits, full, strict=True):
                plain = jsonable(record)
                digest.update(json.dumps(plain, sort_keys=True, separators=(",", ":"),
                                         ensure_ascii=False).encode() + b"\n")
                ev.found += 1
                ev.item_hashes.append(b.item_hash(f"{spec.prefix}{data_file}", version, row + 1))
                batch.append({"object": f"{spec.prefix}{data_file}", "line": row + 1,
                              "record": plain})
            if len(batch) >= b.settings.batch_size:
                sink.write_rows(b.system, spec.name, batch)
                ev.collected, batch = ev.collected + len(batch), []
    if batch:
        sink.write_rows(b.system, spec.name, batch)
        ev.collected += len(batch)
    ev.digest = digest.hexdigest()
    ev.counts = {"objects_scanned": files, "table_version": table.version()}
    ev.duration_ms = _elapsed(start)
    return ev


def count_table_batch(b: Bucket, spec: S3SharedSpec, table: LakeTable,
                      members: Mapping[str, Matcher], union: Matcher) -> dict[str, Any]:
    """Each member's rows in the current version (``found``); ``counts.older_versions`` is
    how many older versions are still present (they may hold more)."""
    start = time.monotonic()
    evs = {m: b.evidence(spec.name, "count") for m in members}
    live = {m: x for m, x in members.items() if not x.empty}
    scan = _scan(b, spec, table, live, union) if live else None
    older = len(table.history().older)
    for member, ev in evs.items():
        ev.found = scan.found.get(member, 0) if scan else 0
        ev.counts = {"table_version": table.version(), "older_versions": older}
        ev.duration_ms = _elapsed(start)
    return evs


def erase_table_batch(b: Bucket, spec: S3SharedSpec, table: LakeTable,
                      members: Mapping[str, Matcher], union: Matcher,
                      before_change: Callable[[str, str, dict[str, int]], None] | None = None,
                      ) -> dict[str, Any]:
    """Delete every member's rows with one committed delete, recount on the new version and
    say what older versions still hold. Raises ``s3_erasure_incomplete`` (transient) when the
    recount finds a member's rows."""
    start = time.monotonic()
    evs = {m: b.evidence(spec.name, "erase") for m in members}
    live = {m: x for m, x in members.items() if not x.empty}
    before = _scan(b, spec, table, live, union) if live else _Scan({}, {}, {})
    retain = spec.erasure.action == "retain"
    deleted = 0
    if before.spellings and not retain:
        if before_change is not None:
            before_change(spec.name, spec.prefix, {m: n for m, n in before.found.items() if n})
        with b.guard(spec.name, f"deleting from the {spec.format} table at {spec.prefix!r}"):
            try:
                deleted = table.delete(before.spellings)
            except table.conflicts as exc:
                raise ConnectorError(
                    f"another writer committed to the {spec.format} table {spec.name!r} in "
                    f"bucket {b.name!r} during the delete ({type(exc).__name__}); nothing of "
                    "this delete was committed", "retry later; the erasure runs again",
                    system=b.system, collection=spec.name, code="s3_write_conflict",
                    transient=True) from None
    # A data file is never changed in place, and deletes only hide rows, so a file the first
    # scan found clean is clean in the new version too: the recount reads the rest.
    after = (_scan(b, spec, table, live, union, before.clean) if live and not retain
             else _Scan({}, {}, {}))
    history = table.history()
    for member, ev in evs.items():
        ev.found = before.found.get(member, 0)
        ev.item_hashes = before.hashes.get(member, [])
        counts = {"records_redacted": 0, "table_version": table.version(),
                  "older_versions": len(history.older),
                  "retention_hours": history.retention_hours}
        if retain:
            if spec.erasure.retain is not None and ev.found:
                ev.retained = counts["objects_retained"] = ev.found
                ev.retained_ground = spec.erasure.retain.ground
                ev.retained_period = spec.erasure.retain.period
            ev.remaining = 0
        else:
            ev.deleted = counts["records_redacted"] = ev.found
            ev.remaining = after.found.get(member, 0)
            if ev.deleted and history.older:
                ev.retained = counts["rows_in_older_versions"] = ev.deleted
                ev.retained_ground = _held_by(table.kind, history.older)
                ev.retained_period = (f"until those versions are expired ({history.retention}; "
                                      f"dsar lake expire {b.system} {spec.name})")
        counts["table_rows_deleted"] = deleted
        if not retain:
            counts["data_files_checked_in_pass"] = len(before.clean)
        ev.counts, ev.duration_ms = counts, _elapsed(start)
    left = sum(after.found.values())
    if left:
        raise ConnectorError(
            f"{left} row(s) of {sum(1 for n in after.found.values() if n)} subject(s) are still "
            f"in the {spec.format} table {spec.name!r} in bucket {b.name!r} after the delete",
            "a writer may be adding their rows again; stop it and run erasure again",
            system=b.system, collection=spec.name, code="s3_erasure_incomplete", transient=True)
    return evs


def _held_by(kind: str, older: list[int]) -> str:
    name = "versions" if kind == "Delta Lake" else "snapshots"
    shown = (", ".join(map(str, older)) if len(older) <= 5
             else f"{older[0]}, {older[1]}, … {older[-1]} ({len(older)} in all)")
    return f"{kind} table history: older {name} {shown} still hold the erased rows (time travel)"


def expire_table(table: LakeTable, older_than: timedelta | None = None) -> Expired:
    """Expire the table's versions older than ``older_than`` (default: the table's own
    retention; the current version is always kept) and delete the data files only they
    referenced."""
    if older_than is None:
        older_than = timedelta(hours=table.history().retention_hours)
    return table.expire(older_than)
