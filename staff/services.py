"""The console's own work: staff accounts and sign-in, search, dashboard, detail pages, API keys, audit log, feed.

Refunds and voiding are the payments' and the violations' rules: the console calls them.

Every change is written to the audit log with the staff member's name and address.
"""
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from werkzeug.security import check_password_hash, generate_password_hash

from cases import services as case_services
from finepay import audit, challenge
from finepay.audit import AuditEntry
from finepay.challenge import ChallengeRequired
from finepay.dbtypes import utcnow
from finepay.errors import ApiError, invalid_field
from finepay.extensions import db
from payments import ereceipt_requests, states
from payments import receipts as payment_receipts
from payments import refunds as payment_refunds
from payments import services as payment_services
from payments.models import Payment, PaymentItem
from payments.reconciliation import fetch as gateway_records
from staff import sessions
from staff.models import ROLES, ApiKey, LoginAttempt, StaffUser
from violations import services as violation_services
from violations.fees import business_day_window, business_today
from violations.instalments import monthly_due_dates
from violations.models import Instalment, Violation
from violations.plates import InvalidIdentifier, normalize_notice_number, normalize_payment_code, normalize_plate

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,59}\Z")
MIN_PASSWORD = 12
MAX_PASSWORD = 200
RECEIPT = re.compile(r"^FP-?[0-9A-Z]{4}-?[0-9A-Z]{4}-?[0-9A-Z]{4}-?[0-9A-Z]{4}\Z")
API_KEY_PREFIX = "fpk_"
_dummy_hash = None


# --- accounts -------------------------------------------------------------------


def normalize_username(raw):
    """Usernames are case-insensitive: stored and compared in lower case."""
    return (raw or "").strip().lower()


