"""Marshmallow schemas for the payments API."""
import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_dump, validate, validates_schema

from finepay.restapi import SandboxFlag
from payments.gateways import gateway_for
from payments.messages import failure_message
from violations.plates import normalize_plate, normalize_vin_last6
from violations.schemas import MAX_CHOSEN, NormalizedString, altcha_field, payment_code_field, violation_ids_field

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_\-:.]{8,100}\Z")


class IdempotencyHeaderSchema(Schema):
    """The Idempotency-Key header every create request must carry."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(
        data_key="Idempotency-Key", required=True,
        validate=validate.Regexp(IDEMPOTENCY_KEY, error="8 to 100 letters, digits and - _ : . (a UUID is ideal)."),
        metadata={"description": "A client-chosen key; the same key with the same body returns the same payment"},
    )


class PaymentRequestSchema(Schema):
    """Pay these violations of the vehicle proven by plate + VIN code or plate + payment code. The amount is the server's."""

    plate = NormalizedString(normalize_plate, required=True)
    vin_last6 = NormalizedString(normalize_vin_last6)
    payment_code = payment_code_field()
    violation_ids = violation_ids_field(min_count=0, load_default=list, metadata={
        "description": "Violations paid whole (not those with an instalment plan: pay their instalments)"})
    instalment_ids = violation_ids_field(min_count=0, load_default=list, metadata={
        "description": "Instalments of approved plans, each the next unpaid one of its plan (the lookup's "
                       "`instalments[].id`); the violation becomes paid with its last instalment"})
    gateway = fields.String(
        load_default=None, validate=validate.Length(min=1, max=40),
        metadata={"description": "How to pay: a configured gateway's name that serves this payer (422 otherwise); "
                                 "by default the first configured one that does", "example": "wechatpay"},
    )

    altcha = altcha_field()

    @validates_schema
    def something_chosen(self, data, **kwargs):
        """Require at least one violation or instalment, and no more than one payment can hold."""
        chosen = len(data.get("violation_ids") or []) + len(data.get("instalment_ids") or [])
        if not chosen:
            raise ValidationError("Choose at least one violation or instalment.", "violation_ids")
        if chosen > MAX_CHOSEN:
            raise ValidationError(f"At most {MAX_CHOSEN} violations and instalments in one payment.",
                                  "violation_ids")

    @validates_schema
    def exactly_one_proof(self, data, **kwargs):
        """Require one proof of the vehicle: the VIN code or a payment code (a missing one is named on both)."""
        if "vin_last6" in data and "payment_code" in data:
            raise ValidationError("Give either vin_last6 or payment_code, not both.", "_schema")
        if "vin_last6" not in data and "payment_code" not in data:
            message = ["Missing data: give vin_last6 or payment_code."]
            raise ValidationError({"vin_last6": message, "payment_code": message})


class ConfirmRequestSchema(Schema):
    """A gateway payment-method token; card numbers never reach FinePay."""

    payment_method = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9_]{3,100}\Z", error="Not a payment method token."),
        metadata={"example": "pm_card_visa"},
    )


class PaymentItemSchema(Schema):
    """One violation in a payment, priced when the payment was created."""

    violation_id = fields.Integer()
    instalment = fields.Function(lambda item: item.instalment_ref, allow_none=True, metadata={
        "description": "the instalment this line pays ({id, number, count}), or null for the whole violation"})
    fine = fields.Integer(metadata={"description": "the fine, or the instalment's amount"})
    late_fee = fields.Integer()
    settled = fields.Boolean(allow_none=True, metadata={"description": "paid by this payment (false: refunded)"})


class RefundLineSchema(Schema):
    """The part of a refund that went back for one violation."""

    violation_id = fields.Function(lambda line: line.item.violation_id)
    amount = fields.Integer()


class RefundSchema(Schema):
    """Money sent back, and for which violations (the rest of amount was captured beyond the amount due)."""

    amount = fields.Integer()
    currency = fields.String()
    reason = fields.String()
    automatic = fields.Boolean()
    status = fields.String()
    created_at = fields.DateTime()
    lines = fields.List(fields.Nested(RefundLineSchema))


class PaymentSchema(Schema):
    """A payment and where it stands."""

    id = fields.String()
    status = fields.String(metadata={"enum": ["created", "requires_action", "processing", "succeeded", "failed",
                                              "canceled", "expired", "refunded"]})
    amount = fields.Integer(metadata={"description": "minor units, computed by the server"})
    convenience_fee = fields.Integer(metadata={"description": "minor units, included in amount; 0 unless configured"})
    currency = fields.String()
    items = fields.List(fields.Nested(PaymentItemSchema))
    gateway = fields.String()
    channel = fields.String()
    expires_at = fields.DateTime()
    created_at = fields.DateTime()
    paid_at = fields.DateTime(allow_none=True)
    receipt_number = fields.String(allow_none=True)
    next_action_url = fields.Method("get_next_action", allow_none=True,
                                    metadata={"description": "where the payer completes an authentication step"})
    failure_code = fields.String(allow_none=True)
    failure_message = fields.Method("get_failure_message", allow_none=True)
    refunds = fields.List(fields.Nested(RefundSchema))
    client_secret = fields.Method("get_client_secret", allow_none=True)
    sandbox = SandboxFlag()

    @post_dump(pass_original=True)
    def add_gateway_fields(self, data, payment, **kwargs):
        """What the payer's page needs from the gateway (e.g. a publishable key), while it can still pay."""
        if payment.is_open:
            data.update(gateway_for(payment).client_fields(payment))
        return data

    def get_next_action(self, payment):
        return payment.next_action_url if payment.status == "requires_action" else None

    def get_failure_message(self, payment):
        return failure_message(payment.failure_code) if payment.status == "failed" else None

    def get_client_secret(self, payment):
        # Only useful (and only shown) while the payer can still act on it.
        return payment.client_secret if payment.is_open else None


