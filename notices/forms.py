"""The driver's forms: subscribe (plate, VIN code, number, language), confirm the code, stop."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, ValidationError

from notices import rules
from violations.forms import normalized, plate_with_hint
from violations.plates import normalize_vin_last6

LANGUAGES = [SelectChoice("zh_CN", "中文"), SelectChoice("en", "English")]


def mobile(form, field):
    """Normalise a mainland China mobile number (11 digits, +86 allowed)."""
    try:
        field.normalized = rules.normalize_mobile(field.data or "")
    except rules.InvalidMobile:
        raise ValidationError(_l("Enter an 11-digit mainland China mobile number, e.g. 138 0013 8000.")) from None


class VehicleNumberForm(FlaskForm):
    """A vehicle proven by plate and VIN code, and a mobile number."""

    plate = StringField(_l("Plate number"), validators=[InputRequired(_l("Enter the plate number.")),
                                                        plate_with_hint])
    vin_last6 = StringField(_l("Last 6 characters of the VIN"), validators=[
        InputRequired(_l("Enter the last 6 letters and digits of the VIN (never I, O or Q).")),
        normalized(normalize_vin_last6, _l("Enter the last 6 letters and digits of the VIN (never I, O or Q).")),
    ])
    phone = StringField(_l("Mobile number"), validators=[InputRequired(_l("Enter your mobile number.")), mobile])
    altcha = HiddenField(validators=[Length(max=4096)])

    def proof(self):
        """The normalised plate, VIN code and number."""
        return {"plate": self.plate.normalized, "vin_last6": self.vin_last6.normalized, "phone": self.phone.normalized}


class SubscribeForm(VehicleNumberForm):
    """Subscribe: also the language of the messages."""

    language = RadioField(_l("Language of the messages"), choices=LANGUAGES, default="zh_CN")


class ConfirmForm(FlaskForm):
    """The one-time code sent to the number."""

    token = HiddenField(validators=[InputRequired(), Length(max=200)])
    code = StringField(_l("Code from the text message"), validators=[
        InputRequired(_l("Enter the 6-digit code.")), Length(min=6, max=6, message=_l("Enter the 6-digit code."))])