def check_password_rules(password):
    """Raise a 422 unless the password is long enough to resist guessing."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise invalid_field("password", _("Use at least %(n)d characters.", n=MIN_PASSWORD))
    if len(password) > MAX_PASSWORD:
        raise invalid_field("password", _("Use at most %(n)d characters.", n=MAX_PASSWORD))


def create_user(username, role, password, actor):
    """Create a staff account (the password is hashed with scrypt, a memory-hard function)."""
    username = normalize_username(username)
    if not USERNAME.match(username):
        raise invalid_field("username", _("2 to 60 lower-case letters, digits, dots, dashes or underscores."))
    if role not in ROLES:
        raise invalid_field("role", _("Choose clerk or supervisor."))
    check_password_rules(password)
    user = StaffUser(username=username, role=role, password_hash=generate_password_hash(password), active=True)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise invalid_field("username", _("This username is taken.")) from None
    audit.record("staff.user_created", "staff_user", user.username, actor=actor, role=role)
    db.session.commit()
    return user


def get_user(user_id):
    """The staff user with this id, or a 404."""
    user = db.session.get(StaffUser, user_id)
    if user is None:
        raise ApiError(_("No such user."), code="not_found", status=404)
    return user


def find_user(username):
    """The staff user with this name (any case), or a 404."""
    user = db.session.execute(
        select(StaffUser).where(StaffUser.username == normalize_username(username))
    ).scalar_one_or_none()
    if user is None:
        raise ApiError(_("No such user."), code="not_found", status=404)
    return user


def list_users():
    """Every staff account, by name."""
    return db.session.execute(select(StaffUser).order_by(StaffUser.username)).scalars().all()


def change_user(user_id, *, actor_user, role=None, active=None, password=None, actor_session_id=None):
    """Change a user's role, activity or password; a supervisor cannot demote or lock out themself.

    Any of these changes ends every session of that user at once (in the same
    transaction): what a session may do was decided at sign-in. A supervisor
    who changes their own password stays signed in where they made the change
    (``actor_session_id``).
    """
    user = get_user(user_id)
    if user.id == actor_user.id and (active is False or (role is not None and role != user.role)):
        raise invalid_field("role", _("You cannot demote or deactivate your own account."))
    changes = {}
    if role is not None and role != user.role:
        if role not in ROLES:
            raise invalid_field("role", _("Choose clerk or supervisor."))
        changes["role"] = [user.role, role]
        user.role = role
    if active is not None and active != user.active:
        changes["active"] = [user.active, active]
        user.active = active
    if password is not None:
        check_password_rules(password)
        user.password_hash = generate_password_hash(password)
        changes["password"] = "changed"
    if changes:
        audit.record("staff.user_changed", "staff_user", user.username, actor=actor(actor_user), **changes)
        reason = (sessions.ACCOUNT_DISABLED if changes.get("active") == [True, False]
                  else sessions.PASSWORD_CHANGED if "password" in changes
                  else sessions.ROLE_CHANGED if "role" in changes else None)
        if reason:
            keep = actor_session_id if user.id == actor_user.id else None
            sessions.end_sessions(user, reason, actor=actor(actor_user), keep=keep)
    db.session.commit()
    return user


def actor(user):
    """How a staff user is named in the audit log and on refunds."""
    return f"staff:{user.username}"


def _failures(column, value, since):
    return db.session.execute(
        select(func.count()).select_from(LoginAttempt)
        .where(column == value, LoginAttempt.success.is_(False), LoginAttempt.at >= since)
    ).scalar_one()


def sign_in_budget_spent(username, remote_addr, now=None):
    """Whether sign-in needs a solved challenge: too many failures for this account, or from this address, recently."""
    config = current_app.config
    now = now or utcnow()
    since = now - timedelta(minutes=config["STAFF_LOCKOUT_MINUTES"])
    limit = config["STAFF_LOCKOUT_ATTEMPTS"]
    # For the account, only failures since its last successful sign-in count (the owner got in).
    last_success = db.session.execute(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.username == username, LoginAttempt.success.is_(True))
    ).scalar()
    account_since = max(since, last_success) if last_success else since
    return (_failures(LoginAttempt.username, username, account_since) >= limit
            or _failures(LoginAttempt.remote_addr, remote_addr, since) >= limit)


def _password_matches(user, password):
    global _dummy_hash
    if user is None:
        # Spend the same time on an unknown name, so timing does not reveal which names exist.
        _dummy_hash = _dummy_hash or generate_password_hash(secrets.token_hex(16))
        check_password_hash(_dummy_hash, password)
        return False
    return check_password_hash(user.password_hash, password)


@dataclass
class SignIn:
    """The outcome of a sign-in attempt."""

    user: StaffUser | None = None
    failed: bool = False  # the password was checked and was wrong
    challenge: ChallengeRequired | None = None  # the budget is spent: solve this before the next try


def _challenge(subject):
    return challenge.require(subject, _(
        "Too many failed sign-ins for this account or from this address. Your browser must do a short check "
        "before each further try; ask a supervisor if you have forgotten your password."))


def authenticate(username, password, remote_addr, altcha=None):
    """Check a sign-in; past the failure budget of the account or the address, only with a solved challenge.

    Nobody is refused outright: once STAFF_LOCKOUT_ATTEMPTS failures for the
    account (since its last success) or from the address fall within
    STAFF_LOCKOUT_MINUTES, each further try costs a proof of work (``altcha``
    solving a challenge issued for this username, once). So a guesser is slowed
    as before, but cannot lock out an account, or every account of an office
    behind one public address. Every try at a password is recorded.
    """
    username = normalize_username(username)[:60]
    remote_addr = (remote_addr or "unknown")[:64]
    subject = challenge.subject_key("staff", username)
    if sign_in_budget_spent(username, remote_addr) and not challenge.redeem(altcha, subject):
        # Not a try at the password: not recorded, so the budget ends on time.
        return SignIn(challenge=_challenge(subject))
    user = db.session.execute(select(StaffUser).where(StaffUser.username == username)).scalar_one_or_none()
    ok = _password_matches(user, password or "") and user.active
    db.session.add(LoginAttempt(username=username, remote_addr=remote_addr, success=ok))
    if ok:
        audit.record("staff.signed_in", "staff_user", username, actor=actor(user))
    else:
        # Counted per source and minute (anyone can send these); named only for an existing account.
        audit.record_refusal("staff.sign_in_failed", "staff_user", username if user is not None else "-")
    db.session.commit()
    if ok:
        return SignIn(user=user)
    return SignIn(failed=True, challenge=_challenge(subject) if sign_in_budget_spent(username, remote_addr) else None)


# --- finding things ---------------------------------------------------------------


# What a search query was understood as: codes to compare, labels to show.
PAYMENT_ID, RECEIPT_NUMBER, NOTICE_NUMBER, PAYMENT_CODE, PLATE = (
    "payment_id", "receipt_number", "notice_number", "payment_code", "plate")
SEARCH_KIND_LABELS = {
    PAYMENT_ID: _l("payment id"), RECEIPT_NUMBER: _l("receipt number"),
    NOTICE_NUMBER: _l("notice number"), PAYMENT_CODE: _l("payment code"), PLATE: _l("plate"),
}


@dataclass
class SearchResult:
    """What a search matched, and what it understood the query as (kind codes: PAYMENT_ID, PLATE...)."""

    query: str
    understood_as: list = field(default_factory=list)
    payments: list = field(default_factory=list)
    violations: list = field(default_factory=list)

    def understood_as_labels(self):
        """The kinds the query was understood as, in the request's language."""
        return [str(SEARCH_KIND_LABELS[kind]) for kind in self.understood_as]


