"""The plan step: a request in progress becomes its task graph.

:func:`plan` turns the data map and the subject's key names into a plan (:mod:`dsar.planning`:
one task per system and action, ordered where one system's keys feed another's) and saves it
with its tasks, the ready ones enqueued (:func:`workflows.fanout.create_tasks`), in one
transaction under the request row's lock. A data map that cannot be planned puts the request
in ``needs_attention`` instead. Planning a request twice changes nothing: a planned request
already has its tasks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from typing import Any

from dsar.app import App
from dsar.datamap.current import LoadedMap, loaded_map
from dsar.db.rows import deferred, update_row
from dsar.errors import DataMapError
from dsar.lifecycle import State
from dsar.planning import Plan, plan_request
from workflows import fanout

log = logging.getLogger("dsar.worker")


def plan(app: App, request_id: str, *, run_here: Collection[str] = ()) -> fanout.Claim | None:
    """Turn a request into its task graph and enqueue the tasks that can start, in one
    transaction under the request row's lock; a data map that cannot be planned puts the
    request in ``needs_attention`` instead.

    ``run_here`` names the queues the caller serves: the first ready task on one of them is
    claimed in the same transaction and its claim returned, handed off to the caller to run
    (see :func:`workflows.task.follow`)."""
    failure, handoff = None, None
    with app.db.session() as session:
        request, (sealed,) = fanout.lock_request_with(
            session, request_id, (None, *fanout.subject_keys_read(request_id)))
        # Planned already means its tasks exist too: both are written in this transaction.
        if request.state != State.IN_PROGRESS or request.plan is not None:
            return None
        try:
            loaded = loaded_map(app)
            datamap, digest = loaded.datamap, loaded.digest
            keys = fanout.subject_keys_from(app, sealed)  # identities only, yet
            names = frozenset(k for k, v in keys.items() if v)
            planned, plan_dict = plan_for(loaded, names, request.kind)
        except DataMapError as err:
            failure = f"planning failed: {err.one_line()}"
        else:
            kinds = {s.name: s.kind for s in datamap.systems}
            caps = {s.name: s.max_concurrent_tasks for s in datamap.systems}
            with deferred(session):  # the plan goes with the tasks
                update_row(session, request, plan=plan_dict, datamap_digest=digest)
                handoff = fanout.create_tasks(session, request, planned, kinds, caps,
                                              app.now(), run_here, keys,
                                              lease_for=fanout.lease_length(app))
    if failure is not None:
        if fanout.flag_attention(app, request_id, failure, event="plan_failed"):
            log.warning("request %s needs attention: its planning failed (`dsar show` says "
                        "why)", request_id, extra={"request_id": request_id})
        return None
    log.info("planned request %s: %d task(s)", request_id, len(planned.tasks),
             extra={"request_id": request_id})
    return handoff


def plan_for(loaded: LoadedMap, names: frozenset[str],
             kind: str) -> tuple[Plan, dict[str, Any]]:
    """The plan and its JSON form for a request of ``kind`` whose subject is known by the key
    ``names``, made once per data map version, names and kind."""
    key = (names, kind)
    cached = loaded.plans.get(key)
    if cached is None:
        planned = plan_request(loaded.datamap, names, kind)
        if len(loaded.plans) >= 256:  # key-name subsets are few; bound them all the same
            loaded.plans.clear()
        cached = loaded.plans[key] = (planned, json.dumps(planned.to_dict()))
    return cached[0], json.loads(cached[1])  # a fresh dict for each request
