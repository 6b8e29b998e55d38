"""Paying violations exactly once.

The rules that keep money safe:

* The payment row (with its amount, fixed from the violations and the late-fee
  policy) is committed before the gateway is called, and every gateway call
  carries an idempotency key derived from the payment's id, so a retry after a
  timeout cannot create a second charge.
* A violation is held by at most one open payment (a partial unique index on
  payment_items); starting another payment cancels an older one that was never
  confirmed, and is refused (409) while one is being confirmed.
* Settlement is a compare-and-set under row locks (``SELECT ... FOR UPDATE`` on
  PostgreSQL): a violation becomes paid only if it is still unpaid, so two
  captures can never settle it twice; money captured for a violation that was
  already paid is refunded automatically.
* Webhooks, the confirm call, GET and ``payments sync`` all funnel into
  ``apply_intent``, which re-reads the gateway's truth and never moves a
  payment backwards.
"""
import hashlib
import json
import logging
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from finepay import audit
from finepay.dbtypes import utcnow
from finepay.errors import ApiError
from finepay.extensions import db
from payments import gateways, states
from payments.gateways import GatewayError, current_gateway
from payments.models import Payment, PaymentItem, Refund, WebhookEvent
from violations.fees import business_today, current_policy
from violations.models import PAID, UNPAID, Violation

log = logging.getLogger(__name__)

RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
# A PROCESSING payment whose intent still waits for a method after this long
# never reached the gateway: let the driver try again.
STALE_CONFIRM = timedelta(seconds=60)


