"""Deadline engine: the worked examples of shared/legal/DEADLINES.md, counting and errors."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from dsar.deadlines import (
    Deadlines,
    add_business_days,
    add_months,
    check_extension,
    compute_deadlines,
    days_left,
    extension_allowed,
    paused_days,
)
from dsar.errors import IllegalTransition, InvalidInput
from dsar.regimes import REGIMES, Counting, rule_for

TZ = {
    "gdpr": "Europe/Berlin",
    "uk_gdpr": "Europe/London",
    "ccpa": "America/Los_Angeles",
    "vcdpa": "America/New_York",
    "cpa": "America/Denver",
    "lgpd": "America/Sao_Paulo",
    "pipeda": "America/Toronto",
}


def at(day: date, tz: str, hour: int = 10, minute: int = 0) -> datetime:
    """An aware instant on ``day`` at ``hour:minute`` local time in ``tz``."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz))


# Every row of the worked-examples table: (regime, calendar, received, identity, field, due).
WORKED_EXAMPLES = [
    ("gdpr", None, date(2024, 3, 5), None, "due", date(2024, 4, 5)),
    ("gdpr", None, date(2025, 8, 31), None, "due", date(2025, 9, 30)),
    ("gdpr", None, date(2024, 1, 31), None, "due", date(2024, 2, 29)),
    ("gdpr", "DE", date(2025, 3, 5), None, "due", date(2025, 4, 7)),
    ("gdpr", "DE", date(2025, 9, 3), None, "due", date(2025, 10, 6)),
    ("gdpr", "FR", date(2025, 9, 3), None, "due", date(2025, 10, 3)),
    ("gdpr", "DE", date(2025, 11, 25), None, "due", date(2025, 12, 29)),
    ("gdpr", "FR", date(2025, 11, 25), None, "due", date(2025, 12, 26)),
    ("gdpr", "DE", date(2025, 8, 31), None, "extended_due", date(2025, 12, 1)),
    ("uk_gdpr", None, date(2025, 9, 1), date(2025, 9, 10), "due", date(2025, 10, 10)),
    ("ccpa", None, date(2025, 3, 3), None, "due", date(2025, 4, 17)),
    ("ccpa", None, date(2025, 1, 3), None, "acknowledge_by", date(2025, 1, 17)),
    ("lgpd", None, date(2025, 3, 3), None, "due", date(2025, 3, 18)),
    ("pipeda", None, date(2025, 3, 3), None, "due", date(2025, 4, 2)),
]

WEEKDAYS = {
    date(2024, 4, 5): 4, date(2025, 9, 30): 1, date(2024, 2, 29): 3, date(2025, 4, 7): 0,
    date(2025, 10, 6): 0, date(2025, 10, 3): 4, date(2025, 12, 29): 0, date(2025, 12, 26): 4,
    date(2025, 12, 1): 0, date(2025, 10, 10): 4, date(2025, 4, 17): 3, date(2025, 1, 17): 4,
    date(2025, 3, 18): 1, date(2025, 4, 2): 2,
}  # fmt: skip


@pytest.mark.parametrize(
    ("regime", "calendar", "received", "identity", "field", "expected"),
    WORKED_EXAMPLES,
    ids=[f"{r[0]}-{r[1] or 'weekends'}-{r[2]}-{r[4]}" for r in WORKED_EXAMPLES],
)
def test_worked_examples(
    regime: str,
    calendar: str | None,
    received: date,
    identity: date | None,
    field: str,
    expected: date,
) -> None:
    tz = TZ[regime]
    result = compute_deadlines(
        regime,
        at(received, tz),
        tz=tz,
        calendar=calendar,
        identity_confirmed_at=at(identity, tz) if identity else None,
    )
    assert getattr(result, field) == expected
    assert expected.weekday() == WEEKDAYS[expected]  # the table's weekday names hold


def test_worked_examples_also_hold_late_in_the_day_and_in_utc() -> None:
    late = compute_deadlines("gdpr", at(date(2024, 3, 5), "UTC", 23, 59))
    assert late.due == date(2024, 4, 5)
    assert late.tz == "UTC"


def test_result_records_rule_and_notice_date() -> None:
    result = compute_deadlines("gdpr", at(date(2024, 3, 5), "UTC"))
    rule = rule_for("gdpr")
    assert (result.rule_id, result.rule_version) == ("gdpr-art12-3", rule.version)
    assert result.extension_notice_by == result.due
    assert result.clock_start == date(2024, 3, 5)
    assert result.acknowledge_by is None
    assert result.extended_due == date(2024, 6, 5)
    assert result.paused_days == 0


