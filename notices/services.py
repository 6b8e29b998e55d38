"""Reminders: subscribing a number to a proven vehicle, stopping, and sending what is due exactly once.

Sending (``send_due``, run by ``flask --app wsgi notices send`` from cron) works
in three steps, each safe to run twice or at once from two machines:

1. plan: every reminder due today is inserted as a queued message; the unique
   key (subscription, violation, kind) makes a second insert a no-op;
2. claim: a message goes from queued/held/retrying to ``sending`` by a
   conditional UPDATE that only one runner can win (on PostgreSQL the row is
   first locked with SKIP LOCKED, so runners do not even wait for each other);
   quiet hours and the number's daily cap are checked under the same lock (on
   PostgreSQL an advisory lock per number; SQLite serialises writers anyway);
3. send: outside any transaction; the answer is written back under the claim's
   token. A failure is retried with backoff; an unknown outcome is looked up at
   the sender before anything is sent again.
"""
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse
from sqlalchemy import exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from finepay import audit
from finepay.dbtypes import utcnow
from finepay.errors import ApiError
from finepay.extensions import db, limiter
from notices import rules, texts
from notices.models import (
    ACTIVE,
    CANCELED,
    CODE,
    FAILED,
    HELD,
    LATE_FEE_STARTS,
    PENDING,
    QUEUED,
    RETRYING,
    SENDING,
    SENT,
    STOPPED,
    UNKNOWN,
    Message,
    Subscription,
)
from notices.notifiers import NotifierError, OutgoingText, current_notifier
from violations.fees import current_policy
from violations.models import UNPAID, InstalmentPlan, Violation
from violations.services import late_fee_dates, late_fee_of, prove_vehicle

CLAIMABLE = (QUEUED, HELD, RETRYING)
# The statuses that count against a number's daily cap (a failed try does not).
COUNTED = (SENDING, SENT, UNKNOWN)
CODE_SCOPE = "notice-codes-per-number"


def _config(name):
    return current_app.config[name]


def _tz():
    return _config("BUSINESS_TIMEZONE")


def _quiet():
    return rules.parse_quiet_hours(_config("NOTICE_QUIET_HOURS"))


def sending_hours():
    """("09:00", "21:30"): the local hours texts may go out (the quiet hours' end and start), or None for any hour."""
    quiet = _quiet()
    return None if quiet is None else (quiet[1].strftime("%H:%M"), quiet[0].strftime("%H:%M"))


# --- subscribing ---------------------------------------------------------------------------------------------


def _code_hash(subscription_id, code):
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"notice-code:{subscription_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="finepay.notice-confirm")


def confirm_token(subscription, locale):
    """What the confirm form carries: the subscription and the language asked for (never the number or the plate)."""
    return _serializer().dumps([subscription.id, locale])


