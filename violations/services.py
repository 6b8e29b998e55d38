"""Looking up what a vehicle owes."""
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import bindparam, select

from finepay.dbtypes import utcnow
from finepay.extensions import db
from violations.fees import current_policy
from violations.models import PAID, UNPAID, Violation

# Why a violation cannot be paid online (codes the payments API answers with).
ALREADY_PAID, NOT_PAYABLE, NOTHING_TO_PAY, IN_PERSON_ONLY = "already_paid", "not_payable", "nothing_to_pay", \
    "not_payable_online"


def why_not_payable(violation):
    """Why a violation (a row, model or ViolationLine) cannot be paid online now, or None when it can.

    The one place this rule lives: lookups, payments, settlement and imports all ask here.
    """
    if violation.status == PAID:
        return ALREADY_PAID
    if violation.status != UNPAID:
        return NOT_PAYABLE
    if violation.fine <= 0:
        return NOTHING_TO_PAY
    if not violation.payable_online:
        return IN_PERSON_ONLY
    return None


def is_payable(violation):
    """Whether a violation can be paid online now (see why_not_payable)."""
    return why_not_payable(violation) is None


@dataclass
class ViolationLine:
    """A violation as a driver sees it: with its late fee and amount due today."""

    id: int
    notice_number: str
    occurred_at: datetime
    location: str
    offense_code: str
    description: str
    points: int
    fine: int
    late_fee: int
    amount_due: int
    due_date: date
    days_overdue: int
    status: str
    payable_online: bool
    receipt_number: str | None
    paid_at: datetime | None

    @property
    def payable(self):
        """Whether the driver can pay this line online now."""
        return is_payable(self)


@dataclass
class VehicleStatement:
    """Everything recorded against one vehicle, priced as of one moment."""

    plate: str
    vin_last6: str
    currency: str
    as_of: datetime
    total_due: int
    total_payable_online: int
    violations: list

    @property
    def payable_ids(self):
        """Ids of the violations that can be paid online now."""
        return [v.id for v in self.violations if v.payable]


# What a statement shows, and nothing else: plain rows, no ORM objects to build and track.
# Both queries are built once: a lookup only binds its parameters.
_violations = Violation.__table__
_STATEMENT = select(*(_violations.c[name] for name in (
    "id", "notice_number", "plate", "vin_last6", "occurred_at", "location", "offense_code", "description",
    "points", "fine", "decision_date", "status", "payable_online", "late_fee_paid", "paid_at", "receipt_number",
)))
BY_VIN = _STATEMENT.where(_violations.c.plate == bindparam("plate"), _violations.c.vin_last6 == bindparam("vin_last6"))
# The notice proves the vehicle: the same plate with the same VIN code,
# so a plate later issued to another car does not show its fines.
BY_NOTICE = _STATEMENT.where(
    _violations.c.plate == bindparam("plate"),
    _violations.c.vin_last6 == select(_violations.c.vin_last6).where(
        _violations.c.notice_number == bindparam("notice_number"), _violations.c.plate == bindparam("plate")
    ).scalar_subquery(),
)


def price(violation, policy, today, tz):
    """The driver's view of one violation on a given local date."""
    due = policy.due_date(violation.decision_date)
    if violation.status == PAID:
        late_fee, amount_due, overdue = violation.late_fee_paid or 0, 0, 0
    elif violation.status == UNPAID:
        late_fee = policy.late_fee(violation.fine, violation.decision_date, today)
        amount_due = violation.fine + late_fee
        overdue = policy.days_overdue(violation.decision_date, today)
    else:
        late_fee, amount_due, overdue = 0, 0, 0
    return ViolationLine(
        id=violation.id,
        notice_number=violation.notice_number,
        occurred_at=violation.occurred_at.astimezone(tz),
        location=violation.location,
        offense_code=violation.offense_code,
        description=violation.description,
        points=violation.points,
        fine=violation.fine,
        late_fee=late_fee,
        amount_due=amount_due,
        due_date=due,
        days_overdue=overdue,
        status=violation.status,
        payable_online=violation.payable_online,
        receipt_number=violation.receipt_number,
        paid_at=violation.paid_at.astimezone(tz) if violation.paid_at else None,
    )


def _read(query, params):
    """All rows of one read-only query.

    Inside a transaction the query joins it (a kiosk visit, a payment). Otherwise
    one SELECT is its own consistent snapshot and needs no transaction: in
    autocommit it costs one database round trip instead of three (BEGIN, the
    query, ROLLBACK).
    """
    if db.session().in_transaction():
        return db.session.execute(query, params).all()
    with db.engine.connect() as connection:
        return connection.execution_options(isolation_level="AUTOCOMMIT").execute(query, params).all()


def lookup_vehicle(plate, vin_last6=None, notice_number=None, now=None):
    """Return the VehicleStatement for a plate proven by its VIN code or a notice number, or None.

    Arguments are already normalised. None means "no such vehicle" whether the
    plate is unknown or the second fact is wrong: callers must not tell them apart.
    """
    if (vin_last6 is None) == (notice_number is None):
        raise ValueError("give exactly one of vin_last6 and notice_number")
    if vin_last6 is not None:
        rows = _read(BY_VIN, {"plate": plate, "vin_last6": vin_last6})
    else:
        rows = _read(BY_NOTICE, {"plate": plate, "notice_number": notice_number})
    if not rows:
        return None
    tz = ZoneInfo(current_app.config["BUSINESS_TIMEZONE"])
    now = (now or utcnow()).astimezone(tz)
    policy = current_policy()
    lines = sorted(
        (price(v, policy, now.date(), tz) for v in rows),
        # Owed and payable first, then owed in person, then settled; newest first within each.
        key=lambda line: (line.status != UNPAID, not line.payable, -line.occurred_at.timestamp()),
    )
    return VehicleStatement(
        plate=plate,
        vin_last6=rows[0].vin_last6,
        currency=current_app.config["CURRENCY"],
        as_of=now,
        total_due=sum(line.amount_due for line in lines if line.status == UNPAID),
        total_payable_online=sum(line.amount_due for line in lines if line.payable),
        violations=lines,
    )
