"""The staff console at /staff: thin views over staff.services and the areas' services."""
import uuid
from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from cases.services import cases_of_violation
from finepay.errors import ApiError
from finepay.extensions import csrf, limiter, login_manager
from finepay.formatting import day_range, format_money
from finepay.i18n import localize_message, status_label
from kiosk import services as kiosk_services
from notices import services as notice_services
from notices import texts as notice_texts
from notices.notifiers import current_notifier
from payments import receipts as payment_receipts
from payments.reconciliation.export import csv_lines, record_export
from payments.reconciliation.fetch import fetch_days
from payments.reconciliation.lines import CLASSES, LABELS, check_range
from payments.reconciliation.report import reconcile
from staff import imports, services, sessions
from staff.auth import (
    begin_session,
    current_session_id,
    safe_next,
    sign_out,
    supervisor_required,
)
from staff.charts import hourly_chart
from staff.forms import (
    ActionForm,
    ApiKeyForm,
    AuditFilterForm,
    DateRangeForm,
    ImportForm,
    InstalmentPlanForm,
    RefundForm,
    SearchForm,
    SignInForm,
    TerminalForm,
    UserChangeForm,
    UserForm,
    VoidForm,
    amount_text,
)
from violations.fees import business_day_window, business_today

bp = Blueprint("staff", __name__, url_prefix="/staff")

PUBLIC_ENDPOINTS = {"staff.login"}
REJECTED_SHOWN = 1000
SECURITY_HEADERS = {
    # Console pages never run in a frame (no clickjacking of the refund button) and load only our own assets.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


# The sign-in page that asks for the proof-of-work check runs FinePay's own solver script, and only that.
CHALLENGE_HEADERS = {"Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"].replace(
    "script-src 'none'", "script-src 'self'")}


def me():
    """The signed-in staff member's name for the audit log."""
    return services.actor(current_user)


def today():
    """Today's business date."""
    return business_today(current_app.config["BUSINESS_TIMEZONE"])


def apply_errors(form, error):
    """Show a service's 422 beside the fields it names; True if every message found a field."""
    placed = False
    for name, messages in (error.errors or {}).items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + list(messages)
            placed = True
    return placed


@bp.before_request
def gatekeeper():
    """Every console page needs a signed-in staff member whose server-side session is live."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()


@bp.after_request
def security_headers(response):
    """Console pages: no framing, no third-party anything, no referrer leaking ids."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.context_processor
def console_globals():
    """What every console page needs (never reading the request body: it may be the one too large)."""
    return {"search_form": SearchForm(formdata=None)}


@bp.app_template_global()
def terminal_name(terminal_id):
    """A kiosk as staff know it (hall-1), never by its number; the names are read once a request."""
    names = g.get("terminal_names")
    if names is None:
        names = g.terminal_names = kiosk_services.terminal_names()
    return names.get(int(terminal_id), terminal_id) if str(terminal_id).isdigit() else terminal_id


@bp.errorhandler(ApiError)
def service_refused(error):
    """A service said no (404, 409...): a console page that says why."""
    return render_template("staff/error.html", status=error.status, message=error.message), error.status


@bp.errorhandler(403)
def forbidden(_error):
    """A clerk on a supervisor's page."""
    return render_template("staff/error.html", status=403,
                           message=_("Only a supervisor can do this. Ask a supervisor if it needs doing.")), 403


@bp.errorhandler(404)
def not_found(_error):
    """No such console page."""
    return render_template("staff/error.html", status=404, message=_("There is no such page in the console.")), 404


@bp.errorhandler(CSRFError)
def form_expired(_error):
    """A stale or missing form token: nothing was done."""
    return render_template("staff/error.html", status=400,
                           message=_("This form has expired, so nothing was done. Go back, reload the page "
                                             "and try again.")), 400


