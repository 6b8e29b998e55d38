"""The reminder rules on their own: numbers, stop words, which kinds are due, quiet hours, backoff."""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from notices import rules
from notices.models import DUE_SOON, LATE_FEE_STARTS, NEW_VIOLATION
from violations.fees import PrcLateFeePolicy

TZ = "Asia/Shanghai"
QUIET = rules.parse_quiet_hours("22:00-08:00")


@pytest.mark.parametrize("raw", ["13800138000", "138 0013 8000", "+86 138-0013-8000", "0086 13800138000",
                                 "8613800138000", "１３８００１３８０００"])
def test_mobile_numbers_are_normalised(raw):
    assert rules.normalize_mobile(raw) == "13800138000"


@pytest.mark.parametrize("raw", ["", "12800138000", "1380013800", "138001380000", "+1 4155550100", "abc",
                                 "010 8888 8888"])
def test_what_is_not_a_mainland_mobile_is_refused(raw):
    with pytest.raises(rules.InvalidMobile):
        rules.normalize_mobile(raw)


def test_the_mask():
    assert rules.mask_mobile("13800138000") == "138****8000"


@pytest.mark.parametrize("text,stops", [("TD", True), ("td", True), (" T D ", True), ("退订", True), ("STOP", True),
                                        ("stop.", True), ("hello", False), ("", False), ("TD please", False)])
def test_stop_words(text, stops):
    assert rules.is_stop_reply(text) is stops


def _kinds(decided_days_ago, *, today=date(2026, 12, 1), new=False):
    policy = PrcLateFeePolicy()
    due = policy.due_date(today - timedelta(days=decided_days_ago))
    subscribed = datetime(2026, 11, 1, tzinfo=UTC)
    created = subscribed + timedelta(days=1) if new else subscribed - timedelta(days=1)
    return rules.kinds_due(due_date=due, today=today, created_at=created, subscribed_at=subscribed, tz=TZ)


def test_the_kinds_due_over_a_violations_life():
    # Grace 15 days: the late fee starts on day 16 after the decision; the reminder from day 13.
    assert _kinds(0, new=True) == [NEW_VIOLATION]
    assert _kinds(12) == []
    assert _kinds(13) == [DUE_SOON]  # 3 days before the late fee starts
    assert _kinds(15) == [DUE_SOON]  # the last day without a late fee
    assert _kinds(16) == [LATE_FEE_STARTS]  # the day it starts
    assert _kinds(17) == [LATE_FEE_STARTS]  # a missed day's run still tells
    assert _kinds(18) == []  # nothing stale
    assert _kinds(16, new=True) == [LATE_FEE_STARTS]  # recorded late: no "new" once the fee has started


def test_a_violation_recorded_before_the_subscription_is_not_new():
    assert _kinds(0, new=False) == []


def _at(hour, minute=0, day=date(2026, 12, 1)):
    return datetime.combine(day, time(hour, minute), ZoneInfo(TZ)).astimezone(UTC)


@pytest.mark.parametrize("hour,minute,quiet", [(21, 59, False), (22, 0, True), (23, 30, True), (0, 0, True),
                                               (7, 59, True), (8, 0, False), (12, 0, False)])
def test_quiet_hours_in_the_business_zone(hour, minute, quiet):
    assert rules.in_quiet_hours(_at(hour, minute), QUIET, TZ) is quiet


def test_quiet_hours_end_the_next_morning_or_this_one():
    assert rules.quiet_hours_end(_at(23), QUIET, TZ) == _at(8, day=date(2026, 12, 2))
    assert rules.quiet_hours_end(_at(3), QUIET, TZ) == _at(8)


def test_no_quiet_hours_and_a_malformed_setting():
    assert rules.parse_quiet_hours("") is None
    assert not rules.in_quiet_hours(_at(23), None, TZ)
    with pytest.raises(ValueError, match="NOTICE_QUIET_HOURS"):
        rules.parse_quiet_hours("late")


def test_the_capped_number_waits_for_the_next_morning():
    assert rules.next_day_start(date(2026, 12, 1), QUIET, TZ) == _at(8, day=date(2026, 12, 2))


def test_backoff_doubles_up_to_its_cap():
    assert [rules.backoff(n, 300).total_seconds() for n in (1, 2, 3, 4)] == [300, 600, 1200, 2400]
    assert rules.backoff(20, 300) == timedelta(hours=6)


def test_the_vin_tail():
    assert rules.vin_tail("A12345") == "2345"