def subscription_for_token(token):
    """(the subscription a confirm form is for, the language asked for), or None when the token is forged or stale."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    try:
        subscription_id, locale = _serializer().loads(token, max_age=(_config("NOTICE_CODE_MINUTES") + 5) * 60)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(subscription_id, int) or locale not in texts.LOCALES:
        return None
    subscription = db.session.get(Subscription, subscription_id)
    return (subscription, locale) if subscription is not None else None


def _code_budget_spent(phone):
    key = "phone:" + hashlib.sha256(phone.encode()).hexdigest()[:32]  # the limiter's storage holds no numbers
    try:
        return not limiter.limiter.hit(parse(_config("NOTICE_CODE_RATE_LIMIT")), CODE_SCOPE, key)
    except Exception:  # noqa: BLE001 - as the lookup limits: never fail over the storage
        return False


def _subscription_row(plate, vin_last6, phone):
    """The (locked) row of this vehicle and number, created when there is none (one row each: a unique key)."""
    query = select(Subscription).where(Subscription.plate == plate, Subscription.vin_last6 == vin_last6,
                                       Subscription.phone == phone).with_for_update()
    subscription = db.session.execute(query).scalar_one_or_none()
    if subscription is not None:
        return subscription
    try:
        with db.session.begin_nested():
            subscription = Subscription(plate=plate, vin_last6=vin_last6, phone=phone, status=PENDING,
                                        code_attempts=0, locale="zh_CN")
            db.session.add(subscription)
    except IntegrityError:  # the same driver's other tab created it meanwhile
        subscription = db.session.execute(query.execution_options(populate_existing=True)).scalar_one()
    return subscription


@dataclass
class Started:
    """What subscribe_start did: the subscription, and whether a code went out (False: the sender failed)."""

    subscription: Subscription
    code_sent: bool


def subscribe_start(*, plate, vin_last6, phone, locale, altcha=None, now=None):
    """Prove the vehicle (as a lookup does, same limits) and send a one-time code to the number.

    Returns Started, or None when the proof fails. Raises ChallengeRequired as a
    lookup does, and ApiError(429) when the number has had its codes for the hour.
    """
    now = now or utcnow()
    statement = prove_vehicle(plate, vin_last6=vin_last6, altcha=altcha)
    if statement is None:
        return None
    if _code_budget_spent(phone):
        raise ApiError(_("Too many codes were sent to this number recently. Please try again in an hour."),
                       code="too_many_codes", status=429)
    subscription = _subscription_row(plate, vin_last6, phone)
    code = f"{secrets.randbelow(10 ** 6):06d}"
    minutes = _config("NOTICE_CODE_MINUTES")
    if subscription.status != ACTIVE:
        # An active subscription keeps its language until the code confirms the new one (it travels in the token).
        subscription.status, subscription.locale = PENDING, locale
    subscription.code_hash = _code_hash(subscription.id, code)
    subscription.code_expires_at = now + timedelta(minutes=minutes)
    subscription.code_attempts = 0
    notifier = current_notifier()
    body, params = texts.code_text(code, minutes, locale)
    stored_body, stored_params = (body, params) if notifier.keeps_codes else \
        texts.code_text("******", minutes, locale)
    message = Message(subscription_id=subscription.id, kind=CODE, phone=phone, locale=locale, body=stored_body,
                      params=json.dumps(stored_params, ensure_ascii=False), status=SENDING, sender=notifier.name,
                      attempts=1, claimed_at=now, claim_token=uuid.uuid4().hex)
    db.session.add(message)
    audit.record("notice.code_sent", "notice_subscription", subscription.id, actor="driver",
                 phone=rules.mask_mobile(phone))
    db.session.commit()
    # A code goes at once, whatever the hour (the driver just asked for it), and is never retried: on failure
    # the page says so and the driver asks again.
    outgoing = OutgoingText(key=f"notice-{message.id}", phone=phone, locale=locale, kind=CODE, body=body,
                            params=params)
    try:
        receipt = notifier.send(outgoing)
    except NotifierError as error:
        message.status, message.last_error = FAILED, error.message[:300]
        db.session.commit()
        return Started(subscription, False)
    message.status, message.sent_at, message.provider_message_id = SENT, utcnow(), receipt.provider_message_id
    db.session.commit()
    return Started(subscription, True)


CONFIRMED, WRONG_CODE, CODE_EXPIRED = "confirmed", "wrong_code", "code_expired"


def subscribe_confirm(subscription_id, code, locale=None, now=None):
    """Check the one-time code: CONFIRMED (the subscription is active, in ``locale``), WRONG_CODE or CODE_EXPIRED."""
    now = now or utcnow()
    subscription = db.session.execute(
        select(Subscription).where(Subscription.id == subscription_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if subscription is None or subscription.code_hash is None or subscription.code_expires_at <= now \
            or subscription.code_attempts >= _config("NOTICE_CODE_ATTEMPTS"):
        db.session.rollback()
        return CODE_EXPIRED
    if not hmac.compare_digest(subscription.code_hash, _code_hash(subscription.id, (code or "").strip())):
        subscription.code_attempts += 1
        if subscription.code_attempts >= _config("NOTICE_CODE_ATTEMPTS"):
            subscription.code_hash = None
        db.session.commit()
        return WRONG_CODE if subscription.code_hash else CODE_EXPIRED
    if subscription.status != ACTIVE:
        subscription.confirmed_at = now
    subscription.status, subscription.code_hash, subscription.code_expires_at = ACTIVE, None, None
    subscription.locale = locale or subscription.locale
    subscription.stopped_at = subscription.stopped_by = None
    audit.record("notice.subscribed", "notice_subscription", subscription.id, actor="driver",
                 phone=rules.mask_mobile(subscription.phone), locale=subscription.locale)
    db.session.commit()
    return CONFIRMED


def _stop(subscriptions, by, actor, now):
    stopped = 0
    for subscription in subscriptions:
        subscription.status, subscription.stopped_at, subscription.stopped_by = STOPPED, now, by
        subscription.code_hash = None
        db.session.execute(
            update(Message).where(Message.subscription_id == subscription.id, Message.status.in_(CLAIMABLE))
            .values(status=CANCELED, last_error=f"stopped ({by})").execution_options(synchronize_session=False))
        audit.record("notice.stopped", "notice_subscription", subscription.id, actor=actor, via=by,
                     phone=rules.mask_mobile(subscription.phone))
        stopped += 1
    db.session.commit()
    return stopped


def unsubscribe(*, plate, vin_last6, phone, altcha=None, now=None):
    """Stop this number's reminders for a vehicle proven as for a lookup; None when the proof fails, else a count.

    The count is not shown to the driver: the page says the same whether or not the number was subscribed.
    """
    statement = prove_vehicle(plate, vin_last6=vin_last6, altcha=altcha)
    if statement is None:
        return None
    subscriptions = db.session.execute(
        select(Subscription).where(Subscription.plate == plate, Subscription.vin_last6 == vin_last6,
                                   Subscription.phone == phone, Subscription.status != STOPPED).with_for_update()
    ).scalars().all()
    return _stop(subscriptions, "page", "driver", now or utcnow())


def stop_by_reply(raw_phone, reply, *, via="reply", actor="sms", now=None):
    """A subscriber's reply: a stop word (TD, 退订, STOP...) stops every subscription of the number; returns how many."""
    if not rules.is_stop_reply(reply):
        return 0
    try:
        phone = rules.normalize_mobile(raw_phone)
    except rules.InvalidMobile:
        return 0
    subscriptions = db.session.execute(
        select(Subscription).where(Subscription.phone == phone, Subscription.status != STOPPED).with_for_update()
    ).scalars().all()
    return _stop(subscriptions, via, actor, now or utcnow())


