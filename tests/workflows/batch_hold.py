"""A fault hook for ``dsar worker --test-hook tests.workflows.batch_hold``: in each worker
process, every shared file a batch pass rewrites is followed by ``TEST_BATCH_HOLD`` seconds
of sleep, and the process id of the worker running a pass is appended to the file
``TEST_BATCH_MARKS`` before each rewrite, so a test can SIGKILL that worker in the middle
of a pass.

Importing it patches :func:`connectors.s3_batch._rewrite_batch` in the worker process only;
it is for tests and lives with them.
"""

from __future__ import annotations

import os
import time
from typing import Any

from connectors import s3_batch

HOLD = float(os.environ["TEST_BATCH_HOLD"])
MARKS = os.environ["TEST_BATCH_MARKS"]
_rewrite = s3_batch._rewrite_batch


def held(b: Any, spec: Any, v: Any, *args: Any) -> None:
    with open(MARKS, "a", encoding="utf-8") as marks:
        marks.write(f"{os.getpid()} {v.key}\n")
    _rewrite(b, spec, v, *args)
    time.sleep(HOLD)


s3_batch._rewrite_batch = held  # type: ignore[assignment]
