"""Legal regimes and their response-deadline rules, as frozen data.

Each :class:`Rule` names its legal source and says how the deadline engine in
:mod:`dsar.deadlines` counts: the period, the counting method, the extension, when the clock
starts, whether a pause suspends it, and any acknowledgement duty. The rules follow
``shared/legal/DEADLINES.md``.

Where the law leaves a choice open, the choice is a field of the rule with its default stated
here and in ``notes``; a deployment that reads the law differently derives its own rule with
:func:`dataclasses.replace`, e.g. ``replace(rule_for("ccpa"), roll_to_working_day=True)``, and
passes that rule to :func:`dsar.deadlines.compute_deadlines`. A changed reading is a new rule
version: bump ``version`` when the data below changes.

Open choices and their defaults:

* ``roll_to_working_day`` for calendar-day regimes (CCPA, VCDPA, CPA, LGPD, PIPEDA): default
  ``False``. None of these statutes moves a count of days off a weekend, so the engine does not
  either; set it to ``True`` to end such periods on the next working day of the calendar in use.
* ``pause_suspends`` for regimes whose texts are silent on pausing (VCDPA, CPA, LGPD, PIPEDA):
  default ``False``, the conservative reading (the deadline never moves later because the
  controller waited for the subject). CCPA is ``False`` by its own words: 45 days "regardless of
  the time required to verify the request".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dsar.errors import InvalidInput

__all__ = ["REGIMES", "Counting", "Rule", "rule_for"]


class Counting(enum.Enum):
    """How a period is counted from the clock-start day (which is never itself counted)."""

    #: Regulation (EEC) 1182/71 Art. 3: months end on the same date of the last month, or that
    #: month's last day; a Saturday, Sunday or public holiday ends on the next working day.
    EU_1182_71_MONTHS = "eu-1182/71-months"
    #: ICO calendar month: the same date next month, or that month's last day; no roll.
    UK_CALENDAR_MONTH = "uk-calendar-month"
    #: A number of calendar days after the clock-start day.
    CALENDAR_DAYS = "calendar-days"

    @property
    def unit(self) -> str:
        """``"months"`` or ``"days"``."""
        return "days" if self is Counting.CALENDAR_DAYS else "months"


@dataclass(frozen=True, slots=True)
class Rule:
    """One regime's deadline rule. Immutable; derive variants with :func:`dataclasses.replace`.

    Periods are counted from ``clock start`` (the day of receipt in the controller's time zone,
    or for ``clock_starts_at_identity`` the latest of receipt, identity proof and fee).
    """

    #: Stable key, e.g. ``"gdpr"``.
    regime: str
    #: Stable rule id recorded with every computed deadline, e.g. ``"gdpr-art12-3"``.
    id: str
    #: Version of this rule's data; recorded with every computed deadline.
    version: str
    #: Human-readable name of the law.
    name: str
    #: The legal source and what it says about the deadline.
    source: str
    #: Length of the first period, in ``counting.unit``.
    period: int
    #: How ``period`` and ``extended_period`` are counted.
    counting: Counting
    #: Total length of the extended period from clock start (e.g. 3 months, 90 days), in
    #: ``counting.unit``; ``None`` when the regime allows no extension.
    extended_period: int | None
    #: The clock starts at the latest of receipt, identity proof and fee (UK GDPR Art. 12A).
    clock_starts_at_identity: bool
    #: A pause to ask for identity proof or clarification suspends the clock.
    pause_suspends: bool
    #: Why ``pause_suspends`` has its value.
    pause_basis: str
    #: Business days after receipt by which receipt must be acknowledged; ``None``: no duty.
    acknowledge_business_days: int | None
    #: End a period falling on a weekend or holiday on the next working day instead.
    roll_to_working_day: bool
    #: Months for which records of requests must be kept; ``None``: no specific rule.
    keep_records_months: int | None = None
    #: Choices made where the law is open, with the default taken.
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def extension(self) -> int | None:
        """Further units the extension adds to the first period, or ``None``."""
        return None if self.extended_period is None else self.extended_period - self.period

    @property
    def unit(self) -> str:
        """``"months"`` or ``"days"``."""
        return self.counting.unit


_CALENDAR_DAY_ROLL_NOTE = (
    "roll_to_working_day defaults to False: the statute counts calendar days and says nothing "
    "of weekends or holidays; set it to True to end on the next working day."
)

_RULES: tuple[Rule, ...] = (
    Rule(
        regime="gdpr",
        id="gdpr-art12-3",
        version="2025.1",
        name="EU General Data Protection Regulation",
        source=(
            "GDPR Art. 12(3): information on action taken without undue delay and in any event "
            "within one month of receipt, extendable by two further months where necessary "
            "given the complexity and number of the requests; the subject is told of any "
            "extension, with reasons, within one month. Months counted under Regulation (EEC) "
            "1182/71 (EDPB Guidelines 01/2022 §§159-161)."
        ),
        period=1,
        counting=Counting.EU_1182_71_MONTHS,
        extended_period=3,
        clock_starts_at_identity=False,
        pause_suspends=True,
        pause_basis=(
            "EDPB Guidelines 01/2022 §159: time may be suspended while the controller waits for "
            "information it asked for to identify the subject or clarify the request."
        ),
        acknowledge_business_days=None,
        roll_to_working_day=True,
        notes=(
            "Extended deadline read as three months from receipt, then the working-day rule.",
            "Public holidays are those of the calendar given (the controller's Member State).",
        ),
    ),
    Rule(
        regime="uk_gdpr",
        id="uk-gdpr-art12-3-12a",
        version="2025.1",
        name="UK General Data Protection Regulation",
        source=(
            "UK GDPR Art. 12(3) and 12A (Data (Use and Access) Act 2025): one calendar month "
            "from the latest of receipt, receipt of identity proof and receipt of a fee, "
            "extendable by two further months, with notice within the first month; the clock "
            "pauses while waiting for clarification. ICO: the same date next month, or that "
            "month's last day where it has no such date."
        ),
        period=1,
        counting=Counting.UK_CALENDAR_MONTH,
        extended_period=3,
        clock_starts_at_identity=True,
        pause_suspends=True,
        pause_basis="UK GDPR Art. 12A: the time is paused while waiting for clarification.",
        acknowledge_business_days=None,
        roll_to_working_day=False,
        notes=("ICO counts calendar months with no move off weekends or bank holidays.",),
    ),
    Rule(
        regime="ccpa",
        id="ccpa-11ccr-7021",
        version="2025.1",
        name="California Consumer Privacy Act / CPRA",
        source=(
            "11 CCR §7021: respond within 45 calendar days of receipt, regardless of the time "
            "required to verify the request; up to 45 more (90 in all) with notice and reason "
            "within the first 45 days; confirm receipt within 10 business days (§7021(a)); "
            "keep request records at least 24 months (§7101)."
        ),
        period=45,
        counting=Counting.CALENDAR_DAYS,
        extended_period=90,
        clock_starts_at_identity=False,
        pause_suspends=False,
        pause_basis="11 CCR §7021(b): 45 days regardless of the time verification takes.",
        acknowledge_business_days=10,
        roll_to_working_day=False,
        keep_records_months=24,
        notes=(_CALENDAR_DAY_ROLL_NOTE,),
    ),
    Rule(
        regime="vcdpa",
        id="vcdpa-59.1-577",
        version="2025.1",
        name="Virginia Consumer Data Protection Act",
        source=(
            "Va. Code §59.1-577(B)(1): respond within 45 days of receipt; extendable once by "
            "45 more days where reasonably necessary, with notice within the first 45 days."
        ),
        period=45,
        counting=Counting.CALENDAR_DAYS,
        extended_period=90,
        clock_starts_at_identity=False,
        pause_suspends=False,
        pause_basis="The Act provides no pause; default False (conservative reading).",
        acknowledge_business_days=None,
        roll_to_working_day=False,
        notes=(_CALENDAR_DAY_ROLL_NOTE,),
    ),
    Rule(
        regime="cpa",
        id="cpa-6-1-1306",
        version="2025.1",
        name="Colorado Privacy Act",
        source=(
            "C.R.S. §6-1-1306(2): respond within 45 days of receipt; extendable by 45 more "
            "days where reasonably necessary, with notice within the first 45 days; keep "
            "request records, appeals included, at least 24 months (Rule 6.11)."
        ),
        period=45,
        counting=Counting.CALENDAR_DAYS,
        extended_period=90,
        clock_starts_at_identity=False,
        pause_suspends=False,
        pause_basis="The Act provides no pause; default False (conservative reading).",
        acknowledge_business_days=None,
        roll_to_working_day=False,
        keep_records_months=24,
        notes=(_CALENDAR_DAY_ROLL_NOTE,),
    ),
    Rule(
        regime="lgpd",
        id="lgpd-art19",
        version="2025.1",
        name="Brazil Lei Geral de Proteção de Dados",
        source=(
            "LGPD Art. 19(II): a clear and full declaration within 15 days of the request; "
            "no extension."
        ),
        period=15,
        counting=Counting.CALENDAR_DAYS,
        extended_period=None,
        clock_starts_at_identity=False,
        pause_suspends=False,
        pause_basis="Art. 19 provides no pause; default False (conservative reading).",
        acknowledge_business_days=None,
        roll_to_working_day=False,
        notes=(_CALENDAR_DAY_ROLL_NOTE,),
    ),
    Rule(
        regime="pipeda",
        id="pipeda-s8",
        version="2025.1",
        name="Canada Personal Information Protection and Electronic Documents Act",
        source=(
            "PIPEDA s. 8(3)-(5): respond within 30 days of receipt, or be deemed to refuse; "
            "extendable by up to 30 more days, with notice within the first 30 days naming "
            "the right to complain to the Commissioner."
        ),
        period=30,
        counting=Counting.CALENDAR_DAYS,
        extended_period=60,
        clock_starts_at_identity=False,
        pause_suspends=False,
        pause_basis="s. 8 provides no pause; default False (conservative reading).",
        acknowledge_business_days=None,
        roll_to_working_day=False,
        notes=(_CALENDAR_DAY_ROLL_NOTE,),
    ),
)

#: Every regime's rule, keyed by regime id. Read-only.
REGIMES: Mapping[str, Rule] = MappingProxyType({rule.regime: rule for rule in _RULES})


def rule_for(regime: str) -> Rule:
    """Return the rule for ``regime`` (e.g. ``"gdpr"``).

    Raises :class:`~dsar.errors.InvalidInput` naming the known regimes when it is unknown.
    """
    try:
        return REGIMES[regime]
    except (KeyError, TypeError):
        raise InvalidInput(
            f"unknown regime {regime!r}", f"use one of: {', '.join(sorted(REGIMES))}"
        ) from None
