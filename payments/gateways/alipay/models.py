"""The Alipay adapter's ledger: the trades FinePay opened and the refunds it asked for, in FinePay's database.

Alipay knows a trade only once the payer scans its QR code or opens its
mobile-web link, so the ledger is where an intent lives until then: what was
asked (amount, subject, expiry), the QR code already placed (so that the same
payer gets the same order back), and whether FinePay closed it. Notifications
are checked against it, and a trade closed after a full refund is told from a
canceled one by the refunds recorded here.
"""
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from finepay.dbtypes import UTCDateTime, utcnow
from finepay.extensions import db


class AlipayTrade(db.Model):
    """A trade FinePay opened at Alipay, keyed by its out-trade-number (the intent id)."""

    __tablename__ = "alipay_trades"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the out-trade-number
    payment_id: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)  # fen
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    subject: Mapped[str] = mapped_column(String(256), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    qr_code: Mapped[str | None] = mapped_column(String(512))  # from the precreate call, once placed
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # FinePay closed it (or tried to)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class AlipayRefund(db.Model):
    """A refund FinePay asked Alipay for, keyed by its out-request-number (the refund id)."""

    __tablename__ = "alipay_refunds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the out-request-number
    trade_id: Mapped[str] = mapped_column(ForeignKey("alipay_trades.id"), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)  # fen
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
