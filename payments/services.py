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
  PostgreSQL; on SQLite the database's write lock, finepay.database): a
  violation becomes paid only if it is still unpaid, payable and at the fine
  it was quoted, so two captures can never settle it twice and a capture never
  settles a price that no longer exists; money captured for a violation that
  was not settled is refunded automatically.
* No transaction is open while FinePay waits on the gateway (on SQLite the
  in-database sandbox needs the same write lock).
* Webhooks, the confirm call, GET and ``payments sync`` all funnel into
  ``apply_intent``, which re-reads the gateway's truth and never moves a
  payment backwards.
* Several gateways may run at once; a payment's own (``payments.gateway``,
  ``gateway_for``) is the only one ever asked about it, so a payment, its
  refunds and its notifications never meet another gateway's records.
"""
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from finepay import audit
from finepay.database import commit_keeping_objects
from finepay.dbtypes import utcnow
from finepay.errors import ApiError, invalid_field
from finepay.extensions import db
from finepay.formatting import format_money
from payments import ereceipt_requests, gateways, refunds, states
from payments.gateways import SURFACE_KIOSK, GatewayError, Payer, gateway_for, gateway_named, gateways_serving
from payments.models import (
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    Payment,
    PaymentItem,
    Refund,
    RefundLine,
    WebhookEvent,
)
from violations import instalments
from violations.fees import business_today, current_policy
from violations.models import PAID, UNPAID, Instalment, InstalmentPlan, Violation
from violations.services import (
    ALREADY_PAID,
    IN_PERSON_ONLY,
    NOT_PAYABLE,
    NOTHING_TO_PAY,
    UNDER_CONTEST,
    late_fee_of,
    prove_vehicle,
    why_not_payable,
)

log = logging.getLogger(__name__)

RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
# A PROCESSING payment whose intent still waits for a method after this long
# never reached the gateway: let the driver try again.
STALE_CONFIRM = timedelta(seconds=60)
# How many times a new payment re-checks the violations after cancelling older payments at the
# gateway (others may have started payments meanwhile) before answering "in progress".
SUPERSEDE_ROUNDS = 5
# Why an instalment cannot be paid (codes the payments API answers with, 409).
INSTALMENT_PLAN, INSTALMENT_NOT_NEXT = "instalment_plan", "instalment_not_next"


def new_receipt_number():
    """A receipt number nobody can guess: 80 random bits, grouped for reading aloud."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(16))
    return "FP-" + "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def convenience_fee(subtotal):
    """The optional service fee, CONVENIENCE_FEE_BPS basis points of the fines, rounded half up."""
    bps = current_app.config["CONVENIENCE_FEE_BPS"]
    return (subtotal * bps + 5000) // 10000 if bps > 0 else 0


@dataclass(frozen=True)
class Quote:
    """What a driver pays for the chosen violations: their amounts due, the service fee on them, the total."""

    subtotal: int
    fee: int

    @property
    def total(self):
        """Amounts due plus the service fee, in minor units."""
        return self.subtotal + self.fee


def quote(amounts_due):
    """The Quote for these amounts due (the review screens and the payment itself price the same way)."""
    subtotal = sum(amounts_due)
    return Quote(subtotal, convenience_fee(subtotal))


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


def _locked(payment_id):
    """The payment, re-read under a row lock (PostgreSQL), discarding any stale copy in the session."""
    return select(Payment).where(Payment.id == payment_id).with_for_update().execution_options(populate_existing=True)


def _lock_payment_with_violations(payment_id):
    """Lock a payment's violations, then the payment itself (the one lock order); returns both.

    Keep the violations while using them: the session holds objects only as
    long as something refers to them, and would read them again.
    """
    ids = db.session.execute(
        select(PaymentItem.violation_id).where(PaymentItem.payment_id == payment_id)
    ).scalars().all()
    violations = {v.id: v for v in _lock_violations(ids)}
    # Its items read with it, under its lock (FOR UPDATE OF payments: the join leaves the items unlocked).
    payment = db.session.execute(
        _locked(payment_id).options(joinedload(Payment.items)).with_for_update(of=Payment)
    ).unique().scalar_one()
    return payment, violations


def lock_payment(payment_id):
    """Re-read a payment under a row lock (PostgreSQL), discarding any stale copy."""
    return db.session.execute(_locked(payment_id)).scalar_one()


def change_status(payment, new_status, actor="system", **details):
    """Move a locked payment to ``new_status`` (if the state machine allows it), releasing its holds once closed."""
    states.check_transition(payment.status, new_status)
    old = payment.status
    payment.status = new_status
    if new_status not in states.OPEN:
        _release(payment)
    audit.record(f"payment.{new_status}", "payment", payment.id, actor=actor, previous=old, **details)


def _release(payment):
    for item in payment.items:
        item.holds = None


def record_gateway_error(payment, operation, error):
    """Put a failed gateway call on a payment's audit trail."""
    audit.record("payment.gateway_error", "payment", payment.id, operation=operation, code=error.code,
                 outcome_unknown=error.outcome_unknown)


def get_payment(payment_id, *, lock=False):
    """The payment with this id (locked and re-read, as lock_payment, when ``lock``), or a 404 ApiError."""
    payment = None
    if isinstance(payment_id, str) and len(payment_id) <= 32:
        payment = (db.session.execute(_locked(payment_id)).scalar_one_or_none() if lock
                   else db.session.get(Payment, payment_id))
    if payment is None:
        if lock:
            db.session.rollback()  # end the transaction the lock began
        raise ApiError(_("No such payment."), code="not_found", status=404)
    return payment


def gateway_unavailable_error(error):
    """The ApiError a driver sees when the gateway failed: whether to wait (outcome unknown) or try again."""
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

def not_this_vehicles():
    """The one answer when plate + VIN code and the violation ids do not all go together (no oracle)."""
    return ApiError(_("Some violations were not found for this vehicle."), code="unknown_violation", status=422,
                    errors={"violation_ids": [_("Check the plate and VIN code, and look the vehicle up again.")]})


def start_proven_payment(*, plate, idempotency_key, violation_ids=(), instalment_ids=(), vin_last6=None,
                         payment_code=None, altcha=None, gateway=None, payer=None):
    """The public API's create: plate + VIN code (or payment code) prove the vehicle as a lookup does, then start_payment.

    Nothing happens to the vehicle's violations, nor to a payment open for them,
    unless the proof holds. A payment code proves the vehicle as a VIN code does,
    so the payment is the vehicle's (plate + the VIN code it proved). An
    instalment proves with its violation; an unknown instalment id fails the
    proof as an unknown violation id does.
    """
    proven_ids = list(violation_ids) + violations_of_instalments(instalment_ids, unknown=0)
    statement = prove_vehicle(plate, vin_last6=vin_last6, payment_code=payment_code, violation_ids=proven_ids,
                              altcha=altcha)
    if statement is None:
        raise not_this_vehicles()
    return start_payment(plate=plate, vin_last6=statement.vin_last6, violation_ids=violation_ids,
                         instalment_ids=instalment_ids, idempotency_key=idempotency_key, gateway=gateway, payer=payer)


