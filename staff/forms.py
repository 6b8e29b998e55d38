"""The staff console's forms. Every one carries a CSRF token (Flask-WTF) and validates its fields."""
import re
from datetime import date
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision
from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, Regexp, ValidationError

from finepay.formatting import day
from finepay.inputs import EARLIEST_DATE, LATEST_DATE, is_business_date, is_id_text
from staff.models import CLERK, SUPERVISOR
from violations.instalments import MAX_INSTALMENTS, MIN_INSTALMENTS

ROLE_CHOICES = [SelectChoice(CLERK, _l("clerk")), SelectChoice(SUPERVISOR, _l("supervisor"))]


def business_date(_form, field):
    """A date filter within the years FinePay can compute with."""
    if field.data is not None and not is_business_date(field.data):
        raise ValidationError(_l("Choose a date from %(first)s to %(last)s.", first=day(EARLIEST_DATE),
                                 last=day(LATEST_DATE)))


def id_text(_form, field):
    """An id or cursor that fits a 64-bit column."""
    if field.data and not is_id_text(field.data):
        raise ValidationError(_l("Not a valid position in the list."))


REASON_LENGTH = Length(min=5, max=500, message=_l("Say why in at least 5 characters (500 at most)."))


class SignInForm(FlaskForm):
    """Username and password."""

    username = StringField(_l("Username"), validators=[InputRequired(_l("Enter your username.")), Length(max=60)])
    password = PasswordField(_l("Password"), validators=[InputRequired(_l("Enter your password.")), Length(max=200)])
    next = HiddenField()
    # The solved proof-of-work challenge, after too many failures (static/js/challenge.js fills it in).
    altcha = HiddenField(validators=[Length(max=4096)])


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token (sign out, revoke, refresh)."""


class SearchForm(FlaskForm):
    """One box: plate, notice number, receipt number or payment id.

    Posted, never sent as a GET: a plate must not sit in a URL, the browser's history or a log.
    """

    q = StringField(_l("Plate, notice number, receipt number or payment id"),
                    validators=[InputRequired(_l("Type something to search for.")), Length(max=64)])


class DateRangeForm(FlaskForm):
    """A business date range (GET)."""

    class Meta:
        csrf = False

    start = DateField(_l("From"), validators=[Optional(), business_date])
    end = DateField(_l("To (inclusive)"), validators=[Optional(), business_date])

    def validate_end(self, field):
        """The end is not before the start."""
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError(_l("The end date is before the start date."))


def parse_amount(text, currency):
    """'12.50' in the currency's major unit -> 1250 minor units; ValueError if it is not an amount."""
    digits = get_currency_precision(currency)
    text = (text or "").strip().replace(",", "")
    fraction = rf"(\.\d{{1,{digits}}})?" if digits else ""
    if not re.fullmatch(r"\d{1,12}" + fraction, text):
        raise ValueError(text)
    try:
        return int(Decimal(text).scaleb(digits))
    except InvalidOperation:
        raise ValueError(text) from None


def amount_text(minor, currency):
    """1250 minor units -> '12.50', as parse_amount reads it back."""
    return str(Decimal(minor).scaleb(-get_currency_precision(currency)))


class RefundForm(FlaskForm):
    """Refund violations in full, or an amount shared out over them in order, with a reason."""

    lines = SelectMultipleField(_l("Violations to refund"), coerce=int, validate_choice=False)
    amount = StringField(_l("Amount to refund (optional with ticked violations)"))
    reason = TextAreaField(_l("Reason (kept in the audit log)"),
                           validators=[InputRequired(_l("Say why the money goes back.")), REASON_LENGTH])
    form_key = HiddenField(validators=[InputRequired(), Regexp(r"^[0-9a-f]{32}\Z")])

    def validate_amount(self, field):
        """An amount in the currency's major unit, e.g. 230.00; optional when violations are ticked."""
        field.minor = None
        if not (field.data or "").strip():
            if not self.lines.data:
                raise ValidationError(_l("Tick the violations to refund, or enter an amount."))
            return
        try:
            field.minor = parse_amount(field.data, current_app.config["CURRENCY"])
        except ValueError:
            raise ValidationError(_l("Enter an amount such as 230.00.")) from None
        if field.minor <= 0:
            raise ValidationError(_l("Enter an amount above zero."))


class VoidForm(FlaskForm):
    """Void an unpaid violation, with a reason."""

    reason = TextAreaField(_l("Reason (kept in the audit log)"),
                           validators=[InputRequired(_l("Say why this violation is voided.")), REASON_LENGTH])


INSTALMENT_COUNTS = [SelectChoice(str(n), str(n)) for n in range(MIN_INSTALMENTS, MAX_INSTALMENTS + 1)]
DATE_LIST = re.compile(r"\d{4}-\d{2}-\d{2}")


