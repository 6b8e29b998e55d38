"""The demo's paid violation, paid through the real payment path so that its receipt exists like any other."""
import uuid

from sqlalchemy import select

from finepay.extensions import db
from payments.services import confirm_payment, start_payment
from violations.demo import PAID_NOTICE
from violations.models import PAID, Violation


def seed_paid_violation():
    """Pay the demo's paid notice once (again after a refresh made it unpaid); nothing to print."""
    paid = db.session.execute(
        select(Violation).where(Violation.notice_number == PAID_NOTICE)
    ).scalar_one()
    if paid.status != PAID:
        payment = start_payment(plate=paid.plate, vin_last6=paid.vin_last6, violation_ids=[paid.id],
                                idempotency_key=f"demo-seed-{paid.id}-{uuid.uuid4().hex}", channel="web")
        confirm_payment(payment.id, "pm_card_visa")
    return []
