"""Findings: one problem with a data map, where it is, and how to fix it.

Both the static validation of :mod:`dsar.datamap.loader` (warnings) and the live checks of
:mod:`dsar.datamap.check` report :class:`Finding` objects. An ``error`` means a request run with
this map would go wrong (or be refused); a ``warning`` means it may silently do less than meant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from dsar.errors import DataMapError

Severity = Literal["error", "warning"]

REQUEST_IDENTITIES = frozenset({"email", "phone"})
"""Key names every request may carry; any other key name must be provided or given by --id."""


@dataclass(frozen=True)
class Finding:
    """One problem. ``where`` is ``file:line`` or a dotted path when known."""

    severity: Severity
    system: str | None
    table: str | None
    column: str | None
    problem: str
    fix: str
    where: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def one_line(self, with_fix: bool = True) -> str:
        place = ".".join(p for p in (self.system, self.table, self.column) if p)
        prefix = f"{self.where}: " if self.where else ""
        text = f"{prefix}{place + ': ' if place else ''}{self.problem}"
        return f"{text} (fix: {self.fix})" if with_fix else text


def errors_of(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def raise_for_errors(findings: Iterable[Finding], what: str = "the data map") -> None:
    """Raise :class:`DataMapError` naming every error finding (the first one's fix as fix)."""
    errors = errors_of(findings)
    if not errors:
        return
    if len(errors) == 1:
        only = errors[0]
        err = DataMapError(only.one_line(with_fix=False), only.fix)
    else:
        problem = f"{what} has {len(errors)} problems: " + " | ".join(
            f"{n}) {e.one_line()}" for n, e in enumerate(errors[:8], 1)
        )
        if len(errors) > 8:
            problem += f" | … and {len(errors) - 8} more"
        err = DataMapError(problem, "correct each of them, then try again")
    err.findings = errors  # type: ignore[attr-defined]
    raise err