# --- what is due ---------------------------------------------------------------------------------------------


def _insert(values):
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return len(db.session.execute(insert(Message.__table__).values(**values).on_conflict_do_nothing(
        index_elements=["subscription_id", "violation_id", "kind"]).returning(Message.__table__.c.id)).all())


# What a reminder is about: an unpaid violation the driver can pay as it is, not one an open contest holds
# (cases/) nor one paid instalment by instalment (violations.instalments).
_REMINDABLE = (Violation.status == UNPAID, Violation.contest_case.is_(None),
               ~exists().where(InstalmentPlan.violation_id == Violation.id))


def plan(now=None):
    """Queue every reminder due today that is not queued yet; returns how many were queued."""
    now = now or utcnow()
    tz, policy, sender = _tz(), current_policy(), current_notifier().name
    today = rules.local_date(now, tz)
    queued = 0
    subscriptions = db.session.execute(select(Subscription).where(Subscription.status == ACTIVE)).scalars().all()
    for subscription in subscriptions:
        violations = db.session.execute(select(Violation).where(
            Violation.plate == subscription.plate, Violation.vin_last6 == subscription.vin_last6,
            *_REMINDABLE)).scalars().all()
        if not violations:
            continue
        known = set(db.session.execute(select(Message.violation_id, Message.kind).where(
            Message.subscription_id == subscription.id, Message.violation_id.is_not(None))).all())
        for violation in violations:
            due, _counted_to = late_fee_dates(violation, policy, today)  # a decision may have moved it
            for kind in rules.kinds_due(due_date=due, today=today, created_at=violation.created_at,
                                        subscribed_at=subscription.confirmed_at, tz=tz,
                                        reminder_days=_config("NOTICE_REMINDER_DAYS")):
                if (violation.id, kind) in known:
                    continue
                starts = rules.late_fee_starts_on(due)
                if kind == LATE_FEE_STARTS:
                    amount = violation.fine + late_fee_of(violation, policy, starts)
                    on = starts
                else:
                    amount, on = violation.fine, due
                body, params = texts.reminder_text(kind, plate=subscription.plate,
                                                   vin_tail=rules.vin_tail(subscription.vin_last6),
                                                   amount=amount, on=on, locale=subscription.locale)
                queued += _insert({
                    "subscription_id": subscription.id, "violation_id": violation.id, "kind": kind,
                    "phone": subscription.phone, "locale": subscription.locale, "body": body,
                    "params": json.dumps(params, ensure_ascii=False), "status": QUEUED, "sender": sender,
                    "attempts": 0, "created_at": now,
                })
        db.session.commit()
    return queued


# --- sending -------------------------------------------------------------------------------------------------


