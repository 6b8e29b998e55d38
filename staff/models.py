"""Staff accounts and their sessions, sign-in attempts, API keys, and the gateway's ledger kept for reconciliation."""
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from finepay.dbtypes import BigId, UTCDateTime, utcnow
from finepay.extensions import db
from payments.models import Payment, PaymentItem

CLERK, SUPERVISOR = "clerk", "supervisor"
ROLES = (CLERK, SUPERVISOR)


class StaffUser(UserMixin, db.Model):
    """A clerk (reads) or a supervisor (also refunds, voids, enrols terminals, manages keys and users)."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(60), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False, default=CLERK)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    @property
    def is_active(self):
        """Flask-Login: a deactivated account cannot sign in."""
        return self.active

    @property
    def is_supervisor(self):
        """Whether this user may change money or access."""
        return self.role == SUPERVISOR


class StaffSession(db.Model):
    """A signed-in browser: the cookie carries a random token, the server keeps its hash, its clock and its end.

    Ending a session here (sign-out, an account change, idle or absolute
    expiry) ends it whatever copy of the cookie anyone kept.
    """

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class LoginAttempt(db.Model):
    """A sign-in attempt, for lockout after repeated failures per account and per address."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(60), nullable=False)
    remote_addr: Mapped[str] = mapped_column(String(64), nullable=False)
    success: Mapped[bool] = mapped_column(Boolean, nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_remote_addr_at", "remote_addr", "at"),
    )


class ApiKey(db.Model):
    """A key for the upstream violation system; only its hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    prefix: Mapped[str] = mapped_column(String(12), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_by: Mapped[str] = mapped_column(String(60), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GatewayRecord(db.Model):
    """A charge or refund as the gateway reported it, fetched through the adapter's listing.

    Kept so that the daily reconciliation is a SQL join against the ledger
    rather than thousands of gateway calls per page view.
    """

    __tablename__ = "gateway_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(30), nullable=False)
    transaction_id: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)  # charge | refund
    intent_id: Mapped[str | None] = mapped_column(String(100), index=True)
    payment_id: Mapped[str | None] = mapped_column(String(32), index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("gateway", "transaction_id", name="uq_gateway_records_gateway_transaction"),)


# Indexes the console needs on the payments tables (created by migration 0004):
# the reconciliation selects a day's settlements by paid_at and looks for the
# rare items a payment did not settle (a duplicate), and search finds a
# vehicle's payments by plate.
Index("ix_payments_paid_at", Payment.paid_at)
Index("ix_payments_plate", Payment.plate)
Index("ix_payment_items_unsettled", PaymentItem.payment_id,
      sqlite_where=text("settled IS 0"), postgresql_where=text("settled IS false"))
