"""WeChat Pay's ledger: the orders FinePay places, so that an intent knows its order whatever the payer's device."""
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from finepay.dbtypes import UTCDateTime, utcnow
from finepay.extensions import db


class WeChatPayOrder(db.Model):
    """One intent and the order currently open for it at WeChat Pay.

    create_intent records the intent here; next_action places the order that
    fits the payer (Native, H5 or JSAPI) and caches what it returned, so the
    same kind of payer gets the same order back. A payer of another kind gets
    a new order (``out_trade_no`` with the next ``orders_placed`` number) only
    after the older one is closed at WeChat Pay, so at most one can be paid.
    """

    __tablename__ = "wechatpay_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the intent id FinePay keeps
    payment_id: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    description: Mapped[str] = mapped_column(String(127), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    out_trade_no: Mapped[str | None] = mapped_column(String(32), unique=True)  # the order placed last
    trade_type: Mapped[str | None] = mapped_column(String(10))  # NATIVE, H5 or JSAPI
    openid: Mapped[str | None] = mapped_column(String(128))  # the JSAPI payer the prepay_id is bound to
    code_url: Mapped[str | None] = mapped_column(String(500))
    h5_url: Mapped[str | None] = mapped_column(String(500))
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    orders_placed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    canceled: Mapped[bool] = mapped_column(nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
