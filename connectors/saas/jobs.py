"""Vendor jobs: erasures a vendor finishes after its API answered (Segment's regulations,
Zendesk's permanent deletion, HubSpot's GDPR delete), as a definition's ``erase.job`` says.

- :func:`submitted` reads the job id from the answer of the last erase call (or the item) and
  asks once how it stands: a job the vendor finished at once needs no waiting;
- :func:`poll` asks again, later (the fleet keeps the job in the state database);
- :func:`settle` completes the evidence once every job ended ``done``: the vendor's final
  status and the job reference in ``counts``, and a recount of what the jobs erased.

A job's reference in evidence is the vendor's job id when the vendor made one for the job
(Segment's ``regulateId``), and a keyed hash when the id is the person's own record at the
vendor (a Zendesk user id): no evidence holds an id that points at a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx

from connectors.base import ConnectorResult, JobStatus, PendingJob, SubjectKeys
from connectors.saas.definition import Job, VendorDefinition
from connectors.saas.paging import get_path, render
from dsar.errors import ConnectorError
from dsar.evidence import CollectionEvidence

if TYPE_CHECKING:
    from connectors.saas.connector import SaaSConnector


def submitted(conn: SaaSConnector, resource: str, job: Job, item: dict[str, Any],
              parent: dict[str, Any] | None, answer: httpx.Response) -> tuple[PendingJob,
                                                                                JobStatus]:
    """The job that ``answer`` (the last erase call's response for ``item``) started, and how
    it stands right away."""
    body: Any = {}
    if answer.content:
        body = conn.client.json(job.poll, answer)
    try:
        job_id = render(job.id, {"answer": body, "item": item, "parent": parent}, path=False)
    except KeyError as exc:
        raise ConnectorError(
            f"{conn.definition.label} answered the erasure without the job id "
            f"{exc.args[0]!r}", "the vendor may have changed its API; correct 'erase.job.id' "
            "in the vendor definition", system=conn.system.name,
            code="saas_bad_definition") from None
    if job.id_from_item:
        reference = "hmac:" + conn.context.keyed_hash(
            f"{conn.system.name}/{resource}/job/{job_id}")[:24]
    else:
        reference = job_id
    status = poll(conn, resource, job_id)
    pending = PendingJob(resource, conn._collection(resource), job_id, reference,
                         status.status, job.every)
    return pending, status


def poll(conn: SaaSConnector, resource: str, job_id: str) -> JobStatus:
    """How the job stands, per the definition's ``status`` lists and ``missing``; errors as
    :meth:`~connectors.saas.runtime.VendorClient.send` raises them."""
    job = _job(conn.definition, resource)
    answer = conn.client.send(job.poll, {"job": {"id": job_id}}, allow_missing=True)
    if answer is None:
        return JobStatus(job.missing, "HTTP 404: gone")
    if job.status is None:
        return JobStatus("pending", f"HTTP {answer.status_code}: still there")
    status = get_path(conn.client.json(job.poll, answer), job.status)
    text = str(status) if status is not None else f"no status at {job.status!r}"
    if text in job.done:
        return JobStatus("done", text)
    if text in job.failed:
        return JobStatus("failed", text)
    return JobStatus("pending", text)


def failed(conn: SaaSConnector, job: PendingJob, status: JobStatus) -> ConnectorError:
    """The error of a job the vendor says failed: the request needs attention."""
    return ConnectorError(
        f"{conn.definition.label} ended the erasure job {job.reference} of {job.resource} "
        f"with {status.status}", "see the job at the vendor, then `dsar retry` submits a new "
        "one", system=conn.system.name, collection=job.collection, code="saas_job_failed")


def _job(definition: VendorDefinition, resource: str) -> Job:
    res = definition.resources.get(resource)
    if res is None or res.erase.job is None:
        raise ConnectorError(f"{definition.label} has no erasure job for {resource!r}",
                             "the vendor definition changed while a job was pending; restore "
                             "it", code="saas_bad_definition")
    return res.erase.job


def waits_for(definition: VendorDefinition, order: list[str],
              with_jobs: Iterable[str]) -> set[str]:
    """The resources whose recount waits for jobs: those with pending jobs, the children the
    vendor erases with them, and every ``given`` resource (never recounted)."""
    waiting = set(with_jobs) | {n for n in order if definition.resources[n].given}
    for name in order:  # parents come first
        res = definition.resources[name]
        if res.parent in waiting and res.erase.with_parent:
            waiting.add(name)
    return waiting


def note(ev: CollectionEvidence, finished: list[tuple[PendingJob, JobStatus]]) -> None:
    """The jobs' final statuses and references in ``ev.counts`` (strings, no personal data)."""
    ev.counts.pop("vendor_jobs_pending", None)
    ev.counts["vendor_jobs"] = ev.counts.get("vendor_jobs", 0) + len(finished)
    statuses = {status.status for _, status in finished}
    refs = sorted({job.reference for job, _ in finished})
    old_status, old_refs = ev.counts.get("vendor_status"), ev.counts.get("vendor_job")
    if old_status:
        statuses |= set(str(old_status).split(","))
    if old_refs:
        refs = sorted({*refs, *str(old_refs).split(",")})
    ev.counts["vendor_status"] = ",".join(sorted(statuses))  # type: ignore[assignment]
    ev.counts["vendor_job"] = ",".join(refs)  # type: ignore[assignment]


def settle(conn: SaaSConnector, keys: SubjectKeys, evidence: list[CollectionEvidence],
           finished: list[tuple[PendingJob, JobStatus]]) -> ConnectorResult:
    """``evidence`` from :meth:`erase`, completed now that every job in ``finished`` ended
    ``done``: statuses noted, and what the jobs erased recounted by a fresh lookup (a
    ``given`` resource is proven by its job alone). Raises ``saas_not_erased`` (transient)
    if the recount still finds something."""
    for job, status in finished:
        if status.state != "done":
            raise failed(conn, job, status)
    by_key = {(ev.collection, ev.action): ev for ev in evidence}
    waiting = waits_for(conn.definition, conn.order, {job.resource for job, _ in finished})
    for name in conn.order:
        if name not in waiting or name not in conn.wanted:
            continue
        ev = by_key.get((conn._collection(name), conn._action(name)))
        if ev is None:
            continue
        mine = [(j, s) for j, s in finished if j.resource == name]
        if mine:
            note(ev, mine)
        if conn.definition.resources[name].given:
            ev.remaining = ev.remaining or 0
    left: list[str] = []
    for name, items in conn._walk(keys):
        res = conn.definition.resources[name]
        if name not in waiting or res.given or res.erase.retained_by_vendor:
            continue
        n = sum(1 for _ in items)
        ev = by_key.get((conn._collection(name), conn._action(name)))
        if ev is not None and name in conn.wanted:
            ev.remaining = (ev.remaining or 0) + n
            if n:
                left.append(f"{n} {name}")
    if left:
        raise ConnectorError(
            f"{conn.definition.label} still holds {', '.join(left)} after its erasure jobs "
            "finished", "the vendor may apply deletions with a delay; the task is retried",
            system=conn.system.name, code="saas_not_erased", transient=True, retry_after=60.0)
    return ConnectorResult(evidence=evidence)
