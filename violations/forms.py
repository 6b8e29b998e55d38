"""The driver's lookup form."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import AnyOf, InputRequired, Length, ValidationError

from violations import plates
from violations.plates import (
    InvalidIdentifier,
    normalize_local_payment_code,
    normalize_notice_number,
    normalize_plate,
    normalize_vin_last6,
)


def normalized(normalize, message):
    """A WTForms validator that applies a normalisation rule and stores the result."""

    def check(form, field):
        try:
            field.normalized = normalize(field.data or "")
        except InvalidIdentifier:
            raise ValidationError(message) from None

    return check


# The hint for a plate that cannot be a Chinese plate, by what is wrong with its shape.
_PLATE_HINTS = {
    plates.NO_PROVINCE: _l("A plate starts with the province character, such as 蒙 or 京, then the city's letter: "
                           "e.g. 蒙B·12345."),
    plates.NO_CITY_LETTER: _l("After the province character comes the city's letter (the B in 蒙B·12345)."),
    plates.WRONG_LENGTH: _l("After the province character and the city's letter come 5 letters and digits, "
                            "or 6 on a green new-energy plate: e.g. 蒙B·12345 or 蒙B·D12345."),
}
_NOT_A_PLATE = _l("This does not look like a plate number, e.g. 蒙B·12345.")


def plate_with_hint(form, field):
    """Normalise the plate; one that cannot be a Chinese plate gets a hint about the format.

    The hint comes from the shape of what was typed only (violations.plates.plate_problem):
    it says nothing about which plates are on record.
    """
    try:
        field.normalized = normalize_plate(field.data or "")
    except InvalidIdentifier as invalid:
        raise ValidationError(_PLATE_HINTS.get(invalid.code, _NOT_A_PLATE)) from None


# The hint for what cannot be a payment code, by what is wrong with it (violations.plates.normalize_payment_code).
_PAYMENT_CODE_HINTS = {
    "other_region": _l("This payment code is from another region's finance bureau: this service takes only "
                       "the codes on this city's notices."),
}
_NOT_A_PAYMENT_CODE = _l("Enter the 20-digit payment code (缴款码) as printed on the finance bureau's notice.")


def payment_code_with_hint(form, field):
    """Normalise the payment code; say whether it is malformed or of another region (from the text alone)."""
    try:
        field.normalized = normalize_local_payment_code(field.data or "")
    except InvalidIdentifier as invalid:
        raise ValidationError(_PAYMENT_CODE_HINTS.get(invalid.code, _NOT_A_PAYMENT_CODE)) from None


# Each proof of the vehicle and the field it is typed in.
PROOF_FIELDS = {"vin": "vin_last6", "notice": "notice_number", "payment": "payment_code"}
_ONE_PROOF = _l("Give one of the VIN code, a notice number or a payment code, not several.")


class LookupForm(FlaskForm):
    """Plate plus one proof: the VIN code, a notice number, or the finance bureau's payment code."""

    proof = HiddenField(default="vin", validators=[InputRequired(), AnyOf(tuple(PROOF_FIELDS))])
    plate = StringField(
        _l("Plate number"),
        validators=[
            InputRequired(_l("Enter the plate number.")),
            plate_with_hint,
        ],
    )
    vin_last6 = StringField(_l("Last 6 characters of the VIN"))
    notice_number = StringField(_l("Notice number"))
    payment_code = StringField(_l("Payment code (缴款码)"))
    # The solved proof-of-work challenge, when the plate asks for one (static/js/challenge.js fills it in).
    altcha = HiddenField(validators=[Length(max=4096)])

    def _other_proof(self, field):
        """A proof field filled in while another proof was chosen."""
        if field.data and PROOF_FIELDS.get(self.proof.data) != field.name:
            raise ValidationError(_ONE_PROOF)
        return PROOF_FIELDS.get(self.proof.data) != field.name

    def validate_vin_last6(self, field):
        """Required when proving the vehicle by VIN code, absent otherwise."""
        if not self._other_proof(field):
            normalized(normalize_vin_last6, _l("Enter the last 6 letters and digits of the VIN (never I, O or Q)."))(self, field)

    def validate_notice_number(self, field):
        """Required when proving the vehicle by notice number, absent otherwise."""
        if not self._other_proof(field):
            normalized(normalize_notice_number, _l("Enter the notice number as printed (6 to 32 letters and digits)."))(self, field)

    def validate_payment_code(self, field):
        """Required when proving the vehicle by payment code, absent otherwise."""
        if not self._other_proof(field):
            payment_code_with_hint(self, field)

    def proof_arguments(self):
        """The normalised arguments for lookup_vehicle."""
        name = PROOF_FIELDS[self.proof.data]
        return {"plate": self.plate.normalized, name: getattr(self, name).normalized}
