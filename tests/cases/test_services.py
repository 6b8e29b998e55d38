"""The rules of cases, through cases.services, on SQLite and PostgreSQL."""
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cases import services
from cases.models import Case, CaseFile
from finepay.audit import AuditEntry
from finepay.errors import ApiError
from finepay.extensions import db
from payments import services as payments
from tests.cases.conftest import stored_files
from tests.cases.helpers import STATEMENT, jpeg_bytes, mp4_bytes, png_bytes, upload
from tests.payments.helpers import (
    OTHER_PLATE,
    OTHER_VIN,
    PLATE,
    VIN,
    capture_at_sandbox,
    lookup,
    overdue_violation,
    today,
)
from violations.models import Violation
from violations.services import UNDER_CONTEST, approve_plan, lookup_vehicle, why_not_payable


def contest(violation, uploads=(), **overrides):
    """File a contest of ``violation`` through the service."""
    fields = {"violation_id": violation.id, "kind": "contest", "reason": "not_driving", "statement": STATEMENT,
              "uploads": uploads, "actor": "driver"}
    fields.update(overrides)
    return services.file_case(**fields)


def line_of(violation, now=None):
    """The driver's priced line for a violation (plate and VIN of the default vehicle)."""
    statement = lookup_vehicle(violation.plate, vin_last6=violation.vin_last6, now=now)
    return next(line for line in statement.violations if line.id == violation.id)


def audit_actions(subject_type, subject_id):
    return db.session.execute(select(AuditEntry.action).where(
        AuditEntry.subject_type == subject_type, AuditEntry.subject_id == str(subject_id)).order_by(AuditEntry.id)
    ).scalars().all()


def case_count():
    return db.session.execute(select(func.count()).select_from(Case)).scalar_one()


def test_case_numbers_are_random_twelve_characters_and_not_sequential(app):
    numbers = {services.new_case_number() for _i in range(200)}
    assert len(numbers) == 200
    assert all(services.NUMBER_PATTERN.match(n) for n in numbers)
    assert services.normalize_case_number(" abcd-efgh-jk12 ") == "ABCDEFGHJK12"
    assert services.normalize_case_number("ABCDEFGHJK1I") is None  # I is not in the alphabet


def test_contest_holds_the_violation_and_stops_its_late_fee_on_the_filing_day(app, evidence_dir):
    violation = overdue_violation()
    fee_before = line_of(violation).late_fee
    case = contest(violation, [upload(png_bytes(), "p.png", "image/png")])
    db.session.refresh(violation)
    assert violation.contest_case == case.number and violation.fee_stopped_on == today()
    assert why_not_payable(violation) == UNDER_CONTEST
    later = line_of(violation, now=services.utcnow() + timedelta(days=10))
    assert later.late_fee == fee_before and not later.payable and later.under_contest
    assert len(case.files) == 1 and stored_files(evidence_dir) == [case.files[0].stored_name]
    assert audit_actions("case", case.id) == ["case.filed"]


def test_a_contested_violation_cannot_be_put_into_a_payment(app):
    violation = overdue_violation()
    case = contest(violation)
    with pytest.raises(ApiError) as refused:
        payments.start_payment(plate=PLATE, vin_last6=VIN, violation_ids=[violation.id],
                               idempotency_key=str(uuid.uuid4()))
    assert refused.value.status == 409 and refused.value.code == UNDER_CONTEST
    assert case.number in str(refused.value.errors)


def test_contesting_cancels_an_open_payment_first(app):
    violation = overdue_violation()
    payment = payments.start_payment(plate=PLATE, vin_last6=VIN, violation_ids=[violation.id],
                                     idempotency_key=str(uuid.uuid4()))
    contest(violation)
    assert db.session.get(type(payment), payment.id).status == "canceled"
    assert payments.open_holds([violation.id]) == {}


def test_contest_is_refused_when_the_gateway_already_took_the_money(app, evidence_dir):
    violation = overdue_violation()
    payment = payments.start_payment(plate=PLATE, vin_last6=VIN, violation_ids=[violation.id],
                                     idempotency_key=str(uuid.uuid4()))
    assert payment.gateway_intent_id
    capture_at_sandbox(payment.gateway_intent_id)
    with pytest.raises(ApiError) as refused:
        contest(violation, [upload(jpeg_bytes())])
    assert refused.value.code == "already_paid" and refused.value.status == 409
    db.session.refresh(violation)
    assert violation.status == "paid" and violation.contest_case is None
    assert case_count() == 0 and stored_files(evidence_dir) == []


