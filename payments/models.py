"""Payments, the violations they cover, refunds, received webhook events, the gateway's ledger, and e-receipts."""
import secrets
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finepay.dbtypes import BigId, UTCDateTime, utcnow
from finepay.extensions import db
from payments import states
from violations.models import Instalment

REFUND_PENDING, REFUND_SUCCEEDED, REFUND_FAILED = "pending", "succeeded", "failed"
# Refunds that hold money back from being refunded again: sent, or about to be.
REFUND_COMMITTED = (REFUND_PENDING, REFUND_SUCCEEDED)


def new_payment_id():
    """A public, unguessable payment id."""
    return "pay_" + secrets.token_hex(12)


class Payment(db.Model):
    """A driver paying one or more violations of one vehicle, for an amount fixed at creation."""

    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_payment_id)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default=states.CREATED, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    convenience_fee: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    plate: Mapped[str] = mapped_column(String(16), nullable=False)
    vin_last6: Mapped[str] = mapped_column(String(6), nullable=False)
    channel: Mapped[str] = mapped_column(String(10), nullable=False, default="web")
    terminal_id: Mapped[int | None] = mapped_column(Integer)
    gateway: Mapped[str] = mapped_column(String(30), nullable=False)
    gateway_intent_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    # The gateway's own number for the money it took (its charge id), as the payer finds it in their app's bill.
    gateway_charge_id: Mapped[str | None] = mapped_column(String(100))
    client_secret: Mapped[str | None] = mapped_column(String(200))
    next_action_url: Mapped[str | None] = mapped_column(String(500))
    idempotency_key: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    request_fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    confirm_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    amount_received: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    failure_code: Mapped[str | None] = mapped_column(String(40))
    receipt_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)

    items: Mapped[list["PaymentItem"]] = relationship(
        back_populates="payment", order_by="PaymentItem.id", cascade="all, delete-orphan"
    )
    refunds: Mapped[list["Refund"]] = relationship(back_populates="payment", order_by="Refund.id")

    # The reconciliation selects a day's payments by paid_at; staff search finds a vehicle's by plate.
    __table_args__ = (
        Index("ix_payments_paid_at", "paid_at"),
        Index("ix_payments_plate", "plate"),
    )

    @property
    def is_open(self):
        """Whether the payment still holds its violations."""
        return self.status in states.OPEN

    @property
    def refunded_amount(self):
        """Minor units sent back so far (succeeded refunds)."""
        return sum(r.amount for r in self.refunds if r.status == REFUND_SUCCEEDED)


class PaymentItem(db.Model):
    """One violation in a payment, with the fine and late fee locked at creation."""

    __tablename__ = "payment_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), nullable=False, index=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id"), nullable=False, index=True)
    # Set when the item pays one instalment of an approved plan (fine is then the instalment's amount, late_fee the
    # late fee on it after a missed instalment); NULL when it pays the whole violation.
    instalment_id: Mapped[int | None] = mapped_column(ForeignKey("instalments.id"))
    fine: Mapped[int] = mapped_column(BigInteger, nullable=False)
    late_fee: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # True while the payment is open; NULL afterwards. The partial unique index
    # below lets a violation be in at most one open payment, enforced by the
    # database even when two terminals race.
    holds: Mapped[bool | None] = mapped_column(Boolean)
    # Set when this item was settled by this payment (False: paid by another, refunded).
    settled: Mapped[bool | None] = mapped_column(Boolean)
    # When a refund of this whole line made the violation owed again (settled is then False).
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    payment: Mapped[Payment] = relationship(back_populates="items")
    instalment: Mapped[Instalment | None] = relationship()

    __table_args__ = (
        Index(
            "uq_payment_items_open_violation", "violation_id", unique=True,
            sqlite_where=text("holds"), postgresql_where=text("holds"),
        ),
        # An instalment is settled by at most one payment at a time, enforced by the database as for violations
        # (a refund in full sets settled to False and the instalment may be paid again).
        Index(
            "uq_payment_items_settled_instalment", "instalment_id", unique=True,
            sqlite_where=text("settled"), postgresql_where=text("settled"),
        ),
        # The reconciliation looks for the rare items a payment did not settle (a duplicate).
        Index("ix_payment_items_unsettled", "payment_id",
              sqlite_where=text("settled IS 0"), postgresql_where=text("settled IS false")),
    )

    @property
    def amount(self):
        """Fine plus late fee, in minor units."""
        return self.fine + self.late_fee

    @property
    def instalment_ref(self):
        """{"id", "number", "count"} of the instalment this line pays, or None when it pays the whole violation."""
        if self.instalment_id is None:
            return None
        return {"id": self.instalment_id, "number": self.instalment.number,
                "count": len(self.instalment.plan.instalments)}


