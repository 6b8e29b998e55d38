"""Violations recorded against vehicles."""
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finepay.dbtypes import BigId, UTCDateTime, utcnow
from finepay.extensions import db

UNPAID, PAID, VOID = "unpaid", "paid", "void"
STATUSES = (UNPAID, PAID, VOID)


class Violation(db.Model):
    """One traffic violation notice and what it costs."""

    __tablename__ = "violations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notice_number: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    # The finance bureau's 20-digit payment code (缴款码) from the notice, when the import gave one
    # (violations.payment_codes): a second number the driver may prove the vehicle with.
    payment_code: Mapped[str | None] = mapped_column(String(20), unique=True)
    plate: Mapped[str] = mapped_column(String(16), nullable=False)
    vin_last6: Mapped[str] = mapped_column(String(6), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    location: Mapped[str] = mapped_column(String(200), nullable=False)
    offense_code: Mapped[str] = mapped_column(String(16), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False)
    fine: Mapped[int] = mapped_column(BigInteger, nullable=False)
    points: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    decision_date: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False, default=UNPAID)
    payable_online: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # Settlement facts, written once when the violation is paid, so a lookup
    # needs one query and a paid fine shows what was actually paid.
    late_fee_paid: Mapped[int | None] = mapped_column(BigInteger)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    receipt_number: Mapped[str | None] = mapped_column(String(32))
    # Set by the cases area (cases/services.py): the open contest holding this violation (its case number;
    # not payable meanwhile) and the business date it was filed on (the late fee counts no day after it);
    # and a due date a decision set (an upheld contest, an approved deferral) in place of the policy's, with
    # the late fee already owed when it was set (minor units), which the new due date does not wipe out.
    contest_case: Mapped[str | None] = mapped_column(String(16))
    fee_stopped_on: Mapped[date | None] = mapped_column(Date)
    due_on: Mapped[date | None] = mapped_column(Date)
    fee_carried: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # Every lookup is "this plate, this VIN code": one index scan.
        Index("ix_violations_plate_vin", "plate", "vin_last6"),
        CheckConstraint("status IN ('unpaid', 'paid', 'void')", name="status"),
        CheckConstraint("fine >= 0", name="fine_not_negative"),
        CheckConstraint("points >= 0", name="points_not_negative"),
    )

    def __repr__(self):
        return f"<Violation {self.notice_number} {self.plate} {self.status}>"




class InstalmentPlan(db.Model):
    """A supervisor's approval to pay one violation in instalments: the amount split, the late fee frozen at approval.

    The rules (split, due dates, the late fee while kept and once broken) live in violations.instalments.
    """

    __tablename__ = "instalment_plans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # One plan per violation: approving a second one is refused.
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id"), nullable=False, unique=True)
    fine: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # The late fee accrued on the approval date: part of the amount split, and all there is while the plan is kept.
    late_fee: Mapped[int] = mapped_column(BigInteger, nullable=False)
    approved_on: Mapped[date] = mapped_column(Date, nullable=False)
    approved_by: Mapped[str] = mapped_column(String(100), nullable=False)
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    instalments: Mapped[list["Instalment"]] = relationship(
        back_populates="plan", order_by="Instalment.number", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("fine > 0", name="plan_fine_positive"),
        CheckConstraint("late_fee >= 0", name="plan_late_fee_not_negative"),
    )

    @property
    def total(self):
        """What the instalments add up to: the fine plus the late fee at approval, in minor units."""
        return self.fine + self.late_fee


class Instalment(db.Model):
    """One instalment of a plan: its share of the amount, its due date, and whether (and by which receipt) it is paid."""

    __tablename__ = "instalments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("instalment_plans.id"), nullable=False)
    number: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    due_date: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False, default=UNPAID)
    # Settlement facts, written once when the instalment is paid (the late fee after a missed instalment).
    late_fee_paid: Mapped[int | None] = mapped_column(BigInteger)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    receipt_number: Mapped[str | None] = mapped_column(String(32))

    plan: Mapped[InstalmentPlan] = relationship(back_populates="instalments")

    __table_args__ = (
        UniqueConstraint("plan_id", "number", name="uq_instalments_plan_number"),
        CheckConstraint("status IN ('unpaid', 'paid')", name="instalment_status"),
        CheckConstraint("amount > 0", name="instalment_amount_positive"),
    )