def search(query, actor_name, limit=100):
    """Find payments and violations by plate, notice number, payment code, receipt number or payment id."""
    query = (query or "").strip()[:64]
    result = SearchResult(query=query)
    if not query:
        return result
    payment_filters, violation_filters = [], []
    compact = re.sub(r"\s+", "", query)
    if compact.lower().startswith("pay_"):
        result.understood_as.append(PAYMENT_ID)
        payment_filters.append(Payment.id == compact.lower())
    receipt = compact.upper()
    if RECEIPT.match(receipt):
        raw = receipt.replace("-", "")[2:]
        receipt = "FP-" + "-".join(raw[i:i + 4] for i in range(0, 16, 4))
        result.understood_as.append(RECEIPT_NUMBER)
        payment_filters.append(Payment.receipt_number == receipt)
        violation_filters.append(Violation.receipt_number == receipt)
    special = compact.lower().startswith("pay_") or RECEIPT.match(compact.upper())
    # A violation's own number, and the payments that covered it (a payment code: any region's, since staff
    # may look for a code the import refused).
    for normalize, column, kind in ((normalize_notice_number, Violation.notice_number, NOTICE_NUMBER),
                                    (normalize_payment_code, Violation.payment_code, PAYMENT_CODE)):
        try:
            value = None if special else normalize(compact)
        except InvalidIdentifier:
            value = None
        if value:
            result.understood_as.append(kind)
            violation_filters.append(column == value)
            payment_filters.append(Payment.id.in_(
                select(PaymentItem.payment_id).join(Violation, Violation.id == PaymentItem.violation_id)
                .where(column == value)
            ))
    if not special:
        try:
            plate = normalize_plate(query)
        except InvalidIdentifier:
            plate = None
        if plate and not plate.isdigit():
            result.understood_as.append(PLATE)
            payment_filters.append(Payment.plate == plate)
            violation_filters.append(Violation.plate == plate)
    if payment_filters:
        result.payments = db.session.execute(
            select(Payment).where(or_(*payment_filters)).order_by(Payment.created_at.desc()).limit(limit)
        ).scalars().all()
    if violation_filters:
        result.violations = db.session.execute(
            select(Violation).where(or_(*violation_filters)).order_by(Violation.occurred_at.desc()).limit(limit)
        ).scalars().all()
    # Looking up a vehicle is access to personal data: on record.
    audit.record("staff.searched", "search", "-", actor=actor_name, query=query,
                 found=len(result.payments) + len(result.violations))
    db.session.commit()
    return result


@dataclass
class Dashboard:
    """Today at a glance."""

    day: object
    by_channel: list
    total_count: int
    total_amount: int
    open_count: int
    recent: list
    terminals: list


def dashboard(today, terminals):
    """Today's charged payments by channel, payments still open, the latest payments and the kiosks."""
    start, end = business_day_window(today)
    rows = db.session.execute(
        select(Payment.channel, func.count(), func.coalesce(func.sum(Payment.amount_received), 0))
        .where(Payment.paid_at >= start, Payment.paid_at < end, Payment.status.in_(states.CHARGED))
        .group_by(Payment.channel).order_by(Payment.channel)
    ).all()
    open_count = db.session.execute(
        select(func.count()).select_from(Payment)
        .where(Payment.created_at >= start, Payment.status.in_(states.OPEN))
    ).scalar_one()
    recent = db.session.execute(select(Payment).order_by(Payment.created_at.desc()).limit(15)).scalars().all()
    return Dashboard(
        day=today, by_channel=[tuple(r) for r in rows], total_count=sum(r[1] for r in rows),
        total_amount=sum(r[2] for r in rows), open_count=open_count, recent=recent, terminals=terminals,
    )


