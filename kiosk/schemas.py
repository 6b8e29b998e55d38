"""Marshmallow schemas for the kiosk's own endpoints: exactly what its screens send, nothing else."""
from marshmallow import Schema, fields, validate
from webargs.fields import DelimitedList

from payments.gateways import READER_SIMULATIONS
from violations.plates import normalize_notice_number, normalize_plate, normalize_vin_last6
from violations.schemas import NormalizedString, altcha_field, payment_code_field, violation_ids_field

END_REASONS = ("start_over", "idle", "finished", "failure", "recovered")


class EmptySchema(Schema):
    """A request whose body is an empty JSON object."""


class PlateSchema(Schema):
    """The plate typed on the plate screen."""

    plate = NormalizedString(normalize_plate, required=True)


class VinSchema(Schema):
    """The VIN code typed on the keypad."""

    vin_last6 = NormalizedString(normalize_vin_last6, required=True)
    altcha = altcha_field()


class NoticeSchema(Schema):
    """A notice number typed on the keypad, the other proof of the vehicle (as on the web)."""

    notice_number = NormalizedString(normalize_notice_number, required=True)
    altcha = altcha_field()


class PaymentCodeSchema(Schema):
    """The finance bureau's payment code typed on the keypad, a third proof of the vehicle (as on the web)."""

    payment_code = payment_code_field(required=True)
    altcha = altcha_field()


class SelectionSchema(Schema):
    """The violations ticked on the violations screen."""

    violation_ids = violation_ids_field(required=True)


class PaySchema(SelectionSchema):
    """The review screen's Pay buttons: the selection, the key the review screen was rendered with, and how."""

    idempotency_key = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{32}\Z"))
    # Scan to pay with this gateway (its name); without it, the card reader.
    gateway = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_\-]{0,39}\Z"))


class SelectionQuerySchema(Schema):
    """Going back to the violations screen with the earlier selection (ids only, nothing personal)."""

    selected = DelimitedList(
        fields.Integer(strict=False, validate=validate.Range(min=1, max=2**62)),
        validate=validate.Length(max=50),
    )


class EndVisitSchema(Schema):
    """Why the kiosk ends a visit."""

    reason = fields.String(required=True, validate=validate.OneOf(END_REASONS))
    # The page was waiting for the payment's outcome (the reader, or the code to scan): the driver has not seen it.
    paying = fields.Boolean(load_default=False)


class SimulateSchema(Schema):
    """A simulated reader's control: what the card holder does."""

    outcome = fields.String(required=True, validate=validate.OneOf(sorted(READER_SIMULATIONS)))
