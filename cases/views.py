"""Driver pages: file a contest or an application from the results page, and check a case."""
from flask import Blueprint, current_app, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from cases import evidence, services
from cases.forms import CaseForm, CheckForm
from cases.models import APPLICATIONS, CONTEST, STATEMENT_MAX, STATEMENT_MIN
from cases.reasons import REASONS
from finepay.challenge import ChallengeRequired
from finepay.errors import ApiError
from finepay.extensions import csrf
from violations.forms import LookupForm
from violations.limits import limited
from violations.proof import vehicle_for
from violations.services import lookup_vehicle

bp = Blueprint("cases", __name__, url_prefix="/cases")

KIND_LABELS_FOR = {"contest": (CONTEST,), "application": APPLICATIONS}


def _violation_line(form_vehicle, violation_id):
    """The proven vehicle's line for this violation (from the results page's token), or None."""
    vehicle = vehicle_for(form_vehicle, [violation_id])
    if vehicle is None:
        return None
    statement = lookup_vehicle(vehicle[0], vin_last6=vehicle[1])
    return next((line for line in statement.violations if line.id == violation_id), None) if statement else None


def _render_form(form, line, kinds, status=200, problem=None):
    form.kind.choices = [(kind, kind) for kind in kinds]
    kind = form.kind.data if form.kind.data in kinds else kinds[0]
    form.reason.choices = [(code, str(label)) for code, label in REASONS[kind].items()]
    return render_template("cases/new.html", form=form, line=line, kinds=kinds, kind=kind, problem=problem,
                           statement_min=STATEMENT_MIN, statement_max=STATEMENT_MAX,
                           reasons={k: REASONS[k] for k in kinds}), status


def _expired():
    """The results page's proof has lapsed (or never was): look the vehicle up again."""
    return render_template("violations/home.html", form=LookupForm(formdata=None), csrf_expired=True), 400


@bp.post("/new")
def new():
    """The form for one violation, reached from the results page (its vehicle token proves the vehicle)."""
    what, _sep, violation_id = (request.form.get("case_for") or "").partition(":")
    if what not in KIND_LABELS_FOR or not violation_id.isdigit():
        return _expired()
    line = _violation_line(request.form.get("vehicle"), int(violation_id))
    if line is None or line.status != "unpaid":
        return _expired()
    form = CaseForm(formdata=None, vehicle=request.form.get("vehicle"), violation_id=line.id)
    return _render_form(form, line, KIND_LABELS_FOR[what])


@bp.post("/")
@csrf.exempt  # the form checks its token itself, once the evidence upload's larger body limit applies
@limited
def file():
    """File the case: one service call, then the case number."""
    request.max_content_length = evidence.request_limit(current_app.config)
    try:
        form = CaseForm()
        form.validate()
        request.files.getlist("evidence")
    except RequestEntityTooLarge:
        return _too_large()
    if "csrf_token" in form.errors:
        return _expired()
    line = _violation_line(form.vehicle.data, form.violation_id.data or 0)
    if line is None:
        return _expired()
    kinds = (CONTEST,) if form.kind.data == CONTEST else APPLICATIONS
    for field in form:
        field.errors = []
    try:
        case = services.file_case(violation_id=line.id, kind=form.kind.data, reason=form.reason.data,
                                  statement=form.statement.data, uploads=request.files.getlist("evidence"),
                                  actor="driver")
    except ApiError as error:
        if error.status == 422:
            for name, messages in (error.errors or {}).items():
                field = getattr(form, name, None)
                if field is not None:
                    field.errors = list(messages)
            return _render_form(form, line, kinds, status=422)
        return _render_form(form, line, kinds, status=error.status, problem=error.message)
    return render_template("cases/filed.html", case=case, line=line), 201


def _too_large():
    """The whole upload was over the limit: nothing was read or stored."""
    config = current_app.config
    return render_template("cases/too_large.html",
                           photo_limit=config["EVIDENCE_PHOTO_MAX_BYTES"] // (1024 * 1024),
                           video_limit=config["EVIDENCE_VIDEO_MAX_BYTES"] // (1024 * 1024)), 413


@bp.get("/check")
def check_form():
    """Plate + VIN code + case number."""
    return render_template("cases/check.html", form=CheckForm(formdata=None))


@bp.post("/check")
@limited
def check():
    """A case's status, for the vehicle that proves it; one answer for every mismatch."""
    form = CheckForm(formdata=request.form)
    if not form.validate_on_submit():
        return render_template("cases/check.html", form=form), 422
    try:
        status = services.check_case(form.plate.normalized, form.vin_last6.normalized, form.case_number.normalized,
                                     altcha=form.altcha.data)
    except ChallengeRequired as needed:
        return render_template("cases/check.html", form=form, challenge=needed), 429
    if status is None:
        return render_template("cases/check.html", form=form, no_match=True), 404
    return render_template("cases/status.html", status=status)
