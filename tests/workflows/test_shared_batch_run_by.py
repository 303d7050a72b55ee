"""When a batch must run (workflows.shared_batch.run_by): the margin is counted in whole days
of the controller's time zone, the zone the deadline was computed in."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from workflows.shared_batch import run_by

ZONES = sorted(z for z in zoneinfo.available_timezones() if "/" in z and
               not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))


@given(deadline=st.dates(date(2020, 1, 1), date(2035, 12, 31)),
       zone=st.sampled_from(ZONES),
       joined=st.datetimes(datetime(2019, 11, 1), datetime(2036, 1, 1), timezones=st.just(UTC)),
       wait=st.floats(0, 24 * 60, allow_nan=False), margin=st.integers(0, 10))
def test_run_by_is_the_start_of_the_margin_day_in_the_controllers_zone(
        deadline: date, zone: str, joined: datetime, wait: float, margin: int) -> None:
    at = run_by(deadline, zone, joined, wait, margin)
    assert at.utcoffset() == timedelta(0)
    assert joined <= at <= max(joined, joined + timedelta(hours=wait))
    day = deadline - timedelta(days=margin)
    tz = ZoneInfo(zone)
    if joined < at < joined + timedelta(hours=wait):
        # bound by the deadline: the first instant of that day where the controller is
        assert at.astimezone(tz).date() == day
        assert (at - timedelta(microseconds=1)).astimezone(tz).date() < day
    else:
        # bound by the wait (or already late): never later than the margin day's start
        start = datetime.combine(day, datetime.min.time(), tzinfo=tz).astimezone(UTC)
        assert at <= max(joined, start)


def test_a_zone_east_of_utc_runs_the_batch_before_utc_midnight() -> None:
    joined = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    tokyo = run_by(date(2026, 12, 10), "Asia/Tokyo", joined, 24 * 30, 3)
    utc = run_by(date(2026, 12, 10), "UTC", joined, 24 * 30, 3)
    assert tokyo == datetime(2026, 12, 6, 15, 0, tzinfo=UTC)  # 7 Dec 00:00 in Tokyo
    assert utc - tokyo == timedelta(hours=9)