# --- signing in and out ---------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("30/minute", methods=["POST"])
def login():
    """Sign in with username and password; locked for a while after repeated failures."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")) or url_for("staff.dashboard"))
    form = SignInForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        return render_template("staff/login.html", form=form)
    if not form.validate_on_submit():
        return render_template("staff/login.html", form=form), 422
    result = services.authenticate(form.username.data, form.password.data, request.remote_addr, form.altcha.data)
    if result.user is None:
        form.password.data = ""
        form.altcha.data = ""
        page = render_template("staff/login.html", form=form, failed=result.failed, challenge=result.challenge)
        return page, 429 if result.challenge else 401, CHALLENGE_HEADERS if result.challenge else {}
    begin_session(result.user)
    return redirect(safe_next(form.next.data) or url_for("staff.dashboard"), 303)


@bp.post("/logout")
def logout():
    """Sign out (a POST with the form token, so no other site can sign staff out)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    sign_out(me())
    flash(_("You are signed out."), "info")
    return redirect(url_for("staff.login"), 303)


@bp.get("/sessions")
def my_sessions():
    """Where the signed-in staff member is signed in, with a way to end any of it."""
    return render_template("staff/sessions.html", sessions=sessions.live_sessions(current_user),
                           current=current_session_id())


@bp.post("/sessions/<int:session_id>/end")
def session_end(session_id):
    """End one of your own sessions (a browser left signed in elsewhere)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    if session_id == current_session_id():
        sign_out(me())
        flash(_("You are signed out."), "info")
        return redirect(url_for("staff.login"), 303)
    if not sessions.end_session(current_user, session_id, sessions.ENDED_BY_USER, actor=me()):
        abort(404)
    flash(_("That session is ended: whoever uses it must sign in again."), "ok")
    return redirect(url_for("staff.my_sessions"), 303)



# --- reading -------------------------------------------------------------------------------------


@bp.get("/")
def dashboard():
    """Today's payments by channel, the latest payments and the kiosks."""
    board = services.dashboard(today(), kiosk_services.list_terminals())
    return render_template("staff/dashboard.html", board=board)


@bp.route("/search", methods=["GET", "POST"])
def search():
    """Find payments and violations by plate, notice number, receipt number or payment id (posted)."""
    if request.method == "GET":
        return render_template("staff/search.html", form=SearchForm(formdata=None), result=None)
    form = SearchForm()
    if not form.validate():
        return render_template("staff/search.html", form=form, result=None), 422
    result = services.search(form.q.data, me())
    if len(result.payments) == 1 and not result.violations and result.understood_as[:1] == [services.PAYMENT_ID]:
        return redirect(url_for("staff.payment", payment_id=result.payments[0].id))
    return render_template("staff/search.html", form=form, result=result)


def _payment_page(payment_id, refund_form=None, status=200):
    detail = services.payment_detail(payment_id)
    if refund_form is None:
        refund_form = RefundForm(formdata=None)
        refund_form.form_key.data = uuid.uuid4().hex
    return render_template("staff/payment.html", detail=detail, refund_form=refund_form,
                           ereceipt_qr=payment_receipts.ereceipt_qr(detail.ereceipts)), status


@bp.get("/payments/<payment_id>")
def payment(payment_id):
    """A payment: items, gateway references, refunds and the whole audit trail."""
    return _payment_page(payment_id)


@bp.post("/payments/<payment_id>/refund/review")
@supervisor_required
def refund_review(payment_id):
    """The refund asked for, line by line, to confirm (supervisors): nothing moves until it is confirmed."""
    form = RefundForm()
    detail = services.payment_detail(payment_id)
    if form.validate_on_submit():
        try:
            preview = services.refund_preview(detail, amount=form.amount.minor, item_ids=form.lines.data,
                                              reason=form.reason.data)
        except ApiError as error:
            if not apply_errors(form, error):
                raise
        else:
            return render_template("staff/refund_confirm.html", detail=detail, preview=preview, form=form,
                                   amount=amount_text(preview.total, detail.payment.currency))
    return _payment_page(payment_id, refund_form=form, status=422)


