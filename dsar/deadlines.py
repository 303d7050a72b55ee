"""The deadline engine: when a subject-rights request must be answered.

Pure functions over the frozen rules in :mod:`dsar.regimes` (``shared/legal/DEADLINES.md``).
Nothing here reads the clock or any settings store; every input is an argument.

Counting, as implemented:

* **Day of receipt** is the date of the receipt instant in the controller's time zone (an IANA
  name, default ``"UTC"``). Receipt times must be time-zone aware. The day of receipt (the
  clock-start day) is never itself counted (Reg. 1182/71 Art. 3(1)).
* **Clock start** is that day, except where the rule has ``clock_starts_at_identity`` (UK GDPR
  Art. 12A): then the latest of the days of receipt, identity proof and fee. Other regimes ignore
  ``identity_confirmed_at`` and ``fee_received_at`` (GDPR handles identity by a pause; CCPA
  counts "regardless of the time verification takes").
* **Months** (GDPR, UK GDPR) end on the same date of the last month, or that month's last day
  where it has no such date. Under Reg. 1182/71 Art. 3(4) and EDPB §161 (GDPR,
  ``roll_to_working_day``) an end on a Saturday, Sunday or public holiday of the calendar moves
  to the next working day. UK GDPR does not roll (ICO).
* **Days** (CCPA, VCDPA, CPA, LGPD, PIPEDA) are calendar days after the clock-start day, with no
  roll unless the rule's ``roll_to_working_day`` setting is turned on (default off).
* **Extension**: the extended deadline is the rule's ``extended_period`` counted from the clock
  start, then the same roll. For the GDPR this is the project's reading of "two further months":
  **three months from receipt, then the working-day rule** (not one month, rolled, plus two).
  The extension must be notified by the original due date (``extension_notice_by``).
* **Pauses** (only where the rule's ``pause_suspends``): each pause counts the whole days
  between its start day and its resume day, both in the controller's time zone (a pause begun
  and ended the same day counts 0; an open pause counts up to ``now``). Days before the clock
  start are not counted, overlapping pauses are counted once. The total is added to the end of
  the first and of the extended period before the roll. When a pause may be taken is a question
  for the request lifecycle, not for this module.
* **Acknowledgement** (CCPA: 10 business days, 11 CCR §7021(a)): business days after the day of
  receipt, skipping weekends and, when a calendar is set, its public holidays; never paused.
* **Calendar**: ``None`` means weekends only; otherwise an ISO 3166-1 alpha-2 code known to the
  ``holidays`` package (``"DE"``), optionally with a subdivision (``"DE-BY"``). Holiday sets are
  built once per (country, subdivision, year) and cached.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from dsar.errors import IllegalTransition, InvalidInput
from dsar.regimes import REGIMES, Counting, Rule, rule_for

__all__ = [
    "REGIMES",
    "Deadlines",
    "Pause",
    "Rule",
    "add_business_days",
    "add_months",
    "check_extension",
    "compute_deadlines",
    "days_left",
    "extension_allowed",
    "is_working_day",
    "local_date",
    "next_working_day",
    "normalize_calendar",
    "paused_days",
    "rule_for",
]

#: A paused interval: (paused at, resumed at); ``None`` as the end means still paused.
Pause = tuple[datetime, datetime | None]


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The computed deadlines of one request. All dates are in the controller's time zone;
    a deadline date ends at the end of that day."""

    regime: str
    rule_id: str
    rule_version: str
    #: Controller time zone the dates are in.
    tz: str
    #: Normalized holiday calendar code, or ``None`` (weekends only).
    calendar: str | None
    #: The day the clock starts (not itself counted).
    clock_start: date
    #: Last day of the first period, after pauses and any roll.
    due: date
    #: Last day to acknowledge receipt, or ``None`` when the regime has no such duty.
    acknowledge_by: date | None
    #: Last day on which an extension may still be notified (the original ``due``).
    extension_notice_by: date
    #: Last day of the extended period, or ``None`` when the regime has no extension.
    extended_due: date | None
    #: Whole days of suspension counted into ``due`` and ``extended_due``.
    paused_days: int = 0


# --- time zones and calendars ----------------------------------------------------------------


