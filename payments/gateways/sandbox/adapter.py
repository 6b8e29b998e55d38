"""The sandbox adapter: deterministic, in-process, no account anywhere, no real money.

It understands Stripe's test payment-method names and keeps its ledger in
FinePay's database (its own tables, models.py, its own transactions) so that
every gunicorn worker sees the same intents, and so that it behaves like an
outside system: a rollback in FinePay does not undo a "charge" here.
"""
import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from finepay.dbtypes import utcnow
from finepay.extensions import db
from finepay.i18n import N_
from payments.gateways import (
    CANCELED,
    FAILED,
    PROCESSING,
    READER_CANCELED,
    READER_FAILED,
    READER_SUCCEEDED,
    READER_WAITING,
    REQUIRES_ACTION,
    REQUIRES_PAYMENT_METHOD,
    SUCCEEDED,
    SURFACE_KIOSK,
    GatewayError,
    GatewayEvent,
    GatewayIntent,
    GatewayRefund,
    GatewayTransaction,
    NextAction,
    PaymentGateway,
    ReaderPayment,
    WebhookVerificationError,
)

from .models import SandboxIntent, SandboxOperation, SandboxReaderAction, SandboxRefund

# Stripe's test payment methods and what the sandbox does with each.
SUCCEEDING = {"pm_card_visa", "pm_card_mastercard", "pm_card_visa_debit", "pm_card_amex", "pm_card_unionpay"}
DECLINING = {
    "pm_card_chargeDeclined": "card_declined",
    "pm_card_visa_chargeDeclined": "card_declined",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
    "pm_card_chargeDeclinedIncorrectCvc": "incorrect_cvc",
    "pm_card_chargeDeclinedProcessingError": "processing_error",
    "pm_card_chargeCustomerFail": "card_declined",
}
AUTHENTICATING = {"pm_card_threeDSecure2Required", "pm_card_authenticationRequired", "pm_card_threeDSecureRequired"}
TEST_METHODS = sorted(SUCCEEDING | set(DECLINING) | AUTHENTICATING)
# The test cards a driver can pick on the pay page, in the order shown.
PAGE_CHOICES = (
    ("pm_card_visa", N_("Visa card that pays")),
    ("pm_card_chargeDeclined", N_("Card that is declined")),
    ("pm_card_chargeDeclinedInsufficientFunds", N_("Card with insufficient funds")),
    ("pm_card_threeDSecure2Required", N_("Card that asks for a security check (3-D Secure)")),
)
WEBHOOK_TOLERANCE = 300
# The simulated card reader: what each of the seam's READER_SIMULATIONS makes it do (the same words),
# and how long the reader waits for a card before giving up (as real readers do).
READER_OUTCOMES = {
    "approve": (READER_SUCCEEDED, None),
    "decline": (READER_FAILED, "card_declined"),
    "card_removed": (READER_FAILED, "card_removed"),
    "timeout": (READER_FAILED, "reader_timeout"),
}
READER_TIMEOUT = timedelta(minutes=2)


def _reader(action):
    return ReaderPayment(
        id=f"sra_{action.id}", intent_id=action.intent_id, reader_id=action.reader_id, status=action.status,
        failure_code=action.failure_code,
        failure_message=f"sandbox reader: {action.failure_code}" if action.failure_code else None,
    )


def _intent(row):
    status = row.status
    if status == REQUIRES_PAYMENT_METHOD and row.failure_code:
        status = FAILED
    return GatewayIntent(
        id=row.id, status=status, amount=row.amount, currency=row.currency,
        amount_received=row.amount_received, payment_id=row.payment_id, client_secret=row.client_secret,
        next_action_url=f"/sandbox/authenticate/{row.id}" if row.status == REQUIRES_ACTION else None,
        charge_id=row.charge_id, failure_code=row.failure_code,
        failure_message=f"sandbox: {row.failure_code}" if row.failure_code else None,
    )


