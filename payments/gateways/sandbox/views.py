"""The sandbox's own pages: its stand-in for a bank's 3-D Secure check."""
from flask import Blueprint, redirect, render_template, request
from flask_babel import gettext as _

from finepay.errors import ApiError
from payments.gateways import GatewayError, configured_gateways, intent_changed, return_url

bp = Blueprint("sandbox", __name__, template_folder="templates")


@bp.route("/sandbox/authenticate/<intent_id>", methods=["GET", "POST"])
def authenticate(intent_id):
    """The sandbox's stand-in for a bank's 3-D Secure page: approve or fail the check, then back to the payment."""
    # Any configured sandbox will do (a test may configure two names): they keep their intents in one ledger.
    gateway = next(gateway for gateway in configured_gateways() if hasattr(gateway, "authenticate"))
    try:
        intent = gateway.retrieve_intent(intent_id)
    except GatewayError:
        raise ApiError(_("No such payment."), code="not_found", status=404) from None
    if request.method == "POST":
        intent_changed(gateway.authenticate(intent_id, approve=request.form.get("outcome") == "approve"))
        return redirect(return_url(intent.payment_id, external=False), 303)
    return render_template("sandbox/authenticate.html", intent=intent, intent_id=intent_id)
