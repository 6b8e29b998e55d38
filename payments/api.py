"""The public payments API: create, confirm, read; receipts."""
from flask import request
from flask.views import MethodView

from finepay.restapi import Blueprint
from payments import receipts, services
from payments.gateways import Payer
from payments.schemas import (
    ConfirmRequestSchema,
    IdempotencyHeaderSchema,
    PaymentRequestSchema,
    PaymentSchema,
    ReceiptSchema,
)
from violations.limits import limited
from violations.schemas import ChallengeRequiredSchema

blp = Blueprint("payments", __name__, url_prefix="/api/v1", description="Pay violations, exactly once")


@blp.route("/payments")
class Payments(MethodView):
    """Start a payment."""

    # Plate + VIN code (or payment code) prove the vehicle here just as in a lookup: the same limits, the same counters.
    decorators = [limited]

    @blp.arguments(IdempotencyHeaderSchema, location="headers")
    @blp.arguments(PaymentRequestSchema)
    @blp.response(201, PaymentSchema)
    @blp.alt_response(409, description="Already paid, another payment in progress, or key reused")
    @blp.alt_response(422, description="Invalid input, or not payable online; `unknown_violation` (one body "
                                       "for a wrong VIN or payment code and for an id not of this vehicle) counts as a "
                                       "failed lookup of the plate")
    @blp.alt_response(429, schema=ChallengeRequiredSchema, description=ChallengeRequiredSchema.DESCRIPTION)
    @blp.alt_response(502, description="Gateway error")
    def post(self, headers, body):
        """Create a payment for violations of one vehicle (amount computed by the server)."""
        payer = Payer(user_agent=request.user_agent.string)
        return services.start_proven_payment(idempotency_key=headers["idempotency_key"], payer=payer, **body)


@blp.route("/payments/<payment_id>")
class PaymentById(MethodView):
    """A payment's current state."""

    @blp.response(200, PaymentSchema)
    def get(self, payment_id):
        """The payment, refreshed from the gateway when its outcome is not final."""
        return services.refresh_payment(payment_id)


@blp.route("/payments/<payment_id>/confirm")
class ConfirmPayment(MethodView):
    """Pay."""

    @blp.arguments(ConfirmRequestSchema)
    @blp.response(200, PaymentSchema)
    @blp.alt_response(409, description="Closed, expired or already being processed")
    def post(self, body, payment_id):
        """Confirm with a gateway payment-method token; status tells what happened."""
        return services.confirm_payment(payment_id, body["payment_method"])


@blp.route("/receipts/<receipt_number>")
class Receipt(MethodView):
    """Proof of payment."""

    @blp.response(200, ReceiptSchema)
    def get(self, receipt_number):
        """The receipt with this number."""
        return receipts.get_receipt(receipt_number)
