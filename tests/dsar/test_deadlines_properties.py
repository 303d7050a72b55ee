"""Property tests of the deadline engine (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dsar.deadlines import compute_deadlines, is_working_day, local_date
from dsar.regimes import REGIMES

# Holiday sets are built once per (calendar, year); the first build can take a few ms.
PROFILE = settings(deadline=None, max_examples=150)

regimes = st.sampled_from(sorted(REGIMES))
zones = st.sampled_from(
    ["UTC", "Europe/Berlin", "Europe/London", "America/Los_Angeles", "Pacific/Kiritimati"]
)
calendars = st.sampled_from([None, "DE", "FR", "US"])
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2060, 12, 31), timezones=st.just(UTC)
)
offsets = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400))
pauses = st.lists(
    st.tuples(
        st.timedeltas(min_value=timedelta(days=-5), max_value=timedelta(days=120)),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
    ),
    max_size=4,
)


@PROFILE
@given(regime=regimes, received=instants, tz=zones, calendar=calendars)
def test_due_never_before_receipt(regime: str, received: datetime, tz: str, calendar: str | None):
    result = compute_deadlines(regime, received, tz=tz, calendar=calendar)
    day = local_date(received, tz)
    assert result.clock_start >= day
    assert result.due > day
    assert result.extension_notice_by == result.due
    if result.acknowledge_by is not None:
        assert result.acknowledge_by > day
    if result.extended_due is not None:
        assert result.extended_due >= result.due


@PROFILE
@given(regime=regimes, received=instants, later=offsets, tz=zones, calendar=calendars)
def test_due_is_monotone_in_receipt(
    regime: str, received: datetime, later: timedelta, tz: str, calendar: str | None
):
    first = compute_deadlines(regime, received, tz=tz, calendar=calendar)
    second = compute_deadlines(regime, received + later, tz=tz, calendar=calendar)
    assert second.due >= first.due
    if first.extended_due is not None:
        assert second.extended_due is not None and second.extended_due >= first.extended_due
    if first.acknowledge_by is not None:
        assert second.acknowledge_by is not None and second.acknowledge_by >= first.acknowledge_by


@PROFILE
@given(
    received=instants,
    tz=st.sampled_from(["Europe/Berlin", "Europe/Paris", "UTC"]),
    calendar=st.sampled_from([None, "DE", "FR"]),
    spans=pauses,
)
def test_gdpr_due_is_a_working_day(
    received: datetime, tz: str, calendar: str | None, spans: list[tuple[timedelta, timedelta]]
):
    paused = [(received + start, received + start + length) for start, length in spans]
    result = compute_deadlines("gdpr", received, tz=tz, calendar=calendar, pauses=paused)
    assert result.due.weekday() < 5
    assert is_working_day(result.due, calendar)
    assert result.extended_due is not None and is_working_day(result.extended_due, calendar)


@PROFILE
@given(
    regime=regimes,
    received=instants,
    tz=zones,
    calendar=calendars,
    spans=pauses,
    still_open=st.booleans(),
)
def test_pause_never_makes_deadline_earlier(
    regime: str,
    received: datetime,
    tz: str,
    calendar: str | None,
    spans: list[tuple[timedelta, timedelta]],
    still_open: bool,
):
    paused: list[tuple[datetime, datetime | None]] = [
        (received + start, received + start + length) for start, length in spans
    ]
    now = received + timedelta(days=200)
    if still_open and paused:
        paused[-1] = (paused[-1][0], None)
    plain = compute_deadlines(regime, received, tz=tz, calendar=calendar)
    shifted = compute_deadlines(regime, received, tz=tz, calendar=calendar, pauses=paused, now=now)
    assert shifted.due >= plain.due
    assert shifted.paused_days >= 0
    if not REGIMES[regime].pause_suspends:
        assert shifted == plain
    if plain.extended_due is not None:
        assert shifted.extended_due is not None
        assert shifted.extended_due >= plain.extended_due >= plain.due
        assert shifted.extended_due >= shifted.due
