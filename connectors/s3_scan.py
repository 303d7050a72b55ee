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

- the value's UTF-8 bytes; for ``email``, every ASCII case variant of a short part of it
  (:func:`fragment`: at most five letters, so 32 spellings), searched in the raw bytes; a line
  with such a hit is a candidate only if, lower-cased, it holds the whole value, so no
  lower-cased copy of the block is made;
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

import itertools
import re
from collections.abc import Generator, Iterable, Iterator

import ahocorasick_rs

from connectors.s3_records import FORMATS, Matcher, Segment, parse_jsonl_line

#: Non-ASCII characters whose casefold is pure ASCII (the test recomputes it from Unicode).
ASCII_FOLDS = {
    "\u00df": "ss", "\u017f": "s", "\u1e9e": "ss", "\u212a": "k", "\ufb00": "ff",
    "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st",
    "\ufb06": "st",
}
SHORT_ESCAPED = frozenset('"\\/') | frozenset(chr(c) for c in range(0x20))
NON_ASCII = re.compile(rb"[\x80-\xff]")
#: Letters in the part of an ``email`` value searched in every case (2**5 = 32 patterns).
FRAGMENT_LETTERS = 5


class Needles:
    """What to search a block of JSONL for, for a :class:`Matcher`'s values."""

    def __init__(self, matcher: Matcher) -> None:
        exact: set[bytes] = set()  # a line holding one of these is a candidate
        folded: set[bytes] = set()  # ASCII-lower-cased ``email`` forms, found by fragment
        self.any_backslash = False  # every line with a backslash is a candidate
        self.non_ascii_lines = False  # every line with a non-ASCII byte is a candidate
        for _path, name, values in matcher.rules:
            for value in values:
                self.any_backslash |= any(c in SHORT_ESCAPED for c in value)
                if name != "email":
                    exact.add(value.encode("utf-8"))
                elif not value.isascii():
                    self.non_ascii_lines = True
                else:
                    folded.add(value.lower().encode("ascii"))
                    exact.update(c.encode() for c, f in ASCII_FOLDS.items() if f in value)
        exact.discard(b"")
        folded.discard(b"")
        self.forms = sorted(exact)
        self.folded = sorted(folded)
        fragments = sorted({v for form in self.folded for v in case_variants(fragment(form))})
        # One automaton over the raw bytes for every exact form and every case variant of
        # each folded form's fragment (no lower-cased copy of the block). ahocorasick_rs
        # searches with SIMD prefilters, and its non-overlapping matches still report at least
        # one hit on every line holding a pattern (a pattern holds no newline, so a match never
        # hides one on a later line).
        patterns = self.forms + fragments
        self._automaton = (ahocorasick_rs.BytesAhoCorasick(
            patterns, implementation=ahocorasick_rs.Implementation.DFA) if patterns else None)
        # A fragment hit is only a candidate if the line, lower-cased, holds a whole folded
        # form (or the line holds an exact form the fragment's match may have hidden).
        self._exact = _automaton(self.forms)
        self._whole = _automaton(self.folded)

    def hits(self, block: bytes, begin: int, limit: int) -> list[int]:
        """Start offsets of the lines in ``block[begin:limit]`` (whole lines) to parse, sorted."""
        starts: set[int] = set()
        if self._automaton is not None:
            # Bytes, not a memoryview slice: the binding searches bytes without a copy. A hit
            # past ``limit`` is in the unfinished last line, searched again with the next block.
            # A line is decided at its first match: an exact form makes it a candidate, a
            # fragment only if the whole line confirms (which also looks for exact forms).
            n_exact = len(self.forms)
            line_end = -1  # end of the line of the last match
            for index, start, _end in self._automaton.find_matches_as_indexes(block):
                if start < begin or start < line_end:
                    continue
                if start >= limit:
                    break
                first = block.rfind(b"\n", 0, start) + 1
                line_end = _line_end(block, start)
                if index < n_exact or self._confirms(block[first:line_end]):
                    starts.add(first)
        if block.find(b"\\", begin, limit) >= 0:
            _lines_with(block, b"\\" if self.any_backslash else b"\\u", begin, limit, starts)
        if self.non_ascii_lines and not block.isascii():
            pos = begin
            while (m := NON_ASCII.search(block, pos, limit)) is not None:
                starts.add(block.rfind(b"\n", 0, m.start()) + 1)
                pos = _line_end(block, m.start())
        return sorted(starts)

    def _confirms(self, line: bytes) -> bool:
        return bool(
            (self._whole is not None and self._whole.find_matches_as_indexes(line.lower()))
            or (self._exact is not None and self._exact.find_matches_as_indexes(line)))


