"""Languages: which one a request gets, the switcher, and translated validation messages."""
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from babel import Locale
from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_babel import get_locale, gettext
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

# Each language named in its own language, for the switcher.
LANGUAGES = {"zh_CN": "中文", "en": "English"}
SUPPORTED_LOCALES = tuple(LANGUAGES)
COOKIE_NAME = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

bp = Blueprint("i18n", __name__)


def N_(message):
    """Mark a message for the catalogue without translating it here (it is translated when shown)."""
    return message


# Per-app rules the areas add (see start_page and locale_rule): app.extensions[RULES].
RULES = "finepay.i18n"


@dataclass
class Rules:
    """The areas' language rules: start pages by path prefix, and areas that choose their own locale."""

    start_pages: dict = field(default_factory=dict)  # path prefix -> endpoint
    locale_rules: dict = field(default_factory=dict)  # path prefix -> function returning a locale or None


def start_page(app, endpoint, prefix="/"):
    """The page the switcher returns to from a page under ``prefix`` that cannot be fetched again."""
    app.extensions[RULES].start_pages[prefix] = endpoint


def locale_rule(app, prefix, selector):
    """Under ``prefix`` the area's ``selector`` picks the locale (None for the default); no cookie is read."""
    app.extensions[RULES].locale_rules[prefix] = selector


def _under(path, prefix):
    return prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _most_specific(rules, path):
    """The rule of the longest prefix that path falls under, or None."""
    prefixes = [prefix for prefix in rules if _under(path, prefix)]
    return rules[max(prefixes, key=len)] if prefixes else None


def _start_endpoint(path):
    return _most_specific(current_app.extensions[RULES].start_pages, path)


def select_locale():
    """The visitor's explicit choice, then the browser's languages, then DEFAULT_LOCALE (None)."""
    area_rule = _most_specific(current_app.extensions[RULES].locale_rules, request.path)
    if area_rule is not None:
        return area_rule()
    chosen = request.cookies.get(COOKIE_NAME)
    if chosen in SUPPORTED_LOCALES:
        return chosen
    return request.accept_languages.best_match(SUPPORTED_LOCALES)


def current_code():
    """The request's language as FinePay names it (zh_CN, en).

    Babel reads zh_CN as zh_Hans_CN, which is also the name of its catalogue directory
    (gettext looks for that name); cookies, URLs and settings keep the short code.
    """
    locale = get_locale()
    for code in SUPPORTED_LOCALES:
        if Locale.parse(code) == locale:
            return code
    return str(locale)


def html_lang(code=None):
    """A language code as an HTML lang attribute: zh_CN -> zh-CN."""
    return (code or current_code()).replace("_", "-")


def local_path(target):
    """target if it is a path on this site, else None (the switcher must not redirect elsewhere)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def switcher_next():
    """Where the switcher comes back to: this page if it can be fetched again, else the area's start page.

    Only the path: a query string could hold a plate or a search, and lookup results
    (a POST) cannot be shown again by a link.
    """
    path = request.path
    start = url_for(_start_endpoint(path))
    if request.method in ("GET", "HEAD") and request.url_rule is not None:
        return request.script_root + path
    # A page shown in answer to a POST comes back only if a GET of the same path is the same page
    # (/pay/review as a GET would be /pay/<payment_id> with the id "review": a 404).
    adapter = current_app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(path, method="GET")
    except (RequestRedirect, MethodNotAllowed, NotFound):
        return start
    return request.script_root + path if endpoint == request.endpoint else start


def languages():
    """The switcher's entries: code, own name, HTML lang, whether it is the current one."""
    current = current_code()
    return [
        {"code": code, "name": name, "lang": html_lang(code), "current": code == current}
        for code, name in LANGUAGES.items()
    ]