@dataclass
class PaymentDetail:
    """A payment with everything staff need to judge it."""

    payment: Payment
    items: list  # (refunds.Line, Violation): each line with what went back for it
    gateway_records: list
    audit: list
    refundable: int
    beyond_due: int  # captured beyond the amount due and not yet refunded
    ereceipts: dict = field(default_factory=dict)  # payments.receipts.official_receipts
    ereceipt_request: object = None  # the oldest e-receipt request still waiting, with its attempts and error


def payment_detail(payment_id):
    """The payment, its lines and violations, the gateway's records of it, and its whole audit trail."""
    payment = payment_services.get_payment(payment_id)
    violations = {v.id: v for v in db.session.execute(
        select(Violation).join(PaymentItem, Violation.id == PaymentItem.violation_id)
        .where(PaymentItem.payment_id == payment.id)
    ).scalars()}
    ledger = payment_refunds.balance(payment)
    items = [(line, violations[line.item.violation_id]) for line in ledger.lines]
    records = gateway_records.records_of(payment)
    violation_ids = [str(v_id) for v_id in violations]
    trail = db.session.execute(
        select(AuditEntry).where(or_(
            (AuditEntry.subject_type == "payment") & (AuditEntry.subject_id == payment.id),
            (AuditEntry.subject_type == "violation") & AuditEntry.subject_id.in_(violation_ids),
        )).order_by(AuditEntry.id)
    ).scalars().all()
    refundable, beyond_due = payment_refunds.open_to_refund(payment, ledger)
    return PaymentDetail(payment=payment, items=items, gateway_records=records, audit=trail,
                         refundable=refundable, beyond_due=beyond_due,
                         ereceipts=payment_receipts.official_receipts(payment),
                         ereceipt_request=ereceipt_requests.oldest_waiting(payment.id))


def refund(payment_id, *, amount=None, item_ids=None, reason, form_key, actor_name):
    """A supervisor's refund (see payments.services.request_refund).

    ``form_key`` comes from the page the supervisor clicked on: a second
    click, a retried request or a concurrent one gets the same refund instead
    of making another.
    """
    return payment_services.request_refund(
        payment_id, amount=amount, item_ids=item_ids, reason=reason, actor=actor_name,
        idempotency_key=f"staff:{payment_id}:{form_key}",
    )


@dataclass
class RefundPreview:
    """What a refund would send back, line by line, shown to the supervisor before it is made."""

    lines: list  # (refunds.Line, Violation, part, whether the violation would be owed again)
    beyond_due: int  # the part from money captured beyond the amount due
    total: int


def refund_preview(detail, *, amount=None, item_ids=None, reason):
    """The refund a supervisor asks for on a payment's page, as it would be made now; nothing moves.

    ApiError (beside the field) for a refund the confirmation would refuse.
    """
    parts, beyond = payment_services.preview_refund(detail.payment.id, amount=amount, item_ids=item_ids,
                                                    reason=reason)
    lines = [(line, violation, parts[line.item.id], line.committed + parts[line.item.id] >= line.due)
             for line, violation in detail.items if line.item.id in parts]
    return RefundPreview(lines=lines, beyond_due=beyond, total=sum(parts.values()) + beyond)


# --- violations -------------------------------------------------------------------


@dataclass
class ViolationDetail:
    """A violation, the payments that covered it and its audit trail."""

    violation: Violation
    payments: list  # (PaymentItem, Payment)
    audit: list
    held: bool
    plan: object = None  # its instalment plan priced today (violations.instalments.PlanTerms), or None



def violation_detail(violation_id):
    """Everything about one violation."""
    violation = violation_services.get_violation(violation_id)
    payments = db.session.execute(
        select(PaymentItem, Payment).join(Payment, Payment.id == PaymentItem.payment_id)
        .where(PaymentItem.violation_id == violation.id).order_by(Payment.created_at)
    ).all()
    trail = db.session.execute(
        select(AuditEntry).where(AuditEntry.subject_type == "violation", AuditEntry.subject_id == str(violation.id))
        .order_by(AuditEntry.id)
    ).scalars().all()
    held = any(item.holds for item, _p in payments)
    return ViolationDetail(violation=violation, payments=payments, audit=trail, held=held,
                           plan=violation_services.plan_terms(violation.id))


