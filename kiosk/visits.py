"""One driver's visit to a kiosk, held on the server and forgotten when it ends.

The kiosk's page keeps only an opaque visit token in memory (never in a
cookie or storage; it travels as the X-Kiosk-Session header); the plate and VIN code live in the kiosk_sessions row while
the visit lasts and are wiped when it ends: on start over, on the idle reset,
when the kiosk reloads, or when the kiosk has gone silent for too long.
"""
import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from finepay.dbtypes import utcnow
from finepay.errors import ApiError, invalid_field
from finepay.extensions import db
from kiosk.models import KioskVisit, Terminal
from payments import reader, services, states
from payments.gateways import SCAN_QR, SURFACE_KIOSK, GatewayError, Payer, configured_gateways, gateway_for
from violations import services as vehicle_services
from violations.services import lookup_vehicle

TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)
KIOSK_PAYER = Payer(surface=SURFACE_KIOSK)
PROMPT_SECONDS = 15
# The page resets itself after KIOSK_IDLE_SECONDS + PROMPT_SECONDS; the server
# forgets a visit on its own a little later, in case the page is gone.
SERVER_GRACE = timedelta(seconds=60)


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def idle_limit():
    """How long a visit may go without a request before the server ends it itself."""
    config = current_app.config
    prompt = config.get("KIOSK_PROMPT_SECONDS", PROMPT_SECONDS)
    return timedelta(seconds=config["KIOSK_IDLE_SECONDS"] + prompt) + SERVER_GRACE


def start_visit(terminal):
    """Begin a driver's visit on this terminal (ending any earlier one); returns (visit, token)."""
    end_open_visits(terminal, reason="new visit")
    token = secrets.token_urlsafe(32)
    visit = KioskVisit(id=_hash(token), terminal_id=terminal.id)
    db.session.add(visit)
    db.session.commit()
    return visit, token


def current_visit(terminal, token):
    """The open visit this token names on this terminal; a 409 ApiError once it has ended."""
    visit = None
    if isinstance(token, str) and len(token) == TOKEN_LENGTH:
        visit = db.session.get(KioskVisit, _hash(token))
    if visit is None or visit.terminal_id != terminal.id or visit.ended_at is not None:
        raise ApiError(_("This visit has ended. Please start again."), code="session_ended", status=409)
    if utcnow() - visit.last_activity_at > idle_limit():
        end_visit(visit, terminal, reason="expired")
        raise ApiError(_("This visit has ended. Please start again."), code="session_ended", status=409)
    visit.last_activity_at = utcnow()
    db.session.commit()
    return visit


def _out_of_order():
    return ApiError(_("Please go back a step."), code="out_of_order", status=409)


def remember_plate(visit, terminal, plate):
    """The driver typed a (normalised) plate: a new plate forgets the VIN code and any unfinished payment."""
    if visit.payment_id is not None:
        reader.close_reader_payment(visit.payment_id, terminal.card_terminal(), reason="kiosk: plate changed")
    visit.plate, visit.vin_last6, visit.payment_id = plate, None, None
    db.session.commit()


def prove_vehicle(visit, vin_last6=None, altcha=None, notice_number=None, payment_code=None):
    """Prove the vehicle with the VIN code, a notice number or a payment code (as online, under the plate's budget).

    Its VehicleStatement or None. Either way the visit keeps the proven VIN
    code (a notice or payment code proves it too), so the later screens read as after a VIN.
    """
    if visit.plate is None:
        raise _out_of_order()
    statement = vehicle_services.prove_vehicle(visit.plate, vin_last6=vin_last6, notice_number=notice_number,
                                               payment_code=payment_code, altcha=altcha)
    visit.vin_last6 = statement.vin_last6 if statement is not None else None
    db.session.commit()
    return statement


def statement_for(visit):
    """The proven vehicle's violations, priced now."""
    if visit.plate is None or visit.vin_last6 is None:
        raise _out_of_order()
    statement = lookup_vehicle(visit.plate, vin_last6=visit.vin_last6)
    if statement is None:
        raise _out_of_order()
    return statement


def selected_lines(visit, violation_ids):
    """The chosen violations, all payable at a kiosk now; a 422 ApiError for any that is not."""
    statement = statement_for(visit)
    lines, wrong = statement.chosen(violation_ids)
    if wrong:
        raise ApiError(_("Some of the chosen violations cannot be paid here."), code="not_payable", status=422,
                       errors={"violation_ids": {str(i): [_("Not payable here.")] for i in wrong}})
    return statement, sorted(lines, key=lambda line: line.id)


def pay(visit, terminal, violation_ids, key):
    """Create (or, for the same key, reuse) the payment and hand it to the terminal's reader."""
    selected_lines(visit, violation_ids)
    if not reader.card_present_available():
        raise ApiError(_("Card payments are not available at this kiosk."), code="card_present_unavailable",
                       status=503)
    payment = _start_payment(visit, terminal, violation_ids, key, reader.card_present_gateway().name)
    return reader.collect_on_reader(payment.id, terminal.card_terminal())


def _start_payment(visit, terminal, violation_ids, key, gateway):
    payment = services.start_payment(
        plate=visit.plate, vin_last6=visit.vin_last6, violation_ids=sorted(violation_ids),
        idempotency_key=f"kiosk-{key}", channel="kiosk", terminal_id=terminal.id, gateway=gateway,
    )
    visit.payment_id = payment.id
    db.session.commit()
    return payment


