"""Streaming record formats for shared files: JSON Lines, CSV and JSON arrays, plain or gzip.

A shared object is read as a stream of *segments*. Each segment is a tuple
``(lead, raw, line, record)``: ``raw`` is the exact bytes of one record (with its line ending)
or of filler between records (a CSV header, blank lines, the ``[`` of a JSON array), ``record``
the parsed mapping or ``None`` for filler, ``line`` the 1-based line where it starts, and
``lead`` the separator that precedes a record inside a JSON array (``",\\n  "``; empty
elsewhere). Concatenating ``lead + raw`` of every segment gives back the decompressed object
byte for byte, which is what lets erasure drop a record and leave every other byte untouched.

Nothing here holds more than one chunk plus one record in memory. A record that cannot be
parsed raises :class:`MalformedRecord` with its line number.
"""

from __future__ import annotations

import codecs
import csv
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO, Literal

Segment = tuple[bytes, bytes, int, Mapping[str, Any] | None]
GZIP_MAGIC = b"\x1f\x8b"
MAX_RECORD_CHARS = 16 * 1024 * 1024


class MalformedRecord(ValueError):
    """A line or element that does not parse; ``line`` is 1-based in the decompressed text."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def decoded_chunks(
    chunks: Iterable[bytes], compression: Literal["none", "gzip", "auto"], chunk_size: int
) -> tuple[bool, Iterator[bytes]]:
    """``(is_gzip, plain chunks)``. With ``auto`` gzip is detected by its magic bytes.

    Decompression is bounded: no output piece is larger than ``chunk_size``, so a small object
    that inflates enormously is still read in flat memory.
    """
    source = iter(chunks)
    first = b""
    for piece in source:
        first += piece
        if len(first) >= 2:
            break
    is_gzip = first[:2] == GZIP_MAGIC if compression == "auto" else compression == "gzip"
    if compression == "gzip" and first and first[:2] != GZIP_MAGIC:
        raise MalformedRecord(1, "compression is 'gzip' but the object does not start like gzip")

    def rest() -> Iterator[bytes]:
        if first:
            yield first
        yield from source

    return is_gzip, (_gunzip(rest(), chunk_size) if is_gzip else rest())


def _gunzip(chunks: Iterator[bytes], chunk_size: int) -> Iterator[bytes]:
    """Inflate a (possibly multi-member) gzip stream piece by piece."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    for chunk in chunks:
        data = chunk
        while data:
            try:
                out = inflater.decompress(data, chunk_size)
            except zlib.error as exc:
                raise MalformedRecord(1, f"gzip data is corrupt ({exc})") from None
            if out:
                yield out
            if inflater.eof:
                data = inflater.unused_data
                inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
            else:
                data = inflater.unconsumed_tail
    tail = inflater.flush()
    if tail:
        yield tail


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Physical lines, each with its ``\\n`` (the last one may lack it)."""
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        parts = chunk.split(b"\n")
        pending = parts.pop()
        for part in parts:
            yield part + b"\n"
    if pending:
        yield pending


def jsonl_segments(chunks: Iterable[bytes]) -> Iterator[Segment]:
    """One segment per line; blank lines are filler, anything else must be a JSON object."""
    for number, line in enumerate(iter_lines(chunks), start=1):
        yield b"", line, number, parse_jsonl_line(line, number)


_SCAN_ONCE = json.JSONDecoder().scan_once  # C scanner: ~2x json.loads on bytes


def parse_jsonl_line(line: bytes, number: int) -> dict[str, Any] | None:
    """The JSON object on one line (``None`` for a blank line); raises MalformedRecord."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRecord(number, f"not UTF-8 ({exc})") from None
    if number == 1 and text.startswith("\ufeff"):
        text = text[1:]
    try:
        record, end = _SCAN_ONCE(text, 0)
    except StopIteration:
        if not text.strip():
            return None
        record, end = _slow_loads(text, number)
    except ValueError as exc:
        raise MalformedRecord(number, f"not valid JSON ({exc})") from None
    if end != len(text) and text[end:].strip():
        raise MalformedRecord(number, "has text after the JSON value")
    if type(record) is not dict:
        raise MalformedRecord(number, "is JSON but not an object")
    return record


def _slow_loads(text: str, number: int) -> tuple[Any, int]:
    """json.loads for lines the fast path refused (leading white space, or invalid)."""
    try:
        return json.loads(text), len(text)
    except ValueError as exc:
        raise MalformedRecord(number, f"not valid JSON ({exc})") from None