@bp.get("/lang/<code>")
def choose(code):
    """Remember a language in the `lang` cookie and go back to a page on this site."""
    if code not in SUPPORTED_LOCALES:
        abort(404)
    target = local_path(request.args.get("next", "")) or url_for(_start_endpoint("/"))
    response = redirect(target, 303)
    response.set_cookie(
        COOKIE_NAME, code, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


def _template_pattern(template):
    """A regular expression matching a library message with its {placeholders} filled in."""
    parts = re.split(r"\{(\w+)\}", template)
    pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
    return re.compile(pattern + r"\Z")


def localize_message(message):
    """One message in the request's language: a catalogue msgid, a library template filled in, or as it is."""
    if not message:
        return message
    translated = gettext(message)
    if translated != message:
        return translated
    for template, pattern in FORMATTED_MESSAGES:
        found = pattern.match(message)
        if found:
            return gettext(template).format(**{k: gettext(v) for k, v in found.groupdict().items()})
    return message


def localize_errors(errors):
    """Validation messages in the request's language, keeping the shape of the errors mapping."""
    if isinstance(errors, str):
        return localize_message(errors)
    if isinstance(errors, dict):
        return {key: localize_errors(value) for key, value in errors.items()}
    if isinstance(errors, (list, tuple)):
        return [localize_errors(value) for value in errors]
    return errors


# marshmallow's and webargs' own messages that FinePay's API can answer with, for the catalogue.
LIBRARY_MESSAGES = (
    N_("Missing data for required field."),
    N_("Field may not be null."),
    N_("Invalid value."),
    N_("Unknown field."),
    N_("Invalid input type."),
    N_("Not a valid string."),
    N_("Not a valid integer."),
    N_("Not a valid number."),
    N_("Not a valid boolean."),
    N_("Not a valid list."),
    N_("Not a valid mapping type."),
    N_("Not a valid datetime."),
    N_("Not a valid date."),
    N_("Not a valid email address."),
    N_("Not a valid URL."),
    N_("Not a valid UUID."),
    N_("String does not match expected pattern."),
    N_("Invalid input."),
    N_("Not a valid delimited list."),
    N_("Must be one of: {choices}."),
    N_("Length must be between {min} and {max}."),
    N_("Shorter than minimum length {min}."),
    N_("Longer than maximum length {max}."),
    N_("Must be greater than or equal to {min} and less than or equal to {max}."),
    N_("Must be greater than or equal to {min}."),
    N_("Must be less than or equal to {max}."),
    N_("Invalid JSON body."),
)
# FinePay's own messages raised below the request layer (plates, the violations importer), which
# code without a request raises in English; shown to people, they are translated here.
APP_MESSAGES = (
    N_("Plate is empty."),
    N_("Plate has characters a plate cannot have."),
    N_("Plate must start with a province character such as 蒙 or 京."),
    N_("Plate must have the city's letter after the province character."),
    N_("Plate must have 5 letters and digits after the city's letter (6 on a new-energy plate)."),
    N_("VIN code must be the last 6 characters of the VIN: letters and digits, never I, O or Q."),
    N_("Notice number must be 6 to 32 letters and digits."),
    N_("Plate"),
    N_("VIN code"),
    N_("Notice number"),
    N_("{what} must be text."),
    N_("{what} is too long."),
    N_("Give either vin_last6 or notice_number."),
    N_("Each violation may appear only once."),
    N_("8 to 100 letters, digits and - _ : . (a UUID is ideal)."),
    N_("Not a payment method token."),
    N_("{name} is empty"),
    N_("{name} is longer than {max_len} characters"),
    N_("{name} contains control characters"),
    N_("{name} must be a whole number in minor units, got {raw}"),
    N_("{name} must be between {low} and {high}"),
    N_("occurred_at is not an ISO 8601 date-time: {raw}"),
    N_("occurred_at has no UTC offset (e.g. +08:00)"),
    N_("occurred_at is in the future"),
    N_("decision_date is not a YYYY-MM-DD date: {raw}"),
    N_("decision_date is before the violation occurred"),
    N_("decision_date is in the future"),
    N_("payable_online must be true or false"),
    N_("offense_code must be letters and digits"),
    N_("cannot read the header: {reason}"),
    N_("the file is empty"),
    N_("missing columns: {columns}"),
    N_("line {line}: the file is not UTF-8"),
    N_("unreadable CSV record: {reason}"),
    N_("more fields than the header has"),
    N_("fine is 0: a notice with nothing to pay is not imported"),
    N_("payment {payment} for this violation was already captured at the old amount: "
       "the violation is paid and was left unchanged"),
    N_("payment {payment} for this violation is being processed: import this row again once it has finished"),
    N_("payment {payment} for this violation could not be cancelled at the gateway: import this row again later"),
)
FORMATTED_MESSAGES = tuple(
    (m, _template_pattern(m)) for m in LIBRARY_MESSAGES + APP_MESSAGES if "{" in m
)

# Codes shown to staff (statuses, channels, roles, kinds), as words in the page's language.
STATUS_LABELS = {
    "unpaid": N_("unpaid"), "paid": N_("paid"), "void": N_("void"),
    "created": N_("created"), "requires_action": N_("requires action"), "processing": N_("processing"),
    "succeeded": N_("succeeded"), "failed": N_("failed"), "canceled": N_("canceled"), "expired": N_("expired"),
    "refunded": N_("refunded"), "pending": N_("pending"),
    "web": N_("web"), "kiosk": N_("kiosk"), "api": N_("api"),
    "charge": N_("charge"), "refund": N_("refund"),
    "clerk": N_("clerk"), "supervisor": N_("supervisor"),
    "active": N_("active"), "revoked": N_("revoked"),
    "awaiting_enrolment": N_("awaiting enrolment"), "enrolment_expired": N_("enrolment expired"),
    "matched": N_("matched"), "gateway_only": N_("gateway only"), "ledger_only": N_("ledger only"),
    "mismatch": N_("mismatch"), "duplicate": N_("duplicate"),
}


def status_label(value):
    """A status, channel or role code as a word for people (the code itself stays in classes and data)."""
    if value is None:
        return ""
    key = str(value).replace(" ", "_")
    return gettext(STATUS_LABELS[key]) if key in STATUS_LABELS else str(value).replace("_", " ")


def init_app(app):
    """The switcher's view, the template helpers, and an empty set of the areas' rules."""
    app.extensions[RULES] = Rules()
    app.register_blueprint(bp)
    app.add_template_global(languages)
    app.add_template_global(switcher_next)
    app.add_template_global(status_label)
    app.add_template_filter(status_label)
    app.add_template_global(localize_message)
