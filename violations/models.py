"""Violations recorded against vehicles."""
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

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


