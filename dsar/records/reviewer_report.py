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

from dsar.db.models import EvidenceRow, Request
from dsar.deadlines import local_date
from dsar.errors import InvalidInput

__all__ = ["ReportRow", "build_dashboard", "build_report", "ccpa_7102", "report_rows", "rows_csv",
           "summarize"]

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


# --- the dashboard's figures ----------------------------------------------------------------

#: Bins of days from receipt to completion (lower bound inclusive, upper exclusive).
DAY_BINS: tuple[tuple[int, int | None], ...] = (
    (0, 7), (7, 14), (14, 21), (21, 31), (31, 46), (46, 61), (61, 91), (91, None))

#: Bins of days left before an open request's effective due date, at risk first.
LEFT_BINS: tuple[tuple[str, int | None, int | None], ...] = (
    ("overdue", None, -1), ("0-3 days", 0, 3), ("4-7 days", 4, 7), ("8-14 days", 8, 14),
    ("15-30 days", 15, 30), ("over 30 days", 31, None))


def _bin_label(low: int, high: int | None) -> str:
    return f"{low}+ days" if high is None else f"{low}-{high - 1} days"


def _week(day: date) -> str:
    """The Monday that starts ``day``'s ISO week, as ``YYYY-MM-DD``."""
    return (day - timedelta(days=day.weekday())).isoformat()


def per_week(rows: list[ReportRow], field: str) -> dict[str, dict[str, int]]:
    """``{week: {value of field: requests}}`` by week of receipt (weeks start on Monday);
    weeks without requests between the first and last appear with no counts."""
    if not rows:
        return {}
    weeks: dict[str, dict[str, int]] = {}
    first, last = rows[0].received_on, rows[-1].received_on
    day = first - timedelta(days=first.weekday())
    while day <= last:
        weeks[day.isoformat()] = {}
        day += timedelta(days=7)
    for row in rows:
        counts = weeks.setdefault(_week(row.received_on), {})
        key = str(getattr(row, field))
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(weeks.items()))


def on_time_by_month(rows: list[ReportRow]) -> list[dict[str, Any]]:
    """Answered requests (completed or refused) by month of answer: answered, on time, late
    and the on-time share (0..1)."""
    months: dict[str, list[int]] = {}
    for row in rows:
        if row.on_time is None or row.responded_on is None:
            continue
        counts = months.setdefault(row.responded_on.strftime("%Y-%m"), [0, 0])
        counts[0] += 1
        counts[1] += 1 if row.on_time else 0
    return [{"month": m, "answered": n, "on_time": k, "late": n - k,
             "share": round(k / n, 4)} for m, (n, k) in sorted(months.items())]


def completion_days(rows: list[ReportRow]) -> list[dict[str, Any]]:
    """Completed requests by days to complete (:data:`DAY_BINS`), each bin split into on
    time and late against the request's own (effective) deadline."""
    out = []
    for low, high in DAY_BINS:
        inside = [r for r in rows if r.days_to_complete is not None
                  and low <= r.days_to_complete and (high is None or r.days_to_complete < high)]
        out.append({"bin": _bin_label(low, high), "on_time": sum(1 for r in inside if r.on_time),
                    "late": sum(1 for r in inside if not r.on_time)})
    return out


def open_by_days_left(rows: list[ReportRow], today: date) -> dict[str, Any]:
    """Open requests by days left before their effective due date on ``today``: the bins of
    :data:`LEFT_BINS` and the requests themselves, fewest days left first."""
    still_open = sorted(
        ({"request_id": r.request_id, "kind": r.kind, "state": r.state,
          "due": r.extended_due or r.due, "days_left": ((r.extended_due or r.due) - today).days}
         for r in rows if r.response == "open"),
        key=lambda x: (x["days_left"], x["request_id"]))
    bins = []
    for label, low, high in LEFT_BINS:
        bins.append({"bin": label, "requests": sum(
            1 for x in still_open if (low is None or x["days_left"] >= low)
            and (high is None or x["days_left"] <= high))})
    return {"bins": bins, "requests": still_open}


