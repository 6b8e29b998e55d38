"""Marshmallow schemas for the lookup API."""
from marshmallow import Schema, ValidationError, fields, validates_schema

from violations.plates import (
    InvalidIdentifier,
    normalize_notice_number,
    normalize_plate,
    normalize_vin_last6,
)


class NormalizedString(fields.String):
    """A string field that is normalised by a rule and rejected, never truncated, when invalid."""

    def __init__(self, normalize, **kwargs):
        super().__init__(**kwargs)
        self.normalize = normalize

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.normalize(text)
        except InvalidIdentifier as exc:
            raise ValidationError(str(exc)) from None


class LookupRequestSchema(Schema):
    """A plate proven by the VIN's last six characters or by one notice number."""

    plate = NormalizedString(normalize_plate, required=True, metadata={"example": "蒙B·12345"})
    vin_last6 = NormalizedString(normalize_vin_last6, metadata={"example": "A12345"})
    notice_number = NormalizedString(normalize_notice_number, metadata={"example": "150203202611000123"})

    @validates_schema
    def exactly_one_proof(self, data, **kwargs):
        """Require one proof of the vehicle, not both and not none."""
        if ("vin_last6" in data) == ("notice_number" in data):
            raise ValidationError("Give either vin_last6 or notice_number.", "_schema")


class ViolationLineSchema(Schema):
    """One violation priced for the driver."""

    id = fields.Integer()
    notice_number = fields.String()
    occurred_at = fields.DateTime()
    location = fields.String()
    offense_code = fields.String()
    description = fields.String()
    points = fields.Integer()
    fine = fields.Integer(metadata={"description": "minor units"})
    late_fee = fields.Integer(metadata={"description": "minor units; for a paid violation, what was paid"})
    amount_due = fields.Integer(metadata={"description": "minor units owed now; 0 when paid or void"})
    due_date = fields.Date(metadata={"description": "last day to pay without (more) late fee"})
    status = fields.String(metadata={"enum": ["unpaid", "paid", "void"]})
    payable_online = fields.Boolean()
    receipt_number = fields.String(allow_none=True)


class VehicleStatementSchema(Schema):
    """What a vehicle owes, as of a moment."""

    plate = fields.String()
    currency = fields.String()
    as_of = fields.DateTime()
    total_due = fields.Integer(metadata={"description": "minor units owed on unpaid violations"})
    total_payable_online = fields.Integer(
        metadata={"description": "minor units of total_due that can be paid online (the rest only in person)"}
    )
    violations = fields.List(fields.Nested(ViolationLineSchema))


class ErrorSchema(Schema):
    """FinePay's error body."""

    code = fields.String()
    message = fields.String()
    errors = fields.Dict()
