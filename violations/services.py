"""Looking up what a vehicle owes, which violations can be paid, and voiding one."""
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, select, update

from finepay import audit, challenge
from finepay.dbtypes import utcnow
from finepay.errors import ApiError, invalid_field
from finepay.extensions import db
from violations import instalments, limits
from violations.fees import business_today, current_policy
from violations.models import PAID, UNPAID, VOID, Instalment, InstalmentPlan, Violation

# Why a violation cannot be paid online (codes the payments API answers with).
ALREADY_PAID, NOT_PAYABLE, NOTHING_TO_PAY, IN_PERSON_ONLY = "already_paid", "not_payable", "nothing_to_pay", \
    "not_payable_online"
UNDER_CONTEST = "under_contest"


def why_not_payable(violation):
    """Why a violation (a row, model or ViolationLine) cannot be paid online now, or None when it can.

    The one place this rule lives: lookups, payments, settlement and imports all ask here.
    """
    if violation.status == PAID:
        return ALREADY_PAID
    if violation.status != UNPAID:
        return NOT_PAYABLE
    if violation.contest_case:
        return UNDER_CONTEST
    if violation.fine <= 0:
        return NOTHING_TO_PAY
    if not violation.payable_online:
        return IN_PERSON_ONLY
    return None


def is_payable(violation):
    """Whether a violation can be paid online now (see why_not_payable)."""
    return why_not_payable(violation) is None


@dataclass
class ViolationLine:
    """A violation as a driver sees it: with its late fee and amount due today."""

    id: int
    notice_number: str
    payment_code: str | None
    occurred_at: datetime
    location: str
    offense_code: str
    description: str
    points: int
    fine: int
    late_fee: int
    amount_due: int
    due_date: date
    days_overdue: int
    status: str
    payable_online: bool
    receipt_number: str | None
    paid_at: datetime | None
    # The approved instalment plan, priced today (violations.instalments.PlanTerms), or None.
    plan: instalments.PlanTerms | None = None
    contest_case: str | None = None
    fee_stopped_on: date | None = None

    @property
    def payable(self):
        """Whether the driver can pay this line online now (with a plan: its next instalment)."""
        return is_payable(self) and (self.plan is None or self.plan.next is not None)

    @property
    def pay_now(self):
        """What paying this line now costs: the amount due, or with a plan only its next instalment's."""
        return self.plan.next.amount_due if self.plan is not None else self.amount_due

    @property
    def under_contest(self):
        """Whether an open contest holds this line (cases/): neither payable nor to be settled in person meanwhile."""
        return self.status == UNPAID and bool(self.contest_case)


@dataclass
class VehicleStatement:
    """Everything recorded against one vehicle, priced as of one moment."""

    plate: str
    vin_last6: str
    currency: str
    as_of: datetime
    total_due: int
    total_payable_online: int
    violations: list

    @property
    def in_person(self):
        """The unpaid violations that cannot be paid online: each must be settled at a service hall."""
        return [v for v in self.violations if v.status == UNPAID and not v.payable and not v.under_contest]

    @property
    def total_in_person(self):
        """What the violations that must be settled in person come to today."""
        return sum(line.amount_due for line in self.in_person)

    @property
    def payable_ids(self):
        """Ids of the violations that can be paid online now."""
        return [v.id for v in self.violations if v.payable]

    def chosen(self, violation_ids):
        """(the chosen violations that can be paid online now, in the statement's order; the chosen ids that cannot).

        An id that is not this vehicle's is among those that cannot.
        """
        wanted = set(violation_ids)
        lines = [v for v in self.violations if v.id in wanted and v.payable and v.plan is None]
        payable = {v.id for v in lines}
        return lines, [i for i in violation_ids if i not in payable]

    def chosen_instalments(self, instalment_ids):
        """[(violation line, its next unpaid instalment)] for the chosen instalments that are the next to pay."""
        wanted = set(instalment_ids)
        return [(v, v.plan.next) for v in self.violations
                if v.payable and v.plan is not None and v.plan.next.id in wanted]