def test_day_of_receipt_is_taken_in_the_controller_time_zone() -> None:
    instant = datetime(2024, 3, 5, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert compute_deadlines("gdpr", instant).due == date(2024, 4, 5)
    # In Berlin it is already 6 March; 6 April 2024 is a Saturday -> Monday 8 April.
    berlin = compute_deadlines("gdpr", instant, tz="Europe/Berlin")
    assert berlin.clock_start == date(2024, 3, 6)
    assert berlin.due == date(2024, 4, 8)


def test_uk_gdpr_does_not_roll_off_weekends() -> None:
    result = compute_deadlines("uk_gdpr", at(date(2025, 3, 5), "Europe/London"))
    assert result.due == date(2025, 4, 5)  # a Saturday, kept (ICO)
    assert result.extended_due == date(2025, 6, 5)


def test_uk_clock_starts_at_latest_of_receipt_identity_and_fee() -> None:
    tz = "Europe/London"
    received = at(date(2025, 9, 1), tz)
    earlier_id = compute_deadlines(
        "uk_gdpr", received, tz=tz, identity_confirmed_at=at(date(2025, 8, 20), tz)
    )
    assert earlier_id.clock_start == date(2025, 9, 1)
    both = compute_deadlines(
        "uk_gdpr", received, tz=tz,
        identity_confirmed_at=at(date(2025, 9, 10), tz), fee_received_at=at(date(2025, 9, 15), tz),
    )  # fmt: skip
    assert both.clock_start == date(2025, 9, 15)
    assert both.due == date(2025, 10, 15)


def test_identity_does_not_move_the_clock_outside_the_uk() -> None:
    for regime in ("gdpr", "ccpa"):
        tz = TZ[regime]
        result = compute_deadlines(
            regime, at(date(2025, 3, 3), tz), tz=tz, identity_confirmed_at=at(date(2025, 3, 20), tz)
        )
        assert result.clock_start == date(2025, 3, 3)


def test_gdpr_pause_shifts_due_and_extended_due() -> None:
    tz = "Europe/Berlin"
    pauses = [(at(date(2024, 3, 10), tz), at(date(2024, 3, 15), tz))]
    result = compute_deadlines("gdpr", at(date(2024, 3, 5), tz), tz=tz, pauses=pauses)
    assert result.paused_days == 5
    assert result.due == date(2024, 4, 10)
    assert result.extension_notice_by == date(2024, 4, 10)
    assert result.extended_due == date(2024, 6, 10)


def test_pause_shift_is_applied_before_the_working_day_roll() -> None:
    tz = "Europe/Berlin"
    # 5 April 2024 + 1 paused day = Saturday 6 April -> Monday 8 April.
    pauses = [(at(date(2024, 3, 10), tz, 9), at(date(2024, 3, 11), tz, 8))]
    result = compute_deadlines("gdpr", at(date(2024, 3, 5), tz), tz=tz, pauses=pauses)
    assert result.due == date(2024, 4, 8)


def test_ccpa_ignores_pauses() -> None:
    tz = TZ["ccpa"]
    pauses = [(at(date(2025, 3, 5), tz), at(date(2025, 3, 25), tz))]
    result = compute_deadlines("ccpa", at(date(2025, 3, 3), tz), tz=tz, pauses=pauses)
    assert result.due == date(2025, 4, 17)
    assert result.paused_days == 0


def test_paused_days_counting() -> None:
    tz = "UTC"
    d = date(2025, 3, 1)
    same_day = [(at(d, tz, 9), at(d, tz, 17))]
    assert paused_days(same_day, tz) == 0
    overlapping = [
        (at(date(2025, 3, 2), tz), at(date(2025, 3, 6), tz)),
        (at(date(2025, 3, 4), tz), at(date(2025, 3, 8), tz)),
        (at(date(2025, 3, 20), tz), at(date(2025, 3, 21), tz)),
    ]
    assert paused_days(overlapping, tz) == 7
    before_start = [(at(date(2025, 2, 20), tz), at(date(2025, 3, 3), tz))]
    assert paused_days(before_start, tz, clock_start=d) == 2
    open_pause = [(at(date(2025, 3, 2), tz), None)]
    assert paused_days(open_pause, tz, now=at(date(2025, 3, 12), tz)) == 10


def test_open_pause_needs_now_and_bad_pauses_are_refused() -> None:
    tz = "UTC"
    with pytest.raises(InvalidInput, match="still open") as err:
        paused_days([(at(date(2025, 3, 2), tz), None)], tz)
    assert err.value.fix
    with pytest.raises(InvalidInput, match="before pause start"):
        paused_days([(at(date(2025, 3, 5), tz), at(date(2025, 3, 2), tz))], tz)
    with pytest.raises(InvalidInput, match="no time zone"):
        paused_days([(datetime(2025, 3, 5), None)], tz, now=at(date(2025, 3, 6), tz))


def test_roll_setting_for_calendar_day_regimes() -> None:
    tz = TZ["ccpa"]
    received = at(date(2025, 3, 5), tz)
    assert compute_deadlines("ccpa", received, tz=tz).due == date(2025, 4, 19)  # a Saturday
    rolled = dataclasses.replace(rule_for("ccpa"), roll_to_working_day=True)
    assert compute_deadlines(rolled, received, tz=tz).due == date(2025, 4, 21)
    assert all(not REGIMES[r].roll_to_working_day for r in ("ccpa", "vcdpa", "cpa", "lgpd"))


def test_ccpa_acknowledgement_skips_calendar_holidays() -> None:
    tz = TZ["ccpa"]
    received = at(date(2025, 1, 10), tz)
    assert compute_deadlines("ccpa", received, tz=tz).acknowledge_by == date(2025, 1, 24)
    # Monday 20 January 2025 is Martin Luther King Jr. Day.
    assert compute_deadlines("ccpa", received, tz=tz, calendar="US").acknowledge_by == date(
        2025, 1, 27
    )


def test_calendar_codes_are_normalized_and_subdivisions_work() -> None:
    tz = "Europe/Berlin"
    received = at(date(2024, 12, 6), tz)  # due Monday 6 January 2025: Epiphany in Bavaria
    assert compute_deadlines("gdpr", received, tz=tz, calendar="DE").due == date(2025, 1, 6)
    bavaria = compute_deadlines("gdpr", received, tz=tz, calendar="de-by")
    assert bavaria.calendar == "DE-BY"
    assert bavaria.due == date(2025, 1, 7)


def test_other_regimes_and_extensions() -> None:
    cases = {
        "vcdpa": (date(2025, 4, 17), date(2025, 6, 1)),
        "cpa": (date(2025, 4, 17), date(2025, 6, 1)),
        "pipeda": (date(2025, 4, 2), date(2025, 5, 2)),
        "lgpd": (date(2025, 3, 18), None),
    }
    for regime, (due, extended) in cases.items():
        tz = TZ[regime]
        result = compute_deadlines(regime, at(date(2025, 3, 3), tz), tz=tz)
        assert (result.due, result.extended_due) == (due, extended), regime


def test_helpers() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)
    assert add_months(date(2024, 12, 15), 1) == date(2025, 1, 15)
    assert add_business_days(date(2025, 1, 3), 0) == date(2025, 1, 3)
    assert add_business_days(date(2025, 1, 3), 1) == date(2025, 1, 6)


