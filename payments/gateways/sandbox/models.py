"""The sandbox's ledger: its intents, refunds, idempotency keys and simulated reader, in FinePay's database."""
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from finepay.dbtypes import BigId, UTCDateTime, utcnow
from finepay.extensions import db


class SandboxIntent(db.Model):
    """An intent in the sandbox's ledger."""

    __tablename__ = "sandbox_intents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    amount_received: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    payment_method: Mapped[str | None] = mapped_column(String(60))
    failure_code: Mapped[str | None] = mapped_column(String(40))
    charge_id: Mapped[str | None] = mapped_column(String(40))
    client_secret: Mapped[str] = mapped_column(String(80), nullable=False)
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class SandboxOperation(db.Model):
    """Idempotency in the sandbox: a key seen before returns the first result."""

    __tablename__ = "sandbox_operations"

    idempotency_key: Mapped[str] = mapped_column(String(150), primary_key=True)
    result_id: Mapped[str] = mapped_column(String(40), nullable=False)


class SandboxRefund(db.Model):
    """A refund in the sandbox's ledger."""

    __tablename__ = "sandbox_refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("sandbox_intents.id"), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)


class SandboxReaderAction(db.Model):
    """A collection on a simulated card reader: waits until a sandbox control (or the timeout) decides it."""

    __tablename__ = "sandbox_reader_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("sandbox_intents.id"), nullable=False, index=True)
    reader_id: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    failure_code: Mapped[str | None] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
