"""Driver pages: subscribe a number to a proven vehicle, confirm it, stop; and the SMS provider's reply callback."""
from flask import Blueprint, jsonify, render_template, request
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError

from finepay.challenge import ChallengeRequired
from finepay.errors import ApiError
from notices import services
from notices.forms import ConfirmForm, SubscribeForm, VehicleNumberForm
from notices.notifiers import ReplyRejected, current_notifier
from violations.limits import limited

bp = Blueprint("notices", __name__, url_prefix="/notices")


def _page(form=None, stop_form=None, status=200, **context):
    if form is None:
        form = SubscribeForm(formdata=None)
        form.language.data = "en" if str(get_locale()).startswith("en") else "zh_CN"
    return render_template("notices/subscribe.html", form=form, stop_form=stop_form or VehicleNumberForm(
        formdata=None), **context), status


@bp.get("/")
def home():
    """The subscribe form (and the stop form)."""
    return _page()


@bp.post("/subscribe")
@limited
def subscribe():
    """Prove the vehicle (as a lookup, same limits) and send a one-time code to the number."""
    form = SubscribeForm(formdata=request.form)
    if not form.validate_on_submit():
        return _page(form, status=422)
    try:
        started = services.subscribe_start(**form.proof(), locale=form.language.data, altcha=form.altcha.data)
    except ChallengeRequired as needed:
        return _page(form, status=429, challenge=needed)
    except ApiError as refused:
        return _page(form, status=refused.status, refused=refused.message)
    if started is None:
        return _page(form, status=404, no_match=True)
    if not started.code_sent:
        return _page(form, status=503, not_sent=True)
    confirm = ConfirmForm(formdata=None, token=services.confirm_token(started.subscription, form.language.data))
    return render_template("notices/confirm.html", form=confirm, phone=form.phone.normalized)


@bp.post("/confirm")
def confirm():
    """Check the code: the subscription starts, or the page says the code is wrong or spent."""
    form = ConfirmForm(formdata=request.form)
    found = services.subscription_for_token(form.token.data)
    if found is None:
        return _page(status=400, expired=True)
    subscription, locale = found
    if not form.validate_on_submit():
        return render_template("notices/confirm.html", form=form, phone=subscription.phone), 422
    outcome = services.subscribe_confirm(subscription.id, form.code.data, locale)
    if outcome == services.CODE_EXPIRED:
        return _page(status=400, expired=True)
    if outcome == services.WRONG_CODE:
        return render_template("notices/confirm.html", form=form, phone=subscription.phone, wrong=True), 422
    return render_template("notices/done.html", subscription=subscription, hours=services.sending_hours())


@bp.post("/stop")
@limited
def stop():
    """Stop a number's reminders for a vehicle, proven as for a lookup; the page says the same either way."""
    form = VehicleNumberForm(formdata=request.form)
    if not form.validate_on_submit():
        return _page(stop_form=form, status=422, stop_open=True)
    try:
        stopped = services.unsubscribe(**form.proof(), altcha=form.altcha.data)
    except ChallengeRequired as needed:
        return _page(stop_form=form, status=429, stop_challenge=needed, stop_open=True)
    if stopped is None:
        return _page(stop_form=form, status=404, stop_no_match=True, stop_open=True)
    return _page(stopped=True)


@bp.post("/replies/<sender>/<token>")
def reply(sender, token):
    """The SMS provider's inbound-reply callback: a stop word stops the number's reminders."""
    notifier = current_notifier()
    if sender != notifier.name:
        return jsonify({"error": "not_found"}), 404
    try:
        inbound = notifier.parse_reply(request)
    except ReplyRejected:
        body, status = notifier.reply_answer(False)
        return jsonify(body), status
    services.stop_by_reply(inbound.phone, inbound.text)
    body, status = notifier.reply_answer(True)
    return jsonify(body), status


@bp.errorhandler(CSRFError)
def csrf_expired(error):
    """A stale form token: the form again, never a bare error page."""
    return _page(status=400, csrf_expired=True)
