"""What each shared file held for each member of a batch, written before the pass changes it.

A batch's pass (:mod:`workflows.shared_batch`) is told, just before it rewrites a file or
deletes from a table, how many records of each member that file holds
(:data:`connectors.s3_batch.BeforeChange`); :meth:`Journal.record` saves it at once, in its own
transaction. An entry written by an earlier attempt of the batch is kept: that attempt may
have changed the file and been killed, and what the file held before is what the member's
``found`` must say. An entry of this attempt is replaced (a file that changed under a
conditional write is read again). :meth:`Journal.totals` gives each member's
``{"collection|erase": records}``, the shape :func:`workflows.task._merge_precount` takes.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dsar.app import App
from dsar.db.models import SharedBatchFile


def file_hash(collection: str, file: str) -> str:
    return hashlib.sha256(f"{collection}\0{file}".encode()).hexdigest()


class Journal:
    """The journal of one attempt of one batch."""

    def __init__(self, app: App, batch_id: str, attempt: int) -> None:
        self.app, self.batch_id, self.attempt = app, batch_id, attempt

    def record(self, collection: str, file: str, counts: dict[str, int]) -> None:
        """Save what ``file`` holds for each member, unless an earlier attempt did."""
        key = (self.batch_id, collection, file_hash(collection, file))
        for _try in range(2):  # a concurrent first insert of the same file: read it again
            try:
                with self.app.db.session() as session:
                    entry = session.get(SharedBatchFile, key, with_for_update=True)
                    if entry is None:
                        session.add(SharedBatchFile(batch_id=key[0], collection=key[1],
                                                    file_hash=key[2], attempt=self.attempt,
                                                    counts=dict(counts)))
                    elif entry.attempt == self.attempt:
                        entry.counts = dict(counts)
                return
            except IntegrityError:
                continue

    def totals(self) -> dict[str, dict[str, int]]:
        """Each member's records per collection over every file entered, by any attempt."""
        out: dict[str, dict[str, int]] = {}
        with self.app.db.session() as session:
            for collection, counts in session.execute(sa.select(
                    SharedBatchFile.collection, SharedBatchFile.counts).where(
                    SharedBatchFile.batch_id == self.batch_id)):
                for member, n in counts.items():
                    per = out.setdefault(member, {})
                    per[f"{collection}|erase"] = per.get(f"{collection}|erase", 0) + int(n)
        return out
