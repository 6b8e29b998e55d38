"""The demo's paid violation, paid through the real payment path so that its receipt exists like any other."""
import uuid

from sqlalchemy import select

from finepay.extensions import db
from payments.gateways import configured_gateways
from payments.services import confirm_payment, start_payment
from violations.demo import PAID_NOTICE
from violations.models import PAID, Violation

# The test card the demo pays with: only a gateway whose pay page posts card tokens (the sandbox) takes it.
DEMO_CARD = "pm_card_visa"


def seed_paid_violation():
    """Pay the demo's paid notice once (again after a refresh made it unpaid), with a test card.

    The card goes to the first configured gateway that takes one: the rails
    (WeChat Pay, Alipay) are paid on a phone, never by a posted card, even
    when they come first in PAYMENT_GATEWAYS. With none, the notice stays
    unpaid and the seed says why.
    """
    paid = db.session.execute(
        select(Violation).where(Violation.notice_number == PAID_NOTICE)
    ).scalar_one()
    if paid.status == PAID:
        return []
    card = next((gateway for gateway in configured_gateways() if gateway.accepts_posted_method(DEMO_CARD)), None)
    if card is None:
        return [f"Notice {PAID_NOTICE} left unpaid: no configured gateway takes a test card."]
    payment = start_payment(plate=paid.plate, vin_last6=paid.vin_last6, violation_ids=[paid.id],
                            idempotency_key=f"demo-seed-{paid.id}-{uuid.uuid4().hex}", channel="web",
                            gateway=card.name)
    confirm_payment(payment.id, DEMO_CARD)
    return []