def test_one_pending_case_per_violation(app):
    violation = overdue_violation()
    services.file_case(violation_id=violation.id, kind="deferral", reason="illness", statement=STATEMENT,
                       actor="driver")
    with pytest.raises(ApiError) as refused:
        contest(violation)
    assert refused.value.code == "case_open"


@pytest.mark.parametrize("kind", ["deferral", "instalments"])
def test_no_application_once_a_plan_is_approved(app, kind):
    """A plan already answers an application: staff could neither set up a second plan nor defer the first."""
    violation = overdue_violation()
    approve_plan(violation.id, due_dates=[today() + timedelta(days=d) for d in (1, 31)], actor="supervisor")
    with pytest.raises(ApiError) as refused:
        services.file_case(violation_id=violation.id, kind=kind, reason="illness", statement=STATEMENT,
                           actor="driver")
    assert refused.value.code == "plan_approved"
    assert case_count() == 0
    assert contest(violation).kind == "contest"  # the violation itself can still be contested


@pytest.mark.parametrize(("field", "overrides"), [
    ("statement", {"statement": "too short"}),
    ("statement", {"statement": "x" * 1001}),
    ("reason", {"reason": "illness"}),  # a hardship reason is not a contest's
    ("kind", {"kind": "appeal"}),
])
def test_filing_rules_refuse_with_the_field_named(app, evidence_dir, field, overrides):
    violation = overdue_violation()
    with pytest.raises(ApiError) as refused:
        contest(violation, [upload(jpeg_bytes())], **overrides)
    assert refused.value.status == 422 and field in refused.value.errors
    assert case_count() == 0 and stored_files(evidence_dir) == []


@pytest.mark.parametrize("uploads", [
    pytest.param(lambda: [upload(b"GIF89a" + b"\x00" * 100, "cat.jpg")], id="wrong-type-named-jpg"),
    pytest.param(lambda: [upload(b"<html>" + b"\x00" * 100, "x.png", "image/png")], id="html-named-png"),
    pytest.param(lambda: [upload(png_bytes(pad=70 * 1024), "big.png", "image/png")], id="photo-too-large"),
    pytest.param(lambda: [upload(mp4_bytes(300 * 1024), "v.mp4", "video/mp4")], id="video-too-large"),
    pytest.param(lambda: [upload(jpeg_bytes()) for _i in range(6)], id="six-photos"),
    pytest.param(lambda: [upload(jpeg_bytes()), upload(mp4_bytes(), "v.mp4", "video/mp4")], id="photo-and-video"),
])
def test_bad_evidence_is_refused_and_nothing_is_stored(app, evidence_dir, uploads):
    violation = overdue_violation()
    with pytest.raises(ApiError) as refused:
        contest(violation, uploads())
    assert refused.value.status == 422 and "evidence" in refused.value.errors
    db.session.refresh(violation)
    assert violation.contest_case is None
    assert case_count() == 0 and stored_files(evidence_dir) == []


