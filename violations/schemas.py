"""Marshmallow schemas for the lookup API."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from finepay.extensions import ErrorSchema
from violations.plates import (
    InvalidIdentifier,
    normalize_local_payment_code,
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


def altcha_field():
    """The optional solution to a challenge_required answer, for every request that proves a vehicle."""
    return fields.String(validate=validate.Length(max=4096), metadata={
        "description": "Only after a 429 challenge_required: the solved challenge, an ALTCHA v2 payload "
                       "(base64 of JSON {challenge, solution: {counter, derivedKey}}). Each is accepted once.",
    })


MAX_CHOSEN = 50


def _each_once(ids):
    # Only a list of the right length is checked, so that one that is too long gets that one answer.
    if len(ids) <= MAX_CHOSEN and len(set(ids)) != len(ids):
        raise ValidationError("Each violation may appear only once.")


def violation_ids_field(min_count=1, **kwargs):
    """The violations (or instalments) a driver chose to pay: 1 (or ``min_count``) to 50 ids, each once."""
    return fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, max=2**62)),
        validate=[validate.Length(min=min_count, max=MAX_CHOSEN), _each_once], **kwargs,
    )


def payment_code_field(**kwargs):
    """The finance bureau's 20-digit payment code (缴款码), one of this deployment's regions."""
    return NormalizedString(normalize_local_payment_code, **kwargs, metadata={
        "example": "15020326110000000019",
        "description": "The 20-digit payment code (非税收入缴款码) on the finance bureau's notice; its first 6 "
                       "digits must be a region this service takes (PAYMENT_CODE_REGIONS). Spaces are ignored.",
    })


class LookupRequestSchema(Schema):
    """A plate proven by the VIN's last six characters, one notice number or one payment code."""

    plate = NormalizedString(normalize_plate, required=True, metadata={"example": "蒙B·12345"})
    vin_last6 = NormalizedString(normalize_vin_last6, metadata={"example": "A12345"})
    notice_number = NormalizedString(normalize_notice_number, metadata={"example": "150203202611000123"})
    payment_code = payment_code_field()
    altcha = altcha_field()

    @validates_schema
    def exactly_one_proof(self, data, **kwargs):
        """Require one proof of the vehicle, not several and not none."""
        if sum(name in data for name in ("vin_last6", "notice_number", "payment_code")) != 1:
            raise ValidationError("Give one of vin_last6, notice_number and payment_code.", "_schema")


class InstalmentSchema(Schema):
    """One instalment of an approved plan, priced today."""

    id = fields.Integer(metadata={"description": "what POST /api/v1/payments takes in instalment_ids"})
    number = fields.Integer(metadata={"description": "1 to count"})
    count = fields.Integer()
    amount = fields.Integer(metadata={"description": "minor units: this instalment's share of the plan"})
    late_fee = fields.Integer(metadata={"description": "minor units: 0 while the plan is kept; after a missed "
                                                       "instalment, the late fee on this one (paid or owed)"})
    amount_due = fields.Integer(metadata={"description": "amount + late_fee while unpaid; 0 once paid"})
    due_date = fields.Date()
    status = fields.String(metadata={"enum": ["unpaid", "paid"]})
    missed = fields.Boolean(metadata={"description": "unpaid after its due date"})
    receipt_number = fields.String(allow_none=True)


class InstalmentPlanSchema(Schema):
    """An approved instalment plan: the late fee is suspended while it is kept."""

    kept = fields.Boolean(metadata={"description": "false once an instalment was missed: the late fee resumed"})
    broken_on = fields.Date(allow_none=True, metadata={"description": "the first missed due date"})
    late_fee_at_approval = fields.Integer(metadata={"description": "minor units, included in the instalments"})
    next_instalment_id = fields.Function(lambda plan: plan.next.id if plan.next else None, allow_none=True,
                                         metadata={"description": "the only instalment that can be paid now"})
    instalments = fields.List(fields.Nested(InstalmentSchema))


class ViolationLineSchema(Schema):
    """One violation priced for the driver."""

    id = fields.Integer()
    notice_number = fields.String()
    payment_code = fields.String(allow_none=True, metadata={
        "description": "the finance bureau's 20-digit payment code (缴款码), null when the notice had none"})
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
    instalment_plan = fields.Nested(InstalmentPlanSchema, attribute="plan", allow_none=True, metadata={
        "description": "the approved instalment plan, or null; with one, amount_due is what the unpaid "
                       "instalments come to and only its next instalment can be paid"})
    contest_case = fields.String(allow_none=True, metadata={
        "description": "the case number of the open contest holding it: not payable, late fee stopped, until decided"})


class VehicleStatementSchema(Schema):
    """What a vehicle owes, as of a moment."""

    plate = fields.String()
    currency = fields.String()
    as_of = fields.DateTime()
    total_due = fields.Integer(metadata={"description": "minor units owed on unpaid violations"})
    total_payable_online = fields.Integer(
        metadata={"description": "minor units of total_due that can be paid online now (the rest only in "
                                 "person; for a violation with an instalment plan, its next instalment)"}
    )
    violations = fields.List(fields.Nested(ViolationLineSchema))


class ChallengeParametersSchema(Schema):
    """What the client must work out: see the description of ChallengeRequiredSchema."""

    algorithm = fields.String(metadata={"example": "PBKDF2/SHA-256"})
    nonce = fields.String(metadata={"description": "hex"})
    salt = fields.String(metadata={"description": "hex"})
    cost = fields.Integer(metadata={"description": "PBKDF2 iterations per try"})
    keyLength = fields.Integer(metadata={"description": "bytes of the derived key"})
    keyPrefix = fields.String(metadata={"description": "hex the derived key must start with", "example": "00"})
    expiresAt = fields.Integer(metadata={"description": "Unix time after which a solution is refused"})
    data = fields.Dict(metadata={"description": "what the challenge is for (opaque; signed)"})


class ChallengeSchema(Schema):
    """A signed proof-of-work challenge (ALTCHA v2)."""

    parameters = fields.Nested(ChallengeParametersSchema)
    signature = fields.String()


class ChallengeRequiredSchema(ErrorSchema):
    """FinePay's error body with the challenge to solve (code challenge_required)."""

    DESCRIPTION = (
        "Rate limited. With code `rate_limited` (and Retry-After), this client sent too many requests: wait. "
        "With code `challenge_required`, this plate has had too many failed attempts, from anyone: solve "
        "`challenge` and send the same request again with `altcha` set to base64(JSON {\"challenge\": <the "
        "challenge as received>, \"solution\": {\"counter\": n, \"derivedKey\": hex}}), where n is the "
        "first counter from 0 for which PBKDF2-HMAC-SHA256(password = bytes(nonce) + n as 4 bytes big-endian, "
        "salt = bytes(salt), iterations = cost, length = keyLength) starts with keyPrefix (hex). Any ALTCHA v2 "
        "solver does this. A solution is accepted once, for this plate, until expiresAt."
    )

    challenge = fields.Nested(ChallengeSchema)
