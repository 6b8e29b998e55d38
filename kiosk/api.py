"""The kiosk page's own JSON endpoints: each answers with the next screen, rendered by the server.

Every request must come from an enrolled terminal (its HttpOnly credential
cookie, SameSite=Strict) and, within a visit, name the visit in the
X-Kiosk-Session header (a token the page keeps in memory only). POST bodies
must be JSON and match the screen's schema exactly; anything else is a 4xx
JSON error. The answers are {"screen", "html", ...}: the page swaps the HTML in.
"""
import uuid

from flask import Blueprint, g, render_template, request, url_for
from flask_babel import gettext as _

from finepay.errors import ApiError
from finepay.restapi import BodyParser
from kiosk import services, visits
from kiosk.limits import limited
from kiosk.messages import kiosk_failure_message, kiosk_scan_failure_message
from kiosk.schemas import (
    EmptySchema,
    EndVisitSchema,
    NoticeSchema,
    PaymentCodeSchema,
    PaySchema,
    PlateSchema,
    SelectionQuerySchema,
    SelectionSchema,
    SimulateSchema,
    VinSchema,
)
from kiosk.screens import screen_context, security_headers
from payments import receipts, states
from payments.gateways import READER_WAITING, GatewayError, gateway_for
from payments.qr import qr_svg
from payments.reader import card_present_available, card_present_gateway
from payments.services import quote

bp = Blueprint("kiosk_api", __name__, url_prefix="/kiosk/api")
parser = BodyParser()
VISIT_HEADER = "X-Kiosk-Session"  # the wire keeps the name visits had before


@bp.before_request
def authenticate_terminal():
    """Only an enrolled, unrevoked terminal gets an answer; only JSON is accepted."""
    g.kiosk_terminal = services.authenticate(request.cookies.get(services.COOKIE_NAME))
    if request.method == "POST" and not request.is_json:
        raise ApiError(_("This endpoint accepts JSON only."), code="unsupported_media_type", status=415)


bp.after_request(security_headers)


def _visit():
    return visits.current_visit(g.kiosk_terminal, request.headers.get(VISIT_HEADER))


def screen(name, status=200, extra=None, **context):
    """A JSON answer carrying the next screen's HTML (and any ``extra`` fields for the page's script)."""
    html = render_template(f"kiosk/screens/{name}.html", **{**screen_context(), **context})
    return {"screen": name, "html": html, **(extra or {})}, status


@bp.get("/status")
def status():
    """The kiosk can reach FinePay and its database (the failure screen polls this)."""
    return {"status": "ok", "card_payments": card_present_available()}


@bp.post("/heartbeat")
@parser.use_args(EmptySchema(), location="json")
def heartbeat(_body):
    """The kiosk is alive; a visit in progress is too (the page resets itself when idle)."""
    services.record_heartbeat(g.kiosk_terminal)
    if request.headers.get(VISIT_HEADER):
        try:
            _visit()
        except ApiError:
            pass  # ended meanwhile: the page finds out on its next step
    visits.sweep_stale_visits()
    return {"status": "ok"}


@bp.post("/sessions")
@parser.use_args(EmptySchema(), location="json")
def start(_body):
    """The driver touched Start: a new visit, and the plate screen."""
    _started, token = visits.start_visit(g.kiosk_terminal)
    body, status = screen("plate", plate="")
    return {**body, "session": token}, 201


@bp.post("/session/end")
@parser.use_args(EndVisitSchema(), location="json")
def end(body):
    """Start over, idle reset or finished: close any unfinished payment at its gateway, then forget the visit.

    When the payment turns out paid before the driver saw it, the visit goes on with the receipt instead.
    """
    try:
        visit = _visit()
    except ApiError:
        return {"status": "ended"}  # already over: ending twice is fine
    if visits.leave_visit(visit, g.kiosk_terminal, reason=body["reason"], paying=body["paying"]) is not None:
        return _receipt_screen(visit)
    return {"status": "ended"}


@bp.get("/screens/plate")
def plate_screen():
    """Back to the plate, as typed."""
    visit = _visit()
    return screen("plate", plate=visit.plate or "")


