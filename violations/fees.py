"""Late-fee policies. A policy is chosen by the LATE_FEE_POLICY setting."""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from flask import current_app


def business_today(tz_name, now=None):
    """The calendar date in the business time zone (late fees count local days)."""
    now = now or datetime.now(ZoneInfo("UTC"))
    return now.astimezone(ZoneInfo(tz_name)).date()


def business_day_window(day, tz_name=None):
    """The UTC instants [start, end) of a business date (or of an inclusive (first, last) pair)."""
    first, last = day if isinstance(day, tuple) else (day, day)
    zone = ZoneInfo(tz_name or current_app.config["BUSINESS_TIMEZONE"])
    start = datetime.combine(first, time(0), zone)
    end = datetime.combine(last + timedelta(days=1), time(0), zone)
    return start, end


@dataclass(frozen=True)
class PrcLateFeePolicy:
    """PRC Administrative Penalty Law arts. 67 and 72: 3 % a day after the grace period, capped at the fine."""

    grace_days: int = 15
    daily_rate: Decimal = Decimal("0.03")
    cap_ratio: Decimal = Decimal("1")

    def due_date(self, decision_date: date) -> date:
        """The last day the fine can be paid without a late fee."""
        return decision_date + timedelta(days=self.grace_days)

    def days_overdue(self, decision_date: date, on: date) -> int:
        """Whole days past the due date on the given local date."""
        return self.days_past(self.due_date(decision_date), on)

    def late_fee(self, fine: int, decision_date: date, on: date) -> int:
        """The late fee in minor units owed on the given local date."""
        return self.late_fee_after(fine, self.due_date(decision_date), on)

    @staticmethod
    def days_past(due: date, on: date) -> int:
        """Whole days past a given due date on the given local date."""
        return max(0, (on - due).days)

    def late_fee_after(self, fine: int, due: date, on: date) -> int:
        """The late fee in minor units owed on the given local date for a fine due on ``due``."""
        return min(self.daily_fee(fine, self.days_past(due, on)), self.cap(fine))

    def daily_fee(self, base: int, days: int) -> int:
        """The daily rate on ``base`` for ``days`` days, rounded half up to the minor unit (before the cap)."""
        return int((Decimal(base) * self.daily_rate * days).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def cap(self, fine: int) -> int:
        """The most late fee a fine can ever carry, in minor units."""
        return int((Decimal(fine) * self.cap_ratio).quantize(Decimal(1), rounding=ROUND_HALF_UP))


POLICIES = {"prc": PrcLateFeePolicy}


def policy_from_config(config):
    """Build the configured policy (raising on an unknown name at start-up, not per request)."""
    name = config["LATE_FEE_POLICY"]
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError(f"LATE_FEE_POLICY {name!r} is unknown; known: {sorted(POLICIES)}") from None
    return cls(
        grace_days=config["LATE_FEE_GRACE_DAYS"],
        daily_rate=config["LATE_FEE_DAILY_RATE"],
        cap_ratio=config["LATE_FEE_CAP_RATIO"],
    )


def init_app(app):
    """Build the policy once per app."""
    app.extensions["finepay.late_fee_policy"] = policy_from_config(app.config)


def current_policy():
    """The late-fee policy of the running app."""
    return current_app.extensions["finepay.late_fee_policy"]
