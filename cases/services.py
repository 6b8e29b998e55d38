"""Filing, checking, preparing and deciding cases: contests, and applications to defer or pay in instalments."""
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from cases import evidence
from cases.models import (
    APPROVED,
    CANCELLED,
    CONTEST,
    DEFERRAL,
    INSTALMENTS,
    KINDS,
    NOTE_MAX,
    OUTCOMES,
    PENDING,
    PREPARED,
    STATEMENT_MAX,
    STATEMENT_MIN,
    UPHELD,
    Case,
    CaseFile,
)
from cases.reasons import REASONS
from finepay import audit
from finepay.dbtypes import utcnow
from finepay.errors import ApiError, invalid_field
from finepay.extensions import db
from finepay.formatting import day as format_day
from payments import services as payments
from violations import limits
from violations.fees import business_today, current_policy
from violations.models import UNPAID, InstalmentPlan, Violation
from violations.services import late_fee_of, lock_violation, prove_vehicle, void_violation

NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
NUMBER_LENGTH = 12  # 60 random bits: a number cannot be guessed, nor told from the one filed before it
NUMBER_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{12}$")
REASON_MIN = 5
WITHDRAW_ROUNDS = 3  # how often a contest withdraws payments started while it was being filed


def new_case_number():
    """A random case number (12 characters of Crockford base32), never sequential."""
    return "".join(secrets.choice(NUMBER_ALPHABET) for _i in range(NUMBER_LENGTH))


def normalize_case_number(value):
    """A case number as typed (any case, spaces or dashes) in its stored form, or None when it cannot be one."""
    number = re.sub(r"[\s\-]", "", str(value or "")).upper()
    return number if NUMBER_PATTERN.match(number) else None


def today():
    """Today's business date."""
    return business_today(current_app.config["BUSINESS_TIMEZONE"])


def check_filing(kind, reason, statement):
    """The statement, stripped, when kind, reason and statement are acceptable; else an invalid_field."""
    if kind not in KINDS:
        raise invalid_field("kind", _("Choose what you are asking for."))
    if reason not in REASONS[kind]:
        raise invalid_field("reason", _("Choose a reason from the list."))
    statement = (statement or "").strip()
    if len(statement) < STATEMENT_MIN:
        raise invalid_field("statement", _("Write at least %(num)d characters: say what happened and why.",
                                           num=STATEMENT_MIN))
    if len(statement) > STATEMENT_MAX:
        raise invalid_field("statement", _("Write at most %(num)d characters.", num=STATEMENT_MAX))
    return statement


def _withdraw_open_payments(violation_id, actor):
    """Cancel any open payment holding the violation before it is contested; refuse when the money was taken."""
    for payment_id in set(payments.open_holds([violation_id]).values()):
        outcome = payments.withdraw_payment(payment_id, reason="the violation is contested", actor=actor)
        if outcome == payments.CAPTURED:
            raise ApiError(_("This violation has just been paid, so it can no longer be contested here. The "
                             "receipt is on your results page; to dispute a paid fine, contact the traffic police."),
                           code="already_paid", status=409)
        if outcome in (payments.BEING_PROCESSED, payments.GATEWAY_UNREACHABLE):
            raise ApiError(_("A payment for this violation is being processed. Wait for its result, then try "
                             "again."), code="payment_in_progress", status=409)


def _refuse(message, code, status=409):
    db.session.rollback()
    raise ApiError(message, code=code, status=status)


def pending_case_of(violation_id):
    """The violation's case waiting for a decision, if any (at most one at a time)."""
    return db.session.execute(
        select(Case).where(Case.violation_id == violation_id, Case.status.in_(PENDING))
    ).scalars().first()