def _proof_screen(name):
    """A keypad proving the visit's plate is the driver's; only once a plate has been entered."""
    visit = _visit()
    if visit.plate is None:
        raise ApiError(_("Please go back a step."), code="out_of_order", status=409)
    return screen(name, plate=visit.plate)


@bp.get("/screens/vin")
def vin_screen():
    """Back to the VIN keypad."""
    return _proof_screen("vin")


@bp.get("/screens/notice")
def notice_screen():
    """The notice-number keypad: the other proof, for a driver without the vehicle licence at hand."""
    return _proof_screen("notice")


@bp.get("/screens/payment")
def payment_code_screen():
    """The payment-code keypad: a third proof, from the finance bureau's payment notice."""
    return _proof_screen("payment")


@bp.get("/screens/violations")
@parser.use_args(SelectionQuerySchema(), location="query")
def violations_screen(query):
    """Back to the list, with the earlier selection."""
    visit = _visit()
    return screen("violations", statement=visits.statement_for(visit), selected=query.get("selected"))


@bp.post("/plate")
@parser.use_args(PlateSchema(), location="json")
def plate(body):
    """The plate is typed: on to the VIN keypad."""
    visit = _visit()
    visits.remember_plate(visit, g.kiosk_terminal, body["plate"])
    return screen("vin", plate=body["plate"])


@bp.post("/lookup")
@limited
@parser.use_args(VinSchema(), location="json")
def lookup(body):
    """Plate and VIN code together: the vehicle's violations, or one answer for every kind of mismatch."""
    visit = _visit()
    statement = visits.prove_vehicle(visit, body["vin_last6"], altcha=body.get("altcha"))
    if statement is None:
        raise ApiError(_("No violations were found for this plate and VIN code. Check both and try again."),
                       code="no_match", status=404)
    return screen("violations", statement=statement, selected=None)


@bp.post("/lookup-notice")
@limited
@parser.use_args(NoticeSchema(), location="json")
def lookup_by_notice(body):
    """Plate and notice number together: the same answers as with the VIN code, one for every kind of mismatch."""
    visit = _visit()
    statement = visits.prove_vehicle(visit, notice_number=body["notice_number"], altcha=body.get("altcha"))
    if statement is None:
        raise ApiError(_("No violations were found for this plate and notice number. Check both and try again."),
                       code="no_match", status=404)
    return screen("violations", statement=statement, selected=None)


@bp.post("/lookup-payment-code")
@limited
@parser.use_args(PaymentCodeSchema(), location="json")
def lookup_by_payment_code(body):
    """Plate and payment code together: the same answers as with the VIN code, one for every kind of mismatch."""
    visit = _visit()
    statement = visits.prove_vehicle(visit, payment_code=body["payment_code"], altcha=body.get("altcha"))
    if statement is None:
        raise ApiError(_("No violations were found for this plate and payment code. Check both and try again."),
                       code="no_match", status=404)
    return screen("violations", statement=statement, selected=None)


@bp.post("/review")
@parser.use_args(SelectionSchema(), location="json")
def review(body):
    """The chosen violations, their late fees and the total, before anything is charged."""
    visit = _visit()
    statement, lines = visits.selected_lines(visit, body["violation_ids"])
    price = quote(line.amount_due for line in lines)
    return screen("review", statement=statement, lines=lines, subtotal=price.subtotal, fee=price.fee, total=price.total,
                  # One key per review screen: a double tap on Pay is one payment.
                  idempotency_key=uuid.uuid4().hex)


def _payment_screen(payment, reader_payment, status=200, action=None):
    """The screen that shows where a payment stands: the reader, the code to scan, or the outcome."""
    extra = {"state": payment.status}
    if payment.status in states.CHARGED:
        return screen("result", status, outcome="succeeded", payment=payment, extra=extra)
    if payment.status in (states.CANCELED, states.EXPIRED):
        return screen("result", status, outcome="closed", payment=payment, extra=extra)
    if visits.is_scan_payment(payment) and payment.status != states.FAILED:
        return _scan_screen(payment, action or visits.scan_action(payment), status, extra)
    if payment.status == states.PROCESSING:
        waiting = reader_payment is None or reader_payment.status == READER_WAITING
        return screen("reader", status, payment=payment, waiting=waiting,
                      action=gateway_for(payment).next_action(payment, visits.KIOSK_PAYER), extra=extra)
    if visits.is_scan_payment(payment):
        return screen("result", status, outcome="failed", payment=payment, scan=True,
                      message=kiosk_scan_failure_message(payment.failure_code), extra=extra)
    return screen("result", status, outcome="failed", payment=payment,
                  message=kiosk_failure_message(payment.failure_code), extra=extra)


