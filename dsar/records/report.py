"""The reviewer report: what was asked, how it was answered, and how fast.

One row per request received in the period (dates in the controller's time zone), with the
fields that CCPA regulations (11 CCR §7101(b)) and the Colorado Privacy Act rules (4 CCR 904-3,
Rule 6.11) ask a business to keep: the date of the request, its nature (``kind``) and manner
(``channel``), the date and nature of the response (``responded_on``, ``response``) and the
basis of any denial (``denial_basis``: the closing reason of a rejected request). No personal
data: requests appear by id only.

The summary counts requests by kind and regime, the share *answered* on time (completed or
refused on or before the effective due date, over completed and refused requests; cancelled
and open requests are not answers), the median and 95th percentile (nearest rank) of days
from receipt to completion, extensions and refusals.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar.db.models import Request
from dsar.deadlines import local_date
from dsar.errors import InvalidInput

__all__ = ["ReportRow", "build_report", "report_rows", "rows_csv", "summarize"]

_RESPONSES = {"completed": "completed", "rejected": "refused", "cancelled": "cancelled"}


@dataclass(frozen=True)
class ReportRow:
    """One request as the record-keeping rules ask for it."""

    request_id: str
    received_on: date
    kind: str
    channel: str
    regime: str
    state: str
    response: str
    responded_on: date | None
    denial_basis: str | None
    due: date
    extended_due: date | None
    extension_reason: str | None
    on_time: bool | None
    days_to_complete: float | None


def _row(values: Any, tz: str) -> ReportRow:
    (rid, kind, channel, regime, state, received, completed, updated, due, extended_due,
     extension_reason, closing_reason) = values
    responded: datetime | None = None
    if state == "completed":
        responded = completed or updated
    elif state in ("rejected", "cancelled"):
        responded = updated
    effective = extended_due or due
    answered = state in ("completed", "rejected") and responded is not None
    days = None
    if state == "completed" and responded is not None:
        days = round((responded - received).total_seconds() / 86400, 2)
    return ReportRow(
        request_id=rid, received_on=local_date(received, tz), kind=kind, channel=channel,
        regime=regime, state=state, response=_RESPONSES.get(state, "open"),
        responded_on=local_date(responded, tz) if responded else None,
        denial_basis=closing_reason if state == "rejected" else None,
        due=due, extended_due=extended_due, extension_reason=extension_reason,
        on_time=(local_date(responded, tz) <= effective) if answered and responded else None,
        days_to_complete=days,
    )


def report_rows(session: Session, *, start: date | None = None, end: date | None = None,
                tz: str = "UTC") -> list[ReportRow]:
    """Requests received from ``start`` to ``end`` (inclusive local dates in ``tz``; open
    ended when ``None``), oldest first."""
    if start and end and start > end:
        raise InvalidInput(f"--from {start} is after --to {end}", "swap the two dates")
    zone = ZoneInfo(tz)
    query = sa.select(
        Request.id, Request.kind, Request.channel, Request.regime, Request.state,
        Request.received_at, Request.completed_at, Request.updated_at, Request.due,
        Request.extended_due, Request.extension_reason, Request.closing_reason,
    ).order_by(Request.received_at, Request.id)
    if start is not None:
        query = query.where(Request.received_at >= datetime.combine(start, time(), zone))
    if end is not None:
        query = query.where(
            Request.received_at < datetime.combine(end + timedelta(days=1), time(), zone))
    return [_row(values, tz) for values in session.execute(query)]


def _percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of ``values`` (``None`` for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summarize(rows: list[ReportRow]) -> dict[str, Any]:
    """The aggregate figures over ``rows`` (see the module docstring for definitions)."""
    answered = [r for r in rows if r.on_time is not None]
    on_time = sum(1 for r in answered if r.on_time)
    days = [r.days_to_complete for r in rows if r.days_to_complete is not None]
    pairs = Counter((r.kind, r.regime) for r in rows)
    return {
        "requests": len(rows),
        "by_kind": dict(sorted(Counter(r.kind for r in rows).items())),
        "by_regime": dict(sorted(Counter(r.regime for r in rows).items())),
        "by_kind_and_regime": [{"kind": k, "regime": g, "requests": n}
                               for (k, g), n in sorted(pairs.items())],
        "by_channel": dict(sorted(Counter(r.channel for r in rows).items())),
        "completed": sum(1 for r in rows if r.state == "completed"),
        "refused": sum(1 for r in rows if r.state == "rejected"),
        "cancelled": sum(1 for r in rows if r.state == "cancelled"),
        "open": sum(1 for r in rows if r.response == "open"),
        "extended": sum(1 for r in rows if r.extended_due is not None),
        "answered": len(answered),
        "answered_on_time": on_time,
        "on_time_share": round(on_time / len(answered), 4) if answered else None,
        "median_days_to_complete": round(statistics.median(days), 2) if days else None,
        "p95_days_to_complete": _percentile(days, 0.95),
    }


def build_report(session: Session, *, start: date | None = None, end: date | None = None,
                 tz: str = "UTC") -> dict[str, Any]:
    """``{"period", "timezone", "summary", "requests"}`` for the period, JSON-ready except
    for dates (the CLI's JSON writer turns them into ISO strings)."""
    rows = report_rows(session, start=start, end=end, tz=tz)
    return {"period": {"from": start, "to": end}, "timezone": tz, "summary": summarize(rows),
            "requests": [asdict(r) for r in rows]}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # never let a spreadsheet run a typed reason as a formula
    return value


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """The per-request rows as CSV with a header line (dates ISO, empty for none; text that
    a spreadsheet would take for a formula is prefixed with an apostrophe)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in ReportRow.__dataclass_fields__
                                             .values()], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()
