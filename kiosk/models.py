"""Kiosk terminals and the drivers' visits on them."""
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from finepay.dbtypes import UTCDateTime, utcnow
from finepay.extensions import db
from payments.gateways import CardTerminal


class Terminal(db.Model):
    """A registered kiosk. Its credential and one-time enrolment code are stored only as hashes."""

    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False, unique=True)
    credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrolment_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrolment_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The card reader paired with this kiosk, in the gateway's words (e.g. Stripe's tmr_...);
    # None lets the adapter choose (the sandbox simulates one per terminal).
    reader_id: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(100), nullable=False, default="cli")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    def card_terminal(self):
        """This kiosk in a card-present adapter's terms (which reader to drive)."""
        return CardTerminal(id=self.id, name=self.name, reader_id=self.reader_id)


class KioskVisit(db.Model):
    """One driver's visit to a kiosk, server-side, ended on completion or idle reset."""

    __tablename__ = "kiosk_sessions"  # the table's name from before visits were called visits

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), nullable=False, index=True)
    plate: Mapped[str | None] = mapped_column(String(16))
    vin_last6: Mapped[str | None] = mapped_column(String(6))
    payment_id: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
