"""The demo's paid and refunded vehicles, paid (and refunded) through the real payment path so that their
receipts exist like any other."""
import uuid

from sqlalchemy import select

from finepay.extensions import db
from payments.gateways import configured_gateways
from payments.models import Payment, PaymentItem
from payments.services import confirm_payment, refund_payment, start_payment
from violations.demo import PAID, PAID_NOTICES, REFUNDED, REFUNDED_NOTICES
from violations.models import PAID as PAID_STATUS
from violations.models import Violation

# The test card the demo pays with: only a gateway whose pay page posts card tokens (the sandbox) takes it.
DEMO_CARD = "pm_card_visa"
REFUND_REASON = "缴款人申请退款（演示数据）"


def _violations(notices):
    return db.session.execute(
        select(Violation).where(Violation.notice_number.in_(notices)).order_by(Violation.notice_number)
    ).scalars().all()


def _card_gateway():
    """The first configured gateway that takes a posted test card: the rails (WeChat Pay, Alipay) are paid on a
    phone, never by a posted card, even when they come first in PAYMENT_GATEWAYS."""
    return next((gateway for gateway in configured_gateways() if gateway.accepts_posted_method(DEMO_CARD)), None)


def _pay(vehicle, violations, gateway):
    payment = start_payment(plate=violations[0].plate, vin_last6=vehicle.vin,
                            violation_ids=[violation.id for violation in violations],
                            idempotency_key=f"demo-seed-{vehicle.case}-{uuid.uuid4().hex}", channel="web",
                            gateway=gateway.name)
    return confirm_payment(payment.id, DEMO_CARD)


def _last_payment(violations):
    """The latest succeeded or refunded payment of these violations, or None."""
    return db.session.execute(
        select(Payment).join(PaymentItem).where(PaymentItem.violation_id.in_([v.id for v in violations]),
                                                 Payment.receipt_number.is_not(None))
        .order_by(Payment.created_at.desc()).limit(1)
    ).scalars().first()


def seed_paid_violation():
    """Pay the paid vehicle's notices (again after a refresh made them unpaid) and pay then refund the refunded
    vehicle's (once), with a test card; the lines that give their receipt numbers.

    With no gateway that takes a card, both stay unpaid and the seed says why.
    """
    gateway = _card_gateway()
    lines = []
    paid = _violations(PAID_NOTICES)
    if any(violation.status != PAID_STATUS for violation in paid):
        if gateway is None:
            return [f"Notice {PAID_NOTICES[0]} left unpaid: no configured gateway takes a test card."]
        _pay(PAID, [violation for violation in paid if violation.status != PAID_STATUS], gateway)
    payment = _last_payment(paid)
    if payment is not None:
        lines.append(f"  {PAID.plate}: receipt {payment.receipt_number}")

    refunded = _violations(REFUNDED_NOTICES)
    payment = _last_payment(refunded)
    if payment is None and gateway is not None:
        payment = _pay(REFUNDED, refunded, gateway)
        refund_payment(payment.id, reason=REFUND_REASON, actor="demo")
        payment = _last_payment(refunded)
    if payment is not None:
        lines.append(f"  {REFUNDED.plate}: refunded receipt {payment.receipt_number}")
    return lines