@bp.post("/payments/<payment_id>/refund")
@supervisor_required
def refund(payment_id):
    """Refund through the gateway, as confirmed (supervisors); a second click finds the same refund."""
    form = RefundForm()
    if form.validate_on_submit():
        try:
            done = services.refund(payment_id, amount=form.amount.minor, item_ids=form.lines.data,
                                   reason=form.reason.data, form_key=form.form_key.data, actor_name=me())
        except ApiError as error:
            if not apply_errors(form, error):
                raise
        else:
            flash(*_refund_outcome(done))
            return redirect(url_for("staff.payment", payment_id=payment_id), 303)
    return _payment_page(payment_id, refund_form=form, status=422)


def _refund_outcome(done):
    """The sentence (and its tone) that tells a supervisor what a refund did."""
    amount = format_money(done.amount, done.currency)
    if done.status == "failed":
        return _("The gateway refused the refund of %(amount)s (%(reason)s). Nothing was refunded.",
                 amount=amount, reason=done.failure_message or done.failure_code), "error"
    if done.status != "succeeded":
        return _("The refund of %(amount)s is recorded but the gateway has not confirmed it yet; "
                 "it is retried automatically.", amount=amount), "warn"
    released = sum(1 for line in done.lines if line.item.released_at is not None)
    if released:
        return ngettext("Refunded %(amount)s. %(num)d violation is owed again.",
                        "Refunded %(amount)s. %(num)d violations are owed again.", released, amount=amount), "ok"
    return _("Refunded %(amount)s. The violations stay paid: no violation's line was refunded in full.",
             amount=amount), "ok"


def _violation_page(violation_id, void_form=None, status=200, plan_form=None):
    detail = services.violation_detail(violation_id)
    return render_template("staff/violation.html", detail=detail, cases=cases_of_violation(violation_id),
                           void_form=void_form or VoidForm(formdata=None),
                           plan_form=plan_form or InstalmentPlanForm(formdata=None)), status


@bp.get("/violations/<int:violation_id>")
def violation(violation_id):
    """A violation, the payments that covered it and its audit trail."""
    return _violation_page(violation_id)


@bp.post("/violations/<int:violation_id>/void")
@supervisor_required
def void(violation_id):
    """Void an unpaid violation with a reason (supervisors); a paid one is never touched."""
    form = VoidForm()
    if form.validate_on_submit():
        try:
            services.void_violation(violation_id, reason=form.reason.data, actor_name=me())
        except ApiError as error:
            if not error.errors:  # paid, held by a payment, gone: say so on the violation's page
                if error.status == 404:
                    raise
                flash(_("Not voided: %(reason)s", reason=error.message), "warn")
                return redirect(url_for("staff.violation", violation_id=violation_id), 303)
            apply_errors(form, error)
        else:
            flash(_("The violation is void: it is no longer owed."), "ok")
            return redirect(url_for("staff.violation", violation_id=violation_id), 303)
    return _violation_page(violation_id, void_form=form, status=422 if request.method == "POST" else 200)


@bp.post("/violations/<int:violation_id>/instalments")
@supervisor_required
def approve_instalments(violation_id):
    """Approve paying an unpaid violation in instalments (supervisors): how many, and their due dates."""
    form = InstalmentPlanForm()
    if form.validate_on_submit():
        try:
            plan = services.approve_instalment_plan(violation_id, count=int(form.count.data),
                                                    due_dates=form.chosen_due_dates(), actor_name=me())
        except ApiError as error:
            if not error.errors:  # paid, held by a payment, a plan already: say so on the violation's page
                if error.status == 404:
                    raise
                flash(_("No plan approved: %(reason)s", reason=error.message), "warn")
                return redirect(url_for("staff.violation", violation_id=violation_id), 303)
            apply_errors(form, error)
        else:
            flash(ngettext("Approved: %(num)d instalment.", "Approved: %(num)d instalments.",
                           len(plan.instalments)), "ok")
            return redirect(url_for("staff.violation", violation_id=violation_id), 303)
    return _violation_page(violation_id, plan_form=form, status=422)
