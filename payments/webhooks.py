"""POST /webhooks/<gateway>: each configured gateway's notifications, verified and applied once, answered its way."""
from flask import Blueprint, request

from finepay.errors import ApiError
from payments.services import handle_webhook, webhook_gateway

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/<gateway_name>")
def receive(gateway_name):
    """Verify the signature, ignore repeats and unknown types, apply the rest; the gateway shapes the answer."""
    gateway = webhook_gateway(gateway_name)
    try:
        outcome = handle_webhook(gateway, request.get_data(cache=False), request.headers)
    except ApiError as error:
        return gateway.webhook_refusal(error)
    return gateway.webhook_reply(outcome)
