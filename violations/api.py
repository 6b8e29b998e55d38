"""The public lookup API."""
from flask.views import MethodView
from flask_babel import gettext as _

from finepay.errors import ApiError
from finepay.restapi import Blueprint
from violations.limits import limited
from violations.schemas import ChallengeRequiredSchema, LookupRequestSchema, VehicleStatementSchema
from violations.services import prove_vehicle

blp = Blueprint("lookups", __name__, url_prefix="/api/v1", description="Look up a vehicle's violations")


def no_match():
    """The one answer for every failed lookup, so it cannot tell a plate exists."""
    return ApiError(
        _("No violations match this plate and code. Check both and try again."),
        code="not_found",
        status=404,
    )


@blp.route("/lookups")
class Lookups(MethodView):
    """Look up a vehicle."""

    decorators = [limited]

    @blp.arguments(LookupRequestSchema)
    @blp.response(200, VehicleStatementSchema)
    @blp.alt_response(404, description="No match (the same body for an unknown plate and a wrong code)")
    @blp.alt_response(429, schema=ChallengeRequiredSchema, description=ChallengeRequiredSchema.DESCRIPTION)
    def post(self, proof):
        """Violations of a vehicle proven by plate + VIN code, plate + notice number or plate + payment code.

        A notice number or payment code proves the vehicle, so the answer lists all its violations.
        """
        statement = prove_vehicle(**proof)
        if statement is None:
            raise no_match()
        return statement