def outcomes_per_system(session: Session, request_ids: list[str]) -> list[dict[str, Any]]:
    """Per system, summed over the evidence of ``request_ids``: found, collected, deleted,
    masked, retained, the retained rows by legal ground, and collections not ``ok``."""
    systems: dict[str, dict[str, Any]] = {}
    for chunk in range(0, len(request_ids), 500):
        query = sa.select(EvidenceRow.system, EvidenceRow.body).where(
            EvidenceRow.request_id.in_(request_ids[chunk:chunk + 500]))
        for system, body in session.execute(query):
            out = systems.setdefault(system, {
                "system": system, "found": 0, "collected": 0, "deleted": 0, "masked": 0,
                "retained": 0, "grounds": {}, "not_ok": 0})
            for name in ("found", "collected", "deleted", "masked", "retained"):
                out[name] += int(body.get(name) or 0)
            ground = body.get("retained_ground")
            if body.get("retained") and ground:
                out["grounds"][ground] = out["grounds"].get(ground, 0) + int(body["retained"])
            out["not_ok"] += 0 if body.get("outcome", "ok") == "ok" else 1
    return [systems[name] for name in sorted(systems)]


def reasons(rows: list[ReportRow]) -> dict[str, list[dict[str, Any]]]:
    """Extensions and refusals, each grouped by the reason given, most frequent first."""
    def grouped(values: list[str]) -> list[dict[str, Any]]:
        return [{"reason": k, "requests": n}
                for k, n in sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))]
    return {
        "extensions": grouped([r.extension_reason or "no reason recorded"
                               for r in rows if r.extended_due is not None]),
        "refusals": grouped([r.denial_basis or "no reason recorded"
                             for r in rows if r.state == "rejected"]),
    }


def build_dashboard(session: Session, *, today: date, start: date | None = None,
                    end: date | None = None, tz: str = "UTC") -> dict[str, Any]:
    """Everything the dashboard draws, over requests received in the period, with ``today``
    (a local date in ``tz``) as the day open requests count their days left from."""
    rows = report_rows(session, start=start, end=end, tz=tz)
    return {
        "period": {"from": start, "to": end}, "timezone": tz, "today": today,
        "summary": summarize(rows),
        "weekly_by_kind": per_week(rows, "kind"),
        "weekly_by_channel": per_week(rows, "channel"),
        "on_time_by_month": on_time_by_month(rows),
        "completion_days": completion_days(rows),
        "open": open_by_days_left(rows, today),
        "systems": outcomes_per_system(session, [r.request_id for r in rows]),
        "reasons": reasons(rows),
    }


# --- CCPA §7102 -----------------------------------------------------------------------------

#: dsar's kinds under the names 11 CCR §7102(a) uses.
CCPA_NAMES = {"access": "requests to know", "export": "requests to know (portability)",
              "erasure": "requests to delete"}


def ccpa_7102(rows: list[ReportRow], year: int) -> dict[str, Any]:
    """The metrics 11 CCR §7102(a) asks for the calendar ``year`` (by local date of receipt),
    per request kind: received, complied with in whole or in part (completed), denied
    (refused), and the median and mean calendar days from receipt to the substantive response
    (completion or refusal) of the requests answered. Cancelled and open requests count as
    received only."""
    kinds: dict[str, dict[str, Any]] = {}
    for kind in sorted({r.kind for r in rows if r.received_on.year == year} | set(CCPA_NAMES)):
        mine = [r for r in rows if r.kind == kind and r.received_on.year == year]
        days = [(r.responded_on - r.received_on).days for r in mine
                if r.state in ("completed", "rejected") and r.responded_on is not None]
        kinds[kind] = {
            "kind": kind, "ccpa_name": CCPA_NAMES.get(kind, kind), "received": len(mine),
            "complied_in_whole_or_part": sum(1 for r in mine if r.state == "completed"),
            "denied": sum(1 for r in mine if r.state == "rejected"),
            "median_days_to_respond": float(statistics.median(days)) if days else None,
            "mean_days_to_respond": round(statistics.fmean(days), 2) if days else None,
        }
    regimes = sorted({r.regime for r in rows if r.received_on.year == year})
    return {"year": year, "regimes": regimes, "kinds": list(kinds.values())}