# What a statement shows, and nothing else: plain rows, no ORM objects to build and track.
# Both queries are built once: a lookup only binds its parameters.
_violations = Violation.__table__
_plans = InstalmentPlan.__table__
_STATEMENT = select(*(_violations.c[name] for name in (
    "id", "notice_number", "payment_code", "plate", "vin_last6", "occurred_at", "location", "offense_code", "description",
    "points", "fine", "decision_date", "status", "payable_online", "late_fee_paid", "paid_at", "receipt_number",
    "contest_case", "fee_stopped_on", "due_on", "fee_carried",
)), _plans.c.id.label("plan_id")).select_from(
    # Whether it has an instalment plan comes with the row: only a vehicle with one reads the plans.
    _violations.outerjoin(_plans, _plans.c.violation_id == _violations.c.id)
)
BY_VIN = _STATEMENT.where(_violations.c.plate == bindparam("plate"), _violations.c.vin_last6 == bindparam("vin_last6"))
# The notice proves the vehicle: the same plate with the same VIN code,
# so a plate later issued to another car does not show its fines.
BY_NOTICE = _STATEMENT.where(
    _violations.c.plate == bindparam("plate"),
    _violations.c.vin_last6 == select(_violations.c.vin_last6).where(
        _violations.c.notice_number == bindparam("notice_number"), _violations.c.plate == bindparam("plate")
    ).scalar_subquery(),
)
# The finance bureau's payment code proves it the same way, and shows the same: all the vehicle's violations.
BY_PAYMENT_CODE = _STATEMENT.where(
    _violations.c.plate == bindparam("plate"),
    _violations.c.vin_last6 == select(_violations.c.vin_last6).where(
        _violations.c.payment_code == bindparam("payment_code"), _violations.c.plate == bindparam("plate")
    ).scalar_subquery(),
)


def late_fee_dates(violation, policy, today):
    """(due date, the local date the late fee is counted to) of an unpaid violation.

    The one hook where a case changes the late fee (cases/services.py sets the
    columns it reads): a decision's new due date replaces the policy's (an
    upheld contest restarts the grace period, an approved deferral moves it),
    and an open contest counts no day after the one it was filed on.
    """
    due = violation.due_on or policy.due_date(violation.decision_date)
    counted_to = min(today, violation.fee_stopped_on) if violation.fee_stopped_on else today
    return due, counted_to


def late_fee_of(violation, policy, today):
    """The late fee an unpaid violation (without an instalment plan) owes on a local date.

    What a decision carried over (the fee owed when it moved the due date)
    plus the days past the current due date (late_fee_dates), capped as the
    policy caps any late fee. Every price and every payment takes it from here.
    """
    due, counted_to = late_fee_dates(violation, policy, today)
    carried = violation.fee_carried or 0
    return min(carried + policy.late_fee_after(violation.fine, due, counted_to), policy.cap(violation.fine))


def price(violation, policy, today, tz, plan=None):
    """The driver's view of one violation on a given local date.

    ``plan`` is the violation's approved instalment plan (plan row, instalment rows), if it has one.
    """
    due, counted_to = late_fee_dates(violation, policy, today)
    if violation.status == PAID:
        late_fee, amount_due, overdue = violation.late_fee_paid or 0, 0, 0
    elif violation.status == UNPAID:
        late_fee = late_fee_of(violation, policy, today)
        amount_due = violation.fine + late_fee
        overdue = policy.days_past(due, counted_to)
    else:
        late_fee, amount_due, overdue = 0, 0, 0
    # An instalment plan suspends the late fee while it is kept (violations.instalments).
    terms = instalments.instalment_terms(*plan, policy, today, tz) if plan is not None else None
    if terms is not None and violation.status == UNPAID:
        late_fee, amount_due, overdue, due = terms.late_fee, terms.amount_due, terms.days_overdue, terms.due_date
    return ViolationLine(
        id=violation.id,
        notice_number=violation.notice_number,
        payment_code=violation.payment_code,
        occurred_at=violation.occurred_at.astimezone(tz),
        location=violation.location,
        offense_code=violation.offense_code,
        description=violation.description,
        points=violation.points,
        fine=violation.fine,
        late_fee=late_fee,
        amount_due=amount_due,
        due_date=due,
        days_overdue=overdue,
        status=violation.status,
        payable_online=violation.payable_online,
        receipt_number=violation.receipt_number,
        paid_at=violation.paid_at.astimezone(tz) if violation.paid_at else None,
        plan=terms,
        contest_case=violation.contest_case if violation.status == UNPAID else None,
        fee_stopped_on=violation.fee_stopped_on,
    )


def _read(query, params):
    """All rows of one read-only query.

    Inside a transaction the query joins it (a kiosk visit, a payment). Otherwise
    one SELECT is its own consistent snapshot and needs no transaction: in
    autocommit it costs one database round trip instead of three (BEGIN, the
    query, ROLLBACK).
    """
    if db.session().in_transaction():
        return db.session.execute(query, params).all()
    with db.engine.connect() as connection:
        return connection.execution_options(isolation_level="AUTOCOMMIT").execute(query, params).all()


