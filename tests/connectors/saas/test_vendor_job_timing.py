"""How often the fleet polls a vendor's erasure job: the settings that bound it, checked on
input, and the doubling wait between them (a property over any vendor interval and bounds)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsar.errors import InvalidInput
from dsar.settings import Settings
from workflows.vendor_jobs import interval


def test_poll_bounds_and_give_up_age_are_checked(tmp_path: Path) -> None:
    base = {"DSAR_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(base)
    assert (settings.vendor_job_poll_min_seconds, settings.vendor_job_poll_max_seconds,
            settings.vendor_job_give_up_days) == (30.0, 3600.0, 35.0)
    with pytest.raises(InvalidInput) as crossed:
        Settings.from_env({**base, "DSAR_VENDOR_JOB_POLL_MIN_SECONDS": "600",
                           "DSAR_VENDOR_JOB_POLL_MAX_SECONDS": "60"})
    assert "DSAR_VENDOR_JOB_POLL_MIN_SECONDS (600) is above" in crossed.value.one_line()
    for raw in ("0", "-1", "soon", "400"):
        with pytest.raises(InvalidInput) as days:
            Settings.from_env({**base, "DSAR_VENDOR_JOB_GIVE_UP_DAYS": raw})
        assert "set DSAR_VENDOR_JOB_GIVE_UP_DAYS=35" in days.value.one_line()
    with pytest.raises(InvalidInput):
        Settings.from_env({**base, "DSAR_VENDOR_JOB_POLL_MAX_SECONDS": "never"})


@given(every=st.floats(min_value=0.1, max_value=86_400),
       low=st.floats(min_value=0.1, max_value=3_600),
       spread=st.floats(min_value=0, max_value=86_400),
       attempts=st.integers(min_value=0, max_value=200))
def test_the_wait_doubles_from_the_vendors_interval_within_the_bounds(
        every: float, low: float, spread: float, attempts: int) -> None:
    high = low + spread
    app = SimpleNamespace(settings=SimpleNamespace(vendor_job_poll_min_seconds=low,
                                                   vendor_job_poll_max_seconds=high))
    wait = interval(app, every, attempts).total_seconds()  # type: ignore[arg-type]
    following = interval(app, every, attempts + 1).total_seconds()  # type: ignore[arg-type]
    assert low - 1e-6 <= wait <= high + 1e-6
    assert wait <= following  # never shorter than the wait before
    first = interval(app, every, 0).total_seconds()  # type: ignore[arg-type]
    assert first == pytest.approx(min(high, max(low, every)), abs=1e-5)
    if following < high - 1e-5:  # below the ceiling (timedelta keeps microseconds) it doubles
        assert following == pytest.approx(2 * wait, abs=1e-5)
