"""The task step: one task of a request, run by the worker that claimed it.

:func:`run_task` claims the task (:func:`workflows.fanout.claim`), calls its system's
connector under a lease the worker keeps renewing, and records the result
(:func:`workflows.fanout.finish`: evidence, collected data, discovered keys, the dependents
readied, and, for the request's last task, the hand-over to the completion step in the same
transaction). A failure is classified (:mod:`workflows.retry`) and either retried after a
back-off or stops the task and flags the request (:func:`workflows.fanout.fail`). An erasure
records what it found before it changes anything, so an attempt that takes over from a dead
worker still proves what was there. Run twice, a task leaves the same rows and evidence: a
claim is refused to a finished task, and ``attempts`` fences out a worker that lost its lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

from connectors.base import ConnectorContext, ConnectorResult, open_connector
from dsar.app import App
from dsar.datamap.current import load_map
from dsar.errors import DataMapError
from dsar.evidence import CollectionEvidence
from workflows import fanout, shared_batch, tracing, vendor_jobs
from workflows.leases import LeaseKeeper
from workflows.retry import classify
from workflows.staging import Collected, StagingSink

log = logging.getLogger("dsar.worker")


TaskObserver = Callable[[str, str, str, float], None]


class TaskObservers(list[TaskObserver]):
    """Called after every task attempt of an App (``app.local(TaskObservers)``) with (system,
    action, outcome, seconds), outcome being ``done``, ``retry``, ``failed`` or ``lost``; how
    the metrics see tasks, whoever runs them."""


def run_task(app: App, task_id: int, *, run_here: Collection[str] = ()) -> None:
    """Run one task: claim it, call its connector, record the evidence, fan in. If the task is
    its request's last, the completion step follows in the same transaction
    (:func:`workflows.fanout.finish`); ``run_here`` names the queues this worker serves, and
    with the control queue among them that step may complete the request there and then."""
    claim = fanout.claim(app, task_id)
    if claim is not None:
        run_claimed(app, claim, run_here)


def run_claimed(app: App, claim: fanout.Claim, run_here: Collection[str] = ()) -> None:
    """:func:`run_task` for a task this worker has claimed already; tells
    the App's :class:`TaskObservers` how it went."""
    started = time.monotonic()
    with tracing.span("dsar.task", {"dsar.request_id": claim.request_id,
                                    "dsar.task_id": claim.task_id, "dsar.system": claim.system,
                                    "dsar.action": claim.action}) as current:
        outcome = _run_claimed(app, claim, run_here)
        if current is not None:
            current.set_attribute("dsar.outcome", outcome)
    for observe in app.local(TaskObservers):
        observe(claim.system, claim.action, outcome, time.monotonic() - started)


def _run_claimed(app: App, claim: fanout.Claim, run_here: Collection[str]) -> str:
    task_id = claim.task_id
    ids = {"request_id": claim.request_id, "task_id": task_id, "system": claim.system}
    log.info("task %s (%s %s) of request %s: attempt %d", task_id, claim.system, claim.action,
             claim.request_id, claim.attempt, extra=ids)
    try:
        interval = fanout.lease_length(app).total_seconds() / 3
        with app.local(LeaseKeeper).hold(f"task {task_id}", lambda: fanout.renew(app, claim),
                                         interval):
            result, staged, whole = _call_connector(app, claim)
            app.hooks.after_connector(task_id)
    except LeaseLost as lost:
        log.warning("%s", lost, extra=ids)
        return "lost"
    except shared_batch.Waiting as waiting:
        log.info("task %s %s", task_id, waiting, extra=ids)
        return shared_batch.wait(app, claim, waiting.until)
    except vendor_jobs.Parked as parked:
        log.info("task %s %s", task_id, parked, extra=ids)
        return "waiting"
    except Exception as exc:
        failure = classify(exc)
        if failure.code == "internal_error":
            log.exception("task %s failed unexpectedly", task_id, extra=ids)
        outcome = fanout.fail(app, claim, failure)
        log.warning("task %s: %s (%s)", task_id, outcome, failure.code, extra=ids)
        return outcome
    finished = fanout.finish(app, claim, result, staged, whole=whole,
                             assemble_here="control" in run_here)
    if finished == "lost":
        log.warning("task %s finished after losing its lease; result discarded", task_id,
                    extra=ids)
        return "lost"
    log.info("task %s done", task_id, extra=ids)
    if finished == "completed":
        log.info("request %s completed with its last task", claim.request_id,
                 extra={"request_id": claim.request_id})
    return "done"