def violations_of_instalments(instalment_ids, unknown=None):
    """The violation ids of these instalments, in their order (``unknown`` in place of an id that names none)."""
    if not instalment_ids:
        return []
    found = dict(db.session.execute(
        select(Instalment.id, InstalmentPlan.violation_id).join(InstalmentPlan, InstalmentPlan.id == Instalment.plan_id)
        .where(Instalment.id.in_(instalment_ids))
    ).all())
    return [found.get(i, unknown) for i in instalment_ids]


def choose_gateway(name, payer):
    """The gateway a new payment goes to: the one named (configured, and serving this payer), else the first that serves.

    A name that is not configured or cannot take this payer's payment is a 422.
    """
    serving = gateways_serving(payer)
    if name is None:
        if not serving:
            raise ApiError(_("There is no way to pay here right now."), code="no_gateway", status=422)
        return serving[0]
    chosen = next((gateway for gateway in serving if gateway.name == name), None)
    if chosen is None:
        raise invalid_field("gateway", _("This way of paying is not available here."))
    return chosen


def start_payment(*, plate, vin_last6, violation_ids, idempotency_key, channel="web", terminal_id=None, gateway=None,
                  payer=None, instalment_ids=()):
    """Create (or return, for a repeated idempotency key) the payment for these violations.

    Arguments are already normalised and validated in shape, and the vehicle
    proven (start_proven_payment, a vehicle token, a kiosk visit). The amount is
    computed here from the violations and the late-fee policy, never taken
    from the client. ``gateway`` names the way of paying the driver chose
    (choose_gateway); ``payer`` says where they are (a kiosk's by default on
    the kiosk channel). ``instalment_ids`` are instalments of approved plans,
    each the next unpaid one of its plan (a violation with a plan is paid only
    through its instalments).
    """
    payer = payer or Payer(surface=SURFACE_KIOSK if channel == "kiosk" else gateways.SURFACE_BROWSER)
    gateway_name = choose_gateway(gateway, payer).name
    asked = {"instalment_ids": sorted(instalment_ids)} if instalment_ids else {}
    request_fp = fingerprint(plate=plate, vin_last6=vin_last6, violation_ids=sorted(violation_ids),
                             channel=channel, terminal_id=terminal_id, gateway=gateway_name, **asked)
    try:
        # Finds the payment of a repeated key under the violations' locks, or creates it.
        existing = _create_payment(plate, vin_last6, violation_ids, idempotency_key, request_fp, channel,
                                   terminal_id, gateway_name, list(instalment_ids))
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


# The payment states in which a driver may still pay, or pay another way.
PAYABLE = (states.CREATED, states.FAILED, states.REQUIRES_ACTION)
# The states refresh_payment asks the gateway about: no outcome yet, or closed by FinePay (a late capture can follow).
REREAD = states.OPEN | {states.CANCELED, states.EXPIRED}


def switch_gateway(payment_id, gateway_name, payer):
    """Pay another way: a new payment for the same violations at ``gateway_name``, superseding this one.

    The new payment supersedes the old one as any new payment does
    (_free_violations): the old order is closed at its own gateway before the
    new one opens, and if it turns out paid the answer is 409 already_paid
    and it settles. One new payment per payment and way (a double click gets
    the same). A payment already paid is returned as it is.
    """
    payment = get_payment(payment_id)
    if payment.status in states.CHARGED or payment.gateway == gateway_name:
        return payment
    key = f"switch-{payment.id}-{gateway_name}"[:100]
    switched = db.session.execute(select(Payment).where(Payment.idempotency_key == key)).scalar_one_or_none()
    if switched is not None:  # a double click, or the way back to this page: the payment it made
        return switched
    if payment.status == states.PROCESSING:
        raise PaymentInProgress()
    if payment.status not in PAYABLE:
        raise ApiError(_("This payment is closed. Start again from your violations."),
                       code="payment_closed", status=409)
    return start_payment(
        plate=payment.plate, vin_last6=payment.vin_last6,
        violation_ids=sorted(item.violation_id for item in payment.items if item.instalment_id is None),
        instalment_ids=sorted(item.instalment_id for item in payment.items if item.instalment_id is not None),
        idempotency_key=key, channel=payment.channel,
        terminal_id=payment.terminal_id, gateway=gateway_name, payer=payer,
    )


def _create_payment(plate, vin_last6, violation_ids, idempotency_key, request_fp, channel, terminal_id, gateway_name,
                    instalment_ids=()):
    """Create the payment under the violations' locks; returns an existing payment for a raced retry.

    Cancelling the older payments and creating this one happen in one
    transaction under those locks, so that of many payers racing for one
    violation the last one in always holds it (nobody is left cancelled
    by someone who then gave up). An older payment with a gateway intent is
    cancelled at its own gateway first (whichever way of paying this one uses), with the locks released: no transaction
    waits on the gateway (on SQLite the in-database sandbox needs the very
    lock it would hold), and the gateway's own answer decides who won.
    """
    canceled_at_gateway = set()
    # The violations of the instalments count as chosen; each must be this vehicle's like any other.
    instalment_violations = violations_of_instalments(instalment_ids, unknown=0)
    whole_ids, violation_ids = list(violation_ids), sorted(set(violation_ids) | set(instalment_violations))
    for _round in range(SUPERSEDE_ROUNDS):
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
        # Read under the violations' locks, which every payment of an instalment takes first.
        plans = _check_instalments(whole_ids, instalment_ids, instalment_violations)
        to_cancel = _free_violations(violation_ids, canceled_at_gateway)
        if not to_cancel:
            break
        db.session.commit()  # release the locks before the gateway call
        for older_id, older_gateway, intent_id in to_cancel:
            _cancel_superseded_intent(older_id, older_gateway, intent_id)
            canceled_at_gateway.add(older_id)
    else:
        db.session.rollback()
        raise ApiError(_("Another payment for these violations is in progress."),
                       code="payment_in_progress", status=409)

    config = current_app.config
    today = business_today(config["BUSINESS_TIMEZONE"])
    policy = current_policy()
    payment = Payment(
        amount=0, currency=config["CURRENCY"], plate=plate, vin_last6=vin_last6, channel=channel,
        terminal_id=terminal_id, gateway=gateway_name, idempotency_key=idempotency_key,
        request_fingerprint=request_fp, expires_at=utcnow() + timedelta(minutes=config["QUOTE_TTL_MINUTES"]),
        refunds=[],  # a new payment has none: nothing to load when it is shown
    )
    for v in violations:
        if v.id in plans:  # one instalment: its amount, and the late fee on it once the plan is broken
            line = plans[v.id]
            payment.items.append(PaymentItem(violation_id=v.id, instalment_id=line.id, fine=line.amount,
                                             late_fee=line.late_fee, holds=True))
            continue
        payment.items.append(PaymentItem(
            violation_id=v.id, fine=v.fine, late_fee=late_fee_of(v, policy, today), holds=True,
        ))
    price = quote(item.amount for item in payment.items)
    payment.convenience_fee, payment.amount = price.fee, price.total
    db.session.add(payment)
    db.session.flush()
    audit.record("payment.created", "payment", payment.id, actor=channel, amount=payment.amount,
                 currency=payment.currency, violations=sorted(v.id for v in violations), terminal_id=terminal_id,
                 **({"instalments": {str(v): f"{line.number}/{line.count}" for v, line in plans.items()}}
                    if plans else {}))
    # Written before the gateway hears of it: whatever happens next, we know.
    commit_keeping_objects(db.session)
    return payment


