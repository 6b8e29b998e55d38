"""The driver's forms: filing a case, and checking one."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, MultipleFileField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, ValidationError

from cases.models import STATEMENT_MAX
from cases.services import normalize_case_number
from violations.forms import normalized, plate_with_hint
from violations.plates import normalize_vin_last6


class CaseForm(FlaskForm):
    """A contest or an application: the rules themselves are cases.services.file_case's."""

    vehicle = HiddenField()
    violation_id = IntegerField(validators=[InputRequired()])
    kind = SelectField(_l("What you ask for"), choices=[], validate_choice=False)
    reason = SelectField(_l("Reason"), choices=[], validate_choice=False)
    statement = TextAreaField(_l("Your statement"), validators=[Length(max=STATEMENT_MAX + 100)])
    evidence = MultipleFileField(_l("Photos or a video (optional)"))


class CheckForm(FlaskForm):
    """Plate + VIN code + case number."""

    plate = StringField(_l("Plate number"), validators=[InputRequired(_l("Enter the plate number.")),
                                                        plate_with_hint])
    vin_last6 = StringField(_l("Last 6 characters of the VIN"), validators=[
        InputRequired(_l("Enter the last 6 letters and digits of the VIN (never I, O or Q).")),
        normalized(normalize_vin_last6, _l("Enter the last 6 letters and digits of the VIN (never I, O or Q)."))])
    case_number = StringField(_l("Case number"), validators=[InputRequired(_l("Enter the case number."))])
    altcha = HiddenField(validators=[Length(max=4096)])

    def validate_case_number(self, field):
        """12 letters and digits, as given when the case was filed."""
        field.normalized = normalize_case_number(field.data)
        if field.normalized is None:
            raise ValidationError(_l("A case number has 12 letters and digits, as shown when the case was filed."))