def fragment(form: bytes, letters: int = FRAGMENT_LETTERS) -> bytes:
    """The longest (then first) part of ``form`` with at most ``letters`` ASCII letters.

    Its case variants are at most ``2 ** letters`` patterns; non-letters lengthen it for free,
    and the first of equal length is usually in the local part, which is rarer than a domain.
    """
    best = form[:0]
    start = count = 0
    for end in range(len(form)):
        count += chr(form[end]).isalpha()
        while count > letters:
            count -= chr(form[start]).isalpha()
            start += 1
        if end + 1 - start > len(best):
            best = form[start : end + 1]
    return best


def case_variants(text: bytes) -> list[bytes]:
    """Every spelling of ``text`` with its ASCII letters in either case."""
    options = [(bytes([c]).lower(), bytes([c]).upper()) if chr(c).isalpha() else (bytes([c]),)
               for c in text]
    return [b"".join(parts) for parts in itertools.product(*options)]


def _automaton(patterns: list[bytes]) -> ahocorasick_rs.BytesAhoCorasick | None:
    return ahocorasick_rs.BytesAhoCorasick(patterns) if patterns else None


def _line_end(block: bytes, pos: int) -> int:
    end = block.find(b"\n", pos)
    return len(block) if end < 0 else end + 1


def _lines_with(hay: bytes, needle: bytes, begin: int, limit: int, starts: set[int]) -> None:
    pos = hay.find(needle, begin, limit)
    while pos >= 0:
        starts.add(hay.rfind(b"\n", 0, pos) + 1)
        pos = hay.find(needle, _line_end(hay, pos), limit)


def record_segments(plain: Iterable[bytes], fmt: str, matcher: Matcher | None,
                    prefilter: bool) -> Iterator[Segment]:
    """Segments of decoded text in ``fmt`` (:data:`connectors.s3_records.FORMATS`); JSONL is
    searched for ``matcher``'s values first when ``prefilter`` is on, so only candidate lines
    are parsed."""
    if matcher is not None and prefilter and fmt == "jsonl" and not matcher.empty:
        return jsonl_candidates(plain, Needles(matcher))
    return FORMATS[fmt](plain)


def jsonl_candidates(chunks: Iterable[bytes], needles: Needles) -> Iterator[Segment]:
    """Segments of a JSONL stream: parsed candidate lines, and the bytes between them as filler.

    Concatenating ``raw`` of every segment gives back the stream byte for byte (the contract
    of :mod:`connectors.s3_records`); a filler segment may span many lines and its ``line`` is
    the first of them. Each chunk is searched in place (only the line it shares with the
    previous chunk is copied); only hit lines are split out and parsed, and newlines are
    counted once per chunk.
    """
    pending = b""  # the unfinished last line of the previous chunks
    number = 1  # line number of the first line of ``pending``
    for chunk in chunks:
        begin = 0
        if pending:
            newline = chunk.find(b"\n")
            if newline < 0:
                pending += chunk
                continue
            begin = newline + 1
            head = pending + chunk[:begin]
            number = yield from _block_segments(head, 0, len(head), number, needles)
        cut = chunk.rfind(b"\n") + 1
        if cut > begin:
            number = yield from _block_segments(chunk, begin, cut, number, needles)
        pending = chunk[cut:]
    if pending:
        yield from _block_segments(pending, 0, len(pending), number, needles)


def _block_segments(
    block: bytes, begin: int, limit: int, number: int, needles: Needles
) -> Generator[Segment, None, int]:
    """Segments of ``block[begin:limit]`` (filler is a memoryview, no copy); returns the number
    of the line after ``limit``."""
    done = begin
    view = memoryview(block)
    for start in needles.hits(block, begin, limit):
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