def approve_instalment_plan(violation_id, *, count, due_dates=None, actor_name):
    """Approve an instalment plan (supervisors): ``count`` instalments due on ``due_dates``, or monthly from today.

    Refused while a payment for the whole violation is in progress (it could otherwise still settle it).
    """
    if payment_services.open_holds([violation_id]):
        raise ApiError(_("A payment for this violation is in progress; try again when it has finished."),
                       code="payment_in_progress", status=409)
    today = business_today(current_app.config["BUSINESS_TIMEZONE"])
    return violation_services.approve_plan(
        violation_id, due_dates=due_dates or monthly_due_dates(count, today), actor=actor_name,
        on_approved=case_services.on_plan_created)  # a pending instalment application is approved with it


def void_violation(violation_id, *, reason, actor_name):
    """Void an unpaid violation (supervisors); one that a payment holds is left alone (see violations.services)."""
    return violation_services.void_violation(violation_id, reason=reason, actor=actor_name,
                                             open_holds=payment_services.open_holds)


# --- API keys -----------------------------------------------------------------------


def hash_api_key(raw):
    """Keys are stored as SHA-256: they are long random strings, so a slow hash adds nothing."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(name, actor_name):
    """A new key for the upstream system; returns (ApiKey, the key), the key shown only this once."""
    name = (name or "").strip()
    if not 2 <= len(name) <= 60:
        raise invalid_field("name", _("Name the system that will use it (2 to 60 characters)."))
    prefix = secrets.token_hex(4)
    raw = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(name=name, prefix=prefix, key_hash=hash_api_key(raw), created_by=actor_name)
    db.session.add(key)
    db.session.flush()
    audit.record("api_key.created", "api_key", key.id, actor=actor_name, name=name, prefix=prefix)
    db.session.commit()
    return key, raw


def list_api_keys():
    """Every key, newest first (hashes only)."""
    return db.session.execute(select(ApiKey).order_by(ApiKey.created_at.desc())).scalars().all()


def revoke_api_key(key_id, actor_name):
    """Stop a key from working (kept for the record)."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise ApiError(_("No such key."), code="not_found", status=404)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record("api_key.revoked", "api_key", key.id, actor=actor_name, name=key.name, prefix=key.prefix)
    db.session.commit()
    return key


def authenticate_api_key(raw):
    """The live key matching a presented value, or None (the refusal is counted in the audit log)."""
    key = None
    if isinstance(raw, str) and raw.startswith(API_KEY_PREFIX) and len(raw) <= 200:
        key = db.session.execute(
            select(ApiKey).where(ApiKey.key_hash == hash_api_key(raw.strip()))
        ).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        reason = "missing" if not raw else "revoked" if key is not None else "invalid"
        audit.record_refusal("api_key.refused", "api_key", key.id if key is not None else "-", reason=reason)
        db.session.commit()
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        key.last_used_at = now
        db.session.commit()
    return key


# --- the audit log ------------------------------------------------------------------


@dataclass
class AuditPage:
    """One page of audit entries, newest first."""

    entries: list
    next_before: int | None


def audit_page(*, action=None, actor_name=None, subject=None, start=None, end=None, before=None, limit=100):
    """Audit entries matching the filters, newest first, keyset-paginated by id."""
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if actor_name:
        query = query.where(AuditEntry.actor == actor_name)
    if subject:
        kind, _sep, ident = subject.partition(":")
        query = query.where(AuditEntry.subject_type == kind) if not ident else query.where(
            AuditEntry.subject_type == kind, AuditEntry.subject_id == ident)
    if start is not None:
        query = query.where(AuditEntry.at >= start)
    if end is not None:
        query = query.where(AuditEntry.at < end)
    if before:
        query = query.where(AuditEntry.id < before)
    entries = db.session.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).scalars().all()
    more = len(entries) > limit
    entries = entries[:limit]
    return AuditPage(entries=entries, next_before=entries[-1].id if more else None)


# --- the settlement feed -------------------------------------------------------------

SETTLED_ACTION, UNPAID_ACTION = "payment.succeeded", "violation.unpaid"
PARTLY_REFUNDED_ACTION = "violation.partly_refunded"
FEED_EVENTS = {UNPAID_ACTION: "refunded", PARTLY_REFUNDED_ACTION: "partly_refunded"}
FEED_SEAL_LIMIT = 10_000  # entries sealed before one page at most: a bounded wait for the caller