@dataclass
class SendReport:
    """What one `notices send` run did (the figures the command prints)."""

    queued: int = 0
    sent: int = 0
    held_quiet: int = 0
    held_cap: int = 0
    retrying: int = 0
    failed: int = 0
    unknown: int = 0
    canceled: int = 0
    found_sent: int = 0  # unknown outcomes the sender confirmed
    errors: list = field(default_factory=list)


def _outgoing(message):
    return OutgoingText(key=f"notice-{message.id}", phone=message.phone, locale=message.locale, kind=message.kind,
                        body=message.body, params=tuple(json.loads(message.params or "[]")))


def _on_postgres():
    return db.session.get_bind().dialect.name == "postgresql"


def _still_wanted(message):
    """Whether the message should still go: its subscription active and, for a reminder, its violation remindable."""
    subscription = db.session.get(Subscription, message.subscription_id)
    if subscription is None or subscription.status != ACTIVE:
        return False
    if message.violation_id is None:
        return True
    return db.session.execute(
        select(Violation.id).where(Violation.id == message.violation_id, *_REMINDABLE)).first() is not None


def _claim(message_id, now, report):
    """Take one due message for this runner (or hold or cancel it); returns (message, claim token) or None."""
    tz, quiet = _tz(), _quiet()
    message = db.session.execute(
        select(Message).where(Message.id == message_id, Message.status.in_(CLAIMABLE))
        .with_for_update(skip_locked=True).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if message is None or (message.next_attempt_at is not None and message.next_attempt_at > now):
        db.session.rollback()  # another runner has it, or it is not due yet
        return None
    if not _still_wanted(message):
        message.status, message.last_error = CANCELED, "paid, voided, contested, put on a plan or stopped before it was sent"
        db.session.commit()
        report.canceled += 1
        return None
    if rules.in_quiet_hours(now, quiet, tz):
        if message.hold_reason != "quiet_hours" or message.status != HELD:
            report.held_quiet += 1
        message.status, message.hold_reason = HELD, "quiet_hours"
        message.next_attempt_at = rules.quiet_hours_end(now, quiet, tz)
        db.session.commit()
        return None
    today = rules.local_date(now, tz)
    if _on_postgres():
        # One runner at a time counts and claims for a number, so two cannot both take its last place today.
        db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": "notice:" + message.phone})
    used = db.session.execute(select(func.count()).select_from(Message).where(
        Message.phone == message.phone, Message.cap_day == today, Message.status.in_(COUNTED),
        Message.kind != CODE)).scalar_one()
    if used >= _config("NOTICE_DAILY_CAP"):
        if message.hold_reason != "daily_cap" or message.status != HELD:
            report.held_cap += 1
        message.status, message.hold_reason = HELD, "daily_cap"
        message.next_attempt_at = rules.next_day_start(today, quiet, tz)
        db.session.commit()
        return None
    token = uuid.uuid4().hex
    claimed = db.session.execute(
        update(Message).where(Message.id == message.id, Message.status == message.status)
        .values(status=SENDING, claim_token=token, claimed_at=now, cap_day=today, attempts=Message.attempts + 1,
                sender=current_notifier().name)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if claimed != 1:
        return None  # another runner won the conditional update
    db.session.refresh(message)
    return message, token


def _finish(message, token, **values):
    """Write a send's outcome, only if this runner's claim still holds."""
    db.session.execute(update(Message).where(Message.id == message.id, Message.claim_token == token)
                       .values(**values).execution_options(synchronize_session=False))
    db.session.commit()


def _deliver(message, token, now, report):
    notifier = current_notifier()
    try:
        receipt = notifier.send(_outgoing(message))
    except NotifierError as error:
        reason = error.message[:300]
        if error.outcome_unknown:
            _finish(message, token, status=UNKNOWN, last_error=reason)
            report.unknown += 1
        elif error.retryable and message.attempts < _config("NOTICE_MAX_ATTEMPTS"):
            _finish(message, token, status=RETRYING, last_error=reason,
                    next_attempt_at=now + rules.backoff(message.attempts, _config("NOTICE_RETRY_SECONDS")))
            report.retrying += 1
        else:
            _finish(message, token, status=FAILED, last_error=reason, next_attempt_at=None)
            report.failed += 1
        report.errors.append(f"message {message.id}: {reason}")
        return
    _finish(message, token, status=SENT, sent_at=utcnow(), provider_message_id=receipt.provider_message_id[:100],
            last_error=None, next_attempt_at=None, hold_reason=None)
    report.sent += 1


def recheck(now, report):
    """Settle sends whose outcome is unknown: ask the sender before anything is sent again.

    A claim older than NOTICE_CLAIM_TIMEOUT_SECONDS is a runner that died
    mid-send: unknown too. The sender's record wins (sent, with its id); a text
    it has no record of NOTICE_UNKNOWN_RECHECK_MINUTES after the claim goes back
    to be retried; while it cannot tell, the message stays unknown (staff see it).
    """
    stale = now - timedelta(seconds=_config("NOTICE_CLAIM_TIMEOUT_SECONDS"))
    db.session.execute(update(Message).where(Message.status == SENDING, Message.kind != CODE,
                                             Message.claimed_at < stale)
                       .values(status=UNKNOWN, last_error="the run that sent it stopped before it heard back")
                       .execution_options(synchronize_session=False))
    db.session.commit()
    notifier = current_notifier()
    settle_after = timedelta(minutes=_config("NOTICE_UNKNOWN_RECHECK_MINUTES"))
    for message in db.session.execute(select(Message).where(Message.status == UNKNOWN, Message.kind != CODE)
                                      .order_by(Message.id)).scalars().all():
        try:
            receipt = notifier.find_sent(_outgoing(message), since=message.claimed_at - timedelta(minutes=5))
        except NotifierError as error:
            message.last_error = error.message[:300]
            db.session.commit()
            continue
        changed = update(Message).where(Message.id == message.id, Message.status == UNKNOWN)
        if receipt is not None:
            db.session.execute(changed.values(status=SENT, sent_at=now,
                                              provider_message_id=receipt.provider_message_id[:100], last_error=None)
                               .execution_options(synchronize_session=False))
            report.found_sent += 1
        elif now - message.claimed_at >= settle_after:
            db.session.execute(changed.values(status=RETRYING, next_attempt_at=now,
                                              last_error="the sender has no record of it: sent again")
                               .execution_options(synchronize_session=False))
        db.session.commit()


def send_due(now=None, batch=100):
    """Queue what is due, settle unknown outcomes, then send every due message once. Returns a SendReport."""
    now = now or utcnow()
    report = SendReport()
    report.queued = plan(now)
    recheck(now, report)
    seen = set()
    while True:
        ids = [i for i in db.session.execute(
            select(Message.id).where(Message.status.in_(CLAIMABLE), Message.kind != CODE,
                                     (Message.next_attempt_at.is_(None)) | (Message.next_attempt_at <= now))
            .order_by(Message.id).limit(batch)).scalars() if i not in seen]
        db.session.rollback()
        if not ids:
            return report
        for message_id in ids:
            seen.add(message_id)
            claimed = _claim(message_id, now, report)
            if claimed is not None:
                _deliver(*claimed, now, report)


# --- staff ---------------------------------------------------------------------------------------------------


@dataclass
class Outbox:
    """What the console shows: messages that need a look, the latest messages, and counts."""

    attention: list
    recent: list
    counts: dict
    subscriptions: dict


def outbox(limit=100):
    """The console's outbox page."""
    attention = db.session.execute(select(Message).where(Message.status.in_((HELD, RETRYING, UNKNOWN, FAILED,
                                                                              SENDING)))
                                   .order_by(Message.id.desc()).limit(limit)).scalars().all()
    recent = db.session.execute(select(Message).order_by(Message.id.desc()).limit(limit)).scalars().all()
    counts = dict(db.session.execute(select(Message.status, func.count()).group_by(Message.status)).all())
    subscriptions = dict(db.session.execute(select(Subscription.status, func.count())
                                            .group_by(Subscription.status)).all())
    return Outbox(attention, recent, counts, subscriptions)


def staff_stop(message_id, actor):
    """Record a stop reply from a message's number (the outbox sender has no reply callback); returns how many stopped."""
    message = db.session.get(Message, message_id)
    if message is None:
        raise ApiError(_("No such message."), code="not_found", status=404)
    return stop_by_reply(message.phone, "TD", via="staff", actor=actor)


def retry_now(message_id, actor, now=None):
    """Staff send a failed or unknown message again (after checking with the provider); the next run sends it."""
    now = now or utcnow()
    changed = db.session.execute(update(Message).where(Message.id == message_id,
                                                       Message.status.in_((FAILED, UNKNOWN)))
                                 .values(status=RETRYING, next_attempt_at=now, attempts=0)
                                 .execution_options(synchronize_session=False)).rowcount
    if changed:
        audit.record("notice.retry", "notice_message", message_id, actor=actor)
    db.session.commit()
    return bool(changed)

