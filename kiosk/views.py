"""The kiosk's pages: enrolment, the refusal, and the one full-screen page that holds every screen."""
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.exc import InterfaceError, OperationalError

from finepay.errors import ApiError
from finepay.i18n import current_code
from kiosk import services, visits
from kiosk.screens import chosen_locale, screen_context, security_headers, timing
from payments.qr import qr_svg

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")

bp.after_request(security_headers)


def set_credential(response, credential, terminal):
    """Store the terminal credential: HttpOnly, SameSite=Strict, Secure in production, only sent to /kiosk."""
    response.set_cookie(
        services.COOKIE_NAME, credential, expires=services.credential_expires_at(terminal),
        path=services.COOKIE_PATH, secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True,
        samesite="Strict",
    )


@bp.errorhandler(services.TerminalRefused)
def refused(error):
    """A browser that is not an enrolled kiosk (or no longer): a plain page, no kiosk screens."""
    return render_template("kiosk/refused.html", error=error), error.status


@bp.errorhandler(ApiError)
def problem(error):
    """An enrolment link that is used up, expired or mistyped."""
    return render_template("kiosk/problem.html", error=error), error.status


@bp.errorhandler(OperationalError)
@bp.errorhandler(InterfaceError)
def unavailable(error):
    """The database is down: a calm page that tries again by itself."""
    current_app.logger.error("kiosk: database unavailable", exc_info=error)
    page = render_template("kiosk/unavailable.html", online_url=url_for("violations.home", _external=True),
                           retry_seconds=timing("KIOSK_RETRY_SECONDS"))
    return page, 503, {"Retry-After": str(timing("KIOSK_RETRY_SECONDS"))}


@bp.get("")
def shell():
    """The kiosk: one page whose screens the script swaps in. Loading it ends any visit left open."""
    credential = request.cookies.get(services.COOKIE_NAME)
    terminal = services.authenticate(credential)
    g.kiosk_terminal = terminal
    visits.end_open_visits(terminal, reason="kiosk reloaded")
    context = screen_context()
    page = render_template(
        "kiosk/shell.html", terminal=terminal, **context,
        idle_seconds=current_app.config["KIOSK_IDLE_SECONDS"],
        api_base=url_for("kiosk_api.status").rsplit("/", 1)[0],
        online_qr=qr_svg(context["online_url"]),
        current_locale=current_code(), chosen_locale=chosen_locale(),
    )
    response = make_response(page)
    set_credential(response, credential, terminal)  # renews the cookie's expiry with each load
    return response


def _same_origin():
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.host and parts.scheme == request.scheme


@bp.route("/enrol/<code>", methods=["GET", "POST"])
def enrol(code):
    """Enrol this browser as a kiosk: the link shows a confirmation; its button uses the code, once."""
    if request.method == "GET":
        terminal = services.check_enrolment(code)
        return render_template("kiosk/enrol.html", terminal=terminal, code=code)
    if not _same_origin():
        raise ApiError(_("This form must be sent from this page."), code="forbidden", status=403)
    terminal, credential = services.redeem_enrolment(code)
    response = redirect(url_for("kiosk.shell"), 303)
    set_credential(response, credential, terminal)
    return response
