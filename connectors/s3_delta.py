"""A Delta Lake table in the bucket, through delta-rs (``deltalake``); see
:mod:`connectors.s3_tables`.

The table's root is ``s3://BUCKET/PREFIX`` (the collection's ``prefix``). Deletes are
``DeltaTable.delete(predicate)``, which rewrites the data files holding matching rows and
commits a new version; older versions keep the old files until they are vacuumed. The
table's own settings say how long: ``delta.deletedFileRetentionDuration`` (default
``interval 1 week``) for removed data files, ``delta.logRetentionDuration`` (default
``interval 30 days``) for log entries, whose per-file statistics (column minimum and maximum)
may also hold a value until then.

Writes to S3 use conditional PUTs (``conditional_put: etag``) so two writers cannot both
commit the same version.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from datetime import timedelta
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from connectors.s3_client import Bucket
from connectors.s3_tables import Expired, History, Spellings
from dsar.datamap.schema import S3SharedSpec
from dsar.errors import ConnectorError

DEFAULT_FILE_RETENTION = "interval 1 week"
UNITS = {"second": 1 / 3600, "minute": 1 / 60, "hour": 1, "day": 24, "week": 168}


def storage_options(storage: Mapping[str, Any]) -> dict[str, str]:
    """delta-rs' S3 options from the connector's endpoint, region and environment (its
    ``AWS_*`` keys when it holds one, else the standard chain through boto3's session)."""
    import boto3

    env = storage.get("environ") or {}
    key = env.get("AWS_ACCESS_KEY_ID") or None
    session = boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") if key else None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") if key else None)
    options = {"AWS_REGION": storage.get("region") or session.region_name or "us-east-1",
               "conditional_put": "etag"}
    creds = session.get_credentials()
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        options.update(AWS_ACCESS_KEY_ID=frozen.access_key,
                       AWS_SECRET_ACCESS_KEY=frozen.secret_key)
        if frozen.token:
            options["AWS_SESSION_TOKEN"] = frozen.token
    endpoint = storage.get("endpoint_url")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        options["AWS_ALLOW_HTTP"] = "true" if endpoint.startswith("http://") else "false"
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return options


def hours(interval: str) -> int:
    """``interval 1 week`` → 168: a Delta ``interval`` setting in whole hours (rounded up)."""
    found = re.fullmatch(r"\s*(?:interval\s+)?(\d+)\s+(\w+?)s?\s*", interval.lower())
    if not found or found.group(2) not in UNITS:
        raise ValueError(f"not a Delta interval: {interval!r}")
    return max(0, -int(-int(found.group(1)) * UNITS[found.group(2)] // 1))


def _literal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"cannot name a {type(value).__name__} value in a delete predicate")
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def predicate(spellings: Spellings) -> str:
    """``"email" IN ('a@x.org') OR "customer_id" IN (42)``: SQL that delta-rs parses."""
    return " OR ".join(
        '"{}" IN ({})'.format(column.replace('"', '""'),
                              ", ".join(_literal(v) for v in sorted(values, key=str)))
        for column, values in sorted(spellings.items()))


class DeltaLakeTable:
    """The Delta table at the collection's prefix."""

    kind = "Delta Lake"
    conflicts: tuple[type[Exception], ...] = (CommitFailedError,)

    def __init__(self, b: Bucket, spec: S3SharedSpec, storage: Mapping[str, Any]) -> None:
        self.uri = f"s3://{b.name}/{spec.prefix.rstrip('/')}"
        self.options = storage_options(storage)
        try:
            self.table = DeltaTable(self.uri, storage_options=self.options)
        except TableNotFoundError:
            raise ConnectorError(
                f"no Delta table at {spec.prefix!r} in bucket {b.name!r}",
                f"correct 'prefix' (the table's root) or 'format' of {spec.name!r} in the "
                "data map", system=b.system, collection=spec.name,
                code="s3_table_not_found") from None

    def close(self) -> None:
        """Nothing to release: delta-rs holds no connection between calls."""

    def version(self) -> int:
        return int(self.table.version())

    def files(self, columns: list[str], skip: AbstractSet[str] = frozenset()
              ) -> Iterator[tuple[str, Any]]:
        dataset = self.table.to_pyarrow_dataset()
        present = [c for c in columns if c in dataset.schema.names]
        for fragment in dataset.get_fragments():
            if (name := self._name(fragment.path)) not in skip:
                yield name, fragment.to_table(schema=dataset.schema, columns=present)

    def rows(self, data_file: str) -> Any:
        dataset = self.table.to_pyarrow_dataset()
        for fragment in dataset.get_fragments():
            if self._name(fragment.path) == data_file:
                return fragment.to_table(schema=dataset.schema)
        raise KeyError(data_file)

    def _name(self, path: str) -> str:
        root = self.uri.removeprefix("s3://")
        return path.removeprefix(root).lstrip("/")

    def delete(self, spellings: Spellings) -> int:
        metrics = self.table.delete(predicate(spellings))
        return int(metrics.get("num_deleted_rows") or 0)

    def _retention(self) -> tuple[str, int]:
        setting = self.table.metadata().configuration.get(
            "delta.deletedFileRetentionDuration") or DEFAULT_FILE_RETENTION
        return f"delta.deletedFileRetentionDuration = {setting}", hours(setting)

    def history(self) -> History:
        current = self.version()
        present = sorted(int(h["version"]) for h in self.table.history()
                         if int(h["version"]) < current)
        retention, in_hours = self._retention()
        return History(older=present, retention=retention, retention_hours=in_hours)

    def expire(self, older_than: timedelta) -> Expired:
        before = self.history().older
        removed = self.table.vacuum(retention_hours=int(older_than.total_seconds() // 3600),
                                    dry_run=False, enforce_retention_duration=False)
        # log entries (with their per-file statistics) past delta.logRetentionDuration go too
        self.table.create_checkpoint()
        self.table.cleanup_metadata()
        self.table.update_incremental()
        after = set(self.history().older)
        return Expired(versions=[v for v in before if v not in after],
                       files_deleted=len(removed), kept=sorted(after))
