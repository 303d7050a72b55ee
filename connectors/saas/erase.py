"""Erasure of one subject's items in a SaaS account, and the recount that proves it.

Steps (see :mod:`connectors.saas.connector`): walk and count every wanted resource, keeping the
items of resources that have children; send each item's erasure call, children before parents
(a 404 answer counts as already gone); recount, from the keys for root resources and from the
parents found before for the others. Resources the vendor retains, and every resource when the
data map says ``retain`` or ``none``, are counted and reported, never changed. Items the vendor
keeps after deleting them (``kept_after_delete``: a recycle bin) are reported deleted and
retained until the vendor purges them; a recount of a resource the vendor erases later than it
answers (``settle``) is repeated until nothing is left.

A resource whose erasure is a vendor job (``erase.job``) is asked once right after submitting;
jobs still running are returned in ``result.jobs``, and the recount of what they erase waits
for them (:func:`connectors.saas.jobs.settle`): its ``remaining`` stays unknown until then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from connectors.base import ConnectorResult, JobStatus, PendingJob, SubjectKeys
from connectors.saas import jobs
from dsar.errors import ConnectorError
from dsar.evidence import CollectionEvidence

if TYPE_CHECKING:
    from connectors.saas.connector import SaaSConnector


def erase_items(conn: SaaSConnector, keys: SubjectKeys) -> ConnectorResult:
    """The erase operation; raises ``saas_not_erased`` (transient) if a recount finds items
    that erasure should have removed."""
    started = time.monotonic()
    result = ConnectorResult()
    system, definition = conn.system, conn.definition
    mode = system.erasure.action
    counted: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for name, items in conn._walk(keys):
        kept = []
        for item, parent in items:
            conn._provide(result, name, item)
            if definition.resources[name].erase.call is not None and mode == "delete":
                kept.append((item, parent))
            else:
                kept.append(({}, None))  # only the number is needed
        counted[name] = kept
    found_parents = dict(conn.last_found)
    evidence: dict[str, CollectionEvidence] = {}
    for name in reversed(conn.order):
        res = definition.resources[name]
        ev = CollectionEvidence(system.name, conn._collection(name), conn._action(name),
                                found=len(counted[name]))
        evidence[name] = ev
        if name not in conn.wanted:
            continue  # walked only to reach its children: never changed
        if mode != "delete":
            ev.retained = ev.found
            ev.retained_ground = (system.erasure.retain.ground if system.erasure.retain
                                  else "the data map keeps this system unchanged")
            ev.retained_period = system.erasure.retain.period if system.erasure.retain else None
            ev.remaining = 0
            continue
        if res.erase.retained_by_vendor:
            ev.retained, ev.remaining = ev.found, 0
            ev.retained_ground = res.erase.retained_by_vendor
            ev.counts["retained_by_vendor"] = ev.found
            continue
        if res.erase.with_parent:  # the recount below proves it
            ev.deleted = ev.found
            ev.counts["erased_with_parent"] = ev.found
            continue
        assert res.erase.call is not None
        gone = 0
        finished: list[tuple[PendingJob, JobStatus]] = []
        for item, parent in counted[name]:
            scope = {"item": item, "parent": parent}
            answer = conn.client.send(res.erase.call, scope, allow_missing=True)
            if answer is None:
                gone += 1
            else:
                ev.counts[res.erase.kind] = ev.counts.get(res.erase.kind, 0) + 1
            for then in res.erase.then:  # a 404: that step was done before
                answer = conn.client.send(then, scope, allow_missing=True)
            if res.erase.job is not None and answer is not None:
                job, status = jobs.submitted(conn, name, res.erase.job, item, parent, answer)
                if status.state == "failed":
                    raise jobs.failed(conn, job, status)
                if status.state == "done":
                    finished.append((job, status))
                else:
                    result.jobs.append(job)
        ev.deleted = ev.found - gone
        if gone:
            ev.counts["already_gone"] = gone
        if finished:
            jobs.note(ev, finished)
        pending = sum(1 for job in result.jobs if job.resource == name)
        if pending:
            ev.counts["vendor_jobs_pending"] = pending
        elif res.given:  # every job done: the vendor's status is the proof
            ev.remaining = 0
        kept = res.erase.kept_after_delete
        if kept is not None and ev.deleted:
            until = (datetime.now(UTC) + timedelta(days=kept.days)).date()
            ev.retained = ev.counts["kept_by_vendor_after_delete"] = ev.deleted
            ev.retained_ground = kept.ground
            ev.retained_period = f"{kept.days} days, until {until.isoformat()} (UTC)"
    if mode == "delete":
        waiting = jobs.waits_for(definition, conn.order, {job.resource for job in result.jobs})
        _recount(conn, keys, found_parents, evidence, waiting)
    elapsed = int((time.monotonic() - started) * 1000)
    for name in conn.order:
        if name in conn.wanted:
            evidence[name].duration_ms = elapsed
            result.evidence.append(evidence[name])
    return result


def _settle_waits(conn: SaaSConnector) -> Iterator[float]:
    """The waits between recount passes: 1, 2, 4 … seconds, at most the wanted resources'
    smallest ``settle.every``, until their largest ``settle.within`` is used up."""
    chosen = [s for s in (conn.definition.resources[n].erase.settle for n in conn.wanted)
              if s is not None]
    if not chosen:
        return
    within, every = max(s.within for s in chosen), min(s.every for s in chosen)
    waited, attempt = 0.0, 0
    while waited < within:
        wait = min(every, 2.0 ** attempt, within - waited)
        waited, attempt = waited + wait, attempt + 1
        yield wait


def _recount(conn: SaaSConnector, keys: SubjectKeys, parents: dict[str, Any],
             evidence: dict[str, CollectionEvidence], waiting: set[str]) -> None:
    """Recount what erasure removed, except what waits for vendor jobs (``waiting``)."""
    waits, waited = _settle_waits(conn), 0.0
    while True:
        left = _recount_once(conn, keys, parents, evidence, waiting)
        settling = [n for n in left if conn.definition.resources[n].erase.settle]
        wait = next(waits, None) if left and len(settling) == len(left) else None
        if wait is None:
            break
        conn.client._sleep(wait)  # the vendor is still applying the erasure
        waited += wait
    if waited:
        for name in conn.wanted:
            if conn.definition.resources[name].erase.settle:
                evidence[name].counts["recount_waited_s"] = math.ceil(waited)
    if left:
        held = ", ".join(f"{n} {name}" for name, n in left.items())
        raise ConnectorError(
            f"{conn.definition.label} still holds {held} after erasure",
            "the vendor may apply deletions with a delay; the task is retried",
            system=conn.system.name, code="saas_not_erased", transient=True, retry_after=30.0)


def _recount_once(conn: SaaSConnector, keys: SubjectKeys, parents: dict[str, Any],
                  evidence: dict[str, CollectionEvidence], waiting: set[str]) -> dict[str, int]:
    """One recount pass: how many items of each wanted resource are left, where any are."""
    left: dict[str, int] = {}
    for name, items in conn._walk(keys, parents=parents):
        res = conn.definition.resources[name]
        if res.erase.retained_by_vendor or name in waiting:
            continue  # not listed again: the generator is never started
        n = sum(1 for _ in items)
        evidence[name].remaining = n
        if n and name in conn.wanted:
            left[name] = n
    return left
