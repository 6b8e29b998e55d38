"""The staff console's cases: the queue, a case's page, preparing and deciding, and its evidence files."""
from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from cases import services as cases
from cases.models import INSTALMENTS, OUTCOMES, PHOTO
from cases.reasons import reason_label
from finepay.audit import AuditEntry
from finepay.errors import ApiError
from finepay.extensions import db
from staff.auth import supervisor_required
from staff.forms import DecideCaseForm, PrepareCaseForm
from staff.views import apply_errors, bp, me
from violations.models import Violation


@bp.get("/cases")
def case_queue():
    """Open cases and applications, oldest first, with how long each has waited."""
    return render_template("staff/cases.html", entries=cases.queue())


def _case_page(number, prepare_form=None, decide_form=None, status=200):
    case = cases.get_case(number)
    violation = db.session.get(Violation, case.violation_id)
    trail = db.session.execute(
        select(AuditEntry).where(AuditEntry.subject_type == "case", AuditEntry.subject_id == str(case.id))
        .order_by(AuditEntry.id)
    ).scalars().all()
    outcomes = OUTCOMES[case.kind]
    return render_template("staff/case.html", case=case, violation=violation, trail=trail, outcomes=outcomes,
                           reason=reason_label(case.kind, case.reason), photo=PHOTO, instalments=INSTALMENTS,
                           prepare_form=prepare_form or PrepareCaseForm(formdata=None),
                           decide_form=decide_form or DecideCaseForm(formdata=None)), status


@bp.get("/cases/<number>")
def case(number):
    """A case: the statement, the evidence, the violation, and what this role may do."""
    return _case_page(number)


def _act(number, form, action):
    if form.validate_on_submit():
        try:
            action(form)
        except ApiError as error:
            if error.status == 422 and apply_errors(form, error):
                return None
            if error.status == 404:
                raise
            flash(error.message, "warn")
            return redirect(url_for("staff.case", number=number), 303)
        return redirect(url_for("staff.case", number=number), 303)
    return None


@bp.post("/cases/<number>/prepare")
def case_prepare(number):
    """A clerk (or supervisor) prepares a case: a recommendation and a note."""
    form = PrepareCaseForm()
    done = _act(number, form, lambda f: (
        cases.prepare_case(number, recommendation=f.recommendation.data, note=f.note.data, actor=me()),
        flash(_("The case is prepared for a supervisor's decision."), "ok")))
    return done or _case_page(number, prepare_form=form, status=422)


@bp.post("/cases/<number>/decide")
@supervisor_required
def case_decide(number):
    """A supervisor decides a case."""
    form = DecideCaseForm()
    done = _act(number, form, lambda f: (
        cases.decide_case(number, outcome=f.outcome.data, reason=f.reason.data, actor=me(),
                          new_due_date=f.new_due_date.data),
        flash(_("The case is decided."), "ok")))
    return done or _case_page(number, decide_form=form, status=422)


@bp.get("/cases/<number>/files/<int:file_id>")
def case_file(number, file_id):
    """One evidence file, to signed-in staff only: never cached, never guessed at by the browser."""
    if not current_user.is_authenticated:
        abort(404)
    item, path = cases.evidence_file(number, file_id)
    try:
        response = send_file(path, mimetype=item.content_type, as_attachment=request.args.get("download") == "1",
                             download_name=item.stored_name, conditional=False, etag=False, max_age=0)
    except FileNotFoundError:
        abort(404)
    response.headers["Cache-Control"] = "no-store"
    return response
