"""The S3 connector: a bucket's per-subject objects and its shared record files.

The data map's :class:`~dsar.datamap.schema.S3System` names the bucket and two kinds of
collections:

- ``objects`` (:class:`~dsar.datamap.schema.S3ObjectSpec`): a ``key`` or ``prefix`` template
  such as ``avatars/{customer_id}.png`` or ``uploads/{customer_id}/``, filled from the
  subject's keys (including keys other systems discovered). See :mod:`connectors.s3_keys` for
  why a filled template can never select another person's objects;
- ``shared`` (:class:`~dsar.datamap.schema.S3SharedSpec`): files under a prefix, each holding
  many people's records, in JSON Lines, CSV or JSON-array format, optionally gzip; ``match``
  says which field (a dotted path for nested JSON) holds which key.

Operations (see :class:`connectors.base.Connector` for the contract):

- ``collect`` streams each object and each matching record into the sink, in chunks and
  batches; memory stays flat whatever the object sizes;
- ``erase`` deletes every version and delete marker of the subject's objects, aborts their
  multipart uploads, rewrites shared files without the subject's records (conditional on the
  ETag read), respects Object Lock (reported as retained, never bypassed), then recounts and
  raises unless nothing erasable is left; running it twice changes nothing the second time;
- ``count`` reports what is there without changing it.

The endpoint comes from ``context.environ[system.endpoint_url_env]`` when the data map names
one (S3-compatible stores, moto in tests); credentials come from the standard AWS chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from datetime import timedelta
from typing import Any

from connectors.base import (
    CollectionSink,
    Connector,
    ConnectorContext,
    ConnectorResult,
    SubjectKeys,
    register,
)
from connectors.s3_batch import BeforeChange, count_shared_batch, erase_shared_batch
from connectors.s3_client import Bucket, S3Settings, make_client
from connectors.s3_keys import KeyTemplate, TemplateError, UnsafeKeyValue, parse_template
from connectors.s3_objects import Target, collect_objects, count_objects, erase_objects
from connectors.s3_shared import collect_shared, count_shared, erase_shared, matcher_for
from connectors.s3_tables import (
    TABLE_FORMATS,
    Expired,
    LakeTable,
    collect_table,
    count_table_batch,
    expire_table,
    open_table,
)
from dsar.datamap.schema import S3ObjectSpec, S3SharedSpec, S3System
from dsar.errors import ConnectorError
from dsar.evidence import CollectionEvidence

__all__ = ["S3Connector", "S3Settings"]


@register("s3")
class S3Connector(Connector):
    """Collect, erase and count one subject's data in one S3 bucket.

    ``settings`` tunes paging, retries, chunk and batch sizes (see
    :class:`~connectors.s3_client.S3Settings`); the defaults suit AWS. Construction checks
    every key template and raises :class:`ConnectorError` (code ``s3_bad_template``) for one
    that could select other people's objects.
    """

    system: S3System

    def __init__(
        self, system: S3System, context: ConnectorContext, settings: S3Settings | None = None
    ) -> None:
        super().__init__(system, context)
        self.settings = settings or S3Settings()
        self.templates: dict[str, KeyTemplate] = {}
        for spec in system.objects:
            kind, text = ("key", spec.key) if spec.key is not None else ("prefix", spec.prefix)
            assert text is not None
            try:
                self.templates[spec.name] = parse_template(text, kind)  # type: ignore[arg-type]
            except TemplateError as exc:
                raise ConnectorError(
                    str(exc), "correct the template in the data map",
                    system=system.name, collection=spec.name, code="s3_bad_template",
                ) from None
        endpoint = None
        if system.endpoint_url_env:
            endpoint = context.environ.get(system.endpoint_url_env) or None
        self._client: Any = None
        self._client_args = {
            "endpoint_url": endpoint,
            "region": system.region,
            "retry_mode": self.settings.retry_mode,
            "max_attempts": self.settings.max_attempts,
            "timeout": self.settings.timeout,
            "environ": context.environ,
        }

    @property
    def bucket(self) -> Bucket:
        """The bucket handle; the boto3 client is created on first use."""
        if self._client is None:
            with_guard = Bucket(None, self.system.bucket, self.system.name, self.settings,
                                self.context)
            with with_guard.guard(None, "creating the S3 client"):
                self._client = make_client(**self._client_args)
        return Bucket(self._client, self.system.bucket, self.system.name, self.settings,
                      self.context)

    def targets(self, spec: S3ObjectSpec, keys: SubjectKeys) -> list[Target]:
        """The subject's filled keys/prefixes for ``spec``: ``[(text, exact), …]``.

        Raises ConnectorError (``s3_unsafe_key``) for a key value that could widen the match.
        """
        template = self.templates[spec.name]
        try:
            return [(text, template.kind == "key") for text in template.expand(keys)]
        except UnsafeKeyValue as exc:
            raise ConnectorError(
                f"{exc} and cannot be used in {template.text!r}; nothing was changed",
                f"correct the {exc.key_name} value of the request or the system that provided it",
                system=self.system.name, collection=spec.name, code="s3_unsafe_key",
            ) from None

    def _all_targets(self, keys: SubjectKeys) -> dict[str, list[Target]]:
        # Every value is checked before any call to S3, so bad input changes nothing.
        return {spec.name: self.targets(spec, keys) for spec in self.system.objects}

    def collect(self, keys: SubjectKeys, sink: CollectionSink) -> ConnectorResult:
        """Objects to ``sink.write_object``, shared records to ``sink.write_rows``."""
        targets = self._all_targets(keys)
        result = ConnectorResult()
        b = self.bucket
        for spec in self.system.objects:
            result.evidence.append(collect_objects(b, spec, targets[spec.name], sink))
        for shared in self.system.shared:
            matcher = matcher_for(shared, keys)
            if shared.format in TABLE_FORMATS:
                with closing(self.table(shared)) as table:
                    result.evidence.append(collect_table(b, shared, table, matcher, sink))
            else:
                result.evidence.append(collect_shared(b, shared, matcher, sink))
        return result

    def erase(self, keys: SubjectKeys) -> ConnectorResult:
        """Erase per the data map; each evidence has ``remaining == 0`` or this raises."""
        targets = self._all_targets(keys)
        result = ConnectorResult()
        b = self.bucket
        for spec in self.system.objects:
            result.evidence.append(erase_objects(b, spec, targets[spec.name]))
        for shared in self.system.shared:
            if shared.format in TABLE_FORMATS:
                result.evidence.append(erase_shared_batch(b, shared, {"": keys}, self.table)[""])
            else:
                result.evidence.append(erase_shared(b, shared, matcher_for(shared, keys)))
        return result

    def erase_objects(self, keys: SubjectKeys) -> ConnectorResult:
        """:meth:`erase` of the per-subject ``objects`` only: what a batched erasure does at
        once, before its shared files wait for the batch (see :mod:`connectors.s3_batch`)."""
        targets = self._all_targets(keys)
        b = self.bucket
        return ConnectorResult(evidence=[erase_objects(b, spec, targets[spec.name])
                                         for spec in self.system.objects])

    def count_shared_batch(self, keys_by_member: Mapping[str, SubjectKeys]
                           ) -> dict[str, list[CollectionEvidence]]:
        """Each member's records in the shared collections, from one scan of each file."""
        out: dict[str, list[CollectionEvidence]] = {m: [] for m in keys_by_member}
        for shared in self.system.shared:
            for member, ev in count_shared_batch(self.bucket, shared, keys_by_member,
                                                 self.table).items():
                out[member].append(ev)
        return out

    def erase_shared_batch(self, keys_by_member: Mapping[str, SubjectKeys],
                           before_change: BeforeChange | None = None,
                           ) -> dict[str, list[CollectionEvidence]]:
        """Erase every member's records from the shared collections in one pass over each
        file; each member's evidence has its own counts, hashes and recount (``remaining``
        is 0 for every member, or this raises). ``before_change(collection, file, counts)``
        is told what each file held for each member just before the pass changes it."""
        out: dict[str, list[CollectionEvidence]] = {m: [] for m in keys_by_member}
        for shared in self.system.shared:
            for member, ev in erase_shared_batch(self.bucket, shared, keys_by_member,
                                                 self.table, before_change).items():
                out[member].append(ev)
        return out

    def count(self, keys: SubjectKeys) -> ConnectorResult:
        """Counts only: objects, versions, markers, uploads; records in shared files."""
        targets = self._all_targets(keys)
        result = ConnectorResult()
        b = self.bucket
        for spec in self.system.objects:
            result.evidence.append(count_objects(b, spec, targets[spec.name]))
        for shared in self.system.shared:
            if shared.format in TABLE_FORMATS:
                matcher = matcher_for(shared, keys)
                with closing(self.table(shared)) as table:
                    result.evidence.append(count_table_batch(
                        b, shared, table, {"": matcher}, matcher)[""])
            else:
                result.evidence.append(count_shared(b, shared, matcher_for(shared, keys)))
        return result

    def table(self, spec: S3SharedSpec) -> LakeTable:
        """The Delta Lake or Iceberg table of a ``delta``/``iceberg`` shared collection."""
        return open_table(self.bucket, spec, self._client_args)

    def expire(self, collection: str, older_than: timedelta | None = None) -> Expired:
        """Expire the table versions of shared collection ``collection`` older than
        ``older_than`` (default: the table's own retention) and delete the data files only
        they held (see
        :mod:`connectors.s3_tables`). ConnectorError when it is not a table collection."""
        spec = next((s for s in self.system.shared if s.name == collection), None)
        if spec is None or spec.format not in TABLE_FORMATS:
            tables = [s.name for s in self.system.shared if s.format in TABLE_FORMATS]
            raise ConnectorError(
                f"{self.system.name!r} has no Delta Lake or Iceberg collection {collection!r}",
                f"name one of its table collections: {', '.join(tables) or 'it has none'}",
                system=self.system.name, collection=collection, code="s3_table_not_found")
        with closing(self.table(spec)) as table, self.bucket.guard(
                spec.name, f"expiring old versions of the table {spec.prefix!r}"):
            return expire_table(table, older_than)

    def close(self) -> None:
        """Drop the client (its connection pool closes with it). Safe to call twice."""
        if self._client is not None:
            self._client.close()
            self._client = None
