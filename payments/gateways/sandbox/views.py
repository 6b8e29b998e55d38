"""The sandbox's own pages: its stand-in for a bank's 3-D Secure check."""
from flask import Blueprint, redirect, render_template, request

from finepay.errors import ApiError
from payments import services
from payments.gateways import current_gateway, return_url
from payments.views import payment_problem

bp = Blueprint("sandbox", __name__, template_folder="templates")
bp.register_error_handler(ApiError, payment_problem)


@bp.route("/sandbox/authenticate/<intent_id>", methods=["GET", "POST"])
def authenticate(intent_id):
    """The sandbox's stand-in for a bank's 3-D Secure page: approve or fail the check, then back to the payment."""
    payment = services.payment_for_intent(intent_id)
    if request.method == "POST":
        intent = current_gateway().authenticate(intent_id, approve=request.form.get("outcome") == "approve")
        services.apply_intent(payment.id, intent)
        return redirect(return_url(payment.id, external=False), 303)
    return render_template("sandbox/authenticate.html", payment=payment, intent_id=intent_id)