def csv_segments(chunks: Iterable[bytes]) -> Iterator[Segment]:
    """The header line is filler; each following record (quoted newlines allowed) is a row."""
    header: list[str] | None = None
    start = 0
    buffered: list[bytes] = []
    quotes = 0
    for number, line in enumerate(iter_lines(chunks), start=1):
        if not buffered:
            start = number
        buffered.append(line)
        quotes += line.count(b'"')
        if quotes % 2:
            continue  # inside a quoted field that spans lines
        raw = b"".join(buffered)
        buffered, quotes = [], 0
        try:
            text = raw.decode("utf-8-sig" if start == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedRecord(start, f"not UTF-8 ({exc})") from None
        if not text.strip():
            yield b"", raw, start, None
            continue
        try:
            fields = next(csv.reader([text.rstrip("\r\n")], strict=True))
        except csv.Error as exc:
            raise MalformedRecord(start, f"not valid CSV ({exc})") from None
        if header is None:
            header = fields
            yield b"", raw, start, None
            continue
        if len(fields) != len(header):
            raise MalformedRecord(start, f"has {len(fields)} fields, the header has {len(header)}")
        yield b"", raw, start, dict(zip(header, fields, strict=True))
    if buffered:
        raise MalformedRecord(start, "a quoted field is never closed")


def json_array_segments(chunks: Iterable[bytes]) -> Iterator[Segment]:
    """Elements of a top-level JSON array of objects, decoded one at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    raw_decode = json.JSONDecoder().raw_decode
    source = iter(chunks)
    buf = ""
    eof = False
    line = 1

    def more() -> bool:
        nonlocal buf, eof
        if eof:
            return False
        for chunk in source:
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise MalformedRecord(line, f"not UTF-8 ({exc})") from None
            if text:
                buf += text
                return True
        buf += decoder.decode(b"", final=True)
        eof = True
        return False

    def skip_ws(pos: int) -> int:
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n\ufeff":
                pos += 1
            if pos < len(buf) or not more():
                return pos

    def take(end: int) -> str:
        nonlocal buf, line
        piece, buf = buf[:end], buf[end:]
        line += piece.count("\n")
        return piece

    pos = skip_ws(0)
    if pos >= len(buf) or buf[pos] != "[":
        raise MalformedRecord(line + buf.count("\n", 0, pos), "a 'json' file must be an array")
    pos = skip_ws(pos + 1)
    lead = take(pos)
    yield b"", lead.encode("utf-8"), 1, None
    lead = ""
    if buf.startswith("]"):
        pos = 0
    else:
        while True:
            start_line = line
            while True:
                try:
                    record, end = raw_decode(buf, 0)
                    break
                except ValueError as exc:
                    if len(buf) > MAX_RECORD_CHARS or not more():
                        raise MalformedRecord(line, f"not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise MalformedRecord(start_line, "array element is not an object")
            body = take(end)
            yield lead.encode("utf-8"), body.encode("utf-8"), start_line, record
            pos = skip_ws(0)
            if pos < len(buf) and buf[pos] == ",":
                pos = skip_ws(pos + 1)
                lead = take(pos)
                continue
            if pos < len(buf) and buf[pos] == "]":
                break
            raise MalformedRecord(line + buf.count("\n", 0, pos), "expected ',' or ']'")
    while more():
        pass
    if buf[pos + 1 :].strip():
        raise MalformedRecord(line + buf.count("\n", 0, pos), "text after the closing ']'")
    yield b"", take(len(buf)).encode("utf-8"), line, None


FORMATS = {"jsonl": jsonl_segments, "csv": csv_segments, "json": json_array_segments}


class Matcher:
    """Decides whether a record belongs to the subject.

    ``match`` maps a key name to the field holding it: a dotted path into nested JSON
    (``customer.email``; lists along the path match if any element does) or a CSV column name.
    Strings compare exactly, except ``email`` which compares case-insensitively; integers
    compare by their decimal text. A matcher with no subject values for any of its keys is
    ``empty`` and matches nothing.
    """

    def __init__(
        self, match: Mapping[str, str], keys: Mapping[str, frozenset[str]], *, dotted: bool
    ) -> None:
        self.rules: list[tuple[tuple[str, ...], str, frozenset[str]]] = []
        for name, field in match.items():
            values = keys.get(name) or frozenset()
            if name == "email":
                values = frozenset(v.casefold() for v in values)
            if values:
                path = tuple(field.split(".")) if dotted else (field,)
                self.rules.append((path, name, values))

    @property
    def empty(self) -> bool:
        return not self.rules

    def __call__(self, record: Mapping[str, Any]) -> bool:
        for path, name, values in self.rules:
            node: Any = record
            for part in path:  # fast path: plain nested objects
                if type(node) is not dict:
                    break
                node = node.get(part, _MISSING)
            else:
                if type(node) is not list:
                    if self._hit(node, name, values):
                        return True
                    continue
            # A list on the way (or at the end): any element may hold the value.
            if type(node) is list and any(
                self._hit(found, name, values) for found in _walk(record, path)
            ):
                return True
        return False

    def found_values(self, record: Mapping[str, Any]) -> set[tuple[str, str]]:
        """Every ``(key name, value)`` of this matcher's that ``record`` holds (values as the
        matcher compares them: ``email`` casefolded, integers as decimal text)."""
        found: set[tuple[str, str]] = set()
        for path, name, values in self.rules:
            for node in _walk(record, path):
                if type(node) is str:
                    text = node.casefold() if name == "email" else node
                elif type(node) is int:
                    text = str(node)
                else:
                    continue
                if text in values:
                    found.add((name, text))
        return found

    @staticmethod
    def _hit(found: Any, name: str, values: frozenset[str]) -> bool:
        if type(found) is str:
            return (found.casefold() if name == "email" else found) in values
        return type(found) is int and str(found) in values


_MISSING = object()


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _walk(node[path[0]], path[1:])


class Rewriter:
    """Writes the kept segments to ``out`` (gzip-compressed when asked), dropping matches.

    Inside a JSON array the separator before the first kept element is dropped, so removing
    the first, last or every element leaves a valid array and every other byte unchanged.
    """

    def __init__(self, out: BinaryIO, *, gzip: bool) -> None:
        self.out = out
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16) if gzip else None
        self.kept_records = 0

    def keep(self, segment: Segment) -> None:
        lead, raw, _line, record = segment
        if record is not None:
            data = lead + raw if self.kept_records else raw
            self.kept_records += 1
        else:
            data = raw
        self._write(data)

    def _write(self, data: bytes) -> None:
        if self.compressor is not None:
            data = self.compressor.compress(data)
        if data:
            self.out.write(data)

    def finish(self) -> None:
        if self.compressor is not None:
            self.out.write(self.compressor.flush())
        self.out.flush()