def test_files_are_removed_when_the_rows_cannot_be_written(app, evidence_dir, monkeypatch):
    violation = overdue_violation()

    def broken(*_args, **_kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(services.audit, "record", broken)
    with pytest.raises(RuntimeError):
        contest(violation, [upload(jpeg_bytes()), upload(png_bytes(), "b.png")])
    assert stored_files(evidence_dir) == []
    assert case_count() == 0 and db.session.execute(select(func.count()).select_from(CaseFile)).scalar_one() == 0


def test_five_photos_or_one_video_are_kept(app, evidence_dir):
    first, second = overdue_violation(), overdue_violation()
    photos = contest(first, [upload(jpeg_bytes()) for _i in range(5)])
    video = contest(second, [upload(mp4_bytes(), "v.mp4", "video/mp4")])
    assert [f.kind for f in photos.files] == ["photo"] * 5 and [f.kind for f in video.files] == ["video"]
    assert len(stored_files(evidence_dir)) == 6
    assert all(f.stored_name not in ("photo.jpg", "v.mp4") for f in photos.files + video.files)


def test_upholding_restarts_the_grace_period_from_the_decision(app):
    violation = overdue_violation()
    owed = line_of(violation).late_fee
    case = contest(violation)
    services.prepare_case(case.number, recommendation="upheld", note="Camera photo is clear.", actor="staff:clerk")
    services.decide_case(case.number, outcome="upheld", reason="The camera photo shows the car.",
                         actor="staff:boss")
    db.session.refresh(violation)
    grace = app.config["LATE_FEE_GRACE_DAYS"]
    assert violation.contest_case is None and violation.due_on == today() + timedelta(days=grace)
    line = line_of(violation)
    assert line.payable and line.late_fee == owed and line.due_date == violation.due_on  # no day added meanwhile
    after = line_of(violation, now=services.utcnow() + timedelta(days=grace + 2))
    assert after.late_fee == min(violation.fine, owed + round(violation.fine * 0.03 * 2))
    assert audit_actions("case", case.id) == ["case.filed", "case.prepared", "case.decided"]


def test_cancelling_voids_the_violation_with_the_reason(app):
    violation = overdue_violation()
    case = contest(violation)
    services.decide_case(case.number, outcome="cancelled", reason="Plate was cloned: confirmed.", actor="staff:boss")
    db.session.refresh(violation)
    assert violation.status == "void" and violation.contest_case is None
    assert db.session.get(Case, case.id).status == "cancelled"
    voided = db.session.execute(select(AuditEntry).where(AuditEntry.action == "violation.voided")).scalar_one()
    assert voided.details["reason"] == "Plate was cloned: confirmed."


def test_a_decided_case_cannot_be_decided_or_prepared_again(app):
    case = contest(overdue_violation())
    services.decide_case(case.number, outcome="upheld", reason="Photo is clear.", actor="staff:boss")
    for again in (lambda: services.decide_case(case.number, outcome="cancelled", reason="Changed mind.",
                                               actor="staff:boss"),
                  lambda: services.prepare_case(case.number, recommendation="upheld", note="Late note.",
                                                actor="staff:clerk")):
        with pytest.raises(ApiError) as refused:
            again()
        assert refused.value.code == "already_decided"


def test_outcomes_and_reasons_are_checked(app):
    case = contest(overdue_violation())
    with pytest.raises(ApiError) as wrong:
        services.decide_case(case.number, outcome="approved", reason="Not a contest outcome.", actor="staff:boss")
    assert "outcome" in wrong.value.errors
    with pytest.raises(ApiError) as short:
        services.decide_case(case.number, outcome="upheld", reason="ok", actor="staff:boss")
    assert "reason" in short.value.errors
    assert db.session.get(Case, case.id).status == "open"


def test_approving_a_deferral_sets_the_new_due_date(app):
    violation = overdue_violation()
    case = services.file_case(violation_id=violation.id, kind="deferral", reason="income_loss",
                              statement=STATEMENT, actor="driver")
    assert line_of(violation).payable  # an application does not hold the violation
    owed = line_of(violation).late_fee
    new_due = today() + timedelta(days=60)
    with pytest.raises(ApiError) as too_far:
        services.decide_case(case.number, outcome="approved", reason="Lost job, proven.", actor="staff:boss",
                             new_due_date=today() + timedelta(days=181))
    assert "new_due_date" in too_far.value.errors
    services.decide_case(case.number, outcome="approved", reason="Lost job, proven.", actor="staff:boss",
                         new_due_date=new_due)
    db.session.refresh(violation)
    assert violation.due_on == new_due
    # What was owed stays owed; no day is added until the new due date has passed.
    assert line_of(violation).late_fee == owed and line_of(violation).due_date == new_due


def test_instalments_are_approved_by_the_plan_hook_not_by_deciding(app):
    violation = overdue_violation()
    case = services.file_case(violation_id=violation.id, kind="instalments", reason="illness", statement=STATEMENT,
                              actor="driver")
    with pytest.raises(ApiError) as refused:
        services.decide_case(case.number, outcome="approved", reason="Fine by me.", actor="staff:boss")
    assert refused.value.code == "set_up_plan"
    approved = services.on_plan_created(violation.id, "staff:boss")
    db.session.commit()
    assert approved.id == case.id and db.session.get(Case, case.id).status == "approved"
    assert services.on_plan_created(violation.id, "staff:boss") is None


def test_refusing_an_application_leaves_the_violation_as_it_was(app):
    violation = overdue_violation()
    due = line_of(violation).due_date
    case = services.file_case(violation_id=violation.id, kind="instalments", reason="illness", statement=STATEMENT,
                              actor="driver")
    services.decide_case(case.number, outcome="refused", reason="No hardship shown.", actor="staff:boss")
    assert db.session.get(Case, case.id).status == "refused" and line_of(violation).due_date == due


def test_checking_needs_plate_vin_and_the_vehicles_own_case_number(app):
    violation = overdue_violation()
    other = overdue_violation(plate=OTHER_PLATE, vin_last6=OTHER_VIN)
    case, others = contest(violation), contest(other)
    status = services.check_case(PLATE, VIN, case.number.lower())
    assert status.number == case.number and status.status == "open" and status.decision_reason is None
    assert services.check_case(PLATE, "Z99999", case.number) is None
    assert services.check_case(PLATE, VIN, others.number) is None  # another vehicle's case
    assert services.check_case(PLATE, VIN, services.new_case_number()) is None
    assert services.check_case("京A99999", VIN, case.number) is None


def test_queue_lists_pending_cases_oldest_first_with_their_wait(app):
    first = contest(overdue_violation())
    second = services.file_case(violation_id=overdue_violation().id, kind="deferral", reason="illness",
                                statement=STATEMENT, actor="driver")
    decided = contest(overdue_violation())
    services.decide_case(decided.number, outcome="upheld", reason="Photo is clear.", actor="staff:boss")
    entries = services.queue(now=services.utcnow() + timedelta(hours=5))
    assert [e.case.number for e in entries] == [first.number, second.number]
    assert all(timedelta(hours=5) <= e.waited < timedelta(hours=6) for e in entries)


def test_lookup_shows_the_contest_and_keeps_it_out_of_the_totals_payable(client):
    violation = overdue_violation()
    case = contest(violation)
    body = client.post("/api/v1/lookups", json={"plate": PLATE, "vin_last6": VIN}).get_json()
    row = lookup(client)[violation.id]
    assert row["status"] == "unpaid" and row["contest_case"] == case.number and body["total_payable_online"] == 0
    assert db.session.get(Violation, violation.id).contest_case == case.number


def _start_payment(violation):
    return payments.start_payment(plate=violation.plate, vin_last6=violation.vin_last6,
                                  violation_ids=[violation.id], idempotency_key=str(uuid.uuid4()))


def test_an_upheld_contest_keeps_the_fee_owed_at_filing_and_the_payment_charges_what_the_driver_sees(app):
    violation = overdue_violation()
    owed_at_filing = line_of(violation).late_fee
    assert owed_at_filing > 0
    case = contest(violation)
    services.decide_case(case.number, outcome="upheld", reason="The camera photo shows the car.",
                         actor="staff:boss")
    db.session.refresh(violation)
    line = line_of(violation)
    # The late fee stopped while the case was open and resumes after the new grace period; what was owed stays.
    assert line.late_fee == owed_at_filing and line.amount_due == violation.fine + owed_at_filing
    payment = _start_payment(violation)
    assert payment.amount == line.amount_due + payments.convenience_fee(line.amount_due)
    grace = app.config["LATE_FEE_GRACE_DAYS"]
    later = line_of(violation, now=services.utcnow() + timedelta(days=grace + 2))
    assert later.late_fee == min(violation.fine, owed_at_filing + round(violation.fine * 0.03 * 2))


def test_a_deferral_keeps_the_fee_owed_when_approved_and_adds_none_until_the_new_due_date(app):
    violation = overdue_violation()
    owed = line_of(violation).late_fee
    case = services.file_case(violation_id=violation.id, kind="deferral", reason="income_loss",
                              statement=STATEMENT, actor="driver")
    new_due = today() + timedelta(days=60)
    services.decide_case(case.number, outcome="approved", reason="Lost job, proven.", actor="staff:boss",
                         new_due_date=new_due)
    db.session.refresh(violation)
    assert line_of(violation, now=services.utcnow() + timedelta(days=59)).late_fee == owed
    payment = _start_payment(violation)
    assert sum(item.late_fee for item in payment.items) == owed