@lru_cache(maxsize=256)
def _zone(tz: str) -> ZoneInfo:
    """The ``ZoneInfo`` for ``tz``; :class:`InvalidInput` when no such zone exists."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidInput(
            f"unknown time zone {tz!r}", "use an IANA time zone name, e.g. Europe/Berlin or UTC"
        ) from None


def local_date(moment: datetime, tz: str = "UTC", *, what: str = "time") -> date:
    """The calendar date of the aware instant ``moment`` in time zone ``tz``.

    Raises :class:`InvalidInput` when ``moment`` is naive or ``tz`` is unknown; ``what`` names
    the value in the message.
    """
    if not isinstance(moment, datetime):
        raise InvalidInput(f"{what} is not a date and time", "give an ISO 8601 date and time")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"{what} {moment.isoformat()} has no time zone",
            "give the time with a UTC offset, e.g. 2025-03-05T09:30:00+01:00",
        )
    return moment.astimezone(_zone(tz)).date()


def normalize_calendar(calendar: str | None) -> str | None:
    """Validate a holiday calendar code and return it upper-cased (``"de-by"`` -> ``"DE-BY"``).

    ``None`` stays ``None`` (weekends only). Raises :class:`InvalidInput` when the ``holidays``
    package knows no such country or subdivision.
    """
    if calendar is None:
        return None
    code = str(calendar).strip().upper()
    _holiday_dates(code, 2000)
    return code


@lru_cache(maxsize=1024)
def _holiday_dates(code: str, year: int) -> frozenset[date]:
    """Public holidays of calendar ``code`` (``CC`` or ``CC-SUB``) in ``year``; cached."""
    country, _, subdiv = code.partition("-")
    try:
        cal = holidays.country_holidays(country, subdiv=subdiv or None, years=year)
    except (NotImplementedError, KeyError, ValueError):
        raise InvalidInput(
            f"unknown holiday calendar {code!r}",
            "use an ISO 3166-1 alpha-2 country code known to the holidays package "
            "(e.g. DE, FR, US), optionally with a subdivision (DE-BY), or none for weekends only",
        ) from None
    return frozenset(cal.keys())


def is_working_day(day: date, calendar: str | None = None) -> bool:
    """True when ``day`` is Monday to Friday and not a public holiday of ``calendar``."""
    if day.weekday() >= 5:
        return False
    return calendar is None or day not in _holiday_dates(calendar.upper(), day.year)


def next_working_day(day: date, calendar: str | None = None) -> date:
    """``day`` itself when it is a working day, else the first working day after it."""
    while not is_working_day(day, calendar):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int, calendar: str | None = None) -> date:
    """The ``count``-th working day after ``day`` (``day`` itself not counted); ``count >= 0``."""
    if count < 0:
        raise ValueError("count must be >= 0")
    while count:
        day += timedelta(days=1)
        if is_working_day(day, calendar):
            count -= 1
    return day


def add_months(day: date, months: int) -> date:
    """The same date ``months`` later, or that month's last day where it has no such date."""
    year, month0 = divmod(day.month - 1 + months, 12)
    year += day.year
    last = _calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


# --- pauses ----------------------------------------------------------------------------------


def paused_days(
    pauses: Iterable[Pause],
    tz: str = "UTC",
    *,
    clock_start: date | None = None,
    now: datetime | None = None,
) -> int:
    """Whole days of suspension in ``pauses``: for each, resume day minus pause day, in ``tz``.

    Overlaps are counted once; days before ``clock_start`` are not counted. An open pause
    (end ``None``) runs to ``now``, which must then be given. Raises :class:`InvalidInput` for
    naive times, an end before its start, or an open pause without ``now``.
    """
    spans: list[tuple[date, date]] = []
    for start, end in pauses:
        first = local_date(start, tz, what="pause start")
        if end is None:
            if now is None:
                raise InvalidInput(
                    f"pause from {start.isoformat()} is still open",
                    "pass now= to count an open pause up to that moment",
                )
            end, what = now, "now"
        else:
            what = "pause end"
        last = local_date(end, tz, what=what)
        if end < start:
            raise InvalidInput(
                f"{what} {end.isoformat()} is before pause start {start.isoformat()}",
                "give each pause as (start, end) with end after start",
            )
        if clock_start is not None:
            first = max(first, clock_start)
        if last > first:
            spans.append((first, last))
    total = 0
    reach: date | None = None
    for first, last in sorted(spans):
        if reach is not None:
            first = max(first, reach)
        if last > first:
            total += (last - first).days
        reach = last if reach is None else max(reach, last)
    return total


# --- the engine ------------------------------------------------------------------------------


def _period_end(rule: Rule, start: date, length: int, shift: int, calendar: str | None) -> date:
    """End of a period of ``length`` units from ``start``, plus ``shift`` paused days, rolled."""
    if rule.counting is Counting.CALENDAR_DAYS:
        end = start + timedelta(days=length)
    else:
        end = add_months(start, length)
    end += timedelta(days=shift)
    return next_working_day(end, calendar) if rule.roll_to_working_day else end


