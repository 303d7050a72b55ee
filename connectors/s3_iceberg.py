"""An Apache Iceberg table in the bucket, through pyiceberg: see :mod:`connectors.s3_tables`.

The table is found through a SQL catalog (pyiceberg's ``SqlCatalog``: PostgreSQL, SQLite …)
whose SQLAlchemy URL is in the environment variable the collection's ``catalog_url_env``
names; ``catalog`` is the catalog's name (default ``default``) and ``table`` the table's
identifier (``namespace.name``). Its location must be
``s3://BUCKET/PREFIX`` of the collection, so a data map cannot point erasure at a table in
another bucket by mistake.

``Table.delete`` rewrites the data files holding matching rows (copy-on-write) and commits a
new snapshot; older snapshots keep the old files. The table's ``history.expire.max-snapshot-
age-ms`` (default 5 days) is its stated retention. pyiceberg's ``expire_snapshots`` removes
snapshots from the metadata only, so :meth:`IcebergTable.expire` also deletes the manifest
lists, manifests and data files that no remaining snapshot references (manifests hold column
bounds, which may hold a value).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from typing import Any

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchNamespaceError,
    NoSuchTableError,
)
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, In, Or
from pyiceberg.io.pyarrow import ArrowScan

from connectors.s3_client import Bucket
from connectors.s3_delta import storage_options
from connectors.s3_tables import Expired, History, Spellings
from dsar.datamap.schema import S3SharedSpec
from dsar.errors import ConnectorError

MAX_AGE = "history.expire.max-snapshot-age-ms"
DEFAULT_MAX_AGE_MS = 5 * 24 * 3600 * 1000


def catalog_properties(storage: Mapping[str, Any]) -> dict[str, str]:
    """pyiceberg's S3 FileIO properties from the connector's endpoint and credentials."""
    delta = storage_options(storage)
    props = {"s3.region": delta["AWS_REGION"]}
    for ours, theirs in (("AWS_ACCESS_KEY_ID", "s3.access-key-id"),
                         ("AWS_SECRET_ACCESS_KEY", "s3.secret-access-key"),
                         ("AWS_SESSION_TOKEN", "s3.session-token"),
                         ("AWS_ENDPOINT_URL", "s3.endpoint")):
        if delta.get(ours):
            props[theirs] = delta[ours]
    return props


class IcebergTable:
    """The Iceberg table the collection's catalog names."""

    kind = "Iceberg"
    conflicts: tuple[type[Exception], ...] = (CommitFailedException,)

    def __init__(self, b: Bucket, spec: S3SharedSpec, storage: Mapping[str, Any]) -> None:
        env = storage.get("environ") or {}
        url = env.get(spec.catalog_url_env or "") if spec.catalog_url_env else None
        where = dict(system=b.system, collection=spec.name)
        if not url:
            raise ConnectorError(
                f"the Iceberg catalog of {spec.name!r} is not configured: "
                f"{spec.catalog_url_env} is not set",
                f"set {spec.catalog_url_env} to the SQL catalog's URL "
                "(postgresql+psycopg://… or sqlite:///…)", code="s3_table_not_found", **where)
        self.catalog = SqlCatalog(spec.catalog, uri=url, **catalog_properties(storage))
        try:
            self.table = self.catalog.load_table(spec.table or "")
        except (NoSuchTableError, NoSuchNamespaceError, ValueError):
            self.close()
            raise ConnectorError(
                f"the Iceberg catalog {spec.catalog!r} in {spec.catalog_url_env} has no table "
                f"{spec.table!r}", f"correct 'table' (namespace.name) or 'catalog' of "
                f"{spec.name!r} in the data map",
                code="s3_table_not_found", **where) from None
        expected = f"s3://{b.name}/{spec.prefix.rstrip('/')}"
        if self.table.location().rstrip("/") != expected:
            self.close()
            raise ConnectorError(
                f"Iceberg table {spec.table!r} lives at {self.table.location()!r}, not at "
                f"{expected!r}; nothing was changed",
                f"correct 'prefix' or 'table' of {spec.name!r} in the data map",
                code="s3_table_not_found", **where)

    def close(self) -> None:
        self.catalog.engine.dispose()

    def version(self) -> int:
        snapshot = self.table.current_snapshot()
        return int(snapshot.sequence_number or 0) if snapshot else 0

    def _tasks(self) -> list[Any]:
        return list(self.table.scan().plan_files()) if self.table.current_snapshot() else []

    def _read(self, task: Any, columns: list[str] | None) -> Any:
        schema = self.table.schema()
        if columns is not None:
            schema = schema.select(*[c for c in columns if c in schema.column_names])
        return ArrowScan(self.table.metadata, self.table.io, schema, AlwaysTrue()).to_table([task])

    def files(self, columns: list[str], skip: AbstractSet[str] = frozenset()
              ) -> Iterator[tuple[str, Any]]:
        root = self.table.location().rstrip("/") + "/"
        for task in self._tasks():
            if (name := task.file.file_path.removeprefix(root)) not in skip:
                yield name, self._read(task, columns)

    def rows(self, data_file: str) -> Any:
        root = self.table.location().rstrip("/") + "/"
        for task in self._tasks():
            if task.file.file_path.removeprefix(root) == data_file:
                return self._read(task, None)
        raise KeyError(data_file)

    def delete(self, spellings: Spellings) -> int:
        terms: list[BooleanExpression] = [In(column, values)
                                          for column, values in sorted(spellings.items())]
        expression = terms[0] if len(terms) == 1 else Or(*terms)
        self.table.delete(expression)
        snapshot = self.table.current_snapshot()
        summary = snapshot.summary if snapshot else None
        return int((summary.additional_properties if summary else {}).get("deleted-records", 0))

    def _max_age_ms(self) -> int:
        return int(self.table.properties.get(MAX_AGE, DEFAULT_MAX_AGE_MS))

    def history(self) -> History:
        current = self.table.current_snapshot()
        older = [s.snapshot_id for s in self.table.snapshots()
                 if current is None or s.snapshot_id != current.snapshot_id]
        ms = self._max_age_ms()
        return History(older=older, retention=f"{MAX_AGE} = {ms}",
                       retention_hours=-(-ms // 3_600_000))

    def _files_of(self, snapshot: Any) -> set[str]:
        io = self.table.io
        found = {snapshot.manifest_list}
        for manifest in snapshot.manifests(io):
            found.add(manifest.manifest_path)
            found.update(e.data_file.file_path
                         for e in manifest.fetch_manifest_entry(io, discard_deleted=True))
        return found

    def expire(self, older_than: timedelta) -> Expired:
        cutoff = datetime.now(UTC) - older_than
        current = self.table.current_snapshot()
        doomed = [s for s in self.table.snapshots()
                  if s.timestamp_ms < cutoff.timestamp() * 1000
                  and (current is None or s.snapshot_id != current.snapshot_id)]
        if not doomed:
            return Expired(kept=self.history().older)
        old = set().union(*(self._files_of(s) for s in doomed))
        self.table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in doomed]).commit()
        self.table = self.catalog.load_table(self.table.name())
        live = set().union(*(self._files_of(s) for s in self.table.snapshots()))
        gone = sorted(old - live)
        for path in gone:
            with contextlib.suppress(FileNotFoundError):  # an earlier run stopped midway
                self.table.io.delete(path)
        return Expired(versions=[s.snapshot_id for s in doomed], files_deleted=len(gone),
                       kept=self.history().older)