def test_rules_are_frozen_and_complete() -> None:
    assert set(REGIMES) == {"gdpr", "uk_gdpr", "ccpa", "vcdpa", "cpa", "lgpd", "pipeda"}
    for key, rule in REGIMES.items():
        assert rule.regime == key
        assert rule.id and rule.version and rule.name and rule.source and rule.pause_basis
    gdpr = rule_for("gdpr")
    with pytest.raises(dataclasses.FrozenInstanceError):
        gdpr.period = 2  # type: ignore[misc]
    assert (gdpr.period, gdpr.unit, gdpr.extended_period, gdpr.extension) == (1, "months", 3, 2)
    assert gdpr.counting is Counting.EU_1182_71_MONTHS and gdpr.roll_to_working_day
    assert gdpr.pause_suspends and not rule_for("ccpa").pause_suspends
    assert rule_for("uk_gdpr").clock_starts_at_identity
    assert rule_for("ccpa").acknowledge_business_days == 10
    assert rule_for("ccpa").extension == 45 and rule_for("pipeda").extension == 30
    assert rule_for("lgpd").extension is None


def test_days_left() -> None:
    due = date(2025, 4, 17)
    tz = "America/Los_Angeles"
    assert days_left(due, at(date(2025, 4, 10), tz), tz) == 7
    assert days_left(due, at(due, tz, 23, 59), tz) == 0
    assert days_left(due, at(date(2025, 4, 18), tz, 0, 1), tz) == -1
    # 2025-04-18 05:00 UTC is still 17 April in Los Angeles.
    assert days_left(due, datetime(2025, 4, 18, 5, tzinfo=ZoneInfo("UTC")), tz) == 0