def new_receipt_number():
    """A receipt number nobody can guess: 80 random bits, grouped for reading aloud."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(16))
    return "FP-" + "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def convenience_fee(subtotal):
    """The optional service fee, CONVENIENCE_FEE_BPS basis points of the fines, rounded half up."""
    bps = current_app.config["CONVENIENCE_FEE_BPS"]
    return (subtotal * bps + 5000) // 10000 if bps > 0 else 0


def fingerprint(**request):
    """A stable hash of what a create request asked for, to detect a reused idempotency key."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_violations(violation_ids):
    """Lock violations in id order. Every path locks violations before payments, so none can deadlock."""
    return db.session.execute(
        select(Violation).where(Violation.id.in_(violation_ids)).order_by(Violation.id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalars().all()


def _lock_payment_with_violations(payment_id):
    """Lock a payment's violations, then the payment itself (the one lock order)."""
    ids = db.session.execute(
        select(PaymentItem.violation_id).where(PaymentItem.payment_id == payment_id)
    ).scalars().all()
    _lock_violations(ids)
    return _lock_payment(payment_id)


def _lock_payment(payment_id):
    """Re-read a payment under a row lock (PostgreSQL), discarding any stale copy."""
    return db.session.execute(
        select(Payment).where(Payment.id == payment_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def _transition(payment, new_status, actor="system", **details):
    states.check_transition(payment.status, new_status)
    old = payment.status
    payment.status = new_status
    if new_status not in states.OPEN:
        _release(payment)
    audit.record(f"payment.{new_status}", "payment", payment.id, actor=actor, previous=old, **details)


def _release(payment):
    for item in payment.items:
        item.holds = None


def _record_gateway_error(payment, operation, error):
    audit.record("payment.gateway_error", "payment", payment.id, operation=operation, code=error.code,
                 outcome_unknown=error.outcome_unknown)


def get_payment(payment_id):
    """The payment with this id, or a 404 ApiError."""
    payment = db.session.get(Payment, payment_id) if isinstance(payment_id, str) and len(payment_id) <= 32 else None
    if payment is None:
        raise ApiError(_("No such payment."), code="not_found", status=404)
    return payment


def _gateway_unavailable(error):
    log.warning("gateway error: %s (%s) %s", error.code, error.gateway_message, error.message)
    if error.outcome_unknown:
        return ApiError(
            _("The card processor did not answer in time. Do not pay again: this payment will be "
              "updated within a few minutes."),
            code="gateway_timeout", status=503,
        )
    return ApiError(
        _("The card processor is not available right now. Nothing was charged; please try again shortly."),
        code="gateway_unavailable", status=503 if error.retryable else 502,
    )


# --- starting a payment ----------------------------------------------------

def start_payment(*, plate, vin_last6, violation_ids, idempotency_key, channel="web", terminal_id=None):
    """Create (or return, for a repeated idempotency key) the payment for these violations.

    Arguments are already normalised and validated in shape. The amount is
    computed here from the violations and the late-fee policy, never taken
    from the client.
    """
    request_fp = fingerprint(plate=plate, vin_last6=vin_last6, violation_ids=sorted(violation_ids),
                             channel=channel, terminal_id=terminal_id)
    existing = db.session.execute(
        select(Payment).where(Payment.idempotency_key == idempotency_key)
    ).scalar_one_or_none()
    if existing is None:
        try:
            existing = _create_payment(plate, vin_last6, violation_ids, idempotency_key, request_fp,
                                       channel, terminal_id)
        except IntegrityError:
            db.session.rollback()
            existing = db.session.execute(
                select(Payment).where(Payment.idempotency_key == idempotency_key)
            ).scalar_one_or_none()
            if existing is None:  # lost a race for a violation, not for the key
                raise ApiError(_("Another payment for these violations is in progress."),
                               code="payment_in_progress", status=409) from None
    if existing.request_fingerprint != request_fp:
        raise ApiError(_("This Idempotency-Key was already used for a different request."),
                       code="idempotency_key_reused", status=409)
    return _ensure_intent(existing)


def _create_payment(plate, vin_last6, violation_ids, idempotency_key, request_fp, channel, terminal_id):
    """Create the payment under the violations' locks; returns an existing payment for a raced retry.

    Cancelling the older payments and creating this one happen in one
    transaction under those locks, so that of many payers racing for one
    violation the last one in always holds it (nobody is left cancelled
    by someone who then gave up).
    """
    violations = [v for v in _lock_violations(violation_ids) if v.plate == plate and v.vin_last6 == vin_last6]
    # A retry with the same key may have waited on these locks while the
    # original committed: hand back the original, touch nothing.
    raced = db.session.execute(
        select(Payment).where(Payment.idempotency_key == idempotency_key)
    ).scalar_one_or_none()
    if raced is not None:
        db.session.commit()
        return raced
    _check_payable(violations, violation_ids)
    _free_violations(violation_ids)

    config = current_app.config
    today = business_today(config["BUSINESS_TIMEZONE"])
    policy = current_policy()
    payment = Payment(
        amount=0, currency=config["CURRENCY"], plate=plate, vin_last6=vin_last6, channel=channel,
        terminal_id=terminal_id, gateway=current_gateway().name, idempotency_key=idempotency_key,
        request_fingerprint=request_fp, expires_at=utcnow() + timedelta(minutes=config["QUOTE_TTL_MINUTES"]),
    )
    for v in violations:
        payment.items.append(PaymentItem(
            violation_id=v.id, fine=v.fine, late_fee=policy.late_fee(v.fine, v.decision_date, today), holds=True,
        ))
    subtotal = sum(item.amount for item in payment.items)
    payment.convenience_fee = convenience_fee(subtotal)
    payment.amount = subtotal + payment.convenience_fee
    db.session.add(payment)
    db.session.flush()
    audit.record("payment.created", "payment", payment.id, actor=channel, amount=payment.amount,
                 currency=payment.currency, violations=sorted(v.id for v in violations), terminal_id=terminal_id)
    # Written before the gateway hears of it: whatever happens next, we know.
    db.session.commit()
    return payment


def _check_payable(violations, violation_ids):
    """Refuse unknown, foreign, paid, void and in-person-only violations."""
    found = {v.id for v in violations}
    missing = [i for i in violation_ids if i not in found]
    if missing:
        # Unknown and someone else's look the same: no oracle.
        raise ApiError(_("Some violations were not found for this vehicle."), code="unknown_violation", status=422,
                       errors={"violation_ids": {str(i): [_("Not found for this vehicle.")] for i in missing}})
    problems = {}
    for v in violations:
        if v.status == PAID:
            problems[str(v.id)] = ["already_paid", _("Already paid (receipt %(receipt)s).", receipt=v.receipt_number)]
        elif v.status != UNPAID:
            problems[str(v.id)] = ["not_payable", _("Cancelled: nothing to pay.")]
        elif not v.payable_online:
            problems[str(v.id)] = ["not_payable_online", _("Must be handled in person.")]
    if problems:
        codes = {code for code, _message in problems.values()}
        code = "already_paid" if codes == {"already_paid"} else next(iter(sorted(codes)))
        status = 409 if code in ("already_paid", "not_payable") else 422
        raise ApiError(_("Some violations cannot be paid here."), code=code, status=status,
                       errors={"violation_ids": {k: [m] for k, (_c, m) in problems.items()}})


def _free_violations(violation_ids):
    """Cancel older open payments holding these violations (the caller holds the violation locks).

    Refuses with 409 while an older payment is being confirmed; when the
    gateway reveals that an older payment was in fact paid, settles it for
    good (committed) and answers already_paid.
    """
    holders = db.session.execute(
        select(Payment).join(PaymentItem)
        .where(PaymentItem.violation_id.in_(violation_ids), PaymentItem.holds.is_(True))
        .with_for_update(of=Payment)
    ).scalars().unique().all()
    for older in holders:
        if older.status == states.PROCESSING:
            raise ApiError(_("A payment for these violations is being processed. Wait for its result."),
                           code="payment_in_progress", status=409, errors={"payment_id": older.id})
    for older in holders:
        if older.gateway_intent_id:
            try:
                intent = current_gateway().cancel_intent(older.gateway_intent_id,
                                                         idempotency_key=f"{older.id}:cancel")
            except GatewayError as error:
                db.session.rollback()
                raise _gateway_unavailable(error) from None
            if intent.status in (gateways.SUCCEEDED, gateways.PROCESSING):
                apply_intent(older.id, intent)  # commits the settlement, refunds any surplus
                raise ApiError(_("These violations were paid a moment ago. Look them up again."),
                               code="already_paid" if intent.status == gateways.SUCCEEDED
                               else "payment_in_progress", status=409, errors={"payment_id": older.id})
        _transition(older, states.CANCELED, reason="superseded by a new payment")


def _ensure_intent(payment):
    """Create the gateway intent if an earlier attempt did not get that far."""
    if payment.gateway_intent_id or not payment.is_open:
        return payment
    try:
        intent = current_gateway().create_intent(
            payment_id=payment.id, amount=payment.amount, currency=payment.currency,
            idempotency_key=f"{payment.id}:create",
        )
    except GatewayError as error:
        audit.record("payment.gateway_error", "payment", payment.id, operation="create", code=error.code)
        db.session.commit()
        raise _gateway_unavailable(error) from None
    payment = _lock_payment(payment.id)
    if not payment.gateway_intent_id:
        payment.gateway_intent_id, payment.client_secret = intent.id, intent.client_secret
        audit.record("payment.intent_created", "payment", payment.id, gateway=payment.gateway, intent=intent.id)
    db.session.commit()
    return payment


# --- confirming --------------------------------------------------------------

class PaymentInProgress(ApiError):
    """Another attempt at the gateway is under way for this payment."""

    def __init__(self):
        super().__init__(_("This payment is already being processed. Wait for its result."),
                         code="payment_in_progress", status=409)


def start_attempt(payment_id, **details):
    """Take an open, unexpired payment into PROCESSING for one more attempt at the gateway.

    Returns (payment, previous status), with the transition not yet committed
    (the caller commits, so that others then see "being processed" and get a
    409). The previous status is None when no attempt is needed: the payment is
    already paid, or someone else moved it meanwhile. Raises payment_closed,
    quote_expired, and PaymentInProgress while another attempt is under way.
    """
    payment = _lock_payment(get_payment(payment_id).id)
    if payment.status in (states.SUCCEEDED, states.REFUNDED):
        db.session.commit()
        return payment, None  # a double click: the first one already paid
    if payment.status in (states.CANCELED, states.EXPIRED):
        db.session.commit()
        raise ApiError(_("This payment is closed. Start again from your violations."),
                       code="payment_closed", status=409)
    if payment.status == states.PROCESSING:
        db.session.commit()
        raise PaymentInProgress()
    if utcnow() >= payment.expires_at:
        db.session.commit()
        expire_payment(payment.id)
        raise ApiError(_("This quote has expired. Look up your violations again for today's amount."),
                       code="quote_expired", status=409)
    db.session.commit()
    payment = _ensure_intent(payment)

    payment = _lock_payment(payment.id)
    if payment.status not in (states.CREATED, states.REQUIRES_ACTION, states.FAILED):
        db.session.commit()  # someone else moved it meanwhile
        return payment, None
    previous = payment.status
    payment.confirm_attempts += 1
    _transition(payment, states.PROCESSING, attempt=payment.confirm_attempts, **details)
    return payment, previous


def confirm_payment(payment_id, payment_method):
    """Pay with a gateway payment-method token; returns the payment in its new state."""
    payment, previous = start_attempt(payment_id)
    if previous is None:
        return payment
    attempt = payment.confirm_attempts
    db.session.commit()  # others now see "being confirmed" and get a 409

    try:
        intent = current_gateway().confirm_intent(
            payment.gateway_intent_id, payment_method=payment_method,
            idempotency_key=f"{payment.id}:confirm:{attempt}",
        )
    except GatewayError as error:
        payment = _lock_payment(payment.id)
        _record_gateway_error(payment, "confirm", error)
        if not error.outcome_unknown and payment.status == states.PROCESSING:
            # Nothing happened at the gateway: back to where the driver was.
            _transition(payment, previous, reason="confirm not accepted by the gateway")
        db.session.commit()
        if error.code == "intent_canceled":
            refresh_payment(payment.id)
            raise ApiError(_("This payment is closed. Start again from your violations."),
                           code="payment_closed", status=409) from None
        if error.code == "invalid_payment_method":
            raise ApiError(_("This payment method cannot be used."), code="invalid_payment_method",
                           status=422, errors={"payment_method": [_("Not accepted.")]}) from None
        raise _gateway_unavailable(error) from None
    return apply_intent(payment.id, intent)


# --- the gateway's truth -----------------------------------------------------

def apply_intent(payment_id, intent):
    """Bring a payment in line with its gateway intent. Safe to call any number of times, in any order."""
    payment = _lock_payment_with_violations(payment_id)
    if intent.status == gateways.SUCCEEDED:
        _settle(payment, intent)
    elif payment.status in states.OPEN:
        if intent.status == gateways.REQUIRES_ACTION and payment.status != states.REQUIRES_ACTION:
            payment.next_action_url, payment.failure_code = intent.next_action_url, None
            _transition(payment, states.REQUIRES_ACTION)
        elif intent.status == gateways.PROCESSING and payment.status != states.PROCESSING:
            payment.failure_code = None
            _transition(payment, states.PROCESSING)
        elif intent.status == gateways.FAILED and (
            payment.status != states.FAILED or payment.failure_code != intent.failure_code
        ):
            payment.failure_code = intent.failure_code or "card_declined"
            _transition(payment, states.FAILED, failure_code=payment.failure_code,
                        gateway_message=intent.failure_message)
        elif intent.status == gateways.CANCELED:
            _transition(payment, states.CANCELED, reason="canceled at the gateway")
        elif (intent.status == gateways.REQUIRES_PAYMENT_METHOD and payment.status == states.PROCESSING
              and utcnow() - payment.updated_at > STALE_CONFIRM):
            payment.failure_code = "not_completed"
            _transition(payment, states.FAILED, failure_code="not_completed")
    db.session.commit()
    _refund_surplus(payment)
    return payment


def _settle(payment, intent):
    """Mark the payment succeeded and its violations paid, each at most once.

    The caller holds the locks on the violations and then the payment.
    """
    if payment.status in (states.SUCCEEDED, states.REFUNDED):
        return
    if intent.currency.upper() != payment.currency or intent.amount_received < payment.amount:
        # Never mark fines paid for less money than they cost; staff see it in reconciliation.
        audit.record("payment.amount_mismatch", "payment", payment.id, expected=payment.amount,
                     received=intent.amount_received, currency=intent.currency)
        return
    now = utcnow()
    items = payment.items
    payment.receipt_number = payment.receipt_number or new_receipt_number()
    settled_ids = []
    for item in items:
        won = db.session.execute(
            update(Violation)
            .where(Violation.id == item.violation_id, Violation.status == UNPAID)
            .values(status=PAID, late_fee_paid=item.late_fee, paid_at=now, receipt_number=payment.receipt_number,
                    updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        item.settled = bool(won)
        if won:
            settled_ids.append(item.violation_id)
    payment.amount_received = intent.amount_received
    payment.paid_at = now
    payment.failure_code = None
    payment.next_action_url = None
    _transition(payment, states.SUCCEEDED, amount=intent.amount_received, charge=intent.charge_id,
                settled=settled_ids, receipt=payment.receipt_number)


def _refund_surplus(payment):
    """Refund money captured beyond what settled violations cost (a duplicate capture, or a void meanwhile)."""
    if payment.status != states.SUCCEEDED:
        return
    settled = sum(item.amount for item in payment.items if item.settled)
    if settled:
        settled += payment.convenience_fee
    already = sum(r.amount for r in payment.refunds if r.automatic)
    surplus = payment.amount_received - settled - already
    if surplus > 0:
        refund_payment(payment.id, surplus, reason="duplicate: these violations were already paid",
                       actor="system", automatic=True, idempotency_key=f"{payment.id}:surplus")


def refund_payment(payment_id, amount, *, reason, actor, automatic=False, idempotency_key=None,
                   release_violations=False):
    """Send money back through the gateway, recorded before the call; safe to call twice with the same key."""
    payment = _lock_payment_with_violations(payment_id)
    key = idempotency_key or f"{payment.id}:refund:{len(payment.refunds) + 1}"
    refund = db.session.execute(select(Refund).where(Refund.idempotency_key == key)).scalar_one_or_none()
    if refund is None:
        if amount <= 0 or amount > payment.amount_received - payment.refunded_amount:
            raise ApiError(_("The refund is larger than what is left to refund."), code="invalid_refund",
                           status=422)
        refund = Refund(payment=payment, amount=amount, currency=payment.currency, reason=reason,
                        automatic=automatic, idempotency_key=key, actor=actor)
        db.session.add(refund)
        audit.record("refund.created", "payment", payment.id, actor=actor, amount=amount, reason=reason,
                     automatic=automatic)
    db.session.commit()
    if refund.status == "succeeded":
        return refund
    try:
        result = current_gateway().refund(payment.gateway_intent_id, amount=refund.amount,
                                          idempotency_key=refund.idempotency_key, reason=reason)
    except GatewayError as error:
        audit.record("refund.gateway_error", "payment", payment.id, actor=actor, code=error.code)
        db.session.commit()
        log.warning("refund of %s failed at the gateway (%s); sync retries it", payment.id, error.code)
        return refund
    payment = _lock_payment_with_violations(payment.id)
    refund.status, refund.gateway_refund_id = result.status, result.id
    audit.record("refund.succeeded" if result.status == "succeeded" else "refund.pending", "payment", payment.id,
                 actor=actor, amount=refund.amount, gateway_refund=result.id)
    if release_violations:
        _unsettle(payment, actor)
    if payment.status == states.SUCCEEDED and payment.refunded_amount >= payment.amount_received:
        _transition(payment, states.REFUNDED, actor=actor)
    db.session.commit()
    return refund


def _unsettle(payment, actor):
    """A refunded payment no longer pays its violations: they are owed again."""
    for item in payment.items:
        if item.settled:
            db.session.execute(
                update(Violation).where(Violation.id == item.violation_id,
                                        Violation.receipt_number == payment.receipt_number)
                .values(status=UNPAID, late_fee_paid=None, paid_at=None, receipt_number=None, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            item.settled = False
            audit.record("violation.unpaid", "violation", item.violation_id, actor=actor, payment=payment.id)


def refresh_payment(payment_id):
    """The payment, brought up to date from the gateway when its outcome is not final."""
    payment = get_payment(payment_id)
    if payment.status not in states.UNSETTLED or not payment.gateway_intent_id:
        return payment
    try:
        intent = current_gateway().retrieve_intent(payment.gateway_intent_id)
    except GatewayError as error:
        log.warning("could not refresh %s: %s", payment.id, error.code)
        return payment
    return apply_intent(payment.id, intent)


def expire_payment(payment_id):
    """Close an unconfirmed payment whose quote ran out, cancelling its intent first."""
    payment = _lock_payment(payment_id)
    if payment.status not in (states.CREATED, states.REQUIRES_ACTION, states.FAILED):
        db.session.commit()
        return payment
    if payment.gateway_intent_id:
        db.session.commit()
        intent = current_gateway().cancel_intent(payment.gateway_intent_id, idempotency_key=f"{payment.id}:cancel")
        if intent.status == gateways.SUCCEEDED:
            return apply_intent(payment.id, intent)
        payment = _lock_payment(payment_id)
        if payment.status not in (states.CREATED, states.REQUIRES_ACTION, states.FAILED):
            db.session.commit()
            return payment
    _transition(payment, states.EXPIRED)
    db.session.commit()
    return payment


# --- webhooks and sync ------------------------------------------------------

def handle_webhook(gateway_name, payload, headers):
    """Verify and apply a gateway event; returns what was done ("applied", "duplicate", "ignored").

    The event's id is recorded in the same transaction as its effect, so an
    event whose handling failed is applied when the gateway sends it again.
    """
    gateway = current_gateway()
    if gateway_name != gateway.name:
        raise ApiError(_("Unknown gateway."), code="not_found", status=404)
    try:
        event = gateway.parse_webhook(payload, headers)
    # RecursionError: a signed body nested too deeply for json.loads, whichever adapter parsed it.
    except (gateways.WebhookVerificationError, RecursionError) as error:
        raise ApiError(_("Invalid webhook signature."), code="bad_signature", status=400) from error
    db.session.add(WebhookEvent(gateway=gateway.name, event_id=event.id, type=event.type))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    payment = None
    if event.type in gateway.intent_event_types and event.intent_id:
        payment = db.session.execute(
            select(Payment).where(Payment.gateway_intent_id == event.intent_id)
        ).scalar_one_or_none()
    if payment is None:
        db.session.commit()
        return "ignored"
    # The event only says "look again": the gateway's current state is the truth,
    # so late or reordered events cannot move a payment backwards.
    try:
        intent = gateway.retrieve_intent(event.intent_id)
    except GatewayError as error:
        db.session.rollback()
        raise _gateway_unavailable(error) from None  # the gateway retries; sync is the safety net
    apply_intent(payment.id, intent)  # commits the event id with the change
    return "applied"


def sync_payments(now=None, recent=timedelta(days=2)):
    """Settle what the gateway knows and we do not: for cron every few minutes. Returns counts."""
    now = now or utcnow()
    gateway = current_gateway()
    counts = {"checked": 0, "changed": 0, "expired": 0, "refunds_retried": 0, "errors": 0}
    candidates = db.session.execute(
        select(Payment.id, Payment.status).where(
            Payment.gateway == gateway.name,
            (Payment.status.in_(states.UNSETTLED))
            | (Payment.status.in_((states.CANCELED, states.EXPIRED)) & (Payment.updated_at >= now - recent)),
        ).order_by(Payment.created_at)
    ).all()
    for payment_id, status in candidates:
        payment = db.session.get(Payment, payment_id)
        counts["checked"] += 1
        try:
            if payment.gateway_intent_id:
                intent = gateway.retrieve_intent(payment.gateway_intent_id)
                payment = apply_intent(payment_id, intent)
            if payment.status in (states.CREATED, states.REQUIRES_ACTION, states.FAILED) and now >= payment.expires_at:
                payment = expire_payment(payment_id)
                counts["expired"] += 1
        except GatewayError as error:
            db.session.rollback()
            counts["errors"] += 1
            log.warning("sync of %s failed: %s", payment_id, error.code)
            continue
        if payment.status != status:
            counts["changed"] += 1
    pending = db.session.execute(select(Refund).where(Refund.status == "pending")).scalars().all()
    for refund in pending:
        counts["refunds_retried"] += 1
        refund_payment(refund.payment_id, refund.amount, reason=refund.reason, actor=refund.actor,
                       automatic=refund.automatic, idempotency_key=refund.idempotency_key)
    return counts


def payment_for_intent(intent_id):
    """The payment that owns a gateway intent, or a 404 ApiError."""
    payment = db.session.execute(
        select(Payment).where(Payment.gateway_intent_id == intent_id)
    ).scalar_one_or_none() if isinstance(intent_id, str) and len(intent_id) <= 100 else None
    if payment is None:
        raise ApiError(_("No such payment."), code="not_found", status=404)
    return payment