def _scan_screen(payment, action, status, extra):
    """The QR code to scan with the phone, the amount and the way of paying, while the page waits."""
    if action is None:
        raise visits.scan_unavailable_error()
    gateway = gateway_for(payment)
    return screen("scan", status, payment=payment, action=action, method=gateway.label, app=gateway.app, simulated=gateway.simulated,
                  qr=qr_svg(action.qr_payload, scale=8), extra=extra)


@bp.post("/payments")
@parser.use_args(PaySchema(), location="json")
def pay(body):
    """Pay: create the payment (amount from the server, tagged kiosk + terminal), then the reader or the code to scan."""
    visit = _visit()
    if "gateway" in body:
        payment, action = visits.pay_by_scan(visit, g.kiosk_terminal, body["violation_ids"], body["idempotency_key"],
                                             body["gateway"])
        return _payment_screen(payment, None, 201, action)
    payment, reader_payment = visits.pay(visit, g.kiosk_terminal, body["violation_ids"], body["idempotency_key"])
    return _payment_screen(payment, reader_payment, 201)


@bp.get("/payment")
def payment_status():
    """Polled while the reader works: the reader screen, or the result once there is one."""
    visit = _visit()
    return _payment_screen(*visits.check_payment(visit, g.kiosk_terminal))


@bp.post("/payment/retry")
@parser.use_args(EmptySchema(), location="json")
def retry(_body):
    """Another try on the reader for the same payment (or, if it closed meanwhile, say so); not for a scanned one."""
    visit = _visit()
    try:
        return _payment_screen(*visits.retry_payment(visit, g.kiosk_terminal))
    except ApiError as error:
        if error.code not in ("payment_closed", "quote_expired"):
            raise
        return _payment_screen(visits.visit_payment(visit), None)


@bp.post("/payment/cancel")
@parser.use_args(EmptySchema(), location="json")
def cancel(_body):
    """The driver cancelled at the reader or the code to scan: back to the list, nothing charged."""
    visit = _visit()
    payment = visits.cancel_payment(visit, g.kiosk_terminal)
    if payment.status in states.CHARGED:
        return _payment_screen(payment, None)  # approved just before the cancel
    return screen("violations", statement=visits.statement_for(visit),
                  selected=[item.violation_id for item in payment.items], cancelled=True)


@bp.get("/receipt")
def receipt():
    """The receipt to print, with a QR code of its online copy."""
    return _receipt_screen(_visit())


def _receipt_screen(visit):
    payment = visits.visit_payment(visit)
    if not payment.receipt_number:
        raise ApiError(_("There is no receipt for this visit yet."), code="out_of_order", status=409)
    data = receipts.get_receipt(payment.receipt_number)
    online = url_for("pay.receipt", receipt_number=data["receipt_number"], _external=True)
    return screen("receipt", receipt=data, qr=qr_svg(online), online_url=online, terminal=g.kiosk_terminal,
                  ereceipt_qr=receipts.ereceipt_qr(data))


@bp.post("/sandbox/reader")
@parser.use_args(SimulateSchema(), location="json")
def simulate(body):
    """On a server whose gateway moves no money (SANDBOX): what the card holder does at the simulated reader."""
    gateway = card_present_gateway()
    if not (gateway and gateway.simulated):
        raise ApiError(_("There is no simulated reader here."), code="not_found", status=404)
    visit = _visit()
    visits.visit_payment(visit)
    try:
        gateway.simulate_reader(g.kiosk_terminal.card_terminal(), body["outcome"])
    except GatewayError as error:
        raise ApiError(_("The reader is not waiting for a card."), code=error.code, status=409) from None
    return _payment_screen(*visits.check_payment(visit, g.kiosk_terminal))
