"""Card-present payments: collecting a payment on a kiosk's card reader, exactly once.

The rules of services.py hold here too:

* The attempt is recorded first: the payment moves to ``processing``
  (audited, committed) before the reader is asked, so a second tap, another
  terminal or the web sees "being processed" and cannot start a second charge.
* Every reader call carries an idempotency key derived from the payment id and
  the attempt number.
* Whether money moved is only ever judged from the gateway's intent, through
  ``apply_intent``; the reader's own status just says what to tell the driver.
* Closing an abandoned payment cancels the reader, then the intent, before the
  payment is marked cancelled; money the gateway took anyway is settled.
"""
import logging

from flask_babel import gettext as _

from finepay.errors import ApiError
from finepay.extensions import db
from payments import gateways, states
from payments.gateways import GatewayError, configured_gateways, gateway_for
from payments.services import (
    PaymentInProgress,
    apply_intent,
    change_status,
    gateway_unavailable_error,
    get_payment,
    lock_payment,
    record_gateway_error,
    start_attempt,
)

log = logging.getLogger(__name__)


def card_present_gateway():
    """The first configured gateway that takes card-present payments (kiosks' readers), or None."""
    return next((gateway for gateway in configured_gateways() if gateway.supports_card_present), None)


def card_present_available():
    """Whether a configured gateway can take card-present payments."""
    return card_present_gateway() is not None


def _unavailable(error):
    """The ApiError for a gateway failure during a reader call."""
    log.warning("reader call failed: %s (%s) %s", error.code, error.gateway_message, error.message)
    if error.code == "reader_unavailable" and not error.outcome_unknown:
        return ApiError(_("The card reader is not responding. Nothing was charged."),
                        code="reader_unavailable", status=503)
    return gateway_unavailable_error(error)


def _card_present_gateway_of(payment_id):
    """The gateway of a payment to collect on a reader; a 503 ApiError when it has no readers."""
    gateway = gateway_for(get_payment(payment_id))
    if not gateway.supports_card_present:
        raise ApiError(_("Card payments are not available at this kiosk."), code="card_present_unavailable",
                       status=503)
    return gateway


def collect_on_reader(payment_id, terminal):
    """Ask the terminal's reader to collect the payment; returns (payment, ReaderPayment or None).

    ``terminal`` is a gateways.CardTerminal. A repeated call while the reader
    is already collecting returns that attempt instead of starting another.
    """
    gateway = _card_present_gateway_of(payment_id)
    try:
        payment, previous = start_attempt(payment_id, reader_terminal=terminal.name, terminal_id=terminal.id)
    except PaymentInProgress:
        return check_reader(payment_id, terminal)
    if previous is None:
        return payment, None
    previous_failure, payment.failure_code = payment.failure_code, None
    attempt = payment.confirm_attempts
    db.session.commit()  # others now see "being processed" and get a 409

    try:
        reader = gateway.start_reader_payment(payment.gateway_intent_id, terminal=terminal,
                                              idempotency_key=f"{payment.id}:reader:{attempt}")
    except GatewayError as error:
        payment = lock_payment(payment.id)
        record_gateway_error(payment, "reader_start", error)
        if not error.outcome_unknown and payment.status == states.PROCESSING:
            # The reader never took it: back to where the driver was.
            payment.failure_code = previous_failure
            change_status(payment, previous, reason="the reader did not accept the payment")
        db.session.commit()
        raise _unavailable(error) from None
    return payment, reader


def check_reader(payment_id, terminal):
    """Where the reader attempt stands; applies its outcome once final. Returns (payment, ReaderPayment or None)."""
    payment = get_payment(payment_id)
    if payment.status != states.PROCESSING or not payment.gateway_intent_id:
        return payment, None
    gateway = gateway_for(payment)
    try:
        reader = gateway.reader_status(payment.gateway_intent_id, terminal=terminal)
    except GatewayError as error:
        raise _unavailable(error) from None
    if reader.status == gateways.READER_WAITING:
        return payment, reader
    return _apply_reader_outcome(payment.id, reader), reader


def _apply_reader_outcome(payment_id, reader):
    """The reader has finished: read the intent (the money) and bring the payment in line."""
    try:
        intent = gateway_for(get_payment(payment_id)).retrieve_intent(reader.intent_id)
    except GatewayError as error:
        raise _unavailable(error) from None
    payment = apply_intent(payment_id, intent)
    if (payment.status == states.PROCESSING and reader.status != gateways.READER_SUCCEEDED
            and intent.status == gateways.REQUIRES_PAYMENT_METHOD):
        # The reader gave up without a bank decline (card removed, timed out,
        # cancelled): nothing was charged, the driver may try again.
        payment = lock_payment(payment.id)
        if payment.status == states.PROCESSING:
            payment.failure_code = reader.failure_code or "reader_canceled"
            change_status(payment, states.FAILED, failure_code=payment.failure_code, via="reader")
        db.session.commit()
    return payment


def close_reader_payment(payment_id, terminal, *, reason):
    """Stop the reader (if collecting) and close the open payment; money already taken is settled, not lost.

    Used when a kiosk session ends (start over, idle reset, revocation). Returns
    the payment; it stays open only when the gateway could not be reached, for
    ``payments sync`` to finish.
    """
    payment = get_payment(payment_id)
    if payment.status not in states.OPEN:
        return payment
    gateway = gateway_for(payment)
    if payment.status == states.PROCESSING and payment.gateway_intent_id and gateway.supports_card_present:
        try:
            reader = gateway.cancel_reader_payment(
                payment.gateway_intent_id, terminal=terminal,
                idempotency_key=f"{payment.id}:reader-cancel:{payment.confirm_attempts}",
            )
        except GatewayError as error:
            record_gateway_error(lock_payment(payment.id), "reader_cancel", error)
            db.session.commit()
            reader = None
        if reader is not None and reader.status == gateways.READER_SUCCEEDED:
            # The card was approved just before the reset: the fines are paid.
            return _apply_reader_outcome(payment.id, reader)
    return _cancel(payment.id, reason)


def _cancel(payment_id, reason):
    payment = lock_payment(payment_id)
    if payment.status not in states.OPEN:
        db.session.commit()
        return payment
    if payment.gateway_intent_id:
        db.session.commit()
        try:
            intent = gateway_for(payment).cancel_intent(payment.gateway_intent_id,
                                                        idempotency_key=f"{payment.id}:cancel")
        except GatewayError as error:
            record_gateway_error(lock_payment(payment_id), "cancel", error)
            db.session.commit()
            log.warning("could not cancel %s at the gateway (%s); sync closes it", payment_id, error.code)
            return get_payment(payment_id)
        if intent.status != gateways.CANCELED:
            return apply_intent(payment_id, intent)  # succeeded meanwhile (settled) or still processing
        payment = lock_payment(payment_id)
        if payment.status not in states.OPEN:
            db.session.commit()
            return payment
    change_status(payment, states.CANCELED, reason=reason)
    db.session.commit()
    return payment