def compute_deadlines(
    rule: Rule | str,
    received_at: datetime,
    *,
    tz: str = "UTC",
    calendar: str | None = None,
    pauses: Sequence[Pause] = (),
    identity_confirmed_at: datetime | None = None,
    fee_received_at: datetime | None = None,
    now: datetime | None = None,
) -> Deadlines:
    """Compute the deadlines of a request received at ``received_at`` (aware) under ``rule``.

    ``rule`` is a :class:`Rule` or a regime id. ``tz`` is the controller's IANA time zone;
    ``calendar`` its holiday calendar (see :func:`normalize_calendar`). ``pauses`` shift the
    deadlines only where ``rule.pause_suspends``; ``now`` is needed only to count an open
    pause. ``identity_confirmed_at`` and ``fee_received_at`` move the clock start only where
    ``rule.clock_starts_at_identity``. Deterministic: same inputs, same result.

    Raises :class:`InvalidInput` for an unknown regime, time zone or calendar, a naive time,
    or a malformed pause.
    """
    if isinstance(rule, str):
        rule = rule_for(rule)
    _zone(tz)
    cal = normalize_calendar(calendar)
    received = local_date(received_at, tz, what="receipt time")
    clock_start = received
    if rule.clock_starts_at_identity:
        for moment, what in (
            (identity_confirmed_at, "identity confirmation time"),
            (fee_received_at, "fee receipt time"),
        ):
            if moment is not None:
                clock_start = max(clock_start, local_date(moment, tz, what=what))
    shift = paused_days(pauses, tz, clock_start=clock_start, now=now) if rule.pause_suspends else 0
    due = _period_end(rule, clock_start, rule.period, shift, cal)
    extended = (
        None
        if rule.extended_period is None
        else _period_end(rule, clock_start, rule.extended_period, shift, cal)
    )
    acknowledge = (
        None
        if rule.acknowledge_business_days is None
        else add_business_days(received, rule.acknowledge_business_days, cal)
    )
    return Deadlines(
        regime=rule.regime,
        rule_id=rule.id,
        rule_version=rule.version,
        tz=tz,
        calendar=cal,
        clock_start=clock_start,
        due=due,
        acknowledge_by=acknowledge,
        extension_notice_by=due,
        extended_due=extended,
        paused_days=shift,
    )


def check_extension(
    rule: Rule,
    deadlines: Deadlines,
    now: datetime,
    reason: str,
    already_extended: bool,
) -> date:
    """Decide whether the deadline may be extended now; return the extended due date if so.

    ``deadlines`` must have been computed under ``rule`` (else :class:`ValueError`, a bug).
    Raises :class:`InvalidInput` when ``reason`` is blank or ``now`` is naive, and
    :class:`IllegalTransition` when the regime has no extension, one was already taken, or
    ``now`` (in the controller's time zone) is after the end of the original due day.
    """
    if (rule.id, rule.version) != (deadlines.rule_id, deadlines.rule_version):
        raise ValueError(f"deadlines were computed under {deadlines.rule_id}, not {rule.id}")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(
            "an extension needs a reason",
            "give the reason that will be sent to the subject (e.g. complexity, many requests)",
        )
    today = local_date(now, deadlines.tz, what="current time")
    if rule.extended_period is None or deadlines.extended_due is None:
        raise IllegalTransition(
            f"{rule.name} allows no extension",
            f"answer by {deadlines.due.isoformat()}",
        )
    if already_extended:
        raise IllegalTransition(
            "the deadline was already extended",
            f"answer by {deadlines.extended_due.isoformat()}; only one extension is allowed",
        )
    if today > deadlines.extension_notice_by:
        raise IllegalTransition(
            f"the first period ended on {deadlines.extension_notice_by.isoformat()}",
            "an extension must be notified within the first period; answer now",
        )
    return deadlines.extended_due


def extension_allowed(
    rule: Rule,
    deadlines: Deadlines,
    now: datetime,
    reason: str,
    already_extended: bool,
) -> bool:
    """True when :func:`check_extension` would allow the extension, False when it would refuse."""
    try:
        check_extension(rule, deadlines, now, reason, already_extended)
    except (InvalidInput, IllegalTransition):
        return False
    return True


def days_left(due: date, now: datetime, tz: str = "UTC") -> int:
    """Days from today (``now`` in ``tz``) to ``due``: 0 on the due day, negative once overdue.

    Raises :class:`InvalidInput` when ``now`` is naive or ``tz`` is unknown.
    """
    return (due - local_date(now, tz, what="current time")).days