def file_case(*, violation_id, kind, reason, statement, uploads=(), actor, channel="web"):
    """File a contest or an application for a violation the caller has proven; returns the Case.

    Every check is made before anything is stored, and the files and the rows
    are kept together: a refusal leaves no file and no row. A contest first
    cancels an open payment holding the violation (refused if the gateway had
    already taken the money), then holds the violation: not payable, its late
    fee counted to the day of filing (violations.services.late_fee_dates).
    """
    statement = check_filing(kind, reason, statement)
    files = evidence.check_files(uploads)
    for _attempt in range(WITHDRAW_ROUNDS):
        if kind == CONTEST:
            _withdraw_open_payments(violation_id, actor)
        violation = lock_violation(violation_id)
        if violation.status != UNPAID:
            _refuse(_("Only an unpaid violation can be contested or deferred; this one is already settled or "
                      "cancelled."), "not_open")
        if pending_case_of(violation.id) is not None:
            _refuse(_("A case for this violation is already open. Check it with its case number."), "case_open")
        if kind != CONTEST and db.session.execute(
                select(InstalmentPlan.id).where(InstalmentPlan.violation_id == violation.id)).first() is not None:
            # Staff could neither set up a second plan nor defer this one: the plan already answers an application.
            _refuse(_("This violation already has an instalment plan: pay each instalment by its due date. To "
                      "change the plan, ask at the service hall."), "plan_approved")
        if kind != CONTEST or not payments.open_holds([violation.id]):
            break
        # A payment was started between the withdrawal and the lock: withdraw that one too, a few times at most.
        db.session.rollback()
    else:
        raise ApiError(_("A payment for this violation is being processed. Wait for its result, then try again."),
                       code="payment_in_progress", status=409)
    written = evidence.store(files)
    try:
        case = Case(number=new_case_number(), kind=kind, violation_id=violation.id, reason=reason,
                    statement=statement, channel=channel, filed_at=utcnow(), filed_on=today())
        case.files = [CaseFile(stored_name=name, kind=item.kind, content_type=item.content_type,
                               size=len(item.data), sha256=item.sha256) for name, item in written]
        db.session.add(case)
        if kind == CONTEST:
            violation.contest_case = case.number
            violation.fee_stopped_on = case.filed_on
        db.session.flush()
        audit.record("case.filed", "case", case.id, actor=actor, kind=kind, number=case.number, reason=reason,
                     violation=violation.id, notice_number=violation.notice_number, files=len(written),
                     channel=channel)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        evidence.remove(name for name, _item in written)
        raise
    return case


@dataclass
class CaseStatus:
    """What a driver who proved the vehicle sees of a case."""

    number: str
    kind: str
    reason: str
    status: str
    notice_number: str
    filed_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    new_due_date: date | None
    files: int

    @property
    def decided(self):
        """Whether the case has its outcome."""
        return self.status not in PENDING


def check_case(plate, vin_last6, number, altcha=None):
    """The CaseStatus of a case the vehicle (plate + VIN code) proves, or None.

    None whether the vehicle proof fails, the number is malformed, or the case
    is not this vehicle's: callers give one answer for all, and each counts
    against the plate's failure budget.
    """
    statement = prove_vehicle(plate, vin_last6=vin_last6, altcha=altcha)
    if statement is None:
        return None
    normalized = normalize_case_number(number)
    row = None
    if normalized:
        row = db.session.execute(
            select(Case, Violation.notice_number).join(Violation, Violation.id == Case.violation_id)
            .where(Case.number == normalized, Violation.plate == statement.plate,
                   Violation.vin_last6 == statement.vin_last6)
        ).first()
    if row is None:
        limits.count_failure(plate)
        return None
    case, notice_number = row
    return CaseStatus(number=case.number, kind=case.kind, reason=case.reason, status=case.status,
                      notice_number=notice_number, filed_at=case.filed_at, decided_at=case.decided_at,
                      decision_reason=case.decision_reason if case.status not in PENDING else None,
                      new_due_date=case.new_due_date, files=len(case.files))


def get_case(number, *, lock=False):
    """The case with this number, or a 404."""
    query = select(Case).where(Case.number == (normalize_case_number(number) or ""))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    case = db.session.execute(query).scalar_one_or_none()
    if case is None:
        raise ApiError(_("No such case."), code="not_found", status=404)
    return case


def _checked_note(field, text):
    text = (text or "").strip()
    if len(text) < REASON_MIN:
        raise invalid_field(field, _("Say why, in a few words (at least %(num)d characters).", num=REASON_MIN))
    if len(text) > NOTE_MAX:
        raise invalid_field(field, _("Write at most %(num)d characters.", num=NOTE_MAX))
    return text


def prepare_case(number, *, recommendation, note, actor):
    """A clerk's preparation of a pending case: the outcome they recommend and why."""
    note = _checked_note("note", note)
    case = get_case(number, lock=True)
    if not case.pending:
        _refuse(_("This case has already been decided."), "already_decided")
    if recommendation not in OUTCOMES[case.kind]:
        db.session.rollback()
        raise invalid_field("recommendation", _("Choose one of the outcomes offered."))
    case.status, case.recommendation, case.prepared_note = PREPARED, recommendation, note
    case.prepared_by, case.prepared_at = actor, utcnow()
    audit.record("case.prepared", "case", case.id, actor=actor, number=case.number, recommendation=recommendation,
                 note=note)
    db.session.commit()
    return case


