"""The late-fee policy of docs/product.md: 15 days' grace, then 3 % a day, never more than the fine."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from violations.fees import PrcLateFeePolicy, business_today, policy_from_config

DECIDED = date(2026, 11, 5)
policy = PrcLateFeePolicy()


def on_day(n):
    """The local date n days after the decision date."""
    return DECIDED + timedelta(days=n)


def test_due_date_is_fifteen_days_after_decision():
    assert policy.due_date(DECIDED) == date(2026, 11, 20)


@pytest.mark.parametrize("day", [-3, 0, 1, 14, 15])
def test_no_late_fee_up_to_and_including_day_15(day):
    assert policy.late_fee(20000, DECIDED, on_day(day)) == 0
    assert policy.days_overdue(DECIDED, on_day(day)) == 0


def test_day_16_adds_one_day_of_three_percent():
    assert policy.days_overdue(DECIDED, on_day(16)) == 1
    assert policy.late_fee(20000, DECIDED, on_day(16)) == 600


def test_each_day_adds_three_percent_of_the_fine():
    assert [policy.late_fee(10000, DECIDED, on_day(15 + n)) for n in range(1, 5)] == [300, 600, 900, 1200]


def test_late_fee_reaches_the_fine_on_day_49_and_stops():
    # 34 days x 3 % = 102 %: capped at 100 % of the fine.
    assert policy.late_fee(20000, DECIDED, on_day(48)) == 19800
    assert policy.late_fee(20000, DECIDED, on_day(49)) == 20000
    assert policy.late_fee(20000, DECIDED, on_day(400)) == 20000


def test_rounding_is_half_up_to_the_minor_unit():
    # 50 fen x 3 % = 1.5 fen -> 2; 10 fen x 3 % = 0.3 fen -> 0; 150 x 3 % = 4.5 -> 5
    assert policy.late_fee(50, DECIDED, on_day(16)) == 2
    assert policy.late_fee(10, DECIDED, on_day(16)) == 0
    assert policy.late_fee(150, DECIDED, on_day(16)) == 5
    assert policy.late_fee(150, DECIDED, on_day(17)) == 9


def test_rounding_happens_once_on_the_total_not_per_day():
    # 17 fen x 3 % x 3 days = 1.53 -> 2 (per-day rounding would give 3 x 1 = 3).
    assert policy.late_fee(17, DECIDED, on_day(18)) == 2


def test_zero_fine_has_zero_late_fee():
    assert policy.late_fee(0, DECIDED, on_day(100)) == 0


def test_amounts_stay_exact_integers_for_large_fines():
    fine = 10**12 - 1
    fee = policy.late_fee(fine, DECIDED, on_day(17))
    assert isinstance(fee, int)
    assert fee == int((Decimal(fine) * Decimal("0.06")).to_integral_value(rounding="ROUND_HALF_UP"))


def test_grace_rate_and_cap_come_from_settings():
    custom = policy_from_config({
        "LATE_FEE_POLICY": "prc", "LATE_FEE_GRACE_DAYS": 30,
        "LATE_FEE_DAILY_RATE": Decimal("0.01"), "LATE_FEE_CAP_RATIO": Decimal("0.5"),
    })
    assert custom.late_fee(10000, DECIDED, on_day(30)) == 0
    assert custom.late_fee(10000, DECIDED, on_day(31)) == 100
    assert custom.late_fee(10000, DECIDED, on_day(200)) == 5000


def test_unknown_policy_name_fails_at_start_up():
    with pytest.raises(ValueError, match="unknown"):
        policy_from_config({"LATE_FEE_POLICY": "atlantis"})


class TestBusinessTimeZone:
    """Days are counted in the business time zone, not UTC."""

    def test_just_after_midnight_in_shanghai_is_already_the_next_day(self):
        # 16:30 UTC on the 20th is 00:30 on the 21st in Shanghai: day 16, one day overdue.
        now = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
        today = business_today("Asia/Shanghai", now)
        assert today == date(2026, 11, 21)
        assert policy.late_fee(20000, DECIDED, today) == 600

    def test_just_before_midnight_in_shanghai_is_still_the_due_date(self):
        now = datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC)
        today = business_today("Asia/Shanghai", now)
        assert today == date(2026, 11, 20)
        assert policy.late_fee(20000, DECIDED, today) == 0

    def test_another_zone_counts_its_own_days(self):
        now = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # still the 20th in New York
        assert business_today("America/New_York", now) == date(2026, 11, 20)
