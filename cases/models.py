"""Contests and hardship applications (deferral, instalments), and the evidence filed with them."""
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finepay.dbtypes import BigId, UTCDateTime, utcnow
from finepay.extensions import db

CONTEST, DEFERRAL, INSTALMENTS = "contest", "deferral", "instalments"
KINDS = (CONTEST, DEFERRAL, INSTALMENTS)
APPLICATIONS = (DEFERRAL, INSTALMENTS)

OPEN, PREPARED = "open", "prepared"
UPHELD, CANCELLED = "upheld", "cancelled"  # a contest's outcomes: the violation stands, or it is voided
APPROVED, REFUSED = "approved", "refused"  # an application's outcomes
PENDING = (OPEN, PREPARED)
OUTCOMES = {CONTEST: (UPHELD, CANCELLED), DEFERRAL: (APPROVED, REFUSED), INSTALMENTS: (APPROVED, REFUSED)}
STATUSES = (OPEN, PREPARED, UPHELD, CANCELLED, APPROVED, REFUSED)

PHOTO, VIDEO = "photo", "video"

STATEMENT_MIN, STATEMENT_MAX = 20, 1000
NOTE_MAX = 1000


class Case(db.Model):
    """A driver's contest of a violation, or application to defer it or pay it in instalments, and its decision."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id"), nullable=False, index=True)
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    statement: Mapped[str] = mapped_column(String(STATEMENT_MAX), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=OPEN)
    channel: Mapped[str] = mapped_column(String(8), nullable=False, default="web")
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    filed_on: Mapped[date] = mapped_column(Date, nullable=False)  # the business date: a contest's fee stops here
    # A clerk's preparation: what they recommend and why.
    recommendation: Mapped[str | None] = mapped_column(String(12))
    prepared_note: Mapped[str | None] = mapped_column(String(NOTE_MAX))
    prepared_by: Mapped[str | None] = mapped_column(String(80))
    prepared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A supervisor's decision (or the instalment plan that approved it).
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(String(NOTE_MAX))
    new_due_date: Mapped[date | None] = mapped_column(Date)

    files: Mapped[list["CaseFile"]] = relationship(back_populates="case", order_by="CaseFile.id")

    __table_args__ = (
        # The staff queue: pending cases, oldest first.
        Index("ix_cases_status_filed_at", "status", "filed_at"),
        CheckConstraint("kind IN ('contest', 'deferral', 'instalments')", name="kind"),
        CheckConstraint("status IN ('open', 'prepared', 'upheld', 'cancelled', 'approved', 'refused')",
                        name="status"),
    )

    @property
    def pending(self):
        """Whether the case still waits for a decision."""
        return self.status in PENDING

    def __repr__(self):
        return f"<Case {self.number} {self.kind} {self.status}>"


class CaseFile(db.Model):
    """One evidence file of a case: stored under EVIDENCE_DIR by a random name, never in the database."""

    __tablename__ = "case_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), nullable=False, index=True)
    stored_name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    content_type: Mapped[str] = mapped_column(String(40), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="files")
