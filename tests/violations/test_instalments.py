"""The instalment rules on their own: the split, the default due dates, and the late fee kept, missed and resumed."""
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from violations.fees import PrcLateFeePolicy
from violations.instalments import (
    add_months,
    due_dates_problem,
    instalment_terms,
    monthly_due_dates,
    split_amount,
)

POLICY = PrcLateFeePolicy()
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Plan:
    fine: int = 20000
    late_fee: int = 3000


@dataclass
class Row:
    id: int
    number: int
    amount: int
    due_date: date
    status: str = "unpaid"
    late_fee_paid: int | None = None
    paid_at: datetime | None = None
    receipt_number: str | None = None


def three(paid=()):
    """7800 + 7600 + 7600 due 15 Dec, 15 Jan, 15 Feb; ``paid``: {number: paid_at}."""
    dues = [date(2026, 12, 15), date(2027, 1, 15), date(2027, 2, 15)]
    rows = [Row(n, n, amount, due) for n, (amount, due) in enumerate(zip([7800, 7600, 7600], dues, strict=True), 1)]
    for number, paid_at in dict(paid).items():
        row = rows[number - 1]
        row.status, row.paid_at, row.late_fee_paid, row.receipt_number = "paid", paid_at, 0, f"FP-{number}"
    return rows


@pytest.mark.parametrize(("total", "count", "expected"), [
    (23000, 3, [7800, 7600, 7600]),
    (20000, 2, [10000, 10000]),
    (20001, 2, [10001, 10000]),
    (10099, 6, [2099] + [1600] * 5),
    (500, 6, [85, 83, 83, 83, 83, 83]),  # under a yuan each: split in fen
])
def test_the_split_is_in_whole_yuan_with_the_remainder_on_the_first(total, count, expected):
    amounts = split_amount(total, count)
    assert sum(amounts) == total
    assert amounts == expected


def test_monthly_due_dates_fall_on_the_last_day_of_a_shorter_month():
    assert monthly_due_dates(3, date(2026, 11, 30)) == [date(2026, 12, 30), date(2027, 1, 30), date(2027, 2, 28)]
    assert add_months(date(2027, 12, 31), 2) == date(2028, 2, 29)


@pytest.mark.parametrize(("dates", "problem"), [
    ([date(2026, 12, 1)], "count"),
    ([date(2026, 12, d) for d in range(1, 8)], "count"),
    ([date(2026, 11, 29), date(2026, 12, 29)], "past"),
    ([date(2026, 12, 29), date(2026, 12, 29)], "order"),
    ([date(2027, 1, 29), date(2026, 12, 29)], "order"),
    ([date(2026, 12, 29), date(2029, 1, 1)], "too_far"),
    ([date(2026, 11, 30), date(2026, 12, 30)], None),
])
def test_due_dates_must_be_two_to_six_in_order_from_today(dates, problem):
    assert due_dates_problem(dates, date(2026, 11, 30)) == problem


def test_while_the_plan_is_kept_no_late_fee_grows():
    terms = instalment_terms(Plan(), three(), POLICY, date(2026, 12, 15), SHANGHAI)  # the first due date itself
    assert terms.kept
    assert terms.late_fee == 3000  # what was owed at approval, inside the instalments
    assert terms.amount_due == 23000
    assert terms.next.number == 1


def test_a_missed_instalment_breaks_the_plan_and_the_fee_resumes_on_the_remainder():
    terms = instalment_terms(Plan(), three(), POLICY, date(2026, 12, 25), SHANGHAI)  # 10 days after 15 Dec
    assert not terms.kept and terms.broken_on == date(2026, 12, 15) and terms.days_overdue == 10
    assert [line.late_fee for line in terms.instalments] == [2340, 2280, 2280]  # 3 % a day of each, 10 days
    assert [line.missed for line in terms.instalments] == [True, False, False]
    assert terms.amount_due == 23000 + 2340 + 2280 + 2280


def test_paying_the_missed_one_late_leaves_the_plan_broken():
    paid_late = datetime(2026, 12, 20, 4, tzinfo=UTC)  # 20 Dec in Shanghai: 5 days late
    terms = instalment_terms(Plan(), three({1: paid_late}), POLICY, date(2026, 12, 25), SHANGHAI)
    assert not terms.kept
    assert [line.late_fee for line in terms.instalments] == [0, 2280, 2280]


def test_paid_on_time_in_the_business_time_zone_keeps_the_plan():
    # 15 Dec 23:30 in Shanghai is 15:30 UTC: on time, although UTC and Shanghai agree on the date here.
    on_time = datetime(2026, 12, 15, 15, 30, tzinfo=UTC)
    terms = instalment_terms(Plan(), three({1: on_time}), POLICY, date(2027, 1, 10), SHANGHAI)
    assert terms.kept and terms.late_fee == 3000 and terms.next.number == 2
    late = datetime(2026, 12, 15, 16, 30, tzinfo=UTC)  # 16 Dec 00:30 in Shanghai: a day late
    assert not instalment_terms(Plan(), three({1: late}), POLICY, date(2027, 1, 10), SHANGHAI).kept


def test_the_resumed_fee_never_takes_the_late_fee_above_the_fine():
    terms = instalment_terms(Plan(), three(), POLICY, date(2027, 12, 25), SHANGHAI)
    assert terms.late_fee == 20000  # capped at the fine, as the policy caps it
    # Each instalment's own fee is capped at its amount; the last gets what is left under the fine.
    assert [line.late_fee for line in terms.instalments] == [7800, 7600, 1600]