class InstalmentPlanForm(FlaskForm):
    """Approve paying a violation in instalments: how many, and when each is due (monthly unless listed)."""

    count = SelectField(_l("Number of instalments"), choices=INSTALMENT_COUNTS, default="3")
    due_dates = StringField(_l("Due dates (optional)"), validators=[Optional(), Length(max=200)])

    def validate_due_dates(self, field):
        """Dates as YYYY-MM-DD, one per instalment, separated by spaces or commas."""
        raw = [part for part in re.split(r"[\s,，、]+", field.data or "") if part]
        try:
            dates = [date.fromisoformat(part) for part in raw if DATE_LIST.fullmatch(part)]
        except ValueError:
            dates = []
        if len(dates) != len(raw) or any(not is_business_date(day) for day in dates):
            raise ValidationError(_l("Write each date as YYYY-MM-DD, e.g. 2027-01-15."))
        if dates and len(dates) != int(self.count.data):
            raise ValidationError(_l("Give one date per instalment, or leave this empty for monthly dates."))
        self.parsed_dates = dates

    def chosen_due_dates(self):
        """The dates listed (checked by validate), or None for the default monthly dates."""
        return getattr(self, "parsed_dates", None) or None


class ImportForm(FlaskForm):
    """A violations CSV to check (dry run) before it is applied."""

    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))])

    def validate_file(self, field):
        """Only .csv files (the content is checked by the importer)."""
        name = (field.data.filename or "") if field.data else ""
        if not name.lower().endswith(".csv"):
            raise ValidationError(_l("Only .csv files can be imported."))


class TerminalForm(FlaskForm):
    """Enrol a kiosk."""

    name = StringField(_l("Terminal name"), validators=[
        InputRequired(_l("Name the terminal, e.g. hall-1.")), Length(max=60),
        Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,59}\Z",
               message=_l("Letters, digits, '-', '_' or '.', starting with a letter or digit.")),
    ])
    reader_id = StringField(_l("Card reader id (optional)"), validators=[
        Optional(), Length(max=100), Regexp(r"^[A-Za-z0-9_.:\-]{1,100}\Z", message=_l("Letters, digits and - _ . :")),
    ])


class ApiKeyForm(FlaskForm):
    """Create an API key."""

    name = StringField(_l("Name of the system that uses it"),
                       validators=[InputRequired(_l("Name the system.")), Length(min=2, max=60)])


class UserForm(FlaskForm):
    """Create a staff account."""

    username = StringField(_l("Username"), validators=[
        InputRequired(_l("Choose a username.")), Length(min=2, max=60),
        Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,59}\Z", message=_l("Letters, digits, dots, dashes or underscores.")),
    ])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default=CLERK)
    password = PasswordField(_l("Initial password (at least 12 characters)"),
                             validators=[InputRequired(_l("Set a password.")), Length(min=12, max=200)])


class UserChangeForm(FlaskForm):
    """Change a staff account's role, activity or password."""

    role = SelectField(_l("Role"), choices=ROLE_CHOICES)
    active = BooleanField(_l("Active (may sign in)"))
    password = PasswordField(_l("New password (leave empty to keep)"), validators=[Optional(), Length(min=12, max=200)])


class AuditFilterForm(FlaskForm):
    """Filters for the audit log page (GET)."""

    class Meta:
        csrf = False

    action = StringField(_l("Action starts with"), validators=[Optional(), Length(max=60)])
    actor = StringField(_l("Actor"), validators=[Optional(), Length(max=100)])
    subject = StringField(_l("Subject (type or type:id)"), validators=[Optional(), Length(max=110)])
    start = DateField(_l("From"), validators=[Optional(), business_date])
    end = DateField(_l("To (inclusive)"), validators=[Optional(), business_date])
    before = HiddenField(validators=[Optional(), id_text])


class PrepareCaseForm(FlaskForm):
    """A clerk's preparation of a case: the outcome they recommend, and why."""

    recommendation = SelectField(_l("Recommendation"), choices=[], validate_choice=False)
    note = TextAreaField(_l("Note for the supervisor (kept in the audit log)"),
                         validators=[InputRequired(_l("Say why you recommend it.")),
                                     Length(min=5, max=1000, message=_l("Say why in 5 to 1000 characters."))])


class DecideCaseForm(FlaskForm):
    """A supervisor's decision on a case, with the reason the driver is given."""

    outcome = SelectField(_l("Decision"), choices=[], validate_choice=False)
    reason = TextAreaField(_l("Reason (shown to the driver and kept in the audit log)"),
                           validators=[InputRequired(_l("Say why.")),
                                       Length(min=5, max=1000, message=_l("Say why in 5 to 1000 characters."))])
    new_due_date = DateField(_l("New due date (deferral only)"), validators=[Optional()])
