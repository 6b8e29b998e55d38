"""Receipts: what a driver can show as proof of payment."""
from flask_babel import gettext as _
from sqlalchemy import select

from finepay.errors import ApiError
from finepay.extensions import db
from payments.models import Payment
from violations.models import Violation


def payment_lines(payment):
    """A payment's items with what the driver recognises them by (notice number, description)."""
    violations = {
        v.id: v for v in db.session.execute(
            select(Violation).where(Violation.id.in_([i.violation_id for i in payment.items]))
        ).scalars()
    }
    return [
        {
            "violation_id": item.violation_id,
            "notice_number": violations[item.violation_id].notice_number,
            "description": violations[item.violation_id].description,
            "occurred_at": violations[item.violation_id].occurred_at,
            "location": violations[item.violation_id].location,
            "fine": item.fine,
            "late_fee": item.late_fee,
            "settled": bool(item.settled),
        }
        for item in payment.items
    ]


def get_receipt(receipt_number):
    """The receipt with this number as a dict, or a 404 ApiError."""
    payment = None
    if isinstance(receipt_number, str) and len(receipt_number) <= 32:
        payment = db.session.execute(
            select(Payment).where(Payment.receipt_number == receipt_number.upper())
        ).scalar_one_or_none()
    if payment is None:
        raise ApiError(_("No receipt has this number."), code="not_found", status=404)
    return {
        "receipt_number": payment.receipt_number,
        "paid_at": payment.paid_at,
        "amount": payment.amount_received,
        "currency": payment.currency,
        "plate": payment.plate,
        "channel": payment.channel,
        "payment_id": payment.id,
        "items": payment_lines(payment),
        "refunded_amount": payment.refunded_amount,
        "refunds": [r for r in payment.refunds if r.status == "succeeded"],
        "status": payment.status,
    }
