"""Candidate search: find the JSONL lines that can hold a subject's value before parsing any.

Parsing every line of a shared file costs ten times reading it. A line can only hold one of
the subject's values if its bytes contain one of the ways a JSON writer may spell that value,
so :class:`Needles` lists those spellings and :func:`jsonl_candidates` searches whole blocks
of bytes for them in one Aho-Corasick pass (ahocorasick_rs: Rust, SIMD prefilters, several
GB/s for a few needles), then parses only the lines that contain a hit. The
:class:`~connectors.s3_records.Matcher` still decides on the parsed field, so a hit is exact;
the search only has to be sure it never *misses* a line that could match.

The spellings a line is searched for, per value (strings compare exactly, ``email`` by
``casefold``):

- the value's UTF-8 bytes; for ``email`` the search runs on ASCII-lower-cased bytes, so every
  ASCII case variant is found;
- any line holding a ``\\u`` escape is a candidate (a writer may escape any character:
  ``ensure_ascii``, Go's ``\\u003c``/``\\u0026``, a ``\\u0041`` nobody writes); if a value
  holds a character JSON writes with a short escape (``"``, ``\\``, ``/``, control
  characters), any line holding a backslash is a candidate;
- ``email`` only: non-ASCII characters whose casefold is ASCII (KELVIN SIGN folds to ``k``,
  ``ß`` to ``ss``, ``ﬁ`` to ``fi`` …) are needles when the value holds what they fold to; a
  non-ASCII ``email`` value makes every non-ASCII line a candidate (its case variants are not
  ASCII bytes).

Integers match by their decimal text, which is how JSON writes them. Lines that are not
candidates are passed on unparsed as filler, byte for byte, so a rewrite keeps them exactly;
a malformed line is therefore reported only when it could hold the subject's value (a line
that cannot is kept as it is, as it would be by any other reader that skips it).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Iterator

import ahocorasick_rs

from connectors.s3_records import Matcher, Segment, parse_jsonl_line

#: Non-ASCII characters whose casefold is pure ASCII (the test recomputes it from Unicode).
ASCII_FOLDS = {
    "\u00df": "ss", "\u017f": "s", "\u1e9e": "ss", "\u212a": "k", "\ufb00": "ff",
    "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st",
    "\ufb06": "st",
}
SHORT_ESCAPED = frozenset('"\\/') | frozenset(chr(c) for c in range(0x20))
NON_ASCII = re.compile(rb"[\x80-\xff]")


class Needles:
    """What to search a block of JSONL for, for a :class:`Matcher`'s values."""

    def __init__(self, matcher: Matcher) -> None:
        forms: set[bytes] = set()
        self.lower = False  # search ASCII-lower-cased bytes
        self.any_backslash = False  # every line with a backslash is a candidate
        self.non_ascii_lines = False  # every line with a non-ASCII byte is a candidate
        for _path, name, values in matcher.rules:
            folded = name == "email"
            self.lower |= folded
            for value in values:
                self.any_backslash |= any(c in SHORT_ESCAPED for c in value)
                if folded and not value.isascii():
                    self.non_ascii_lines = True
                    continue
                forms.add(value.encode("utf-8"))
                if folded:
                    forms.update(c.encode() for c, f in ASCII_FOLDS.items() if f in value)
        if self.lower:
            forms = {f.lower() for f in forms}
        self.forms = sorted(f for f in forms if f)
        # One automaton for every form: ahocorasick_rs searches with SIMD prefilters, and its
        # non-overlapping matches still report at least one hit on every line holding a form
        # (a form holds no newline, so a match never hides one on a later line).
        self._automaton = (ahocorasick_rs.BytesAhoCorasick(
            self.forms, implementation=ahocorasick_rs.Implementation.DFA) if self.forms else None)

    def hits(self, block: bytes, limit: int) -> list[int]:
        """Start offsets of the lines in ``block[:limit]`` (whole lines) to parse, sorted."""
        starts: set[int] = set()
        if self._automaton is not None:
            # Bytes, not a memoryview slice: the binding searches bytes without a copy. A hit
            # past ``limit`` is in the unfinished last line, searched again with the next block.
            hay = block.lower() if self.lower else block
            last = -1
            for _form, begin, _end in self._automaton.find_matches_as_indexes(hay):
                if begin >= limit:
                    break
                if begin > last:  # a new line (matches come in order)
                    start = block.rfind(b"\n", 0, begin) + 1
                    starts.add(start)
                    last = _line_end(block, begin) - 1
        if block.find(b"\\", 0, limit) >= 0:
            _lines_with(block, b"\\" if self.any_backslash else b"\\u", limit, starts)
        if self.non_ascii_lines and not block.isascii():
            pos = 0
            while (m := NON_ASCII.search(block, pos, limit)) is not None:
                start = block.rfind(b"\n", 0, m.start()) + 1
                starts.add(start)
                pos = _line_end(block, m.start())
        return sorted(starts)


def _line_end(block: bytes, pos: int) -> int:
    end = block.find(b"\n", pos)
    return len(block) if end < 0 else end + 1


def _lines_with(hay: bytes, needle: bytes, limit: int, starts: set[int]) -> None:
    pos = hay.find(needle, 0, limit)
    while pos >= 0:
        starts.add(hay.rfind(b"\n", 0, pos) + 1)
        pos = hay.find(needle, _line_end(hay, pos), limit)


def jsonl_candidates(chunks: Iterable[bytes], needles: Needles) -> Iterator[Segment]:
    """Segments of a JSONL stream: parsed candidate lines, and the bytes between them as filler.

    Concatenating ``raw`` of every segment gives back the stream byte for byte (the contract
    of :mod:`connectors.s3_records`); a filler segment may span many lines and its ``line`` is
    the first of them. Each block is searched whole; only hit lines are split out and parsed,
    and newlines are counted once per block.
    """
    pending = b""
    number = 1  # line number of the first line of ``pending``
    for chunk in chunks:
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        if not cut:
            pending = data
            continue
        number = yield from _block_segments(data, cut, number, needles)
        pending = data[cut:]
    if pending:
        yield from _block_segments(pending, len(pending), number, needles)


def _block_segments(
    block: bytes, limit: int, number: int, needles: Needles
) -> Generator[Segment, None, int]:
    """Segments of ``block[:limit]`` (filler is a memoryview, no copy); returns the number of
    the line after ``limit``."""
    done = 0
    view = memoryview(block)
    for start in needles.hits(block, limit):
        if start < done:
            continue
        if start > done:
            yield b"", view[done:start], number, None  # type: ignore[misc]
            number += block.count(b"\n", done, start)
        end = _line_end(block, start)
        line = block[start:end]
        yield b"", line, number, parse_jsonl_line(line, number)
        number += 1
        done = end
    if done < limit:
        yield b"", view[done:limit], number, None  # type: ignore[misc]
        number += block.count(b"\n", done, limit)
    return number
