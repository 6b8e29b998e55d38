"""One driver's visit to a kiosk, held on the server and forgotten when it ends.

The kiosk's page keeps only an opaque session token in memory (never in a
cookie or storage); the plate and VIN code live in the kiosk_sessions row while
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
from finepay.errors import ApiError
from finepay.extensions import db
from kiosk.models import KioskSession, Terminal
from kiosk.services import card_terminal
from payments import reader, services, states
from violations import services as vehicle_services
from violations.services import lookup_vehicle

TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)
PROMPT_SECONDS = 15
# The page resets itself after KIOSK_IDLE_SECONDS + PROMPT_SECONDS; the server
# forgets a session on its own a little later, in case the page is gone.
SERVER_GRACE = timedelta(seconds=60)


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def idle_limit():
    """How long a session may go without a request before the server ends it itself."""
    config = current_app.config
    prompt = config.get("KIOSK_PROMPT_SECONDS", PROMPT_SECONDS)
    return timedelta(seconds=config["KIOSK_IDLE_SECONDS"] + prompt) + SERVER_GRACE


def start_session(terminal):
    """Begin a driver's visit on this terminal (ending any earlier one); returns (session, token)."""
    end_open_sessions(terminal, reason="new visit")
    token = secrets.token_urlsafe(32)
    session = KioskSession(id=_hash(token), terminal_id=terminal.id)
    db.session.add(session)
    db.session.commit()
    return session, token


def current_session(terminal, token):
    """The open session this token names on this terminal; a 409 ApiError once it has ended."""
    session = None
    if isinstance(token, str) and len(token) == TOKEN_LENGTH:
        session = db.session.get(KioskSession, _hash(token))
    if session is None or session.terminal_id != terminal.id or session.ended_at is not None:
        raise ApiError(_("This visit has ended. Please start again."), code="session_ended", status=409)
    if utcnow() - session.last_activity_at > idle_limit():
        end_session(session, terminal, reason="expired")
        raise ApiError(_("This visit has ended. Please start again."), code="session_ended", status=409)
    session.last_activity_at = utcnow()
    db.session.commit()
    return session


def _out_of_order():
    return ApiError(_("Please go back a step."), code="out_of_order", status=409)


def remember_plate(session, terminal, plate):
    """The driver typed a (normalised) plate: a new plate forgets the VIN code and any unfinished payment."""
    if session.payment_id is not None:
        reader.close_reader_payment(session.payment_id, card_terminal(terminal), reason="kiosk: plate changed")
    session.plate, session.vin_last6, session.payment_id = plate, None, None
    db.session.commit()


def prove_vehicle(session, vin_last6, altcha=None):
    """Prove the vehicle with the VIN code (as online, under the plate's budget); its VehicleStatement or None."""
    if session.plate is None:
        raise _out_of_order()
    statement = vehicle_services.prove_vehicle(session.plate, vin_last6=vin_last6, altcha=altcha)
    session.vin_last6 = vin_last6 if statement is not None else None
    db.session.commit()
    return statement


def statement_for(session):
    """The proven vehicle's violations, priced now."""
    if session.plate is None or session.vin_last6 is None:
        raise _out_of_order()
    statement = lookup_vehicle(session.plate, vin_last6=session.vin_last6)
    if statement is None:
        raise _out_of_order()
    return statement


def selected_lines(session, violation_ids):
    """The chosen violations, all payable at a kiosk now; a 422 ApiError for any that is not."""
    statement = statement_for(session)
    lines, wrong = statement.chosen(violation_ids)
    if wrong:
        raise ApiError(_("Some of the chosen violations cannot be paid here."), code="not_payable", status=422,
                       errors={"violation_ids": {str(i): [_("Not payable here.")] for i in wrong}})
    return statement, sorted(lines, key=lambda line: line.id)


def pay(session, terminal, violation_ids, key):
    """Create (or, for the same key, reuse) the payment and hand it to the terminal's reader."""
    selected_lines(session, violation_ids)
    if not reader.card_present_available():
        raise ApiError(_("Card payments are not available at this kiosk."), code="card_present_unavailable",
                       status=503)
    payment = services.start_payment(
        plate=session.plate, vin_last6=session.vin_last6, violation_ids=sorted(violation_ids),
        idempotency_key=f"kiosk-{key}", channel="kiosk", terminal_id=terminal.id,
    )
    session.payment_id = payment.id
    db.session.commit()
    return reader.collect_on_reader(payment.id, card_terminal(terminal))


def session_payment(session):
    """The payment started in this session; a 409 ApiError if there is none."""
    if session.payment_id is None:
        raise _out_of_order()
    return services.get_payment(session.payment_id)


def retry_payment(session, terminal):
    """Another try on the reader for the same payment, after a decline or a removed card."""
    payment = session_payment(session)
    return reader.collect_on_reader(payment.id, card_terminal(terminal))


def check_payment(session, terminal):
    """Where the reader attempt stands: (payment, ReaderPayment or None)."""
    payment = session_payment(session)
    return reader.check_reader(payment.id, card_terminal(terminal))


def cancel_payment(session, terminal):
    """The driver cancelled at the reader: stop it and close the payment, so the violations are free again."""
    payment = session_payment(session)
    payment = reader.close_reader_payment(payment.id, card_terminal(terminal), reason="cancelled at the kiosk")
    if payment.status not in states.CHARGED:
        session.payment_id = None
        db.session.commit()
    return payment


def end_session(session, terminal, *, reason):
    """End a visit: an unfinished reader payment is cancelled at the gateway first, then the plate and VIN are wiped."""
    if session.payment_id is not None:
        reader.close_reader_payment(session.payment_id, card_terminal(terminal), reason=f"kiosk: {reason}")
    session = db.session.get(KioskSession, session.id)
    session.ended_at = session.ended_at or utcnow()
    session.plate = session.vin_last6 = None
    db.session.commit()


def end_open_sessions(terminal, *, reason):
    """End every visit still open on this terminal."""
    open_sessions = db.session.execute(
        select(KioskSession).where(KioskSession.terminal_id == terminal.id, KioskSession.ended_at.is_(None))
    ).scalars().all()
    for session in open_sessions:
        end_session(session, terminal, reason=reason)


def sweep_stale_sessions():
    """End visits on any terminal that went silent (a kiosk switched off mid-visit). Returns how many."""
    stale = db.session.execute(
        select(KioskSession).where(KioskSession.ended_at.is_(None),
                                   KioskSession.last_activity_at < utcnow() - idle_limit())
    ).scalars().all()
    for session in stale:
        end_session(session, db.session.get(Terminal, session.terminal_id), reason="expired")
    return len(stale)
