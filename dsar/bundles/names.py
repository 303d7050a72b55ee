"""Safe names for zip entries: no ``..``, no absolute paths, nothing a file system rejects.

Names of systems, collections and objects come from outside (a bucket's keys, a table name) and
end up as paths when the person unzips the bundle. :func:`safe_path` keeps the readable part of a
name and removes everything that could escape the folder or fail on Windows, macOS or Linux;
:class:`UniqueNames` makes sure two different objects never get the same entry.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\]')
RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
MAX_PART_BYTES = 120


def safe_part(part: str) -> str:
    """One path component: no separators, no control or reserved characters, not ``.``/``..``."""
    text = unicodedata.normalize("NFC", part)
    text = UNSAFE.sub("_", text.replace("/", "_")).strip().strip(".").strip()
    if not text:
        return "_"
    if RESERVED.match(text):
        text = "_" + text
    if len(text.encode()) > MAX_PART_BYTES:
        digest = hashlib.sha256(part.encode()).hexdigest()[:10]
        stem, dot, ext = text.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        body = (stem if ext else text).encode()[: MAX_PART_BYTES - 24].decode("utf-8", "ignore")
        text = f"{body}~{digest}" + (f".{ext}" if ext else "")
    return text


@functools.lru_cache(maxsize=4096)  # the same system and table names, request after request
def safe_path(name: str) -> str:
    """A relative path made of safe components; ``../../etc/passwd`` becomes ``etc/passwd``."""
    parts = [p for p in name.replace("\\", "/").split("/") if p.strip() not in {"", ".", ".."}]
    return "/".join(safe_part(p) for p in parts) or "_"


def entry(*parts: str) -> str:
    """A zip entry name from already-trusted prefixes and untrusted parts, each made safe."""
    return "/".join(safe_path(p) for p in parts)


class UniqueNames:
    """Hands out entry names once: a second ``a.txt`` in a folder becomes ``a~2.txt``."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, name: str) -> str:
        candidate, n = name, 1
        while candidate.casefold() in self._taken:
            n += 1
            stem, dot, ext = name.rpartition(".")
            if dot and "/" not in ext and stem and not stem.endswith("/"):
                candidate = f"{stem}~{n}.{ext}"
            else:
                candidate = f"{name}~{n}"
        self._taken.add(candidate.casefold())
        return candidate
