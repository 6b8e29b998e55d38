"""Marshmallow schemas for the cases API."""
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from cases.models import KINDS, STATEMENT_MAX, STATUSES
from violations.plates import normalize_plate, normalize_vin_last6
from violations.schemas import NormalizedString, altcha_field

CASE_NUMBER = {"description": "12 letters and digits, given when the case was filed", "example": "7G2K9QXM4T1B"}


class CaseFilingSchema(Schema):
    """A contest or an application for one violation of a vehicle proven by plate + VIN code."""

    plate = NormalizedString(normalize_plate, required=True, metadata={"example": "蒙B·12345"})
    vin_last6 = NormalizedString(normalize_vin_last6, required=True, metadata={"example": "A12345"})
    violation_id = fields.Integer(required=True, strict=False, validate=validate.Range(min=1, max=2**62))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    reason = fields.String(required=True, validate=validate.Length(max=32), metadata={
        "description": "a code from the preset list (docs/cases.md): contest: not_driving, plate_cloned, "
                       "signs_unclear, emergency, facts_wrong, other; deferral or instalments: income_loss, "
                       "illness, disaster, other"})
    statement = fields.String(required=True, validate=validate.Length(max=STATEMENT_MAX + 100),
                              metadata={"description": "20 to 1000 characters"})
    evidence = fields.List(Upload(), load_default=list, metadata={
        "description": "up to 5 photos (JPEG or PNG) or one MP4 video, each within its size limit, checked by "
                       "content (a name or declared type counts for nothing)"})
    altcha = altcha_field()


class CaseCheckSchema(Schema):
    """Plate + VIN code + case number."""

    plate = NormalizedString(normalize_plate, required=True, metadata={"example": "蒙B·12345"})
    vin_last6 = NormalizedString(normalize_vin_last6, required=True, metadata={"example": "A12345"})
    case_number = fields.String(required=True, validate=validate.Length(max=32), metadata=CASE_NUMBER)
    altcha = altcha_field()


class FiledCaseSchema(Schema):
    """A case just filed: its number is what the driver checks it by."""

    case_number = fields.String(attribute="number", metadata=CASE_NUMBER)
    kind = fields.String(metadata={"enum": list(KINDS)})
    status = fields.String(metadata={"enum": list(STATUSES)})
    filed_at = fields.DateTime()
    files = fields.Function(lambda case: len(case.files), metadata={"description": "evidence files kept"})


class CaseStatusSchema(Schema):
    """A case's status and, once decided, its outcome."""

    case_number = fields.String(attribute="number", metadata=CASE_NUMBER)
    kind = fields.String(metadata={"enum": list(KINDS)})
    reason = fields.String()
    notice_number = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES), "description": "open and prepared wait for a "
                                     "decision; upheld, cancelled (contests), approved, refused (applications)"})
    filed_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    new_due_date = fields.Date(allow_none=True, metadata={"description": "the new due date an upheld contest "
                                                          "or an approved deferral set"})
    files = fields.Integer()
