"""Collected data between the tasks that collect it and the bundle that delivers it.

Each batch of rows and each chunk of an object is sealed with AES-GCM (the staging key, bound to
the request id) as one ``staged_items`` row; rows are written in short transactions of up to
about :data:`FLUSH_BYTES`, so memory stays flat however much a subject has, and the last (for
most subjects, the only) batch is written with the task's result. Records are sealed only when
they are written: a task that builds its request's bundle from the data in hand never encodes
or encrypts it. :func:`read_staged` yields staged data back, in order, as the bundle builder's
items; :func:`purge_staged` deletes it once the bundle is built."""

from __future__ import annotations

import base64
import json
import sys
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


_STAGEABLE = (str, int, float, bool, type(None), dict, list, tuple,
              datetime, date, time, Decimal, UUID, bytes, bytearray, memoryview)
_FAST = frozenset({str, int, float, bool, type(None), datetime, Decimal})


def _check_stageable(rows: list[dict[str, Any]]) -> None:
    """Refuse, when collected, a value that staging could not write (as :func:`dumps` would
    when the rows are staged), so data in hand and staged data are held to the same rule."""
    for row in rows:
        for value in row.values():
            if type(value) not in _FAST and not isinstance(value, _STAGEABLE):
                _encode(value)  # raises TypeError naming the type


def _size(value: Any) -> int:
    """About what ``value`` takes in memory; nested documents (JSON columns) by their
    encoded length, since ``sys.getsizeof`` does not look inside containers."""
    if isinstance(value, dict | list | tuple):
        return len(dumps(value))
    return sys.getsizeof(value)


class Collected:
    """What a task collected and has not written yet: its records, in order, from ``seq``
    ``first_seq`` on. :meth:`sealed` gives them as ``staged_items`` rows;
    :meth:`items` as the bundle builder's items, without a round trip through the state DB."""

    def __init__(self, request_id: str, task_id: int, first_seq: int,
                 records: list[dict[str, Any]]) -> None:
        self.request_id, self.task_id = request_id, task_id
        self.first_seq, self.records = first_seq, records

    def __len__(self) -> int:
        return len(self.records)

    def sealed(self, app: App) -> list[dict[str, Any]]:
        cipher, aad = app.keys.staging_cipher, self.request_id.encode()
        return [{"request_id": self.request_id, "task_id": self.task_id,
                 "seq": self.first_seq + offset, "ciphertext": cipher.seal(dumps(record), aad)}
                for offset, record in enumerate(self.records)]

    def items(self) -> Iterator[CollectedItem]:
        return _items(iter(self.records))


class StagingSink:
    """A :class:`connectors.CollectionSink` that keeps what it is given for the state DB.

    Records are buffered up to about :data:`FLUSH_BYTES` (estimated from the values' sizes in
    memory); a fuller buffer is sealed and written in a transaction of its own, so memory stays
    bounded for a large subject. What is still buffered at the end (all of it, for a typical
    subject) is handed over by :meth:`take`, for the transaction that records the task's
    result to write, or for the task to bundle itself.
    """

    def __init__(self, app: App, request_id: str, task_id: int) -> None:
        self.app, self.request_id, self.task_id = app, request_id, task_id
        self.seq = 0
        self._pending: list[dict[str, Any]] = []
        self._pending_bytes = 0
        self.flushed = False
        """True once items were written before :meth:`take`: not all of them are in hand."""

    def _put(self, record: dict[str, Any], size: int) -> None:
        self.seq += 1
        self._pending.append(record)
        self._pending_bytes += size
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered items now, in a transaction of their own."""
        if not self._pending:
            return
        collected = self.take()
        with self.app.db.session() as session:
            insert_staged(session, collected.sealed(self.app))
        self.flushed = True

    def take(self) -> Collected:
        """The buffered records, for the caller to write in its own transaction (or bundle);
        empties the buffer."""
        taken = Collected(self.request_id, self.task_id, self.seq - len(self._pending),
                          self._pending)
        self._pending, self._pending_bytes = [], 0
        return taken

    def write_rows(self, system: str, collection: str,
                   rows: Iterable[Mapping[str, Any]]) -> None:
        batch = [dict(r) for r in rows]
        if batch:
            _check_stageable(batch)
            size = sum(_size(v) for row in batch for v in row.values())
            self._put({"t": "rows", "s": system, "c": collection, "rows": batch}, size)

    def write_object(self, system: str, collection: str, name: str,
                     metadata: Mapping[str, str], chunks: Iterator[bytes]) -> None:
        self._put({"t": "object", "s": system, "c": collection, "n": name,
                   "m": dict(metadata)}, 0)
        buffer = b""
        for chunk in chunks:
            buffer += chunk
            while len(buffer) >= CHUNK:
                self._put({"t": "chunk", "d": buffer[:CHUNK]}, CHUNK)
                buffer = buffer[CHUNK:]
        if buffer:
            self._put({"t": "chunk", "d": buffer}, len(buffer))
        self._put({"t": "end"}, 0)


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
