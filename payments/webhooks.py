"""POST /webhooks/<gateway>: the gateway's events, verified and applied once."""
from flask import Blueprint, request

from payments.services import handle_webhook

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/<gateway_name>")
def receive(gateway_name):
    """Verify the signature, ignore repeats and unknown types, apply the rest."""
    outcome = handle_webhook(gateway_name, request.get_data(cache=False), request.headers)
    return {"received": True, "outcome": outcome}