class ReceiptItemSchema(Schema):
    """A violation on a receipt."""

    violation_id = fields.Integer()
    instalment = fields.Dict(allow_none=True, metadata={
        "description": "the instalment this line pays ({id, number, count}: 第2期/共3期), or null for the whole "
                       "violation"})
    notice_number = fields.String()
    payment_code = fields.String(allow_none=True, metadata={
        "description": "the finance bureau's 20-digit payment code (缴款码), null when the notice had none"})
    description = fields.String()
    fine = fields.Integer(metadata={"description": "the fine, or the instalment's amount"})
    late_fee = fields.Integer()
    service_fee = fields.Integer(metadata={"description": "this line's share of the service fee, minor units"})
    paid = fields.Integer(metadata={"description": "fine + late_fee + service_fee: paid for this line"})
    refunded = fields.Integer(metadata={"description": "refunded on this line so far, minor units"})
    net = fields.Integer(metadata={"description": "paid - refunded"})
    settled = fields.Boolean(metadata={"description": "whether this payment pays this violation now"})
    state = fields.String(metadata={
        "enum": ["paid", "partly_refunded", "refunded", "not_settled"],
        "description": "refunded: the whole line came back and the violation is owed again; partly_refunded: "
                       "it stays paid; not_settled: it was paid or cancelled before this payment settled it"})


class EReceiptItemSchema(Schema):
    """A line of an official e-receipt (项目)."""

    kind = fields.String(metadata={"enum": ["fine", "late_fee"],
                                   "description": "the violation's fine, or its late fee (加处罚款)"})
    notice_number = fields.String()
    amount = fields.Integer(metadata={"description": "minor units; negative on a red-flush"})


class EReceiptReferenceSchema(Schema):
    """The e-receipt a red-flush cancels."""

    code = fields.String()
    number = fields.String()


class EReceiptSchema(Schema):
    """An official fiscal e-receipt (财政电子票据), or the red-flush (冲红) that cancelled one."""

    kind = fields.String(metadata={"enum": ["blue", "red"],
                                   "description": "blue: an e-receipt; red: the red-flush that cancels one in full"})
    code = fields.String(metadata={"description": "票据代码, 8 digits"})
    number = fields.String(metadata={"description": "票据号码, 10 digits"})
    check_code = fields.String(metadata={"description": "校验码, 6 characters"})
    issued_at = fields.DateTime(metadata={"description": "开票日期"})
    amount = fields.Integer(metadata={"description": "minor units; negative on a red-flush"})
    currency = fields.String()
    payer = fields.String(metadata={"description": "交款人: the vehicle's plate"})
    authority = fields.String(metadata={"description": "收款单位: the collecting authority"})
    items = fields.List(fields.Nested(EReceiptItemSchema))
    verification_url = fields.String(metadata={"description": "where anyone can check it (its QR code)"})
    red_flushed = fields.Boolean(metadata={"description": "a red-flush cancelled this e-receipt"})
    flushes = fields.Nested(EReceiptReferenceSchema, allow_none=True,
                            metadata={"description": "on a red-flush: the e-receipt it cancels"})
    sandbox = fields.Boolean(metadata={"description": "issued by the sandbox issuer: not an official receipt"})


class ReceiptSchema(Schema):
    """Proof of payment."""

    receipt_number = fields.String()
    paid_at = fields.DateTime()
    amount = fields.Integer()
    currency = fields.String()
    plate = fields.String()
    channel = fields.String()
    gateway = fields.String(metadata={"description": "the gateway that took the payment"})
    payment_id = fields.String()
    items = fields.List(fields.Nested(ReceiptItemSchema))
    service_fee = fields.Integer(metadata={"description": "included in amount and shared across the lines"})
    refunded_amount = fields.Integer()
    net_amount = fields.Integer(metadata={"description": "amount - refunded_amount"})
    refunds = fields.List(fields.Nested(RefundSchema))
    status = fields.String()
    ereceipts = fields.List(fields.Nested(EReceiptSchema), metadata={
        "description": "the official e-receipts and red-flushes, oldest first: a refund red-flushes the one in "
                       "force and a new one is issued for what remains"})
    ereceipt = fields.Nested(EReceiptSchema, allow_none=True, metadata={
        "description": "the e-receipt in force; null while it is on its way, or after a full refund"})
    ereceipt_pending = fields.Boolean(metadata={
        "description": "true while FinePay is still asking the e-receipt service (it retries while that is down)"})
    sandbox = SandboxFlag()