class LeaseLost(Exception):
    """This worker's claim on a task passed to another worker before it changed anything."""


def connector_context(app: App) -> ConnectorContext:
    """What a connector opened for ``app`` gets: the evidence key, and the variables its
    system's ``*_env`` names are read from, and whether the fast path is on
    (``DSAR_SQL_FAST_PATH``)."""
    fast = app.settings.sql_fast_path
    if app.environ is None:
        return ConnectorContext(hash_key=app.keys.evidence_key, fast_path=fast)
    return ConnectorContext(hash_key=app.keys.evidence_key, environ=dict(app.environ),
                            fast_path=fast)


def _call_connector(app: App, claim: fanout.Claim
                    ) -> tuple[ConnectorResult, Collected | None, bool]:
    """Run the claimed task's connector. Returns its result, the collected items still
    buffered at the end (for :func:`fanout.finish` to write with the result), and whether
    those are all it collected (none were written before)."""
    datamap, digest = load_map(app)
    if claim.datamap_digest and digest != claim.datamap_digest:
        raise DataMapError("the data map changed after this request was planned",
                           f"restore it and `dsar retry {claim.request_id}`, or plan it again "
                           f"from the current map: `dsar retry {claim.request_id} --replan`")
    frozen = claim.keys
    context = connector_context(app)
    with open_connector(datamap.system(claim.system), context) as connector:
        tracing.trace_connector(connector, claim.system)
        if claim.action == "collect":
            sink = StagingSink(app, claim.request_id, claim.task_id)
            result = connector.collect(frozen, sink)
            return result, sink.take(), not sink.flushed
        if shared_batch.applies(app, claim, connector):
            return shared_batch.erase(app, claim, connector), None, True
        # A task that submitted vendor jobs saved its pre-count first: only such a task can
        # be resuming, so a first attempt costs no look-up.
        if claim.precount is not None and vendor_jobs.has_jobs(app, claim.task_id):
            return vendor_jobs.resume(app, claim, connector), None, True
        precount = claim.precount
        if precount is not None:  # an earlier attempt recorded what was there
            result = connector.erase(frozen)
        else:
            def record_found(found: list[CollectionEvidence]) -> None:
                nonlocal precount
                precount = {f"{e.collection}|{e.action}": e.found for e in found}
                if not fanout.save_precount(app, claim, precount):
                    raise LeaseLost(f"task {claim.task_id} was taken over before its erasure "
                                    "committed; nothing was changed")

            result = connector.erase_counted(frozen, record_found)
    result = _merge_precount(result, precount or {})
    if result.jobs:  # the vendor finishes later: wait for it without holding this worker
        vendor_jobs.park(app, claim, result, getattr(datamap.system(claim.system), "vendor",
                                                     claim.system))
    return result, None, True


def _merge_precount(result: ConnectorResult, precount: dict[str, int]) -> ConnectorResult:
    """Credit rows that an interrupted earlier attempt already erased to this attempt's
    evidence: the first count, taken before anything changed, is the truth about ``found``."""
    merged: list[CollectionEvidence] = []
    for item in result.evidence:
        before = precount.get(f"{item.collection}|{item.action}")
        if before is None:
            before = max((v for k, v in precount.items()
                          if k.split("|", 1)[0] == item.collection), default=None)
        if before is not None and before > item.found:
            earlier = before - item.found
            item.counts["erased_by_earlier_attempt"] = earlier
            if item.action == "mask":
                item.masked += earlier
            elif item.action in ("delete", "erase"):
                item.deleted += earlier
                if "records_redacted" in item.counts:  # S3's erase keeps its own tally too
                    item.counts["records_redacted"] = item.deleted
            item.found = before
        merged.append(item)
    result.evidence = merged
    return result


def follow(app: App, handoff: fanout.Claim | None, run_here: Collection[str]) -> None:
    """Run the task planning handed off to this worker (if any). If it raises, its fallback
    message, published one lease after the hand-off, runs it again."""
    if handoff is None:
        return
    try:
        run_claimed(app, handoff, run_here)
    except Exception as exc:
        log.warning("handed-off task %s failed (%s); its fallback message will retry it",
                    handoff.task_id, type(exc).__name__)
