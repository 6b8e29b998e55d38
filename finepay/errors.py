"""One error shape for the whole service: JSON for the API, a page for people."""
import logging

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from finepay.extensions import db
from finepay.i18n import localize_errors, localize_message

log = logging.getLogger(__name__)

# Stable machine-readable codes; the message may change and be translated.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    502: "gateway_error",
    503: "unavailable",
}


def default_messages():
    """What each status means to a person, in the request's language."""
    return {
        400: _("The request could not be understood."),
        401: _("Please sign in."),
        403: _("You are not allowed to do that."),
        404: _("Nothing matches this request."),
        405: _("This method is not allowed here."),
        409: _("This conflicts with the current state."),
        413: _("The request is too large."),
        415: _("This content type is not supported."),
        422: _("Some fields are missing or invalid."),
        429: _("Too many requests. Please wait a moment and try again."),
        500: _("Something went wrong on our side. Please try again later."),
        502: _("The payment provider did not answer properly. Please try again later."),
        503: _("The service is temporarily unavailable. Please try again shortly."),
    }


class ApiError(Exception):
    """An error a service raises for the client to see, with a stable code."""

    status = 400
    extra = {}  # more top-level fields of the JSON body, e.g. a challenge to solve

    def __init__(self, message, code=None, status=None, errors=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code or STATUS_CODES.get(self.status, "error")
        self.errors = errors or {}


JSON_PATHS = "finepay.errors.json_paths"
# The shared ones: flask-smorest's API (and its OpenAPI document) and the health checks.
BASE_JSON_PATHS = ("/api/", "/healthz", "/readyz")


def answer_json_under(app, *prefixes):
    """Errors under these path prefixes are JSON bodies, not pages (each area names its API's prefixes)."""
    app.extensions[JSON_PATHS] = app.extensions.get(JSON_PATHS, ()) + tuple(prefixes)


def invalid_field(field_name, message):
    """The 422 ApiError for one input field that breaks a rule (shown beside that field)."""
    return ApiError(message, code="invalid_input", status=422, errors={field_name: [message]})


def wants_json():
    """Whether this request is an API client's rather than a browser page's."""
    return request.path.startswith(current_app.extensions.get(JSON_PATHS, BASE_JSON_PATHS))


def wait_in_words(retry_after):
    """How long to wait before trying again, from a Retry-After in seconds, as a person would say it; None without one."""
    if not str(retry_after or "").isdigit():
        return None
    seconds = max(int(retry_after), 1)
    if seconds < 60:
        return ngettext("Please wait %(num)d second before trying again.",
                        "Please wait %(num)d seconds before trying again.", seconds)
    minutes = -(-seconds // 60)  # rounded up: trying again a little early only fails again
    return ngettext("Please wait %(num)d minute before trying again.",
                    "Please wait %(num)d minutes before trying again.", minutes)


def error_response(status, code, message, errors=None, headers=None, extra=None):
    """Build the JSON body or the HTML page for an error."""
    errors = localize_errors(errors or {})
    if wants_json():
        body = {**(extra or {}), "code": code, "message": localize_message(message), "errors": errors}
        return body, status, headers or {}
    wait = wait_in_words((headers or {}).get("Retry-After")) if status == 429 else None
    page = render_template("error.html", status=status, message=localize_message(message), errors=errors, wait=wait)
    return page, status, headers or {}


def _flatten_webargs(messages):
    # webargs nests errors under the location ("json", "query"); clients only
    # send one body, so the location level is noise.
    if isinstance(messages, dict) and set(messages) <= {"json", "query", "form", "headers", "files"}:
        flat = {}
        for value in messages.values():
            if isinstance(value, dict):
                flat.update(value)
            else:
                flat.setdefault("_schema", []).extend(value if isinstance(value, list) else [value])
        return flat
    return messages


def handle_http_exception(error):
    """Turn any HTTPException (including webargs' 422) into FinePay's error shape."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = _flatten_webargs(data.get("errors") or data.get("messages") or {})
    code = data.get("code") or STATUS_CODES.get(status, "error")
    message = data.get("message") or default_messages().get(status, error.name)
    if status == 400 and errors.get("_schema") and any("JSON" in str(m) for m in errors["_schema"]):
        code, message = "invalid_json", _("The request body is not valid JSON.")
    headers = dict(data.get("headers") or {})
    if getattr(error, "valid_methods", None):
        headers.setdefault("Allow", ", ".join(error.valid_methods))
    if status == 429:
        retry_after = getattr(getattr(error, "limit", None), "limit", None)
        if retry_after is not None:
            headers.setdefault("Retry-After", str(retry_after.get_expiry()))
    if isinstance(error, InternalServerError):
        original = getattr(error, "original_exception", None)
        if original is not None:
            log.error("unhandled error", exc_info=original)
    return error_response(status, code, message, errors, headers)


def handle_api_error(error):
    """Render an ApiError raised by a service."""
    return error_response(error.status, error.code, error.message, error.errors, extra=error.extra)


def handle_database_error(error):
    """The database is down or dropped the connection: say so, never a trace."""
    log.error("database error", exc_info=error)
    return error_response(503, "unavailable", default_messages()[503], headers={"Retry-After": "5"})


def handle_refused_value(error):
    """The database refused a value from the request (NUL in text, too long, out of range): bad input, a 422."""
    db.session.rollback()
    log.warning("the database refused a value: %s", type(getattr(error, "orig", error)).__name__)
    return error_response(422, "invalid_input", default_messages()[422])


def init_app(app):
    """Install the handlers on the app (after the extensions: flask-smorest installs its own for HTTPException)."""
    answer_json_under(app, *BASE_JSON_PATHS)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(OperationalError, handle_database_error)
    app.register_error_handler(InterfaceError, handle_database_error)
    app.register_error_handler(DataError, handle_refused_value)
    # Replaces flask-smorest's handler, which would answer in its own shape.
    app.register_error_handler(HTTPException, handle_http_exception)