def _lock_case_and_violation(number):
    """The case and its violation under row locks, the violation first (the order filing takes them)."""
    case = get_case(number)
    violation = lock_violation(case.violation_id)
    return get_case(number, lock=True), violation


def decide_case(number, *, outcome, reason, actor, new_due_date=None):
    """A supervisor's decision on a pending case (instalments are approved by setting up the plan instead).

    Upholding a contest makes the violation payable again, due a full grace
    period after the decision; cancelling voids it with the reason; approving a
    deferral moves its due date to ``new_due_date``.
    """
    reason = _checked_note("reason", reason)
    case, violation = _lock_case_and_violation(number)
    if not case.pending:
        _refuse(_("This case has already been decided."), "already_decided")
    if outcome not in OUTCOMES[case.kind]:
        db.session.rollback()
        raise invalid_field("outcome", _("Choose one of the outcomes offered."))
    if case.kind == INSTALMENTS and outcome == APPROVED:
        _refuse(_("An instalment application is approved by setting up the plan on the violation's page."),
                "set_up_plan")
    decided_on = today()
    # What the violation owed when its due date moves (counted to the filing day for a contest) stays owed.
    owed = late_fee_of(violation, current_policy(), decided_on)
    if case.kind == CONTEST:
        violation.contest_case = None
        violation.fee_stopped_on = None
        if outcome == UPHELD:
            case.new_due_date = violation.due_on = current_policy().due_date(decided_on)
            violation.fee_carried = owed
    elif case.kind == DEFERRAL and outcome == APPROVED:
        if violation.status != UNPAID:
            _refuse(_("The violation is no longer unpaid, so there is nothing to defer: refuse the application "
                      "instead."), "not_open")
        latest = decided_on + timedelta(days=current_app.config["DEFERRAL_MAX_DAYS"])
        if new_due_date is None or not decided_on < new_due_date <= latest:
            db.session.rollback()
            raise invalid_field("new_due_date", _("Choose a new due date after today and no later than %(date)s.",
                                                  date=format_day(latest)))
        case.new_due_date = violation.due_on = new_due_date
        violation.fee_carried = owed
    case.status, case.decision_reason, case.decided_by, case.decided_at = outcome, reason, actor, utcnow()
    audit.record("case.decided", "case", case.id, actor=actor, number=case.number, kind=case.kind, outcome=outcome,
                 reason=reason, violation=violation.id,
                 new_due_date=case.new_due_date.isoformat() if case.new_due_date else None)
    if case.kind == CONTEST and outcome == CANCELLED:
        # void_violation re-checks the violation under its lock and commits the decision with the voiding.
        void_violation(violation.id, reason=reason, actor=actor, open_holds=payments.open_holds)
    else:
        db.session.commit()
    return case


def on_plan_created(violation_id, actor):
    """Hook for the instalment plans: a plan set up for a violation approves its pending instalment application.

    Joins the caller's transaction (the plan's): commits nothing itself.
    Returns the approved Case, or None when the violation had no pending application.
    """
    case = db.session.execute(
        select(Case).where(Case.violation_id == violation_id, Case.kind == INSTALMENTS, Case.status.in_(PENDING))
        .with_for_update()
    ).scalar_one_or_none()
    if case is None:
        return None
    case.status, case.decided_by, case.decided_at = APPROVED, actor, utcnow()
    audit.record("case.decided", "case", case.id, actor=actor, number=case.number, kind=case.kind, outcome=APPROVED,
                 reason="instalment plan set up", violation=violation_id)
    return case


@dataclass
class QueueEntry:
    """A pending case as the staff queue lists it."""

    case: Case
    violation: Violation
    waited: timedelta


def queue(now=None):
    """Pending cases and applications, oldest first, with how long each has waited."""
    now = now or utcnow()
    rows = db.session.execute(
        select(Case, Violation).join(Violation, Violation.id == Case.violation_id)
        .where(Case.status.in_(PENDING)).order_by(Case.filed_at, Case.id)
    ).all()
    return [QueueEntry(case, violation, now - case.filed_at) for case, violation in rows]


def cases_of_violation(violation_id):
    """Every case of a violation, newest first (for the staff violation page)."""
    return db.session.execute(
        select(Case).where(Case.violation_id == violation_id).order_by(Case.filed_at.desc())
    ).scalars().all()


def evidence_file(number, file_id):
    """(CaseFile, path) of one evidence file of a case, or a 404."""
    case = get_case(number)
    for item in case.files:
        if item.id == file_id:
            return item, evidence.path_of(item.stored_name)
    raise ApiError(_("No such file."), code="not_found", status=404)

