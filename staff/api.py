"""The settlement feed for the authority's violation system, authenticated by an API key."""
from flask import request
from flask.views import MethodView
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError, fields, validate

from finepay.errors import ApiError
from finepay.inputs import is_id_text
from finepay.restapi import Blueprint, SandboxFlag
from staff import services

API_KEY_HEADER = "X-API-Key"

blp = Blueprint("settlements", __name__, url_prefix="/api/v1",
                description="Settled, partly refunded and refunded violations, in order, for the upstream "
                            "violation system")


def _cursor(value):
    """next_cursor as the feed gave it: an id that fits a 64-bit column."""
    if not is_id_text(value):
        raise ValidationError("Not a cursor.")


class SettlementQueryArgsSchema(Schema):
    """Where to continue from, and how many audit events to read at most."""

    after = fields.String(load_default="0", validate=_cursor,
                          metadata={"description": "next_cursor from the previous page; 0 (or absent) from the start"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class SettlementEventSchema(Schema):
    """A violation was paid (settled), partly refunded (still paid) or refunded in full (owed again)."""

    cursor = fields.String()
    event = fields.String(metadata={
        "enum": ["settled", "partly_refunded", "refunded"],
        "description": "refunded: the violation's whole line came back and it is owed again; "
                       "partly_refunded: part of it came back and it stays paid"})
    at = fields.DateTime()
    violation_id = fields.Integer()
    notice_number = fields.String()
    payment_code = fields.String(allow_none=True, metadata={
        "description": "the finance bureau's 20-digit payment code (缴款码) the violation was imported with, or null"})
    plate = fields.String()
    payment_id = fields.String()
    receipt_number = fields.String(allow_none=True)
    channel = fields.String()
    instalment = fields.Dict(allow_none=True, metadata={
        "description": "the instalment of an approved plan this line pays ({number, count}: 第2期/共3期), or null "
                       "for the whole violation; the violation is paid once every instalment is settled"})
    fine = fields.Integer(metadata={"description": "minor units (for an instalment, its amount)"})
    late_fee = fields.Integer(metadata={"description": "minor units"})
    amount = fields.Integer(metadata={"description": "fine + late_fee, minor units"})
    service_fee = fields.Integer(metadata={"description": "this violation's share of the service fee, minor units"})
    refund_amount = fields.Integer(allow_none=True, metadata={
        "description": "what this refund gave back for the violation (0 for settled; null for refunds recorded "
                       "before refunds were allocated to violations)"})
    refunded = fields.Integer(allow_none=True, metadata={
        "description": "refunded on this violation's line so far, of amount + service_fee (0 for settled)"})
    currency = fields.String()
    sandbox = SandboxFlag()


class SettlementFeedSchema(Schema):
    """One page of the feed; call again with after=next_cursor until has_more is false."""

    events = fields.List(fields.Nested(SettlementEventSchema))
    next_cursor = fields.String()
    has_more = fields.Boolean()


def require_api_key():
    """The live API key in the X-API-Key header, or a 401."""
    key = services.authenticate_api_key(request.headers.get(API_KEY_HEADER))
    if key is None:
        raise ApiError(_("A valid API key is required in the %(header)s header.", header=API_KEY_HEADER),
                       code="unauthorized", status=401)
    return key


@blp.route("/settlements")
class Settlements(MethodView):
    """The settlement feed."""

    @blp.arguments(SettlementQueryArgsSchema, location="query")
    @blp.response(200, SettlementFeedSchema)
    @blp.alt_response(401, description="Missing, unknown or revoked API key")
    @blp.doc(security=[{"ApiKeyAuth": []}])
    def get(self, args):
        """Violations settled or refunded after the cursor, oldest first (X-API-Key header)."""
        require_api_key()
        events, next_cursor, has_more = services.settlement_feed(int(args["after"]), args["limit"])
        return {"events": events, "next_cursor": next_cursor, "has_more": has_more}