def _check_payable(violations, violation_ids):
    """Refuse unknown and foreign violations, and any that violations.services says cannot be paid online."""
    found = {v.id for v in violations}
    if any(i not in found for i in violation_ids):
        # Unknown, someone else's and a wrong VIN code look the same: no oracle.
        raise not_this_vehicles()
    problems = {}
    for v in violations:
        reason = why_not_payable(v)
        if reason == ALREADY_PAID:
            problems[str(v.id)] = [ALREADY_PAID, _("Already paid (receipt %(receipt)s).", receipt=v.receipt_number)]
        elif reason == NOT_PAYABLE:
            problems[str(v.id)] = [NOT_PAYABLE, _("Cancelled: nothing to pay.")]
        elif reason == NOTHING_TO_PAY:
            problems[str(v.id)] = [NOT_PAYABLE, _("No fine is due: nothing to pay.")]
        elif reason == IN_PERSON_ONLY:
            problems[str(v.id)] = [IN_PERSON_ONLY, _("Must be handled in person.")]
        elif reason == UNDER_CONTEST:
            problems[str(v.id)] = [UNDER_CONTEST, _("Under review (case %(case)s): it cannot be paid until the case "
                                                    "is decided.", case=v.contest_case)]
        elif reason:
            problems[str(v.id)] = [NOT_PAYABLE, _("Cannot be paid online now.")]
    if problems:
        codes = {code for code, _message in problems.values()}
        code = ALREADY_PAID if codes == {ALREADY_PAID} else next(iter(sorted(codes)))
        status = 409 if code in (ALREADY_PAID, NOT_PAYABLE, UNDER_CONTEST) else 422
        raise ApiError(_("Some violations cannot be paid here."), code=code, status=status,
                       errors={"violation_ids": {k: [m] for k, (_c, m) in problems.items()}})


def _check_instalments(whole_ids, instalment_ids, instalment_violations):
    """{violation id: the InstalmentLine to pay} for the chosen instalments; refuses what the plans do not allow.

    A violation with a plan is paid only through its next unpaid instalment: choosing it whole, an instalment
    already paid, or one that is not the next, is refused. The caller holds the violations' locks.
    """
    config = current_app.config
    tz_name = config["BUSINESS_TIMEZONE"]
    plans = instalments.plans_of(db.session, set(whole_ids) | set(instalment_violations))
    problems, chosen = {}, {}
    for violation_id in whole_ids:
        if violation_id in plans:
            problems[str(violation_id)] = [INSTALMENT_PLAN, _("Paid in instalments: pay its next instalment.")]
    policy, today = current_policy(), business_today(tz_name)
    for instalment_id, violation_id in zip(instalment_ids, instalment_violations, strict=True):
        if violation_id not in plans or violation_id in chosen:
            raise not_this_vehicles()  # unknown, or two instalments of one violation at once
        terms = instalments.instalment_terms(*plans[violation_id], policy, today, ZoneInfo(tz_name))
        line = next((line for line in terms.instalments if line.id == instalment_id), None)
        if line is None:
            raise not_this_vehicles()
        if line.status == PAID:
            problems[str(violation_id)] = [ALREADY_PAID, _(
                "Instalment %(number)d of %(count)d is already paid (receipt %(receipt)s).",
                number=line.number, count=line.count, receipt=line.receipt_number)]
        elif terms.next is not line:
            problems[str(violation_id)] = [INSTALMENT_NOT_NEXT, _(
                "Pay instalment %(number)d of %(count)d first.", number=terms.next.number, count=line.count)]
        chosen[violation_id] = line
    if problems:
        codes = {code for code, _message in problems.values()}
        code = ALREADY_PAID if codes == {ALREADY_PAID} else next(iter(sorted(codes)))
        raise ApiError(_("Some violations cannot be paid here."), code=code, status=409,
                       errors={"violation_ids": {k: [m] for k, (_c, m) in problems.items()}})
    return chosen


def _free_violations(violation_ids, canceled_at_gateway=frozenset()):
    """Cancel older open payments holding these violations (the caller holds the violation locks).

    Refuses with 409 while an older payment is being confirmed. Returns the
    (payment id, gateway name, intent id) of older payments still to be cancelled at the
    gateway, doing nothing else then; once every holder's intent is known to
    be cancelled (``canceled_at_gateway``), closes them all and returns [].
    """
    holders = db.session.execute(
        select(Payment).join(PaymentItem)
        .where(PaymentItem.violation_id.in_(violation_ids), PaymentItem.holds.is_(True))
        .with_for_update(of=Payment)
    ).scalars().unique().all()
    for older in holders:
        if older.status == states.PROCESSING and older.id not in canceled_at_gateway:
            raise ApiError(_("A payment for these violations is being processed. Wait for its result."),
                           code="payment_in_progress", status=409, errors={"payment_id": older.id})
    to_cancel = [(older.id, older.gateway, older.gateway_intent_id) for older in holders
                 if older.gateway_intent_id and older.id not in canceled_at_gateway]
    if to_cancel:
        return to_cancel
    for older in holders:
        change_status(older, states.CANCELED, reason="superseded by a new payment")
    return []


