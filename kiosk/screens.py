"""What the kiosk's pages and its JSON endpoints share: timings, security headers, the screens' context, language."""
from flask import current_app, request, url_for
from flask_babel import gettext as _

from finepay.i18n import SUPPORTED_LOCALES
from kiosk import keyboards, visits
from payments.reader import card_present_available

# Timings of the kiosk's screens; tests may shorten them through the app's config.
DEFAULT_TIMINGS = {
    "KIOSK_PROMPT_SECONDS": visits.PROMPT_SECONDS,  # "still there?" before the full reset
    "KIOSK_RECEIPT_SECONDS": 60,  # back to welcome after the receipt
    "KIOSK_HEARTBEAT_SECONDS": 30,
    "KIOSK_RETRY_SECONDS": 10,  # the failure screen tries again this often
    "KIOSK_POLL_SECONDS": 1,  # the reader screen asks for the outcome this often
}
# The kiosk's pages load nothing from elsewhere and run no inline code or styles.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
API_PREFIX = "/kiosk/api/"


# The steps a driver goes through, in order, and the screens of each: the counter on every one of them
# says "Step n of" all of them, so the last it shows is the last the driver has to take. The welcome
# screen comes before the steps; the result and the receipt come after them.
STEPS = (
    ("plate",),
    ("vin", "notice", "payment"),  # the proof that the vehicle is theirs: the VIN code, a notice number or a payment code
    ("violations",),
    ("review",),
    ("reader", "scan"),  # paying: by card at the reader, or by scanning the code with a phone
)


def step_of(screen):
    """The step counter of a screen, e.g. "Step 5 of 5" on the scan-to-pay screen."""
    number = next(n for n, screens in enumerate(STEPS, start=1) if screen in screens)
    return _("Step %(step)d of %(steps)d", step=number, steps=len(STEPS))


def timing(name):
    """One of the kiosk's timings, in seconds."""
    return current_app.config.get(name, DEFAULT_TIMINGS[name])


def security_headers(response):
    """Kiosk responses: strict CSP, no referrer to other sites (enrolment codes are in URLs), no framing."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def screen_context():
    """What every kiosk screen template may use."""
    return {
        "keyboards": keyboards,
        "card_payments": card_present_available(),
        "scan_methods": visits.scan_gateways(),
        "online_url": url_for("violations.home", _external=True),
        "timings": {name: timing(name) for name in DEFAULT_TIMINGS},
        "step_of": step_of,
    }


def chosen_locale():
    """The language a driver picked on the welcome screen (?lang=), for this visit only; None for the default."""
    chosen = request.args.get("lang")
    return chosen if chosen in SUPPORTED_LOCALES else None


def select_locale():
    """The kiosk's language: a shared screen, so no remembered choice.

    The kiosk keeps its language for one visit only: ?lang= on the page, which the
    script repeats as Accept-Language on every screen; a new visit starts without it.
    """
    chosen = chosen_locale()
    if chosen is not None:
        return chosen
    if request.path.startswith(API_PREFIX):
        return request.accept_languages.best_match(SUPPORTED_LOCALES)
    return None
