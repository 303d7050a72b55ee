"""Collected data between the tasks that collect it and the bundle that delivers it.

Each batch of rows and each chunk of an object is sealed with AES-GCM (the staging key, bound to
the request id) as one ``staged_items`` row; rows are written in short transactions of up to
:data:`FLUSH_BYTES`, so memory stays flat however much a subject has, and the last (for most
subjects, the only) batch is written with the task's result. :func:`read_staged` yields it
back, in order, as the bundle builder's items; :func:`purge_staged` deletes it once the bundle
is built.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar.app import App
from dsar.bundles.items import CollectedItem, RowsBatch, StagedObject
from dsar.db.models import StagedItem

CHUNK = 1024 * 1024
FLUSH_BYTES = 4 * CHUNK


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    raise TypeError(f"cannot stage a value of type {type(value).__name__}")


_DECODERS = {
    "$datetime": datetime.fromisoformat, "$date": date.fromisoformat,
    "$time": time.fromisoformat, "$decimal": Decimal, "$uuid": UUID,
    "$bytes": lambda v: base64.b64decode(v),
}


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        (tag, value), = obj.items()
        if tag in _DECODERS:
            return _DECODERS[tag](value)
    return obj


def dumps(data: Any) -> bytes:
    return json.dumps(data, default=_encode, separators=(",", ":")).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw, object_hook=_decode)


class StagingSink:
    """A :class:`connectors.CollectionSink` that seals what it is given for the state DB.

    Sealed items are buffered up to :data:`FLUSH_BYTES`; a fuller buffer is written in a
    transaction of its own, so memory stays bounded for a large subject. What is still
    buffered at the end (all of it, for a typical subject) is handed over by :meth:`take`
    and written in the transaction that records the task's result.
    """

    def __init__(self, app: App, request_id: str, task_id: int) -> None:
        self.app, self.request_id, self.task_id = app, request_id, task_id
        self.seq = 0
        self._pending: list[dict[str, Any]] = []
        self._pending_bytes = 0
        self.flushed = False
        """True once items were written before :meth:`take`: not all of them are in hand."""

    def _put(self, record: dict[str, Any]) -> None:
        sealed = self.app.keys.staging_cipher.seal(dumps(record), self.request_id.encode())
        self._pending.append({"request_id": self.request_id, "task_id": self.task_id,
                              "seq": self.seq, "ciphertext": sealed})
        self._pending_bytes += len(sealed)
        self.seq += 1
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered items now, in a transaction of their own."""
        if not self._pending:
            return
        with self.app.db.session() as session:
            insert_staged(session, self.take())
        self.flushed = True

    def take(self) -> list[dict[str, Any]]:
        """The buffered items (``staged_items`` rows), for the caller to write in its own
        transaction with :func:`insert_staged`; empties the buffer."""
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        return pending

    def write_rows(self, system: str, collection: str,
                   rows: Iterable[Mapping[str, Any]]) -> None:
        batch = [dict(r) for r in rows]
        if batch:
            self._put({"t": "rows", "s": system, "c": collection, "rows": batch})

    def write_object(self, system: str, collection: str, name: str,
                     metadata: Mapping[str, str], chunks: Iterator[bytes]) -> None:
        self._put({"t": "object", "s": system, "c": collection, "n": name,
                   "m": dict(metadata)})
        buffer = b""
        for chunk in chunks:
            buffer += chunk
            while len(buffer) >= CHUNK:
                self._put({"t": "chunk", "d": buffer[:CHUNK]})
                buffer = buffer[CHUNK:]
        if buffer:
            self._put({"t": "chunk", "d": buffer})
        self._put({"t": "end"})


_INSERT_STAGED = sa.insert(StagedItem)
_PAGE = (sa.select(StagedItem.task_id, StagedItem.seq, StagedItem.ciphertext)
         .where(StagedItem.request_id == sa.bindparam("request_id"),
                sa.tuple_(StagedItem.task_id, StagedItem.seq)
                > sa.tuple_(sa.bindparam("task_id"), sa.bindparam("seq")))
         .order_by(StagedItem.task_id, StagedItem.seq)
         .limit(sa.bindparam("page", type_=sa.Integer)))


def insert_staged(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``staged_items`` rows as one multi-row statement."""
    if rows:
        session.connection().execute(_INSERT_STAGED, list(rows))


def _records(app: App, request_id: str, page: int = 64) -> Iterator[dict[str, Any]]:
    """Decrypted records, task by task, each task's in the order it wrote them, read a page
    at a time (keyset on ``(task_id, seq)``), each page in its own short transaction."""
    after: tuple[int, int] = (-1, -1)
    while True:
        with app.db.engine.connect() as conn:
            rows = conn.execute(_PAGE, {"request_id": request_id, "task_id": after[0],
                                        "seq": after[1], "page": page}).all()
        for task_id, seq, sealed in rows:
            after = (task_id, seq)
            yield loads(app.keys.staging_cipher.open(sealed, request_id.encode()))
        if len(rows) < page:
            return


def read_staged(app: App, request_id: str) -> Iterator[CollectedItem]:
    """The staged items of a request as bundle items, in the order they were written.

    Objects are yielded with a chunk iterator that must be consumed before the next item, which
    is how the bundle builder reads them.
    """
    return _items(_records(app, request_id))


def unstaged_items(app: App, request_id: str,
                   rows: Sequence[Mapping[str, Any]]) -> Iterator[CollectedItem]:
    """:func:`read_staged` for ``staged_items`` rows still in hand (from
    :meth:`StagingSink.take`), never written: the request's items when the task that collected
    them builds its bundle itself."""
    cipher = app.keys.staging_cipher
    return _items(loads(cipher.open(row["ciphertext"], request_id.encode())) for row in rows)


def _items(records: Iterator[dict[str, Any]]) -> Iterator[CollectedItem]:
    for record in records:
        if record["t"] == "rows":
            yield RowsBatch(record["s"], record["c"], record["rows"])
        elif record["t"] == "object":
            def chunks(source: Iterator[dict[str, Any]] = records) -> Iterator[bytes]:
                for part in source:
                    if part["t"] == "end":
                        return
                    yield part["d"]

            yield StagedObject(record["s"], record["c"], record["n"], chunks(), record["m"])


def purge_staged(app: App, request_id: str) -> int:
    """Delete every staged item of a request; returns how many were deleted."""
    with app.db.session() as session:
        result = session.execute(sa.delete(StagedItem).where(StagedItem.request_id == request_id))
        return int(result.rowcount or 0)