def _cancel_superseded_intent(payment_id, gateway_name, intent_id):
    """Cancel an older payment's intent at its gateway (no transaction open); 409 when it was paid meanwhile."""
    try:
        intent = gateway_named(gateway_name).cancel_intent(intent_id, idempotency_key=f"{payment_id}:cancel")
    except GatewayError as error:
        raise gateway_unavailable_error(error) from None
    if intent.status in (gateways.SUCCEEDED, gateways.PROCESSING):
        apply_intent(payment_id, intent)  # commits the settlement, refunds any surplus
        raise ApiError(_("These violations were paid a moment ago. Look them up again."),
                       code="already_paid" if intent.status == gateways.SUCCEEDED
                       else "payment_in_progress", status=409, errors={"payment_id": payment_id})


def order_description():
    """What the payer's app shows for the order: the fine and the authority that collects it, never the software."""
    return _("%(authority)s traffic fine", authority=current_app.config["AUTHORITY_NAME"])


def _ensure_intent(payment):
    """Create the gateway intent if an earlier attempt did not get that far."""
    if payment.gateway_intent_id or not payment.is_open:
        return payment
    try:
        intent = gateway_for(payment).create_intent(
            payment_id=payment.id, amount=payment.amount, currency=payment.currency,
            idempotency_key=f"{payment.id}:create", expires_at=payment.expires_at,
            description=order_description(),
        )
    except GatewayError as error:
        audit.record("payment.gateway_error", "payment", payment.id, operation="create", code=error.code)
        db.session.commit()
        raise gateway_unavailable_error(error) from None
    # The gateway's idempotency key gives racing requests the same intent; the first to record it says so.
    now = utcnow()
    recorded = db.session.execute(
        update(Payment).where(Payment.id == payment.id, Payment.gateway_intent_id.is_(None))
        .values(gateway_intent_id=intent.id, client_secret=intent.client_secret, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not recorded:
        db.session.commit()  # someone else recorded it (the same intent): read back on use
        return payment
    audit.record("payment.intent_created", "payment", payment.id, gateway=payment.gateway, intent=intent.id)
    for name, value in (("gateway_intent_id", intent.id), ("client_secret", intent.client_secret),
                        ("updated_at", now)):
        set_committed_value(payment, name, value)
    commit_keeping_objects(db.session)
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
    payment = get_payment(payment_id, lock=True)
    if payment.status in states.CHARGED:
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
    if not payment.gateway_intent_id:
        # Create the intent first, with no lock held during the gateway call, then lock again.
        db.session.commit()
        payment = lock_payment(_ensure_intent(payment).id)
    if payment.status not in PAYABLE:
        db.session.commit()  # someone else moved it meanwhile
        return payment, None
    previous = payment.status
    payment.confirm_attempts += 1
    change_status(payment, states.PROCESSING, attempt=payment.confirm_attempts, **details)
    return payment, previous


def confirm_payment(payment_id, payment_method):
    """Pay with a gateway payment-method token; returns the payment in its new state."""
    payment, previous = start_attempt(payment_id)
    if previous is None:
        return payment
    attempt = payment.confirm_attempts
    commit_keeping_objects(db.session)  # others now see "being confirmed" and get a 409

    try:
        intent = gateway_for(payment).confirm_intent(
            payment.gateway_intent_id, payment_method=payment_method,
            idempotency_key=f"{payment.id}:confirm:{attempt}",
        )
    except GatewayError as error:
        payment = lock_payment(payment.id)
        record_gateway_error(payment, "confirm", error)
        if not error.outcome_unknown and payment.status == states.PROCESSING:
            # Nothing happened at the gateway: back to where the driver was.
            change_status(payment, previous, reason="confirm not accepted by the gateway")
        db.session.commit()
        if error.code == "intent_canceled":
            refresh_payment(payment.id)
            raise ApiError(_("This payment is closed. Start again from your violations."),
                           code="payment_closed", status=409) from None
        if error.code == "invalid_payment_method":
            raise ApiError(_("This payment method cannot be used."), code="invalid_payment_method",
                           status=422, errors={"payment_method": [_("Not accepted.")]}) from None
        raise gateway_unavailable_error(error) from None
    return apply_intent(payment.id, intent)


# --- the gateway's truth -----------------------------------------------------

def apply_intent(payment_id, intent):
    """Bring a payment in line with its gateway intent. Safe to call any number of times, in any order."""
    payment, violations = _lock_payment_with_violations(payment_id)
    if intent.status == gateways.SUCCEEDED:
        _settle(payment, intent, violations)
    elif payment.status in states.OPEN:
        if intent.status == gateways.REQUIRES_ACTION and payment.status != states.REQUIRES_ACTION:
            payment.next_action_url, payment.failure_code = intent.next_action_url, None
            change_status(payment, states.REQUIRES_ACTION)
        elif intent.status == gateways.PROCESSING and payment.status != states.PROCESSING:
            payment.failure_code = None
            change_status(payment, states.PROCESSING)
        elif intent.status == gateways.FAILED and (
            payment.status != states.FAILED or payment.failure_code != intent.failure_code
        ):
            payment.failure_code = intent.failure_code or "card_declined"
            change_status(payment, states.FAILED, failure_code=payment.failure_code,
                        gateway_message=intent.failure_message)
        elif intent.status == gateways.CANCELED:
            change_status(payment, states.CANCELED, reason="canceled at the gateway")
        elif (intent.status == gateways.REQUIRES_PAYMENT_METHOD and payment.status == states.PROCESSING
              and utcnow() - payment.updated_at > STALE_CONFIRM):
            payment.failure_code = "not_completed"
            change_status(payment, states.FAILED, failure_code="not_completed")
    commit_keeping_objects(db.session)  # read under the locks just released: what the caller shows
    _refund_surplus(payment)
    if payment.status in states.CHARGED:
        # The payment stands; only now is the e-receipt issuer asked (a failure leaves the request queued).
        ereceipt_requests.issue_after_commit(payment.id)
    return payment


def _settle(payment, intent, violations):
    """Mark the payment succeeded and its violations paid, each at most once, at the price that holds now.

    The caller holds the locks on the violations (given by id) and then the payment. A
    violation already paid, or changed since the quote (its fine, whether it
    may be paid online, voided), is not settled by this payment: the money
    captured for it is refunded as surplus (_refund_surplus), and the audit
    log says why.
    """
    if payment.status in states.CHARGED:
        return
    if intent.currency.upper() != payment.currency or intent.amount_received < payment.amount:
        # Never mark fines paid for less money than they cost; staff see it in reconciliation.
        audit.record("payment.amount_mismatch", "payment", payment.id, expected=payment.amount,
                     received=intent.amount_received, currency=intent.currency)
        return
    now = utcnow()
    receipt_number = payment.receipt_number or new_receipt_number()
    settled_ids, stale, settled_instalments = [], {}, {}
    planned = set(db.session.execute(select(InstalmentPlan.violation_id).where(
        InstalmentPlan.violation_id.in_([item.violation_id for item in payment.items]))).scalars())
    for item in payment.items:
        reason = _stale_reason(item, violations.get(item.violation_id), planned)
        if reason:
            item.settled = False
            stale[str(item.violation_id)] = reason
            continue
        if item.instalment_id is not None:
            settled = _settle_instalment(item, now, receipt_number)
            if settled:
                settled_ids.append(item.violation_id)
                settled_instalments[str(item.violation_id)] = settled
            continue
        won = db.session.execute(
            update(Violation)
            .where(Violation.id == item.violation_id, Violation.status == UNPAID, Violation.fine == item.fine)
            .values(status=PAID, late_fee_paid=item.late_fee, paid_at=now, receipt_number=receipt_number,
                    updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        item.settled = bool(won)
        if won:
            settled_ids.append(item.violation_id)
    payment.receipt_number = receipt_number
    set_committed_value(payment, "refunds", [])  # only a succeeded payment is ever refunded: it has none yet
    payment.amount_received = intent.amount_received
    payment.gateway_charge_id = intent.charge_id
    payment.paid_at = now
    payment.failure_code = None
    payment.next_action_url = None
    if stale:
        audit.record("payment.items_not_settled", "payment", payment.id, violations=stale)
    change_status(payment, states.SUCCEEDED, amount=intent.amount_received, charge=intent.charge_id,
                settled=settled_ids, receipt=payment.receipt_number,
                **({"instalments": settled_instalments} if settled_instalments else {}))
    ereceipt_requests.request_ereceipt(payment)  # in this transaction; the issuer is asked after commit


def _settle_instalment(item, now, receipt_number):
    """Mark an item's instalment paid if it is still unpaid at the quoted amount; the violation once all are paid.

    A compare-and-set under the violation's lock (which the caller holds), as for a whole violation; the
    partial unique index on payment_items (instalment_id where settled) refuses a second settling line even so.
    Returns "number/count" when this item settled it, else None.
    """
    won = db.session.execute(
        update(Instalment)
        .where(Instalment.id == item.instalment_id, Instalment.status == UNPAID, Instalment.amount == item.fine)
        .values(status=PAID, late_fee_paid=item.late_fee, paid_at=now, receipt_number=receipt_number)
        .execution_options(synchronize_session=False)
    ).rowcount
    item.settled = bool(won)
    if not won:
        return None
    plan = db.session.execute(
        select(InstalmentPlan).where(InstalmentPlan.violation_id == item.violation_id)
        .execution_options(populate_existing=True)
    ).scalar_one()
    lines = db.session.execute(
        select(Instalment.id, Instalment.number, Instalment.status, Instalment.late_fee_paid)
        .where(Instalment.plan_id == plan.id)
    ).all()
    if all(line.status == PAID for line in lines):
        db.session.execute(
            update(Violation).where(Violation.id == item.violation_id, Violation.status == UNPAID)
            .values(status=PAID, late_fee_paid=plan.late_fee + sum(line.late_fee_paid or 0 for line in lines),
                    paid_at=now, receipt_number=receipt_number, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    number = next(line.number for line in lines if line.id == item.instalment_id)
    return f"{number}/{len(lines)}"


def _stale_reason(item, violation, planned=frozenset()):
    """Why this item may not settle its violation (or instalment) at the quoted price now, or None.

    ``planned``: the ids of the violations with an instalment plan, which only their instalments can settle.
    """
    if violation is None:
        return "not_found"
    reason = why_not_payable(violation)
    if reason:
        return reason
    if item.instalment_id is not None:
        return None  # the instalment's own compare-and-set decides (_settle_instalment)
    if violation.id in planned:
        return INSTALMENT_PLAN
    if violation.fine != item.fine:
        return "fine_changed"
    return None


def _refund_surplus(payment):
    """Refund money captured beyond what settled violations cost (a duplicate capture, or a change since the quote).

    The refund is allocated to the lines this payment did not settle, in
    full (with their share of any service fee), and to any money captured
    beyond the amount due; one per payment (its key is fixed).
    """
    if payment.status != states.SUCCEEDED:
        return
    ledger = refunds.balance(payment)
    unsettled = [line.item.id for line in ledger.lines if not line.item.settled and line.refundable]
    if unsettled or ledger.beyond_due_refundable:
        refund_payment(payment.id, item_ids=unsettled, beyond_due=True,
                       reason="surplus: already paid, or changed since the quote", actor="system", automatic=True,
                       idempotency_key=f"{payment.id}:surplus")


def _lock_payment_for_refund(payment_id):
    """Lock the payment (and its violations) for a refund decision, on SQLite too (its FOR UPDATE takes the write lock)."""
    payment, _violations = _lock_payment_with_violations(payment_id)
    # Refunds, their lines and the items read before the lock may be stale: read them again under it.
    db.session.expire_all()
    return payment


def refund_payment(payment_id, amount=None, *, item_ids=None, beyond_due=None, reason, actor, automatic=False,
                   idempotency_key=None):
    """Send money back through the gateway, allocated to violation lines; one idempotency key is one refund.

    ``item_ids`` chooses the lines (None: the stated order of payments.refunds);
    ``amount`` is shared out over them in order (None: all that is left of them).
    The refund is recorded (pending) under the payment's lock before the gateway
    is called, so that pending refunds count against what is left and two
    refunds can never add up to more than was captured. A repeated key answers
    with the refund made the first time, whatever else this call asks.
    """
    payment = _lock_payment_for_refund(payment_id)
    key = idempotency_key or f"{payment.id}:refund:{len(payment.refunds) + 1}"
    refund = _refund_by_key(key)
    if refund is not None:
        db.session.commit()
        return refund
    try:
        parts, beyond = _allocate_refund(payment, amount, item_ids, beyond_due)
    except ApiError:
        db.session.rollback()
        raise
    refund = Refund(payment=payment, amount=sum(parts.values()) + beyond, currency=payment.currency, reason=reason,
                    automatic=automatic, idempotency_key=key, actor=actor,
                    lines=[RefundLine(payment_item_id=item_id, amount=part) for item_id, part in parts.items()])
    db.session.add(refund)
    violations = {item.id: item.violation_id for item in payment.items}
    audit.record("refund.created", "payment", payment.id, actor=actor, amount=refund.amount, reason=reason,
                 automatic=automatic, beyond_due=beyond,
                 lines={str(violations[item_id]): part for item_id, part in parts.items()})
    try:
        db.session.commit()
    except IntegrityError:  # the same key won a race we did not see under the lock: that one is the refund
        db.session.rollback()
        refund = _refund_by_key(key)
        if refund is None:
            raise
        return refund
    return send_refund(refund.id)


def _allocate_refund(payment, amount, item_ids, beyond_due=None):
    """({item id: part}, part beyond the amount due) of a new refund; ApiError if it cannot be made."""
    if payment.status != states.SUCCEEDED:
        message = _("Only a succeeded payment can be refunded (this one is %(status)s).", status=payment.status)
        raise ApiError(message, code="invalid_refund", status=422, errors={"amount": [message]})
    ledger = refunds.balance(payment)
    try:
        return ledger.allocate(amount, item_ids, beyond_due)
    except refunds.AllocationError:
        chosen = ledger.refundable if item_ids is None else sum(
            line.refundable for line in ledger.lines if line.item.id in set(item_ids))
        message = _("The refund is larger than what is left to refund of what was chosen (%(amount)s).",
                    amount=format_money(chosen, payment.currency))
        raise ApiError(message, code="invalid_refund", status=422,
                       errors={"amount" if amount is not None else "lines": [message]}) from None


def _refund_by_key(key):
    return db.session.execute(
        select(Refund).where(Refund.idempotency_key == key).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def send_refund(refund_id):
    """Ask the gateway to make a pending refund and record its answer; returns the refund.

    Accepted: succeeded, and every violation whose whole line is now refunded
    is owed again. Refused (the gateway said no): failed, with its reason,
    never sent again. Unreachable or timed out: still pending, for
    ``payments sync`` to send again with the same idempotency key. Accepted
    but still processing at the gateway: pending, with the gateway's refund
    id, for ``payments sync`` (or the gateway's notification) to read again
    (check_refund).
    """
    refund = db.session.get(Refund, refund_id, populate_existing=True)
    if refund.status != REFUND_PENDING:
        db.session.commit()
        return refund
    payment_id = refund.payment_id
    request = {"amount": refund.amount, "idempotency_key": refund.idempotency_key, "reason": refund.reason}
    gateway, intent_id = gateway_for(refund.payment), refund.payment.gateway_intent_id
    db.session.commit()  # no lock is held while the gateway is called
    failure = None
    try:
        result = gateway.refund(intent_id, **request)
    except GatewayError as error:
        result, failure = None, error
    return _record_refund_answer(payment_id, refund_id, result, failure)


def _record_refund_answer(payment_id, refund_id, result, failure=None):
    """Record the gateway's answer about a pending refund (a GatewayRefund, or the GatewayError it raised)."""
    payment = _lock_payment_for_refund(payment_id)
    refund = db.session.get(Refund, refund_id, populate_existing=True)
    actor = refund.actor
    if refund.status != REFUND_PENDING:  # someone else recorded the answer meanwhile
        db.session.commit()
        return refund
    if result is None:
        if failure.refused:
            _fail_refund(payment, refund, failure.code, failure.gateway_message or failure.message)
        else:
            audit.record("refund.gateway_error", "payment", payment.id, actor=actor, code=failure.code,
                         refund=refund.id)
            log.warning("refund %s of %s not sent (%s); sync retries it", refund.id, payment.id, failure.code)
    elif result.status == REFUND_FAILED:
        refund.gateway_refund_id = result.id
        _fail_refund(payment, refund, "refund_failed", None)
    elif result.status == REFUND_SUCCEEDED:
        refund.gateway_refund_id = result.id
        refund.status = REFUND_SUCCEEDED
        audit.record("refund.succeeded", "payment", payment.id, actor=actor, amount=refund.amount,
                     gateway_refund=result.id, refund=refund.id)
        _release_refunded_lines(payment, refund)
        if payment.status == states.SUCCEEDED and payment.refunded_amount >= payment.amount_received:
            change_status(payment, states.REFUNDED, actor=actor)
        ereceipt_requests.request_ereceipt(payment, refund)  # red-flush and reissue, after commit
    elif refund.gateway_refund_id != result.id:  # accepted, still processing at the gateway: said once
        refund.gateway_refund_id = result.id
        audit.record("refund.pending", "payment", payment.id, actor=actor, amount=refund.amount,
                     gateway_refund=result.id, refund=refund.id)
    db.session.commit()
    if refund.status == REFUND_SUCCEEDED:
        ereceipt_requests.issue_after_commit(payment_id)
    return refund


def check_refund(refund_id):
    """Ask the gateway where a refund it accepted but had not finished (pending) stands now, and record it.

    A gateway that cannot be reached leaves it pending, for the next ``payments sync``.
    """
    refund = db.session.get(Refund, refund_id, populate_existing=True)
    if refund.status != REFUND_PENDING or not refund.gateway_refund_id:
        db.session.commit()
        return refund
    payment = refund.payment
    payment_id, gateway, intent_id = payment.id, gateway_for(payment), payment.gateway_intent_id
    gateway_refund_id = refund.gateway_refund_id
    db.session.commit()  # no lock is held while the gateway is called
    try:
        result = gateway.retrieve_refund(intent_id, gateway_refund_id)
    except GatewayError as error:
        log.warning("could not check refund %s of %s (%s); sync asks again", refund_id, payment_id, error.code)
        return db.session.get(Refund, refund_id)
    return _record_refund_answer(payment_id, refund_id, result)


def _fail_refund(payment, refund, code, message):
    refund.status, refund.failure_code = REFUND_FAILED, code
    refund.failure_message = (message or "")[:500] or None
    audit.record("refund.failed", "payment", payment.id, actor=refund.actor, amount=refund.amount, code=code,
                 gateway_message=refund.failure_message, refund=refund.id)
    log.warning("refund %s of %s refused by the gateway (%s)", refund.id, payment.id, code)


def _release_refunded_lines(payment, refund):
    """Record what a succeeded refund gave back per violation; a violation whose whole line is back is owed again.

    Only lines this payment settled concern the violation (a duplicate line
    never paid it). The caller holds the locks on the violations and the payment.
    """
    ledger = refunds.balance(payment)
    now = utcnow()
    for part in refund.lines:
        line = ledger.line_for(part.payment_item_id)
        item = line.item
        if not item.settled:
            continue
        details = {"payment": payment.id, "refund": refund.id, "amount": part.amount, "refunded": line.refunded,
                   "due": line.due}
        if not line.refunded_in_full:
            audit.record("violation.partly_refunded", "violation", item.violation_id, actor=refund.actor, **details)
            continue
        if item.instalment_id is not None:
            _release_instalment(payment, item, now)
            item.settled, item.released_at = False, now
            audit.record("violation.unpaid", "violation", item.violation_id, actor=refund.actor,
                         instalment=item.instalment_id, **details)
            continue
        db.session.execute(
            update(Violation).where(Violation.id == item.violation_id,
                                    Violation.receipt_number == payment.receipt_number)
            .values(status=UNPAID, late_fee_paid=None, paid_at=None, receipt_number=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        item.settled, item.released_at = False, now
        audit.record("violation.unpaid", "violation", item.violation_id, actor=refund.actor, **details)


def _release_instalment(payment, item, now):
    """An instalment whose whole line was refunded is owed again, and so is its violation if all had been paid."""
    db.session.execute(
        update(Instalment).where(Instalment.id == item.instalment_id,
                                 Instalment.receipt_number == payment.receipt_number)
        .values(status=UNPAID, late_fee_paid=None, paid_at=None, receipt_number=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Violation).where(Violation.id == item.violation_id, Violation.status == PAID)
        .values(status=UNPAID, late_fee_paid=None, paid_at=None, receipt_number=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def refresh_payment(payment_id):
    """The payment, brought up to date from its gateway when its outcome is not final.

    A payment still unpaid when its quote has run out is closed (at its
    gateway first, so that an order the payer still holds cannot be paid),
    so that the page says so instead of offering to pay. A cancelled or
    expired one is read again too: a payer may have paid a code or link
    that the gateway still took (a late capture), and coming back from the
    gateway's page must show that money, not "nothing was charged".
    """
    payment = get_payment(payment_id)
    if payment.status not in REREAD or not payment.gateway_intent_id:
        return payment
    try:
        payment = apply_intent(payment.id, gateway_for(payment).retrieve_intent(payment.gateway_intent_id))
        if payment.status in PAYABLE and utcnow() >= payment.expires_at:
            payment = expire_payment(payment.id)
    except GatewayError as error:
        db.session.rollback()
        log.warning("could not refresh %s: %s", payment.id, error.code)
        return get_payment(payment_id)
    return payment


def expire_payment(payment_id):
    """Close an unconfirmed payment whose quote ran out, cancelling its intent first."""
    payment = lock_payment(payment_id)
    if payment.status not in (states.CREATED, states.REQUIRES_ACTION, states.FAILED):
        db.session.commit()
        return payment
    if payment.gateway_intent_id:
        db.session.commit()
        intent = gateway_for(payment).cancel_intent(payment.gateway_intent_id, idempotency_key=f"{payment.id}:cancel")
        if intent.status == gateways.SUCCEEDED:
            return apply_intent(payment.id, intent)
        payment = lock_payment(payment_id)
        if payment.status not in (states.CREATED, states.REQUIRES_ACTION, states.FAILED):
            db.session.commit()
            return payment
    change_status(payment, states.EXPIRED)
    db.session.commit()
    return payment


# What withdraw_payment did.
WITHDRAWN, ALREADY_CLOSED, BEING_PROCESSED, CAPTURED, GATEWAY_UNREACHABLE = (
    "withdrawn", "already_closed", "being_processed", "captured", "gateway_unreachable")


def open_holds(violation_ids=None):
    """{violation id: id of the open payment holding it}, for the given violations or all held ones."""
    query = select(PaymentItem.violation_id, PaymentItem.payment_id).where(PaymentItem.holds.is_(True))
    if violation_ids is not None:
        query = query.where(PaymentItem.violation_id.in_(violation_ids))
    return dict(db.session.execute(query).all())


def withdraw_payment(payment_id, *, reason, actor):
    """Cancel an open payment whose quote no longer holds (an import changed a violation it holds).

    The gateway intent is cancelled first, with no transaction open. Returns
    WITHDRAWN or ALREADY_CLOSED when the payment no longer holds anything;
    BEING_PROCESSED (a confirm is under way: its outcome is not known yet),
    CAPTURED (the gateway had already taken the money: the payment is settled
    by the usual rules, nothing is dropped) or GATEWAY_UNREACHABLE when it
    still holds its violations and the caller must leave them alone.
    """
    payment = lock_payment(payment_id)
    status, intent_id, gateway = payment.status, payment.gateway_intent_id, gateway_for(payment)
    db.session.commit()
    if status not in states.OPEN:
        return ALREADY_CLOSED
    if status == states.PROCESSING:
        return BEING_PROCESSED
    if intent_id:
        try:
            intent = gateway.cancel_intent(intent_id, idempotency_key=f"{payment_id}:cancel")
        except GatewayError as error:
            record_gateway_error(lock_payment(payment_id), "cancel", error)
            db.session.commit()
            return GATEWAY_UNREACHABLE
        if intent.status != gateways.CANCELED:
            apply_intent(payment_id, intent)
            return CAPTURED if intent.status == gateways.SUCCEEDED else BEING_PROCESSED
    payment, _violations = _lock_payment_with_violations(payment_id)
    if payment.status not in states.OPEN:
        db.session.commit()
        return ALREADY_CLOSED
    change_status(payment, states.CANCELED, actor=actor, reason=reason)
    db.session.commit()
    return WITHDRAWN


# --- webhooks and sync ------------------------------------------------------

def webhook_gateway(gateway_name):
    """The configured gateway whose notifications come to /webhooks/<gateway_name>, or a 404 ApiError."""
    try:
        return gateway_named(gateway_name)
    except GatewayError:
        raise ApiError(_("Unknown gateway."), code="not_found", status=404) from None


def handle_webhook(gateway, payload, headers):
    """Verify and apply a gateway's notification; returns what was done.

    "applied", "duplicate", "ignored", or "mismatch" (it says another amount
    was paid than the payment's: nothing is settled, the audit log has it).
    The event's id is recorded in the same transaction as its effect, so an
    event whose handling failed is applied when the gateway sends it again.
    An event only says "look again": FinePay re-reads the intent or refund at
    the gateway, so late or reordered events cannot move anything backwards.
    """
    try:
        event = gateway.parse_webhook(payload, headers)
    # RecursionError: a signed body nested too deeply for json.loads, whichever adapter parsed it.
    except (gateways.WebhookVerificationError, RecursionError) as error:
        audit.record_refusal("webhook.refused", "gateway", gateway.name, reason="bad signature")
        db.session.commit()
        raise ApiError(_("Invalid webhook signature."), code="bad_signature", status=400) from error
    seen = select(WebhookEvent.id).where(WebhookEvent.gateway == gateway.name, WebhookEvent.event_id == event.id)
    if db.session.execute(seen).first() is not None:
        db.session.commit()
        return "duplicate"
    payment = _payment_of_event(gateway, event)
    refund = _refund_of_event(gateway, event)
    if refund is None and _refund_in_flight(gateway, event):
        # The gateway answered a refund faster than FinePay recorded its id: not known yet, so not
        # "ignored" (which the gateway would never send again); it is asked to send it again later.
        db.session.rollback()
        raise ApiError(_("This refund is still being recorded. Send the notification again later."),
                       code="refund_in_flight", status=503)
    if payment is not None and event.amount is not None and event.amount != payment.amount:
        audit.record("payment.notification_mismatch", "payment", payment.id, gateway=gateway.name, event=event.id,
                     expected=payment.amount, notified=event.amount)
        return _record_event(gateway, event, "mismatch")
    # Asked before anything is written here, so no transaction waits on the gateway.
    intent = refund_answer = None
    try:
        if payment is not None:
            payment_id = payment.id
            intent = gateway.retrieve_intent(event.intent_id)
        elif refund is not None:
            payment_id, refund_id = refund.payment_id, refund.id
            refund_answer = gateway.retrieve_refund(refund.payment.gateway_intent_id, event.refund_id)
    except GatewayError as error:
        db.session.rollback()
        raise gateway_unavailable_error(error) from None  # the gateway retries; sync is the safety net
    if intent is None and refund_answer is None:
        return _record_event(gateway, event, "ignored")
    db.session.add(WebhookEvent(gateway=gateway.name, event_id=event.id, type=event.type))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    # Each commits the event id with the change.
    if intent is not None:
        apply_intent(payment_id, intent)
    else:
        _record_refund_answer(payment_id, refund_id, refund_answer)
    return "applied"


def _payment_of_event(gateway, event):
    """The payment an intent event of this gateway concerns, or None."""
    if event.type not in gateway.intent_event_types or not event.intent_id:
        return None
    return db.session.execute(
        select(Payment).where(Payment.gateway == gateway.name, Payment.gateway_intent_id == event.intent_id)
    ).scalar_one_or_none()


def _refund_of_event(gateway, event):
    """The refund a refund event of this gateway concerns, or None."""
    if event.type not in gateway.refund_event_types or not event.refund_id:
        return None
    return db.session.execute(
        select(Refund).join(Payment, Payment.id == Refund.payment_id)
        .where(Payment.gateway == gateway.name, Refund.gateway_refund_id == event.refund_id)
    ).scalar_one_or_none()


def _refund_in_flight(gateway, event):
    """Whether a refund event may concern a refund of its payment whose request is still on its way to the gateway."""
    if event.type not in gateway.refund_event_types or not event.intent_id:
        return False
    return db.session.execute(
        select(Refund.id).join(Payment, Payment.id == Refund.payment_id)
        .where(Payment.gateway == gateway.name, Payment.gateway_intent_id == event.intent_id,
               Refund.status == REFUND_PENDING, Refund.gateway_refund_id.is_(None)).limit(1)
    ).first() is not None


def _record_event(gateway, event, outcome):
    """Remember an event that changes nothing, so that its repeats are answered as duplicates."""
    db.session.add(WebhookEvent(gateway=gateway.name, event_id=event.id, type=event.type))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    return outcome


def sync_payments(now=None, recent=timedelta(days=2)):
    """Settle what the gateways know and we do not: for cron every few minutes. Returns counts.

    Each payment is asked about at its own gateway (gateway_for); refunds
    never sent are sent again, and refunds the gateway is still processing
    are read again (check_refund); e-receipt requests whose next try is due
    are asked for again (payments.ereceipt_requests).
    """
    now = now or utcnow()
    counts = {"checked": 0, "changed": 0, "expired": 0, "refunds_retried": 0, "refunds_checked": 0,
              "refunds_failed": 0, "errors": 0}
    candidates = db.session.execute(
        select(Payment.id, Payment.status).where(
            Payment.gateway.in_(current_app.config["PAYMENT_GATEWAYS"]),
            (Payment.status.in_(states.OPEN))
            | (Payment.status.in_((states.CANCELED, states.EXPIRED)) & (Payment.updated_at >= now - recent)),
        ).order_by(Payment.created_at)
    ).all()
    for payment_id, status in candidates:
        payment = db.session.get(Payment, payment_id)
        counts["checked"] += 1
        try:
            if payment.gateway_intent_id:
                intent = gateway_for(payment).retrieve_intent(payment.gateway_intent_id)
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
    # Only pending refunds are sent again: a refused one is failed for good (staff see why).
    pending = db.session.execute(
        select(Refund.id, Refund.gateway_refund_id).join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.status == REFUND_PENDING, Payment.gateway.in_(current_app.config["PAYMENT_GATEWAYS"]))
        .order_by(Refund.id)
    ).all()
    for refund_id, gateway_refund_id in pending:
        if gateway_refund_id:  # accepted by the gateway, still processing there: ask where it stands
            counts["refunds_checked"] += 1
            refund = check_refund(refund_id)
        else:
            counts["refunds_retried"] += 1
            refund = send_refund(refund_id)
        if refund.status == REFUND_FAILED:
            counts["refunds_failed"] += 1
    # E-receipts the issuer could not make yet (it was down): asked again when their next try is due.
    ereceipts = ereceipt_requests.issue_pending(now=now)
    counts["ereceipts_issued"], counts["ereceipts_failed"] = ereceipts["done"], ereceipts["failed"]
    return counts


def request_refund(payment_id, *, amount=None, item_ids=None, reason, actor, idempotency_key):
    """A refund a person asks for (a supervisor), allocated to violation lines; then as refund_payment.

    A reason is required, and either the chosen lines (``item_ids``) or an
    amount. Without an amount each chosen line is refunded in full (its
    violation is owed again); with one, the amount is shared out over them in
    order. An amount alone follows the stated order (see payments.refunds).
    The same ``idempotency_key`` gets the same refund instead of another.
    """
    payment = get_payment(payment_id)
    reason = _checked_refund_request(reason, amount, item_ids)
    return refund_payment(payment.id, amount, item_ids=item_ids or None, reason=reason, actor=actor,
                          idempotency_key=idempotency_key)


def preview_refund(payment_id, *, amount=None, item_ids=None, reason):
    """What request_refund would refund now, without moving or recording anything: ({item id: part}, beyond due).

    The staff console shows it on the screen that asks to confirm; the same
    rules refuse the same requests here as there.
    """
    payment = get_payment(payment_id)
    _checked_refund_request(reason, amount, item_ids)
    return _allocate_refund(payment, amount, item_ids or None)


def _checked_refund_request(reason, amount, item_ids):
    """The reason, stripped; invalid_field if the request lacks a reason or an amount or lines."""
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise invalid_field("reason", _("Say why, in a few words (at least 5 characters)."))
    if not item_ids and amount is None:
        raise invalid_field("amount", _("Tick the violations to refund, or enter an amount."))
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0):
        raise invalid_field("amount", _("Enter an amount above zero."))
    return reason