# --- extensions -------------------------------------------------------------------------------


def _gdpr() -> Deadlines:
    return compute_deadlines("gdpr", at(date(2024, 3, 5), "Europe/Berlin"), tz="Europe/Berlin")


def test_extension_allowed_within_first_period() -> None:
    d = _gdpr()
    now = at(date(2024, 4, 5), "Europe/Berlin", 23, 59)  # the last minute of the due day
    assert check_extension(rule_for("gdpr"), d, now, "many requests", False) == date(2024, 6, 5)
    assert extension_allowed(rule_for("gdpr"), d, now, "complex", already_extended=False)


def test_extension_after_first_period_is_refused() -> None:
    d = _gdpr()
    now = at(date(2024, 4, 6), "Europe/Berlin", 0, 1)
    with pytest.raises(IllegalTransition, match="first period ended") as err:
        check_extension(rule_for("gdpr"), d, now, "complex", False)
    assert err.value.fix
    assert not extension_allowed(rule_for("gdpr"), d, now, "complex", False)


def test_second_extension_is_refused() -> None:
    d = _gdpr()
    with pytest.raises(IllegalTransition, match="already extended"):
        check_extension(rule_for("gdpr"), d, at(date(2024, 3, 20), "UTC"), "complex", True)


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_extension_without_reason_is_refused(reason: str) -> None:
    with pytest.raises(InvalidInput, match="needs a reason"):
        check_extension(rule_for("gdpr"), _gdpr(), at(date(2024, 3, 20), "UTC"), reason, False)


def test_lgpd_has_no_extension() -> None:
    d = compute_deadlines("lgpd", at(date(2025, 3, 3), "UTC"))
    with pytest.raises(IllegalTransition, match="allows no extension"):
        check_extension(rule_for("lgpd"), d, at(date(2025, 3, 4), "UTC"), "complex", False)


def test_extension_with_naive_now_or_wrong_rule() -> None:
    with pytest.raises(InvalidInput, match="no time zone"):
        check_extension(rule_for("gdpr"), _gdpr(), datetime(2024, 3, 20), "complex", False)
    with pytest.raises(ValueError, match="computed under"):
        check_extension(rule_for("ccpa"), _gdpr(), at(date(2024, 3, 20), "UTC"), "x", False)


# --- input errors -----------------------------------------------------------------------------


def test_naive_receipt_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"receipt time .* has no time zone") as err:
        compute_deadlines("gdpr", datetime(2025, 3, 5, 10))
    assert "offset" in (err.value.fix or "")


def test_unknown_regime() -> None:
    with pytest.raises(InvalidInput) as err:
        rule_for("x")
    assert str(err.value) == "unknown regime 'x'"
    assert err.value.fix == "use one of: ccpa, cpa, gdpr, lgpd, pipeda, uk_gdpr, vcdpa"
    with pytest.raises(InvalidInput, match="unknown regime"):
        compute_deadlines("hipaa", at(date(2025, 3, 5), "UTC"))


@pytest.mark.parametrize("code", ["XX", "DE-ZZ", "", "germany"])
def test_unknown_calendar(code: str) -> None:
    with pytest.raises(InvalidInput, match="unknown holiday calendar") as err:
        compute_deadlines("gdpr", at(date(2025, 3, 5), "UTC"), calendar=code)
    assert "ISO 3166-1" in (err.value.fix or "")


def test_unknown_time_zone() -> None:
    with pytest.raises(InvalidInput, match="unknown time zone") as err:
        compute_deadlines("gdpr", at(date(2025, 3, 5), "UTC"), tz="Mars/Olympus")
    assert "IANA" in (err.value.fix or "")
    with pytest.raises(InvalidInput, match="unknown time zone"):
        days_left(date(2025, 3, 5), at(date(2025, 3, 5), "UTC"), "")
