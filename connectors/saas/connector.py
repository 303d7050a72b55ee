"""The connector for ``kind: saas`` systems: a vendor definition walked for one subject.

Resources are walked parents first (:meth:`VendorDefinition.order`). A root resource's items
are found by each of the subject's keys that the system's ``identities`` map to one of its
lookups (``email`` → ``find.email``); a related resource's items are listed per parent item.
Only the items of resources that have children are held in memory; the others stream through
in pages.

- ``collect`` writes each resource's items to the sink (flattened to ``a.b`` columns, lists as
  JSON) under the resource's name, with per-item keyed hashes and a digest as evidence, and
  reports the keys the vendor's ``provides`` name (``stripe_customer_id``);
- ``erase`` counts everything first (so children removed with their parent are known), sends
  the erasure call for each item, children before parents (404: already gone), then recounts:
  from the keys for root resources, from the parents found before for the others. Resources
  the vendor retains are evidence with the vendor's ground. It raises unless nothing erasable
  remains, and a second run changes nothing;
- ``count`` reports what is there.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from connectors.base import (
    CollectionSink,
    Connector,
    ConnectorContext,
    ConnectorResult,
    JobStatus,
    PendingJob,
    SubjectKeys,
    register,
)
from connectors.saas import jobs
from connectors.saas.definition import Given, RateLimit, Resource
from connectors.saas.loading import load_definition
from connectors.saas.plugins import definition_for
from connectors.saas.runtime import VendorClient
from connectors.saas.session import open_client
from dsar.datamap.schema import SaaSSystem
from dsar.errors import ConnectorError, DataMapError
from dsar.evidence import CollectionEvidence

BATCH = 500
Found = dict[str, list[tuple[dict[str, Any], dict[str, Any] | None]]]


def flatten(item: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as ``a.b`` columns; lists as JSON text (a row for every table format)."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = json.dumps(value, sort_keys=True, default=str)
        else:
            out[name] = value
    return out


@register("saas")
class SaaSConnector(Connector):
    """Collect, erase and count one subject's items in one SaaS account.

    ``transport`` and ``sleep`` are for tests and benchmarks. Construction checks the vendor,
    the resources and the credential variable, and raises :class:`ConnectorError` (not
    transient) naming the fix; nothing is sent until an operation runs.
    """

    system: SaaSSystem

    def __init__(self, system: SaaSSystem, context: ConnectorContext, *,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(system, context)
        try:
            self.definition = (load_definition(system.vendor_file) if system.vendor_file
                               else definition_for(system.vendor))
            if self.definition.name != system.vendor:
                raise DataMapError(f"{system.vendor_file}: defines vendor "
                                   f"{self.definition.name!r}, not {system.vendor!r}",
                                   f"write 'vendor: {self.definition.name}' in the data map")
        except DataMapError as exc:
            raise ConnectorError(exc.problem, exc.fix, system=system.name,
                                 code="saas_unknown_vendor") from None
        unknown = [r for r in system.resources if r not in self.definition.resources]
        if unknown:
            raise ConnectorError(
                f"{self.definition.label} has no resource {unknown[0]!r}",
                f"use some of: {', '.join(self.definition.resources)}",
                system=system.name, code="saas_unknown_resource")
        self.wanted = list(system.resources) or [
            name for name, res in self.definition.resources.items() if not res.opt_in]
        for name in self.wanted:
            parent = self.definition.resources[name].parent
            if (self.definition.resources[name].erase.with_parent
                    and system.erasure.action == "delete" and parent not in self.wanted):
                raise ConnectorError(
                    f"{self.definition.label} erases {name} only with their {parent}, "
                    f"which 'resources' does not list",
                    f"add {parent} to the system's resources (or drop {name})",
                    system=system.name, code="saas_unknown_resource")
        self.order = self.definition.order(self.wanted)
        limit = (RateLimit(calls=system.rate_limit.calls, seconds=system.rate_limit.seconds)
                 if system.rate_limit else None)
        self.client: VendorClient = open_client(self.definition, system, context, limit,
                                                transport=transport, sleep=sleep)

    # -- walking ------------------------------------------------------------------------------

    def _collection(self, resource: str) -> str:
        return resource if self.system.resources else self.system.vendor

    def _has_children(self, name: str) -> bool:
        return any(r.parent == name for n, r in self.definition.resources.items()
                   if n in self.order)

    def _root_items(self, name: str, res: Resource, keys: SubjectKeys
                    ) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        for key_name, lookup in self.system.identities.items():
            found = res.find.get(lookup)
            if isinstance(found, Given):  # the key values are the items; nothing is read
                for value in sorted(keys.get(key_name, ())):
                    if value not in seen:
                        seen.add(value)
                        yield {res.id_field: value}
                continue
            finders = found if isinstance(found, list) else [found] if found else []
            for finder, value in ((f, v) for f in finders
                                  for v in sorted(keys.get(key_name, ()))):
                eaches: Any = [None] if finder.each is None else self.client.items(
                    finder.each, {"value": value})
                for each in eaches:
                    scope = {"value": value, "each": each}
                    for item in self.client.items(finder, scope,
                                                  missing=404 in finder.missing):
                        ident = str(item.get(res.id_field, id(item)))
                        if each is not None:
                            ident = f"{each.get('id')}/{ident}"
                        if ident in seen:
                            continue
                        if finder.confirm is not None:
                            confirmed = self.client.single(finder.confirm, {**scope,
                                                                            "item": item})
                            if confirmed is None:
                                continue
                            item = confirmed
                        seen.add(ident)
                        yield item

    def _walk(self, keys: SubjectKeys, parents: Found | None = None
              ) -> Iterator[tuple[str, Iterator[tuple[dict[str, Any], dict[str, Any] | None]]]]:
        """``(resource, items)`` in parent-first order; ``parents`` (from an earlier walk)
        replaces the parents' items for related resources, as the recount after erasure needs.
        Items of resources with children are remembered in :attr:`last_found`."""
        self.last_found: Found = {}
        for name in self.order:
            res = self.definition.resources[name]
            if res.parent is None:
                source: Iterator[Any] = ((item, None) for item in self._root_items(name, res,
                                                                                  keys))
            else:
                pool = (parents or self.last_found).get(res.parent, [])
                source = self._children(res, pool)
            if self._has_children(name):
                kept = list(source)
                self.last_found[name] = kept
                source = iter(kept)
            yield name, source

    def _children(self, res: Resource, pool: list[tuple[dict[str, Any], Any]]
                  ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        assert res.list_call is not None
        for parent, _ in pool:
            for item in self.client.items(res.list_call, {"parent": parent}):
                yield item, parent

    def _hash(self, resource: str, item: dict[str, Any], res: Resource) -> str:
        ident = item.get(res.id_field)
        if ident is None:  # an item without an id (a Mailchimp activity event): its content
            ident = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()
                                   ).hexdigest()
        return self.context.keyed_hash(f"{self.system.name}/{resource}/{ident}")

    # -- operations ---------------------------------------------------------------------------

    def collect(self, keys: SubjectKeys, sink: CollectionSink) -> ConnectorResult:
        """Every item of the wanted resources into ``sink``, in batches."""
        result = ConnectorResult()
        for name, items in self._walk(keys):
            res = self.definition.resources[name]
            ev = CollectionEvidence(self.system.name, self._collection(name), "collect")
            if res.given:  # the vendor has nothing to read: nothing is collected
                ev.counts["no_read_api"] = 1
                if name in self.wanted:
                    result.evidence.append(ev)
                continue
            started, digest, batch = time.monotonic(), hashlib.sha256(), []
            for item, _parent in items:
                self._provide(result, name, item)
                if name not in self.wanted:
                    continue
                digest.update(json.dumps(item, sort_keys=True, default=str).encode())
                ev.item_hashes.append(self._hash(name, item, res))
                batch.append(flatten(item))
                if len(batch) >= BATCH:
                    sink.write_rows(self.system.name, ev.collection, batch)
                    batch = []
            if batch:
                sink.write_rows(self.system.name, ev.collection, batch)
            if name in self.wanted:
                ev.found = ev.collected = len(ev.item_hashes)
                ev.digest = digest.hexdigest()
                ev.duration_ms = int((time.monotonic() - started) * 1000)
                result.evidence.append(ev)
        return self._merged(result)

    def count(self, keys: SubjectKeys) -> ConnectorResult:
        """How many items each wanted resource holds for the subject."""
        result = ConnectorResult()
        for name, items in self._walk(keys):
            n = 0
            for item, _parent in items:
                self._provide(result, name, item)
                n += 1
            if name in self.wanted:
                result.evidence.append(CollectionEvidence(
                    self.system.name, self._collection(name), self._action(name), found=n))
        return self._merged(result)

    def erase(self, keys: SubjectKeys) -> ConnectorResult:
        """Erase per the data map and the vendor definition, then recount (see module doc)."""
        from connectors.saas.erase import erase_items

        return self._merged(erase_items(self, keys))

    def poll_job(self, resource: str, job_id: str) -> JobStatus:
        """How the vendor's erasure job ``job_id`` of ``resource`` stands (one call)."""
        return jobs.poll(self, resource, job_id)

    def settle(self, keys: SubjectKeys, evidence: list[CollectionEvidence],
               finished: list[tuple[PendingJob, JobStatus]]) -> ConnectorResult:
        """The erasure's final evidence once its jobs ended (:func:`jobs.settle`)."""
        return self._merged(jobs.settle(self, keys, evidence, finished))

    def _action(self, name: str) -> str:
        if self.system.erasure.action != "delete":
            return self.system.erasure.action
        return "retain" if self.definition.resources[name].erase.retained_by_vendor else "delete"

    def _provide(self, result: ConnectorResult, name: str, item: dict[str, Any]) -> None:
        for key, field in self.definition.resources[name].provides.items():
            if item.get(field) is not None:
                result.discover(key, [item[field]])

    def _merged(self, result: ConnectorResult) -> ConnectorResult:
        """With no ``resources`` listed, one evidence entry per action named after the
        vendor (the collection the plan has), its counts summed."""
        if self.system.resources:
            return result
        merged: dict[str, CollectionEvidence] = {}
        for ev in result.evidence:
            into = merged.get(ev.action)
            if into is None:
                merged[ev.action] = ev
                continue
            for field in ("found", "collected", "deleted", "retained", "duration_ms"):
                setattr(into, field, getattr(into, field) + getattr(ev, field))
            into.remaining = (None if into.remaining is None and ev.remaining is None
                              else (into.remaining or 0) + (ev.remaining or 0))
            into.item_hashes += ev.item_hashes
            for k, v in ev.counts.items():
                into.counts[k] = into.counts.get(k, 0) + v
            into.retained_ground = into.retained_ground or ev.retained_ground
        result.evidence = list(merged.values())
        return result

    def check(self) -> None:
        """One cheap authenticated call (the definition's ``check``); ConnectorError if the
        vendor refuses the credential or cannot be reached."""
        self.client.send(self.definition.check, {})

    def close(self) -> None:
        """Close the HTTP client. Safe to call twice."""
        self.client.close()