def scan_gateways():
    """The configured gateways a driver pays at a kiosk by scanning a QR code with a phone, in their order.

    Those that serve a kiosk's payer without its card reader: the card-present
    gateway is the reader beside the screen, offered on its own.
    """
    return [gateway for gateway in configured_gateways()
            if not gateway.supports_card_present and gateway.serves(KIOSK_PAYER)]


def is_scan_payment(payment):
    """Whether the driver pays this payment with a phone (scan to pay) rather than at the reader."""
    return not gateway_for(payment).supports_card_present


def scan_action(payment):
    """The QR code the driver scans for this open payment (its gateway places the order on first asking)."""
    try:
        action = gateway_for(payment).next_action(payment, KIOSK_PAYER)
    except GatewayError as error:
        raise services.gateway_unavailable_error(error) from None
    return action if action is not None and action.kind == SCAN_QR else None


def pay_by_scan(visit, terminal, violation_ids, key, gateway_name):
    """Create (or, for the same key, reuse) the payment of a driver who scans to pay with ``gateway_name``.

    Returns (payment, its SCAN_QR action; None once the payment is no longer
    open). A gateway not offered here is a 422; one that then asks for anything
    but a scan gets its order closed again, and the driver a 503.
    """
    selected_lines(visit, violation_ids)
    if gateway_name not in {gateway.name for gateway in scan_gateways()}:
        raise invalid_field("gateway", _("This way of paying is not available here."))
    payment = _start_payment(visit, terminal, violation_ids, key, gateway_name)
    if payment.status not in states.OPEN:
        return payment, None  # the same tap again, after the order was paid or closed
    action = scan_action(payment)
    if action is None:
        cancel_payment(visit, terminal)
        raise scan_unavailable_error()
    return payment, action


def scan_unavailable_error():
    """The 503 for a gateway that, asked for the code to scan, asks the driver for something else."""
    return ApiError(_("Paying by scanning a code is not available at this kiosk right now. Nothing was charged."),
                    code="scan_unavailable", status=503)


def visit_payment(visit):
    """The payment started in this visit; a 409 ApiError if there is none."""
    if visit.payment_id is None:
        raise _out_of_order()
    return services.get_payment(visit.payment_id)


def retry_payment(visit, terminal):
    """Another try on the reader for the same payment, after a decline or a removed card."""
    payment = visit_payment(visit)
    if is_scan_payment(payment):
        raise _out_of_order()  # a phone's order that failed is not taken to the reader: the driver goes back
    return reader.collect_on_reader(payment.id, terminal.card_terminal())


def check_payment(visit, terminal):
    """Where the payment stands: (payment, ReaderPayment or None); a scanned one is asked of its gateway."""
    payment = visit_payment(visit)
    if is_scan_payment(payment):
        return services.refresh_payment(payment.id), None
    return reader.check_reader(payment.id, terminal.card_terminal())


def cancel_payment(visit, terminal):
    """The driver cancelled: stop the reader, close the order at its gateway, so the violations are free again."""
    payment = visit_payment(visit)
    payment = reader.close_reader_payment(payment.id, terminal.card_terminal(), reason="cancelled at the kiosk")
    if payment.status not in states.CHARGED:
        visit.payment_id = None
        db.session.commit()
    return payment


def leave_visit(visit, terminal, *, reason, paying=False):
    """The page starts over (a tap, the idle reset, the receipt done): the visit ends, but never over a paid order.

    An unfinished payment is closed at its gateway first. When that close finds
    it paid (the phone paid, or the card was approved, a moment before), or the
    page was still waiting for an outcome (``paying``) that a notification has
    meanwhile settled, the visit stays open and the paid payment is returned,
    for the driver's receipt; otherwise the visit ends and None is returned.
    """
    if visit.payment_id is not None:
        payment = services.get_payment(visit.payment_id)
        unseen = paying or payment.status in states.OPEN
        if payment.status in states.OPEN:
            payment = reader.close_reader_payment(payment.id, terminal.card_terminal(), reason=f"kiosk: {reason}")
        if unseen and payment.status in states.CHARGED:
            return payment
    end_visit(visit, terminal, reason=reason)
    return None


def end_visit(visit, terminal, *, reason):
    """End a visit: an unfinished payment is closed at its gateway first, then the plate and VIN are wiped."""
    if visit.payment_id is not None:
        reader.close_reader_payment(visit.payment_id, terminal.card_terminal(), reason=f"kiosk: {reason}")
    visit = db.session.get(KioskVisit, visit.id)
    visit.ended_at = visit.ended_at or utcnow()
    visit.plate = visit.vin_last6 = None
    db.session.commit()


def end_open_visits(terminal, *, reason):
    """End every visit still open on this terminal."""
    open_visits = db.session.execute(
        select(KioskVisit).where(KioskVisit.terminal_id == terminal.id, KioskVisit.ended_at.is_(None))
    ).scalars().all()
    for visit in open_visits:
        end_visit(visit, terminal, reason=reason)


def sweep_stale_visits():
    """End visits on any terminal that went silent (a kiosk switched off mid-visit). Returns how many."""
    stale = db.session.execute(
        select(KioskVisit).where(KioskVisit.ended_at.is_(None),
                                   KioskVisit.last_activity_at < utcnow() - idle_limit())
    ).scalars().all()
    for visit in stale:
        end_visit(visit, db.session.get(Terminal, visit.terminal_id), reason="expired")
    return len(stale)