# --- reminders -----------------------------------------------------------------------------------------


@bp.get("/notices")
def notices():
    """The reminders' outbox: messages that need a look (held, retrying, unknown, failed) and the latest ones."""
    return render_template("staff/notices.html", outbox=notice_services.outbox(), sender=current_notifier(),
                           labels=notice_texts.LABELS, form=ActionForm(formdata=None))


@bp.post("/notices/<int:message_id>/stop")
@supervisor_required
def notice_stop(message_id):
    """Record a stop reply from a message's number (the outbox sender has no reply callback)."""
    if ActionForm().validate_on_submit():
        stopped = notice_services.staff_stop(message_id, me())
        flash(ngettext("%(num)d subscription stopped.", "%(num)d subscriptions stopped.", stopped), "ok")
    return redirect(url_for("staff.notices"), 303)


@bp.post("/notices/<int:message_id>/retry")
@supervisor_required
def notice_retry(message_id):
    """Send a failed or unknown message again on the next run (after checking with the provider)."""
    if ActionForm().validate_on_submit():
        if notice_services.retry_now(message_id, me()):
            flash(_("The message goes out on the next run of the sender."), "ok")
        else:
            flash(_("Only a failed message, or one whose outcome is unknown, can be sent again."), "warn")
    return redirect(url_for("staff.notices"), 303)


# --- reconciliation ------------------------------------------------------------------------------------


def _date_range(form):
    yesterday = today() - timedelta(days=1)
    first = form.start.data or form.end.data or yesterday
    last = form.end.data or first
    return first, last


@bp.get("/reconciliation")
def reconciliation_report():
    """The ledger against the gateway for a business date range (default: yesterday)."""
    form = DateRangeForm(request.args)
    only = request.args.get("only")
    only = only if only in CLASSES else None
    gateway = request.args.get("gateway") or None
    if not form.validate():
        return render_template("staff/reconciliation.html", form=form, report=None), 422
    first, last = _date_range(form)
    try:
        report = reconcile(first, last, only=only, gateway=gateway)
    except ValueError as error:
        form.end.errors = list(form.end.errors) + [localize_message(str(error))]
        return render_template("staff/reconciliation.html", form=form, report=None), 422
    form.start.data, form.end.data = first, last
    chart = hourly_chart(report.hourly, report.currency,
                         _("Settled and charged per hour, %(dates)s", dates=day_range(first, last)))
    return render_template("staff/reconciliation.html", form=form, report=report, chart=chart, only=only,
                           gateway=gateway, labels=LABELS, classes=CLASSES)


