"""Reminder subscriptions and the messages sent to them (the outbox)."""
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from finepay.dbtypes import BigId, UTCDateTime, utcnow
from finepay.extensions import db

# Where a subscription stands: waiting for its one-time code, sending, stopped (page, reply or staff).
PENDING, ACTIVE, STOPPED = "pending", "active", "stopped"

# What a message is about. CODE messages confirm a number; the others concern one violation.
CODE, NEW_VIOLATION, DUE_SOON, LATE_FEE_STARTS = "code", "new_violation", "due_soon", "late_fee_starts"
KINDS = (CODE, NEW_VIOLATION, DUE_SOON, LATE_FEE_STARTS)

# Where a message stands.
QUEUED = "queued"  # due, not yet tried
HELD = "held"  # quiet hours or the number's daily cap: sent from next_attempt_at on
SENDING = "sending"  # claimed by one `notices send` run
SENT = "sent"  # the sender took it (provider_message_id says under which id)
RETRYING = "retrying"  # a send failed; tried again from next_attempt_at on
UNKNOWN = "unknown"  # a send's outcome is unknown: the sender is asked before anything is sent again
FAILED = "failed"  # refused, or out of attempts: staff see it, nothing more is tried
CANCELED = "canceled"  # the violation was paid or voided, or the number stopped, before it went
STATUSES = (QUEUED, HELD, SENDING, SENT, RETRYING, UNKNOWN, FAILED, CANCELED)
# The ones still to go out (or to be found out).
OPEN = (QUEUED, HELD, RETRYING, UNKNOWN, SENDING)


class Subscription(db.Model):
    """A mobile number that gets reminders about one vehicle (plate + VIN code), in one language."""

    __tablename__ = "notice_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plate: Mapped[str] = mapped_column(String(16), nullable=False)
    vin_last6: Mapped[str] = mapped_column(String(6), nullable=False)
    # 11 digits, normalised (notices.rules.normalize_mobile); staff see it masked (138****1234).
    phone: Mapped[str] = mapped_column(String(11), nullable=False)
    locale: Mapped[str] = mapped_column(String(8), nullable=False, default="zh_CN")
    status: Mapped[str] = mapped_column(String(8), nullable=False, default=PENDING)
    # The one-time code, as an HMAC keyed with SECRET_KEY (never in clear), its expiry and the wrong tries.
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    code_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_by: Mapped[str | None] = mapped_column(String(16))  # page | reply | staff
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        # One row per number and vehicle: subscribing again reuses it.
        UniqueConstraint("plate", "vin_last6", "phone", name="uq_notice_subscriptions_vehicle_phone"),
        Index("ix_notice_subscriptions_phone", "phone"),
        CheckConstraint("status IN ('pending', 'active', 'stopped')", name="status"),
    )


class Message(db.Model):
    """One text to one number: a one-time code, or a reminder about one violation (sent once: uq_notice_once)."""

    __tablename__ = "notice_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("notice_subscriptions.id"), nullable=False)
    # NULL for a code; a NULL never collides in a unique constraint, so codes may repeat and reminders may not.
    violation_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("violations.id"))
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    phone: Mapped[str] = mapped_column(String(11), nullable=False)
    locale: Mapped[str] = mapped_column(String(8), nullable=False)
    # The text as the subscriber reads it; a code is kept masked unless the sender is the outbox itself.
    body: Mapped[str] = mapped_column(Text, nullable=False)
    # The template values a provider's approved template is filled with (JSON list).
    params: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=QUEUED)
    sender: Mapped[str] = mapped_column(String(32), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_reason: Mapped[str | None] = mapped_column(String(16))  # quiet_hours | daily_cap
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The business date whose daily cap the message counts against (set when it is claimed).
    cap_day: Mapped[date | None] = mapped_column(Date)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        # Each reminder once: the database refuses a second row for the same subscription, violation and kind.
        UniqueConstraint("subscription_id", "violation_id", "kind", name="uq_notice_once"),
        Index("ix_notice_messages_status_next", "status", "next_attempt_at"),
        Index("ix_notice_messages_phone_day", "phone", "cap_day"),
        CheckConstraint("kind IN ('code', 'new_violation', 'due_soon', 'late_fee_starts')", name="kind"),
        CheckConstraint("status IN ('queued', 'held', 'sending', 'sent', 'retrying', 'unknown', 'failed', "
                        "'canceled')", name="status"),
    )