class SandboxGateway(PaymentGateway):
    """A deterministic stand-in for a card gateway, for development, demos and tests."""

    name = "sandbox"
    label = _l("Card (sandbox)")
    simulated = True
    intent_event_types = frozenset({
        "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
        "payment_intent.processing", "payment_intent.requires_action", "payment_intent.amount_capturable_updated",
    })
    supports_card_present = True

    def _session(self):
        # Its own session: the sandbox is "outside" FinePay's transactions.
        return Session(db.engine, expire_on_commit=False)

    def _replay(self, session, key):
        op = session.get(SandboxOperation, key)
        return op.result_id if op else None

    def _get(self, session, intent_id, lock=False):
        query = select(SandboxIntent).where(SandboxIntent.id == intent_id)
        row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        if row is None:
            raise GatewayError("No such sandbox intent.", code="invalid_request", gateway_message=intent_id)
        return row

    def _remember(self, session, key, result_id):
        session.add(SandboxOperation(idempotency_key=key, result_id=result_id))
        try:
            session.commit()
        except IntegrityError:  # the same key raced in: the first one wins
            session.rollback()
            return False
        return True

    def create_intent(self, *, payment_id, amount, currency, idempotency_key, description=None, expires_at=None):
        """Create a sandbox intent (idempotent by key).

        Like a card PaymentIntent it does not expire by itself: FinePay cancels it when the quote runs out.
        """
        with self._session() as session:
            seen = self._replay(session, idempotency_key)
            if seen:
                return _intent(self._get(session, seen))
            intent_id = "si_" + secrets.token_hex(10)
            row = SandboxIntent(
                id=intent_id, payment_id=payment_id, status=REQUIRES_PAYMENT_METHOD, amount=amount,
                currency=currency, client_secret=f"{intent_id}_secret_{secrets.token_hex(8)}",
            )
            session.add(row)
            session.flush()
            if not self._remember(session, idempotency_key, intent_id):
                return _intent(self._get(session, self._replay(session, idempotency_key)))
            return _intent(row)  # as committed (the session does not expire it)

    def confirm_intent(self, intent_id, *, payment_method, idempotency_key):
        """Charge a test method: success, a decline, or an authentication step."""
        if payment_method not in TEST_METHODS:
            raise GatewayError(
                "The sandbox only accepts Stripe's test payment methods.", code="invalid_payment_method",
                gateway_message=payment_method, status=422,
            )
        with self._session() as session:
            if self._replay(session, idempotency_key):
                return _intent(self._get(session, intent_id))
            row = self._get(session, intent_id, lock=True)
            if row.status == CANCELED:
                raise GatewayError("The intent was canceled.", code="intent_canceled", status=409)
            if row.status != SUCCEEDED:
                row.payment_method, row.failure_code = payment_method, None
                if payment_method in SUCCEEDING:
                    self._capture(row)
                elif payment_method in DECLINING:
                    row.status, row.failure_code = REQUIRES_PAYMENT_METHOD, DECLINING[payment_method]
                else:
                    row.status = REQUIRES_ACTION
            session.add(SandboxOperation(idempotency_key=idempotency_key, result_id=row.id))
            session.commit()
            return _intent(row)

    @staticmethod
    def _capture(row):
        row.status, row.amount_received = SUCCEEDED, row.amount
        row.charge_id, row.captured_at = "sch_" + secrets.token_hex(10), utcnow()

    def authenticate(self, intent_id, approve):
        """The sandbox's 3-D Secure page: the payer approves or fails the check."""
        with self._session() as session:
            row = self._get(session, intent_id, lock=True)
            if row.status == REQUIRES_ACTION:
                if approve:
                    self._capture(row)
                else:
                    row.status, row.failure_code = REQUIRES_PAYMENT_METHOD, "authentication_failed"
                session.commit()
            return _intent(row)

    def retrieve_intent(self, intent_id):
        """The intent as the sandbox knows it."""
        with self._session() as session:
            # A reader left waiting by a kiosk that went away gives up, as a real one does.
            self._time_out_reader(session, self._latest_action(session, intent_id))
            return _intent(self._get(session, intent_id))

    def cancel_intent(self, intent_id, *, idempotency_key):
        """Cancel unless it already succeeded (then the succeeded intent is returned)."""
        with self._session() as session:
            row = self._get(session, intent_id, lock=True)
            if row.status != SUCCEEDED:
                action = self._latest_action(session, intent_id)
                if action is not None and action.status == READER_WAITING:
                    self._finish_action(row, action, READER_CANCELED)
                row.status = CANCELED
                session.commit()
            return _intent(row)

    def refund(self, intent_id, *, amount, idempotency_key, reason=None):
        """Refund part or all of what was captured (idempotent by key)."""
        with self._session() as session:
            seen = self._replay(session, idempotency_key)
            if seen:
                refund = session.get(SandboxRefund, seen)
                return GatewayRefund(refund.id, refund.intent_id, refund.amount, refund.currency, SUCCEEDED)
            row = self._get(session, intent_id, lock=True)
            # The same key may have been sent twice at once (a retry racing the original): under
            # the intent's lock, the first one's refund is the answer, as at a real gateway.
            seen = self._replay(session, idempotency_key)
            if seen:
                refund = session.get(SandboxRefund, seen)
                return GatewayRefund(refund.id, refund.intent_id, refund.amount, refund.currency, SUCCEEDED)
            refunded = sum(session.execute(
                select(SandboxRefund.amount).where(SandboxRefund.intent_id == intent_id)
            ).scalars())
            if row.status != SUCCEEDED or amount <= 0 or refunded + amount > row.amount_received:
                raise GatewayError("Refund exceeds what was captured.", code="invalid_request",
                                   gateway_message=f"Refund exceeds what was captured: {refunded} of "
                                                   f"{row.amount_received} already refunded.",
                                   status=409)
            refund = SandboxRefund(id="sre_" + secrets.token_hex(10), intent_id=intent_id, amount=amount,
                                   currency=row.currency)
            session.add(refund)
            session.flush()
            if not self._remember(session, idempotency_key, refund.id):
                refund = session.get(SandboxRefund, self._replay(session, idempotency_key))
            return GatewayRefund(refund.id, refund.intent_id, refund.amount, refund.currency, SUCCEEDED)

    def retrieve_refund(self, intent_id, refund_id):
        """A sandbox refund (they all succeed at once)."""
        with self._session() as session:
            refund = session.get(SandboxRefund, refund_id)
            if refund is None or refund.intent_id != intent_id:
                raise GatewayError("No such sandbox refund.", code="invalid_request", gateway_message=refund_id)
            return GatewayRefund(refund.id, refund.intent_id, refund.amount, refund.currency, SUCCEEDED)

    def list_transactions(self, start, end):
        """Captured charges and refunds in [start, end)."""
        with self._session() as session:
            charges = session.execute(
                select(SandboxIntent).where(SandboxIntent.captured_at >= start, SandboxIntent.captured_at < end)
            ).scalars()
            result = [
                GatewayTransaction(row.charge_id, "charge", row.id, row.payment_id, row.amount_received,
                                   row.currency, row.captured_at)
                for row in charges
            ]
            refunds = session.execute(
                select(SandboxRefund, SandboxIntent.payment_id)
                .join(SandboxIntent, SandboxIntent.id == SandboxRefund.intent_id)
                .where(SandboxRefund.created_at >= start, SandboxRefund.created_at < end)
            ).all()
            result += [
                GatewayTransaction(r.id, "refund", r.intent_id, payment_id, r.amount, r.currency, r.created_at)
                for r, payment_id in refunds
            ]
            return sorted(result, key=lambda t: t.created_at)

    # Webhooks: the sandbox signs events like Stripe does, with a secret
    # derived from SECRET_KEY, so the webhook endpoint can be exercised
    # without any account.
    def _webhook_secret(self):
        return hashlib.sha256(("sandbox-webhook:" + self.config["SECRET_KEY"]).encode()).hexdigest()

    def sign_event(self, payload: bytes, timestamp=None):
        """The X-Sandbox-Signature header value for a payload."""
        timestamp = int(time.time()) if timestamp is None else int(timestamp)
        mac = hmac.new(self._webhook_secret().encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
        return f"t={timestamp},v1={mac.hexdigest()}"

    def parse_webhook(self, payload, headers):
        """Verify X-Sandbox-Signature (5-minute tolerance) and return the event."""
        header = headers.get("X-Sandbox-Signature", "")
        try:
            parts = dict(item.split("=", 1) for item in header.split(","))
            timestamp, signature = int(parts["t"]), parts["v1"]
        except (ValueError, KeyError):
            raise WebhookVerificationError("missing or malformed signature header") from None
        expected = self.sign_event(payload, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, signature):
            raise WebhookVerificationError("signature does not match")
        if abs(time.time() - timestamp) > WEBHOOK_TOLERANCE:
            raise WebhookVerificationError("timestamp outside the tolerance")
        try:
            event = json.loads(payload)
            return GatewayEvent(
                id=str(event["id"]), type=str(event["type"]),
                intent_id=event.get("intent_id"), payment_id=event.get("payment_id"), data=event,
            )
        except (ValueError, KeyError, TypeError):
            raise WebhookVerificationError("malformed event body") from None

    def client_fields(self, intent):
        """The sandbox's pages need no client secret."""
        return {}

    # What the payer does next: pick a test card on the pay page (a form that posts to
    # FinePay's confirm page), or, at a kiosk, the simulated reader with its controls.
    @classmethod
    def init_app(cls, app):
        """Register the sandbox's pages: its bank's security check, and the templates of its fragments."""
        from .views import bp

        app.register_blueprint(bp)

    def serves(self, payer):
        """Any payer: test cards on a page, the simulated reader at a kiosk."""
        return True

    def next_action(self, payment, payer):
        """Test cards on the pay page; the simulated reader, with its controls, at a kiosk."""
        if payer.surface == SURFACE_KIOSK:
            return NextAction.present_card(fragment="sandbox/reader.html")
        return NextAction.enter_card("sandbox/pay.html", choices=PAGE_CHOICES)

    def accepts_posted_method(self, payment_method):
        """Any of Stripe's test methods (the pay page offers four; the API takes them all)."""
        return payment_method in TEST_METHODS

    # The simulated card reader. Its state lives in the database, like the
    # intents, so that every worker (and the kiosk's polling) agrees.
    @staticmethod
    def reader_for(terminal):
        """The simulated reader paired with a terminal."""
        return terminal.reader_id or f"sandbox-reader-{terminal.id}"

    @staticmethod
    def _latest_action(session, intent_id=None, reader_id=None, lock=False):
        query = select(SandboxReaderAction).order_by(SandboxReaderAction.id.desc()).limit(1)
        if intent_id is not None:
            query = query.where(SandboxReaderAction.intent_id == intent_id)
        if reader_id is not None:
            query = query.where(SandboxReaderAction.reader_id == reader_id)
        return session.execute(query.with_for_update() if lock else query).scalar_one_or_none()

    def _finish_action(self, row, action, status, failure_code=None):
        """End a waiting reader action and move its intent accordingly. Caller holds the intent's lock."""
        action.status, action.failure_code, action.finished_at = status, failure_code, utcnow()
        if row.status != PROCESSING:
            return
        if status == READER_SUCCEEDED:
            self._capture(row)
        else:
            row.status, row.failure_code = REQUIRES_PAYMENT_METHOD, failure_code

    def _time_out_reader(self, session, action):
        if action is None or action.status != READER_WAITING or utcnow() - action.started_at < READER_TIMEOUT:
            return
        row = self._get(session, action.intent_id, lock=True)
        session.refresh(action)
        if action.status == READER_WAITING:
            self._finish_action(row, action, READER_FAILED, "reader_timeout")
        session.commit()

    def start_reader_payment(self, intent_id, *, terminal, idempotency_key):
        """Put the intent on the terminal's simulated reader, which then waits for a sandbox control."""
        with self._session() as session:
            seen = self._replay(session, idempotency_key)
            if seen:
                return _reader(session.get(SandboxReaderAction, int(seen)))
            row = self._get(session, intent_id, lock=True)
            if row.status in (SUCCEEDED, CANCELED):
                raise GatewayError(f"The intent is {row.status}.", code=f"intent_{row.status}", status=409)
            reader_id = self.reader_for(terminal)
            # One collection at a time per reader: one left waiting (a kiosk that
            # restarted) is cancelled, as a real reader's new action replaces the old.
            older = self._latest_action(session, reader_id=reader_id)
            if older is not None and older.status == READER_WAITING:
                older_row = row if older.intent_id == row.id else self._get(session, older.intent_id, lock=True)
                self._finish_action(older_row, older, READER_CANCELED)
            row.status, row.failure_code, row.payment_method = PROCESSING, None, "card_present"
            action = SandboxReaderAction(intent_id=intent_id, reader_id=reader_id, status=READER_WAITING)
            session.add(action)
            session.flush()
            session.add(SandboxOperation(idempotency_key=idempotency_key, result_id=str(action.id)))
            session.commit()
            return _reader(action)

    def reader_status(self, intent_id, *, terminal):
        """The latest reader attempt for the intent."""
        with self._session() as session:
            action = self._latest_action(session, intent_id)
            if action is None:
                raise GatewayError("No reader payment for this intent.", code="invalid_request", status=404)
            self._time_out_reader(session, action)
            return _reader(action)

    def cancel_reader_payment(self, intent_id, *, terminal, idempotency_key):
        """Stop the reader if it still waits; the intent goes back to waiting for a payment method."""
        with self._session() as session:
            row = self._get(session, intent_id, lock=True)
            action = self._latest_action(session, intent_id)
            if action is None:
                raise GatewayError("No reader payment for this intent.", code="invalid_request", status=404)
            if action.status == READER_WAITING:
                self._finish_action(row, action, READER_CANCELED)
            session.commit()
            return _reader(action)

    def simulate_reader(self, terminal, outcome):
        """The kiosk's sandbox controls: approve, decline, card_removed or timeout on the terminal's reader."""
        if outcome not in READER_OUTCOMES:
            raise GatewayError("Unknown reader simulation.", code="invalid_request", status=422)
        with self._session() as session:
            action = self._latest_action(session, reader_id=self.reader_for(terminal))
            if action is None or action.status != READER_WAITING:
                raise GatewayError("The sandbox reader is not waiting for a card.", code="reader_idle", status=409)
            row = self._get(session, action.intent_id, lock=True)
            session.refresh(action)
            if action.status == READER_WAITING:
                self._finish_action(row, action, *READER_OUTCOMES[outcome])
            session.commit()
            return _reader(action)
