"""A fault hook for ``dsar worker --test-hook tests.workflows.task_delay``: in each worker
process it holds every task for ``TEST_TASK_DELAY`` seconds after its connector call (the
erasure committed, the collection staged) and before its result is recorded, so a test can
kill a worker in the middle of a task.

Importing it installs the hook on the App of the process's broker (Dramatiq imports it after
``workflows.entry:setup``); it is for tests and lives with them.
"""

from __future__ import annotations

import os
import time

import dramatiq

from workflows.runtime import app_of

DELAY = float(os.environ["TEST_TASK_DELAY"])


def hold(_task_id: int) -> None:
    time.sleep(DELAY)


app_of(dramatiq.get_broker()).hooks.after_connector = hold
