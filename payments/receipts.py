"""Receipts: what a driver can show as proof of payment."""
from urllib.parse import urljoin

from flask import has_request_context, request
from flask_babel import gettext as _
from sqlalchemy import select

from finepay.errors import ApiError
from finepay.extensions import db
from payments import ereceipt_requests, refunds
from payments.ereceipts import BLUE, RED
from payments.gateways import GatewayError, gateway_named
from payments.models import REFUND_SUCCEEDED, Payment
from payments.qr import qr_svg
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
            "payment_code": violations[item.violation_id].payment_code,
            "description": violations[item.violation_id].description,
            "occurred_at": violations[item.violation_id].occurred_at,
            "location": violations[item.violation_id].location,
            "instalment": item.instalment_ref,
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
        "gateway": payment.gateway,
        "method": payment_method(payment.gateway),
        # The gateway's number for the money taken, which the payer also finds in their app's bill;
        # a payment settled before it was kept shows its intent id, which the gateway knows it by too.
        "transaction_number": payment.gateway_charge_id or payment.gateway_intent_id,
        "terminal_id": payment.terminal_id,
        "payment_id": payment.id,
        "items": receipt_lines(payment),
        "service_fee": payment.convenience_fee,
        "refunded_amount": payment.refunded_amount,
        "net_amount": payment.amount_received - payment.refunded_amount,
        "refunds": [r for r in payment.refunds if r.status == REFUND_SUCCEEDED],
        "status": payment.status,
        **official_receipts(payment),
    }


def official_receipts(payment):
    """The payment's official e-receipts (财政电子票据) and red-flushes, oldest first, and whether one is on its way.

    ``ereceipt`` is the one in force (the latest blue one no red-flush
    cancelled), None while it is being asked for or after a full refund.
    """
    rows, pending = ereceipt_requests.ereceipts_of(payment.id)
    flushed = {row.flushes_id for row in rows if row.kind == RED}
    by_id = {row.id: row for row in rows}
    listed = []
    for row in rows:
        original = by_id.get(row.flushes_id)
        listed.append({
            "kind": row.kind, "code": row.code, "number": row.number, "check_code": row.check_code,
            "issued_at": row.issued_at, "amount": row.amount, "currency": row.currency, "payer": row.payer,
            "authority": row.authority,
            "items": [{"kind": kind, "notice_number": reference, "amount": amount}
                      for kind, reference, amount in row.items],
            "verification_url": _absolute(row.verification_url),
            "red_flushed": row.id in flushed,
            "flushes": {"code": original.code, "number": original.number} if original else None,
            "sandbox": row.simulated,
        })
    in_force = next((e for e in reversed(listed) if e["kind"] == BLUE and not e["red_flushed"]), None)
    return {"ereceipts": listed, "ereceipt": in_force, "ereceipt_pending": pending}


def _absolute(url):
    """An issuer's verification address, absolute (one recorded from the command line may be a path)."""
    return urljoin(request.host_url, url) if has_request_context() else url


def payment_method(gateway_name):
    """How the driver paid, in words (the gateway's label: 微信支付, 支付宝, 银行卡), or its name once no longer configured."""
    try:
        return gateway_named(gateway_name).label
    except GatewayError:
        return gateway_name


def scanning_app(gateway_name):
    """The app the payer opens to scan the gateway's code (微信 for WeChat Pay), or its name once no longer configured."""
    try:
        return gateway_named(gateway_name).app
    except GatewayError:
        return gateway_name


def receipt_lines(payment):
    """The payment's lines with what was paid for each, what went back, and the net.

    ``state`` says where the violation stands for this receipt: ``paid``,
    ``partly_refunded`` (still paid), ``refunded`` (its whole line came back:
    owed again) or ``not_settled`` (already paid or cancelled before this
    payment settled it: its money goes back automatically).
    """
    lines = payment_lines(payment)
    for line, balance in zip(lines, refunds.balance(payment).lines, strict=True):
        item = balance.item
        if item.released_at is not None:
            state = "refunded"
        elif not item.settled:
            state = "not_settled"
        else:
            state = "partly_refunded" if balance.refunded else "paid"
        line.update(service_fee=balance.fee_share, paid=balance.due, refunded=balance.refunded, net=balance.net,
                    state=state)
    return lines


def ereceipt_qr(official):
    """A QR code of the verification address of the e-receipt in force, or None (pages draw it beside it)."""
    return qr_svg(official["ereceipt"]["verification_url"]) if official["ereceipt"] else None
