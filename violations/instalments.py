"""Instalment plans: how an approved plan splits what is owed, when each instalment is due, and its late fee.

The rules (docs/instalments.md says the same in words):

* The amount split is the fine plus the late fee accrued on the approval date.
  Each instalment is a whole number of the currency's main unit (yuan) and the
  remainder, fen included, goes on the first.
* By default instalment k is due k months after the approval date (the last
  day of a shorter month when the day does not exist there).
* While the plan is kept no late fee grows: what is owed is the instalments.
* An instalment missed (unpaid after its due date, in the business time
  zone; or paid after it) breaks the plan for good: from the day after the
  first missed due date the late-fee policy's daily rate runs on every
  instalment still unpaid (the unpaid remainder), each rounded half up and
  capped as the policy caps a fine (at the instalment's amount), and the late
  fee in all (at approval plus resumed) never exceeds the policy's cap on the
  fine.
"""
import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select

from violations.models import PAID, UNPAID, Instalment, InstalmentPlan

MIN_INSTALMENTS, MAX_INSTALMENTS = 2, 6


def add_months(day, months):
    """The same day ``months`` later, or the last day of that month when it is shorter."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def monthly_due_dates(count, approved_on):
    """The default due dates: one a month after the approval date, then monthly."""
    return [add_months(approved_on, k) for k in range(1, count + 1)]


def split_amount(total, count, unit=100):
    """Split ``total`` minor units into ``count`` instalments of whole ``unit``s, the remainder on the first.

    When the total is too small for every instalment to get one whole unit, it is split in minor units instead.
    """
    if count < 1 or total < count:
        raise ValueError(f"cannot split {total} into {count} instalments")
    share = total // count // unit * unit or total // count
    return [total - share * (count - 1)] + [share] * (count - 1)


@dataclass(frozen=True)
class InstalmentLine:
    """One instalment as the driver and staff see it on a given day."""

    id: int
    number: int
    count: int
    amount: int
    due_date: date
    status: str
    late_fee: int
    paid_at: datetime | None
    receipt_number: str | None
    missed: bool

    @property
    def amount_due(self):
        """What paying this instalment costs now (0 once paid)."""
        return self.amount + self.late_fee if self.status == UNPAID else 0


@dataclass(frozen=True)
class PlanTerms:
    """A plan priced on one day: its instalments, whether it is kept, and what is owed."""

    instalments: tuple
    late_fee_at_approval: int
    broken_on: date | None
    days_overdue: int

    @property
    def count(self):
        """How many instalments the plan has."""
        return len(self.instalments)

    @property
    def kept(self):
        """Whether no instalment has been missed (the late fee is suspended)."""
        return self.broken_on is None

    @property
    def next(self):
        """The next unpaid instalment (the only one a driver can pay), or None when all are paid."""
        return next((line for line in self.instalments if line.status == UNPAID), None)

    @property
    def late_fee(self):
        """The late fee in all: the one at approval plus any resumed since a missed instalment (paid or owed)."""
        return self.late_fee_at_approval + sum(line.late_fee for line in self.instalments)

    @property
    def amount_due(self):
        """What is still owed: the unpaid instalments with their late fees."""
        return sum(line.amount_due for line in self.instalments)

    @property
    def due_date(self):
        """The due date that matters now: the next unpaid instalment's (the last one's once all are paid)."""
        line = self.next or self.instalments[-1]
        return line.due_date


def local_date(moment, tz):
    """The business date of an instant (tz: a ZoneInfo)."""
    return moment.astimezone(tz).date()


def instalment_terms(plan, instalments, policy, today, tz):
    """The one hook through which a plan changes a violation's late fee: the plan's PlanTerms on ``today``.

    ``plan`` and ``instalments`` are model objects or rows with the same names.
    """
    instalments = sorted(instalments, key=lambda i: i.number)
    missed = [i.due_date for i in instalments if i.due_date < today and (
        i.status == UNPAID or (i.paid_at is not None and local_date(i.paid_at, tz) > i.due_date))]
    broken_on = min(missed) if missed else None
    days = (today - broken_on).days if broken_on else 0
    headroom = max(0, policy.cap(plan.fine) - plan.late_fee
                   - sum(i.late_fee_paid or 0 for i in instalments if i.status == PAID))
    lines = []
    for i in instalments:
        if i.status == PAID:
            fee = i.late_fee_paid or 0
        else:
            fee = min(headroom, policy.daily_fee(i.amount, days), policy.cap(i.amount))
            headroom -= fee
        lines.append(InstalmentLine(
            id=i.id, number=i.number, count=len(instalments), amount=i.amount, due_date=i.due_date,
            status=i.status, late_fee=fee, paid_at=i.paid_at.astimezone(tz) if i.paid_at else None,
            receipt_number=i.receipt_number, missed=i.status == UNPAID and i.due_date < today,
        ))
    return PlanTerms(instalments=tuple(lines), late_fee_at_approval=plan.late_fee, broken_on=broken_on,
                     days_overdue=days)


_plans, _instalments = InstalmentPlan.__table__, Instalment.__table__
# Every instalment of the plans of some violations, as plain rows (a lookup binds the ids).
PLANS_OF = select(
    _plans.c.violation_id, _plans.c.fine, _plans.c.late_fee, _instalments.c.id, _instalments.c.number,
    _instalments.c.amount, _instalments.c.due_date, _instalments.c.status, _instalments.c.late_fee_paid,
    _instalments.c.paid_at, _instalments.c.receipt_number,
).join(_instalments, _instalments.c.plan_id == _plans.c.id).where(
    _plans.c.violation_id.in_(bindparam("violation_ids", expanding=True))
)


def group_plans(rows):
    """{violation id: (plan row, [instalment rows])} from rows of PLANS_OF."""
    plans = {}
    for row in rows:
        plans.setdefault(row.violation_id, (row, []))[1].append(row)
    return plans


def plans_of(session, violation_ids):
    """{violation id: (plan row, [instalment rows])} for those of these violations that have a plan."""
    if not violation_ids:
        return {}
    return group_plans(session.execute(PLANS_OF, {"violation_ids": list(violation_ids)}).all())


def due_dates_problem(due_dates, today):
    """Why these due dates cannot make a plan approved today (a message id for the caller), or None."""
    if not MIN_INSTALMENTS <= len(due_dates) <= MAX_INSTALMENTS:
        return "count"
    if due_dates[0] < today:
        return "past"
    if any(later <= earlier for earlier, later in zip(due_dates[:-1], due_dates[1:], strict=True)):
        return "order"
    if due_dates[-1] > today + timedelta(days=366 * 2):
        return "too_far"
    return None
