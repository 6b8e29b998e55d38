"""The sandbox issuer's ledger: every e-receipt and red-flush it made, in FinePay's database."""
from datetime import datetime

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finepay.dbtypes import BigId, UTCDateTime, utcnow
from finepay.extensions import db


class SandboxEReceipt(db.Model):
    """An e-receipt (blue) or red-flush (red) as the sandbox issued it; one per idempotency key."""

    __tablename__ = "sandbox_ereceipts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(150), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(4), nullable=False)
    code: Mapped[str] = mapped_column(String(8), nullable=False)
    number: Mapped[str] = mapped_column(String(10), nullable=False)
    check_code: Mapped[str] = mapped_column(String(6), nullable=False)
    payer: Mapped[str] = mapped_column(String(32), nullable=False)
    authority: Mapped[str] = mapped_column(String(200), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # [[kind, reference, amount], ...]
    items: Mapped[list] = mapped_column(JSON, nullable=False)
    payment_id: Mapped[str | None] = mapped_column(String(32))
    flushes_code: Mapped[str | None] = mapped_column(String(8))
    flushes_number: Mapped[str | None] = mapped_column(String(10))
    # Set on a blue e-receipt once a red-flush cancelled it: the verification page says so.
    red_flushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("code", "number", name="uq_sandbox_ereceipts_code_number"),)
