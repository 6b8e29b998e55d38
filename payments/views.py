"""Driver pages for paying: review, pay (showing what the gateway asks of the payer), the result, the receipt."""
import uuid

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from finepay.errors import ApiError
from payments import receipts, services, states
from payments.gateways import SCAN_QR, Payer, gateway_for, gateways_serving
from payments.messages import failure_message
from payments.qr import qr_svg
from violations.proof import sign_vehicle, vehicle_for
from violations.services import lookup_vehicle

bp = Blueprint("pay", __name__)


def this_payer():
    """Where this page runs, for the gateways to say whether (and how) they can take a payment from here."""
    return Payer(user_agent=request.user_agent.string)


def chosen_gateway():
    """The way of paying the driver pressed (a gateway's name), or None for the first that fits."""
    name = request.form.get("gateway", "")
    return name[:40] or None


def _selected_ids(name="violation_id"):
    ids = []
    for raw in request.form.getlist(name)[:50]:
        if raw.isdigit() and len(raw) < 19:
            ids.append(int(raw))
    return sorted(set(ids))


def _vehicle_or_restart(ids, instalment_ids=()):
    # An instalment's violation must be the vehicle's too; one that names none fails the proof.
    vehicle = vehicle_for(request.form.get("vehicle"),
                          ids + services.violations_of_instalments(instalment_ids, unknown=0))
    if vehicle is None:
        raise ApiError("restart", code="restart", status=400)
    return vehicle


def payment_problem(error):
    """Any refusal on these pages: say what happened and where to go next, never a bare error."""
    return render_template("payments/problem.html", error=error), error.status


bp.register_error_handler(ApiError, payment_problem)


def instalment_item(line, instalment):
    """One instalment as the review table shows it: the violation's words, the instalment's amounts."""
    return {"description": line.description, "notice_number": line.notice_number, "fine": instalment.amount,
            "late_fee": instalment.late_fee, "instalment": {"number": instalment.number, "count": instalment.count}}


@bp.post("/pay/review")
def review():
    """Step 2: the chosen violations, their late fees and the total, before anything is created."""
    ids, instalment_ids = _selected_ids(), _selected_ids("instalment_id")
    if not ids and not instalment_ids:
        return render_template("payments/problem.html", error=None, nothing_selected=True), 422
    plate, vin = _vehicle_or_restart(ids, instalment_ids)
    statement = lookup_vehicle(plate, vin_last6=vin)
    whole, _not_payable = statement.chosen(ids)
    instalments = statement.chosen_instalments(instalment_ids)
    lines = whole + [instalment_item(line, instalment) for line, instalment in instalments]
    if not lines:
        return render_template("payments/problem.html", error=None, nothing_selected=True), 422
    price = services.quote([line.amount_due for line in whole] + [i.amount_due for _line, i in instalments])
    return render_template(
        "payments/review.html", statement=statement, lines=lines, subtotal=price.subtotal, fee=price.fee,
        whole_ids=[line.id for line in whole], instalment_ids=[i.id for _line, i in instalments],
        total=price.total, vehicle=sign_vehicle(plate, vin), ways=gateways_serving(this_payer()),
        # One key per review page: a double click or a resubmit returns the same payment.
        idempotency_key=uuid.uuid4().hex,
    )


@bp.post("/pay")
def start():
    """Step 3: create the payment (amount from the server) and go to its page."""
    ids, instalment_ids = _selected_ids(), _selected_ids("instalment_id")
    plate, vin = _vehicle_or_restart(ids, instalment_ids)
    key = request.form.get("idempotency_key", "")
    if not (16 <= len(key) <= 64 and key.isalnum()):
        raise ApiError("restart", code="restart", status=400)
    payment = services.start_payment(plate=plate, vin_last6=vin, violation_ids=ids, instalment_ids=instalment_ids,
                                     idempotency_key="web-" + key, channel="web", gateway=chosen_gateway(),
                                     payer=this_payer())
    return redirect(url_for("pay.show", payment_id=payment.id), 303)


@bp.get("/pay/<payment_id>")
def show(payment_id):
    """The payment page: choose how to pay, or see that it is in progress, failed or done."""
    payment = services.refresh_payment(payment_id)
    if payment.status in states.CHARGED and payment.receipt_number:
        return redirect(url_for("pay.receipt", receipt_number=payment.receipt_number), 303)
    payable = payment.status in services.PAYABLE
    payer = this_payer()
    action = gateway_for(payment).next_action(payment, payer) if payable else None
    # The other ways of paying that fit this payer: choosing one replaces this payment (switch).
    others = [gateway for gateway in gateways_serving(payer) if gateway.name != payment.gateway] if payable else []
    return render_template(
        "payments/pay.html", payment=payment, items=receipts.payment_lines(payment), states=states,
        payable=payable, action=action, failure=failure_message(payment.failure_code), others=others,
        qr=qr_svg(action.qr_payload) if action and action.kind == SCAN_QR else None, way=receipts.payment_method(payment.gateway),
        app=receipts.scanning_app(payment.gateway),
    )


@bp.post("/pay/<payment_id>/switch")
def switch(payment_id):
    """Pay another way: the same violations at the gateway chosen, this payment closed at its own first."""
    name = chosen_gateway()
    if name is None:
        abort(400)
    payment = services.switch_gateway(payment_id, name, this_payer())
    return redirect(url_for("pay.show", payment_id=payment.id), 303)


@bp.post("/pay/<payment_id>/confirm")
def confirm(payment_id):
    """Pay with the method chosen in the gateway's form on the pay page; then show the outcome."""
    method = request.form.get("payment_method", "")
    if not gateway_for(services.get_payment(payment_id)).accepts_posted_method(method):
        abort(400)
    payment = services.confirm_payment(payment_id, method)
    if payment.status == states.REQUIRES_ACTION and payment.next_action_url:
        return redirect(payment.next_action_url, 303)
    return redirect(url_for("pay.show", payment_id=payment.id), 303)


def public_url(endpoint, **values):
    """An absolute URL for people to keep: PUBLIC_BASE_URL when set (behind a proxy), else this request's host."""
    base = current_app.config["PUBLIC_BASE_URL"]
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


@bp.get("/receipts/<receipt_number>")
def receipt(receipt_number):
    """The printable receipt, with a QR code of its own address; a number that names no receipt gets its own 404 page.

    Not the payment problem page: nothing is being paid here, so "the payment cannot continue" would mislead.
    """
    try:
        data = receipts.get_receipt(receipt_number)
    except ApiError as missing:
        if missing.status != 404:
            raise
        return render_template("payments/receipt_missing.html"), 404
    own_url = public_url("pay.receipt", receipt_number=data["receipt_number"])
    return render_template("payments/receipt.html", receipt=data, qr=qr_svg(own_url), own_url=own_url,
                           ereceipt_qr=receipts.ereceipt_qr(data))