def _plans_of(rows):
    """{violation id: (plan row, instalment rows)} for the rows that have an instalment plan (no query if none)."""
    ids = [row.id for row in rows if row.plan_id is not None]
    return instalments.group_plans(_read(instalments.PLANS_OF, {"violation_ids": ids})) if ids else {}


def lookup_vehicle(plate, vin_last6=None, notice_number=None, payment_code=None, now=None):
    """Return the VehicleStatement for a plate proven by its VIN code, a notice number or a payment code, or None.

    Arguments are already normalised. None means "no such vehicle" whether the
    plate is unknown or the second fact is wrong: callers must not tell them apart.
    A notice number or payment code proves the vehicle, so the statement is the
    vehicle's, all its violations, as with the VIN code.
    """
    proofs = {"vin_last6": vin_last6, "notice_number": notice_number, "payment_code": payment_code}
    given = [name for name, value in proofs.items() if value is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of vin_last6, notice_number and payment_code")
    query = {"vin_last6": BY_VIN, "notice_number": BY_NOTICE, "payment_code": BY_PAYMENT_CODE}[given[0]]
    rows = _read(query, {"plate": plate, given[0]: proofs[given[0]]})
    if not rows:
        return None
    tz = ZoneInfo(current_app.config["BUSINESS_TIMEZONE"])
    now = (now or utcnow()).astimezone(tz)
    policy = current_policy()
    plans = _plans_of(rows)
    lines = sorted(
        (price(v, policy, now.date(), tz, plans.get(v.id)) for v in rows),
        # Owed and payable first, then owed in person, then settled; newest first within each.
        key=lambda line: (line.status != UNPAID, not line.payable, -line.occurred_at.timestamp()),
    )
    return VehicleStatement(
        plate=plate,
        vin_last6=rows[0].vin_last6,
        currency=current_app.config["CURRENCY"],
        as_of=now,
        total_due=sum(line.amount_due for line in lines if line.status == UNPAID),
        total_payable_online=sum(line.pay_now for line in lines if line.payable),
        violations=lines,
    )


def prove_vehicle(plate, *, vin_last6=None, notice_number=None, payment_code=None, violation_ids=None, altcha=None):
    """The one way a driver proves a vehicle: lookup_vehicle under the plate's failure budget.

    Returns the VehicleStatement, or None when the proof fails. With
    ``violation_ids`` (creating a payment) the proof also needs every one of
    them to be this vehicle's; an unknown or foreign id is the same failure as a
    wrong code, so neither can be told apart. Each failure counts against the
    plate's budget; once it is spent, raises ChallengeRequired unless
    ``altcha`` solves a challenge issued for this plate (each solution once).
    The route itself carries violations.limits.limited (every attempt, per client).
    Later steps that carry this proof (a vehicle token from violations.proof, a
    kiosk visit's proven VIN code) read with lookup_vehicle and prove nothing new.
    """
    subject = challenge.subject_key("plate", plate)
    if limits.plate_budget_spent(plate) and not challenge.redeem(altcha, subject):
        raise challenge.require(subject, _(
            "Many wrong codes were tried for this plate recently, so your device must solve a short check "
            "before it can be looked up. This takes a few seconds."))
    statement = lookup_vehicle(plate, vin_last6=vin_last6, notice_number=notice_number, payment_code=payment_code)
    if statement is not None and violation_ids is not None:
        if not set(violation_ids) <= {line.id for line in statement.violations}:
            statement = None
    if statement is None:
        limits.count_failure(plate)
    return statement


def get_violation(violation_id):
    """The violation with this id, or a 404."""
    violation = db.session.get(Violation, violation_id)
    if violation is None:
        raise ApiError(_("No such violation."), code="not_found", status=404)
    return violation


def lock_violation(violation_id):
    """The violation read afresh under its row lock (PostgreSQL) for this transaction; 404 when there is none.

    The lock every payment takes before it holds or settles a violation: whoever changes a violation takes it first.
    """
    violation = db.session.execute(
        select(Violation).where(Violation.id == violation_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if violation is None:
        db.session.rollback()
        raise ApiError(_("No such violation."), code="not_found", status=404)
    return violation


def void_violation(violation_id, *, reason, actor, open_holds):
    """Cancel an unpaid violation: it is no longer owed. A paid one is never touched, nor one a payment holds.

    ``open_holds`` (payments.services.open_holds) tells which of the given
    violation ids an open payment holds; it is asked under the violation's row
    lock, which every payment takes before it holds or settles a violation.
    """
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise invalid_field("reason", _("Say why, in a few words (at least 5 characters)."))
    # Lock the row (PostgreSQL) so a payment cannot start or settle it meanwhile.
    violation = lock_violation(violation_id)
    if violation.status != UNPAID:
        db.session.rollback()
        raise ApiError(_("Only an unpaid violation can be voided (this one is %(status)s).", status=violation.status),
                       code="not_voidable", status=409)
    if open_holds([violation.id]):
        db.session.rollback()
        raise ApiError(_("A payment for this violation is in progress; try again when it has finished."),
                       code="payment_in_progress", status=409)
    if db.session.execute(select(Instalment.id).join(InstalmentPlan, InstalmentPlan.id == Instalment.plan_id).where(
            InstalmentPlan.violation_id == violation.id, Instalment.status == PAID).limit(1)).first() is not None:
        db.session.rollback()  # the money paid on its instalments would be left without a fine to pay
        raise ApiError(_("Instalments of this violation have been paid; refund them before voiding it."),
                       code="not_voidable", status=409)
    changed = db.session.execute(
        update(Violation).where(Violation.id == violation.id, Violation.status == UNPAID)
        .values(status=VOID, updated_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount
    if not changed:  # paid between the read and the write
        db.session.rollback()
        raise ApiError(_("This violation was paid meanwhile and cannot be voided."), code="not_voidable", status=409)
    audit.record("violation.voided", "violation", violation.id, actor=actor, reason=reason,
                 notice_number=violation.notice_number)
    db.session.commit()
    db.session.refresh(violation)
    return violation


def approve_plan(violation_id, *, due_dates, actor, today=None, on_approved=None):
    """Approve paying an unpaid violation in instalments due on ``due_dates`` (2 to 6, in order); returns the plan.

    The fine plus the late fee accrued today is split (violations.instalments.split_amount); from now on the late
    fee is what violations.instalments says. A violation already paid, void, payable in person only, or with a
    plan already is refused (409). A payment already open for the whole violation cannot settle it any more
    (payments refunds it as not settled), so callers should withdraw it first (staff.services does).
    ``on_approved(violation_id, actor)`` joins the plan's transaction (the cases area approves a pending
    instalment application with it).
    """
    due_dates = list(due_dates)
    today = today or business_today(current_app.config["BUSINESS_TIMEZONE"])
    problem = instalments.due_dates_problem(due_dates, today)
    if problem:
        raise invalid_field("due_dates", {
            "count": _("An instalment plan has %(min)d to %(max)d instalments.", min=instalments.MIN_INSTALMENTS,
                       max=instalments.MAX_INSTALMENTS),
            "past": _("The first instalment cannot be due before today."),
            "order": _("Each instalment must be due on a different day, in order."),
            "too_far": _("The last instalment must be due within two years."),
        }[problem])
    violation = lock_violation(violation_id)
    if why_not_payable(violation) or db.session.execute(
            select(InstalmentPlan.id).where(InstalmentPlan.violation_id == violation.id)).first() is not None:
        db.session.rollback()
        raise ApiError(_("Only an unpaid violation that can be paid online and has no plan yet can be paid in "
                         "instalments."), code="not_plannable", status=409)
    late_fee = late_fee_of(violation, current_policy(), today)
    unit = 10 ** get_currency_precision(current_app.config["CURRENCY"])
    amounts = instalments.split_amount(violation.fine + late_fee, len(due_dates), unit)
    plan = InstalmentPlan(violation_id=violation.id, fine=violation.fine, late_fee=late_fee, approved_on=today,
                          approved_by=actor, instalments=[
                              Instalment(number=n, amount=amount, due_date=due, status=UNPAID)
                              for n, (amount, due) in enumerate(zip(amounts, due_dates, strict=True), start=1)])
    db.session.add(plan)
    db.session.flush()
    audit.record("instalment_plan.approved", "violation", violation.id, actor=actor, plan=plan.id,
                 notice_number=violation.notice_number, fine=violation.fine, late_fee=late_fee,
                 amounts=amounts, due_dates=[due.isoformat() for due in due_dates])
    if on_approved is not None:
        on_approved(violation.id, actor)
    db.session.commit()
    return plan


def plan_terms(violation_id, today=None):
    """The violation's instalment plan priced today (violations.instalments.PlanTerms), or None when it has none."""
    plan = instalments.plans_of(db.session, [violation_id]).get(violation_id)
    if plan is None:
        return None
    config = current_app.config
    tz = ZoneInfo(config["BUSINESS_TIMEZONE"])
    return instalments.instalment_terms(*plan, current_policy(), today or business_today(config["BUSINESS_TIMEZONE"]),
                                        tz)