def settlement_feed(after=0, limit=100):
    """Violations settled, partly refunded (still paid) or refunded in full (owed again), in commit order.

    The feed reads the sealed audit log by its place in the chain (seal_seq;
    entries sealed before the chain was sealed separately have seal_seq = id):
    sealed entries are always a gap-free prefix of the chain, so a cursor never
    skips an event, whereas ids can commit out of order. It seals a bounded
    batch first, so the feed is current without waiting for cron. Each refund
    event says what this refund gave back for the violation and how much of its
    line has been refunded so far.
    Returns (events, next cursor, whether more may follow).
    """
    audit.seal(limit=FEED_SEAL_LIMIT)
    entries = db.session.execute(
        select(AuditEntry.seal_seq, AuditEntry.action, AuditEntry.subject_id, AuditEntry.details, AuditEntry.at)
        .where(AuditEntry.seal_seq > after, AuditEntry.action.in_((SETTLED_ACTION, *FEED_EVENTS)))
        .order_by(AuditEntry.seal_seq).limit(limit)
    ).all()
    wanted = []  # (entry, payment id, violation id, event)
    for entry in entries:
        details = entry.details or {}
        if entry.action == SETTLED_ACTION:
            for violation_id in details.get("settled") or []:
                wanted.append((entry, entry.subject_id, int(violation_id), "settled"))
        elif entry.subject_id.isdigit() and details.get("payment"):
            wanted.append((entry, str(details["payment"]), int(entry.subject_id), FEED_EVENTS[entry.action]))
    facts = _feed_facts({p for _e, p, _v, _k in wanted})
    events = []
    for entry, payment_id, violation_id, kind in wanted:
        fact = facts.get((payment_id, violation_id))
        if fact is None:
            continue
        row, service_fee = fact
        details = entry.details or {}
        settled = kind == "settled"
        events.append({
            "cursor": str(entry.seal_seq), "event": kind, "at": entry.at,
            "violation_id": violation_id, "notice_number": row.notice_number, "payment_code": row.payment_code,
            "plate": row.plate,
            "payment_id": payment_id, "receipt_number": row.receipt_number, "channel": row.channel,
            "fine": row.fine, "late_fee": row.late_fee, "amount": row.fine + row.late_fee,
            "service_fee": service_fee, "currency": row.currency,
            "instalment": ({"number": row.instalment_number, "count": row.instalment_count}
                           if row.instalment_number is not None else None),
            # Refunds recorded before they were allocated to violations carry no amounts.
            "refund_amount": 0 if settled else details.get("amount"),
            "refunded": 0 if settled else details.get("refunded"),
        })
    next_cursor = entries[-1].seal_seq if entries else after
    return events, str(next_cursor), len(entries) == limit


PlanInstalment = aliased(Instalment)


def _feed_facts(payment_ids):
    """{(payment id, violation id): (row, the line's share of the service fee)} for these payments."""
    if not payment_ids:
        return {}
    plan_size = (select(func.count(PlanInstalment.id)).where(PlanInstalment.plan_id == Instalment.plan_id)
                 .scalar_subquery())
    rows = db.session.execute(
        select(PaymentItem.payment_id, PaymentItem.violation_id, PaymentItem.fine, PaymentItem.late_fee,
               Payment.receipt_number, Payment.currency, Payment.plate, Payment.channel, Payment.convenience_fee,
               Violation.notice_number, Violation.payment_code, Instalment.number.label("instalment_number"),
               plan_size.label("instalment_count"))
        .join(Payment, Payment.id == PaymentItem.payment_id)
        .join(Violation, Violation.id == PaymentItem.violation_id)
        .outerjoin(Instalment, Instalment.id == PaymentItem.instalment_id)
        .where(PaymentItem.payment_id.in_(payment_ids)).order_by(PaymentItem.payment_id, PaymentItem.id)
    ).all()
    by_payment = {}
    for row in rows:
        by_payment.setdefault(row.payment_id, []).append(row)
    facts = {}
    for lines in by_payment.values():
        shares = payment_refunds.fee_shares(lines[0].convenience_fee, [r.fine + r.late_fee for r in lines])
        facts.update({(r.payment_id, r.violation_id): (r, share) for r, share in zip(lines, shares, strict=True)})
    return facts