@bp.get("/reconciliation.csv")
def reconciliation_csv():
    """Every reconciliation line as CSV for Excel and WPS (amounts in yuan, times in the business time zone)."""
    form = DateRangeForm(request.args)
    if not form.validate():
        return render_template("staff/reconciliation.html", form=form, report=None), 422
    first, last = _date_range(form)
    try:
        check_range(first, last)
    except ValueError as error:
        form.end.errors = list(form.end.errors) + [localize_message(str(error))]
        return render_template("staff/reconciliation.html", form=form, report=None), 422
    record_export(first, last, me())
    name = f"reconciliation-{first.isoformat()}" + (f"-to-{last.isoformat()}" if last != first else "") + ".csv"
    body = csv_lines(first, last, current_app.config["BUSINESS_TIMEZONE"])
    return Response(stream_with_context(body), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _flash_fetch(fetch):
    if fetch.error is not None and fetch.error.retryable:
        flash(_("%(gateway)s did not answer; the report still shows what was fetched from it before. "
                "Try again shortly.", gateway=fetch.label), "warn")
        return
    if fetch.error is not None:  # it answered, but refused, or sent what failed a check (a bill not matching its SHA1)
        flash(_("Fetching from %(gateway)s failed (%(reason)s): nothing was recorded from it, and the report still "
                "shows what was fetched from it before. Try again later; if it fails again, tell the technical staff.",
                gateway=fetch.label, reason=fetch.error.message), "warn")
        return
    if fetch.transactions or not fetch.bill_not_ready:  # a range may be out for its first days only
        flash(ngettext("Fetched %(num)d transaction from %(gateway)s.", "Fetched %(num)d transactions from %(gateway)s.",
                       fetch.transactions, gateway=fetch.label), "ok")
    if fetch.bill_not_ready:
        flash(_("%(gateway)s: the bill for these dates is not available yet (usually after about 10:00 the next "
                "day). Refresh again later.", gateway=fetch.label), "warn")


@bp.post("/reconciliation/fetch")
def reconciliation_fetch():
    """Refresh the gateways' side of the report from each configured gateway's listing or bill."""
    form = DateRangeForm(request.form)  # the app-wide CSRF check has already passed
    if not form.validate():
        return render_template("staff/reconciliation.html", form=form, report=None), 422
    first, last = _date_range(form)
    try:
        fetches = fetch_days(first, last, actor=me())
    except ValueError as error:
        form.end.errors = list(form.end.errors) + [localize_message(str(error))]
        return render_template("staff/reconciliation.html", form=form, report=None), 422
    for fetch in fetches:
        _flash_fetch(fetch)
    return redirect(url_for("staff.reconciliation_report", start=first.isoformat(), end=last.isoformat()), 303)


# --- imports ----------------------------------------------------------------------------------------------


@bp.route("/imports", methods=["GET", "POST"])
@csrf.exempt  # the form itself checks the token, after the larger body limit below applies
def imports_upload():
    """Upload a violations CSV: a dry run shows every bad row and its reason before anything is written."""
    if request.method == "GET":
        return render_template("staff/imports.html", form=ImportForm(formdata=None))
    limit = current_app.config["STAFF_IMPORT_MAX_BYTES"]
    request.max_content_length = limit
    try:
        form = ImportForm()
        valid = form.validate_on_submit()
    except RequestEntityTooLarge:
        form = ImportForm(formdata=None)
        form.file.errors = [_("This file is larger than %(mb)d MB. Split it, or import it with the command line "
                              "(see the README).", mb=limit // (1024 * 1024))]
        return render_template("staff/imports.html", form=form), 413
    if not valid:
        if "csrf_token" in form.errors:
            return form_expired(None)
        return render_template("staff/imports.html", form=form), 422
    try:
        token, filename, report = imports.stage_upload(form.file.data, current_user.id, me())
    except imports.ImportFileError as error:
        form.file.errors = [_("This file cannot be imported: %(reason)s.", reason=localize_message(str(error)))]
        return render_template("staff/imports.html", form=form), 422
    return render_template("staff/imports.html", form=ImportForm(formdata=None), token=token, filename=filename,
                           report=report, shown=REJECTED_SHOWN)


@bp.post("/imports/<token>/apply")
def imports_apply(token):
    """Apply an upload that passed its dry run (the same importer as the command line)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        filename, report = imports.apply_staged(token, current_user.id, me())
    except imports.ImportFileError as error:
        flash(_("The import stopped: %(reason)s. Rows before that point were kept.", reason=localize_message(str(error))), "warn")
        return redirect(url_for("staff.imports_upload"), 303)
    return render_template("staff/imports.html", form=ImportForm(formdata=None), applied=True, filename=filename,
                           report=report, shown=REJECTED_SHOWN)


# --- terminals, keys, users ---------------------------------------------------------------------------------


@bp.route("/terminals", methods=["GET", "POST"])
def terminals():
    """Kiosks with their last heartbeat; supervisors enrol (the one-time code is shown once) and revoke."""
    form = TerminalForm()
    enrolment = None
    status = 200
    if request.method == "POST":
        if not current_user.is_supervisor:
            abort(403)
        if form.validate_on_submit():
            try:
                enrolment = kiosk_services.enrol_terminal(form.name.data, me(), reader_id=form.reader_id.data or None)
            except ApiError as error:
                form.name.errors = list(form.name.errors) + [error.message]
                status = 422
            else:
                form = TerminalForm(formdata=None)
        else:
            status = 422
    return render_template("staff/terminals.html", form=form, enrolment=enrolment,
                           terminals=kiosk_services.list_terminals()), status


@bp.post("/terminals/<name>/revoke")
@supervisor_required
def terminal_revoke(name):
    """Switch a kiosk off at once."""
    if not ActionForm().validate_on_submit():
        abort(400)
    kiosk_services.revoke_terminal(name, me())
    flash(_("Terminal %(name)s is revoked: it can no longer take payments.", name=name), "ok")
    return redirect(url_for("staff.terminals"), 303)


@bp.route("/keys", methods=["GET", "POST"])
@supervisor_required
def keys():
    """API keys for the upstream violation system: created here, shown once, stored hashed."""
    form = ApiKeyForm()
    created = None
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                created = services.create_api_key(form.name.data, me())
            except ApiError as error:
                if not apply_errors(form, error):
                    raise
                status = 422
            else:
                form = ApiKeyForm(formdata=None)
        else:
            status = 422
    return render_template("staff/keys.html", form=form, created=created, keys=services.list_api_keys()), status


@bp.post("/keys/<int:key_id>/revoke")
@supervisor_required
def key_revoke(key_id):
    """Stop an API key from working."""
    if not ActionForm().validate_on_submit():
        abort(400)
    key = services.revoke_api_key(key_id, me())
    flash(_("Key %(name)s (%(prefix)s) is revoked.", name=key.name, prefix=key.prefix), "ok")
    return redirect(url_for("staff.keys"), 303)


@bp.route("/users", methods=["GET", "POST"])
@supervisor_required
def users():
    """Staff accounts: supervisors create them and change roles, access and passwords."""
    form = UserForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                user = services.create_user(form.username.data, form.role.data, form.password.data, me())
            except ApiError as error:
                if not apply_errors(form, error):
                    raise
                status = 422
            else:
                flash(_("Account %(name)s (%(role)s) created.", name=user.username, role=status_label(user.role)), "ok")
                return redirect(url_for("staff.users"), 303)
        else:
            status = 422
    return render_template("staff/users.html", form=form, users=services.list_users()), status


@bp.post("/users/<int:user_id>")
@supervisor_required
def user_change(user_id):
    """Change one account's role, activity or password."""
    form = UserChangeForm()
    if form.validate_on_submit():
        try:
            user = services.change_user(user_id, actor_user=current_user, role=form.role.data,
                                        active=form.active.data, password=form.password.data or None,
                                        actor_session_id=current_session_id())
        except ApiError as error:
            if error.status == 404 or not error.errors:
                raise
            flash(_("Not changed: %(reason)s", reason=error.message), "warn")
        else:
            flash(_("Account %(name)s updated.", name=user.username), "ok")
        return redirect(url_for("staff.users"), 303)
    messages = _("; ").join(str(m) for errors in form.errors.values() for m in errors)
    flash(_("Not changed: %(reason)s", reason=messages), "warn")
    return redirect(url_for("staff.users"), 303)


# --- audit ----------------------------------------------------------------------------------------------------


@bp.get("/audit")
def audit_log():
    """The audit log, newest first, filtered by action, actor, subject and dates."""
    form = AuditFilterForm(request.args)
    if not form.validate():
        return render_template("staff/audit.html", form=form, page=None), 422
    start = end = None
    if form.start.data or form.end.data:
        first = form.start.data or form.end.data
        start, end = business_day_window((first, form.end.data or first))
        if not form.start.data:
            start = None
        if not form.end.data:
            end = None
    page = services.audit_page(action=form.action.data or None, actor_name=form.actor.data or None,
                               subject=form.subject.data or None, start=start, end=end,
                               before=int(form.before.data) if form.before.data else None)
    query = {k: v for k, v in request.args.items() if k != "before" and v}
    return render_template("staff/audit.html", form=form, page=page, query=query)