class Refund(db.Model):
    """Money sent back for a payment: by a supervisor, or automatically for a duplicate capture.

    ``pending`` until the gateway accepts it (``payments sync`` retries it while
    the gateway is unreachable); ``failed`` when the gateway refused it, with
    the reason, never retried.
    """

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    automatic: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=REFUND_PENDING)
    gateway_refund_id: Mapped[str | None] = mapped_column(String(100))
    failure_code: Mapped[str | None] = mapped_column(String(40))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    idempotency_key: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)

    payment: Mapped[Payment] = relationship(back_populates="refunds")
    lines: Mapped[list["RefundLine"]] = relationship(
        back_populates="refund", order_by="RefundLine.id", cascade="all, delete-orphan"
    )


class RefundLine(db.Model):
    """The part of a refund that goes back for one violation line (a PaymentItem).

    A refund's amount is the sum of its lines plus any money captured beyond
    the amount due (which belongs to no line).
    """

    __tablename__ = "refund_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id"), nullable=False, index=True)
    payment_item_id: Mapped[int] = mapped_column(ForeignKey("payment_items.id"), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)

    refund: Mapped[Refund] = relationship(back_populates="lines")
    item: Mapped[PaymentItem] = relationship()

    __table_args__ = (UniqueConstraint("refund_id", "payment_item_id", name="uq_refund_lines_refund_item"),)


class WebhookEvent(db.Model):
    """A gateway event already handled: a redelivery is recognised by its id and ignored."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(30), nullable=False)
    event_id: Mapped[str] = mapped_column(String(100), nullable=False)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("gateway", "event_id", name="uq_webhook_events_gateway_event"),)


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
    # The gateway's fee on this line (a refund's may be negative: fee returned); the net settlement subtracts it.
    fee: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default=text("0"))
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("gateway", "transaction_id", name="uq_gateway_records_gateway_transaction"),)


EREQUEST_PENDING, EREQUEST_DONE = "pending", "done"


class EReceiptRequest(db.Model):
    """FinePay's request for the official e-receipt of a payment: made when it settles, and after each refund.

    Recorded in the transaction that settles the payment (or records the
    refund); the issuer is asked after commit, and asked again with backoff
    (``next_try_at``) while it is down. ``claimed_until`` is the lease of the
    one worker that may ask for it now (payments.ereceipt_requests).
    """

    __tablename__ = "ereceipt_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), nullable=False, index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"))
    idempotency_key: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=EREQUEST_PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IssuedEReceipt(db.Model):
    """An official e-receipt (blue) or the red-flush (red) that cancelled one, as the issuer returned it.

    At most one of each kind per request, and one row per issuer's code and
    number: two workers recording the same answer keep one.
    """

    __tablename__ = "ereceipts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), nullable=False, index=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("ereceipt_requests.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(4), nullable=False)  # blue | red
    issuer: Mapped[str] = mapped_column(String(30), nullable=False)
    code: Mapped[str] = mapped_column(String(8), nullable=False)
    number: Mapped[str] = mapped_column(String(10), nullable=False)
    check_code: Mapped[str] = mapped_column(String(6), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)  # negative on a red-flush
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    payer: Mapped[str] = mapped_column(String(32), nullable=False)
    authority: Mapped[str] = mapped_column(String(200), nullable=False)
    items: Mapped[list] = mapped_column(JSON, nullable=False)  # [[kind, notice number, amount], ...]
    verification_url: Mapped[str] = mapped_column(String(500), nullable=False)
    # A red-flush names the e-receipt it cancels.
    flushes_id: Mapped[int | None] = mapped_column(ForeignKey("ereceipts.id"))
    simulated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    __table_args__ = (
        UniqueConstraint("request_id", "kind", name="uq_ereceipts_request_kind"),
        UniqueConstraint("issuer", "code", "number", name="uq_ereceipts_issuer_code_number"),
    )
