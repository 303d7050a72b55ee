"""Which members of a batch a record belongs to (issue #25, :mod:`connectors.s3_batch`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.s3_records import Matcher


class Owners:
    """Which members a record belongs to, from one lookup per value the record holds instead
    of one matcher call per member (a batch of a hundred would call a hundred matchers for
    every record found). ``union`` must hold every member's values (see
    :func:`connectors.s3_batch.union_of`); ``of(record)`` holds the same members as
    ``[m for m in members if members[m](record)]``."""

    def __init__(self, members: Mapping[str, Matcher], union: Matcher) -> None:
        self.union = union
        self.members = list(members)
        self.index: dict[tuple[str, str], list[str]] = {}
        for member, matcher in members.items():
            for _path, name, values in matcher.rules:
                for value in values:
                    self.index.setdefault((name, value), []).append(member)

    def of(self, record: Any) -> list[str]:
        found = self.union.found_values(record)
        if len(found) == 1:
            return self.index.get(found.pop(), [])
        owners = {m for value in found for m in self.index.get(value, ())}
        return sorted(owners)
