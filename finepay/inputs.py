"""Input at the edge: what no FinePay value can hold is refused before it reaches a view or the database.

A path segment with a NUL byte, or an integer wider than a 64-bit column,
would otherwise reach the database: PostgreSQL refuses NUL in text and
overflows in bigint, SQLite overflows on binding. The URL converters refuse
them, so every route (present and future) answers 404; a NUL in a query
string or a form field is a 400, and so is a JSON body sent to a page (whose
forms would read it as form data). All in FinePay's error shape. What still
gets through (a NUL inside a JSON string) meets finepay.errors' handler for
values the database refuses.
"""
from datetime import date

import flask
from flask import abort, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter, PathConverter, UnicodeConverter

from finepay.errors import wants_json

# The largest value a BIGINT (PostgreSQL) or INTEGER (SQLite) column holds.
MAX_ID = 2**63 - 1
# The business dates a filter may name: date arithmetic (the day after, a due date) overflows near year 9999.
EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(2999, 12, 31)


def is_id_text(value):
    """Whether ``value`` is the decimal text of an id or cursor that a 64-bit column holds."""
    return (isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit()
            and int(value) <= MAX_ID)


def is_business_date(value):
    """Whether ``value`` is a date FinePay can compute with (EARLIEST_DATE to LATEST_DATE)."""
    return EARLIEST_DATE <= value <= LATEST_DATE


class TextConverter(UnicodeConverter):
    """One path segment without control characters (the default ``<name>`` and ``<string:name>``)."""

    def __init__(self, map, minlength=1, maxlength=None, length=None):
        super().__init__(map, minlength, maxlength, length)
        self.regex = self.regex.replace("[^/]", r"[^/\x00-\x1f\x7f]", 1)


class SafePathConverter(PathConverter):
    """Like ``<path:name>``, without control characters."""

    regex = r"[^/\x00-\x1f\x7f][^\x00-\x1f\x7f]*?"


class IdConverter(IntegerConverter):
    """``<int:name>`` bounded to what a 64-bit id column holds."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _has_nul(multidict):
    return any("\x00" in key or "\x00" in value for key, value in multidict.items(multi=True))


class Request(flask.Request):
    """Flask's request, refusing a form with a NUL byte in a field when the form is first read.

    Checked on reading, not before every request: a view may raise the body
    limit first (the staff CSV upload), and a request that never reads its
    form pays nothing.
    """

    def _load_form_data(self):
        super()._load_form_data()
        if _has_nul(self.form):
            # Whoever reads the form again (a rate-limit key that swallows errors) gets an empty one.
            self.__dict__["form"] = ImmutableMultiDict()
            raise BadRequest("a form field holds a NUL byte")


def screen_request():
    """Refuse what no view can use: a NUL in the query string, a JSON body posted to a page (both 400)."""
    if _has_nul(request.args):
        abort(400)  # no text FinePay stores or looks up has one
    if request.is_json and not wants_json():
        abort(400)  # JSON is the API's business; Flask-WTF would read it as form data, and a list breaks it


def init_app(app):
    """Install the converters, the request class and the request screen; call before any rule is added."""
    app.request_class = Request
    app.url_map.converters.update(default=TextConverter, string=TextConverter, path=SafePathConverter, int=IdConverter)
    app.before_request(screen_request)
