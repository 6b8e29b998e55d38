"""WeChat Pay's own pages: the official account's OAuth step, which gives FinePay the payer's openid for JSAPI."""
import hmac
import re
import secrets

from flask import Blueprint, redirect, request, session, url_for
from flask_babel import gettext as _

from finepay.errors import ApiError
from payments.gateways import GatewayError, gateway_named, return_url

bp = Blueprint("wechatpay", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/gateways/wechatpay")

NAME = "wechatpay"  # the adapter's entry-point name
OAUTH_SESSION_KEY = "wechatpay_oauth"
OPENID_SESSION_KEY = "wechatpay_openid"  # the payer's openid for this merchant's app, once OAuth has given it
_PAYMENT_ID = re.compile(r"[A-Za-z0-9_]{1,32}")


@bp.get("/wechatpay/oauth/<payment_id>")
def oauth_start(payment_id):
    """Send the payer through WeChat's OAuth (snsapi_base: nothing to approve); it comes back to oauth_return."""
    if not _PAYMENT_ID.fullmatch(payment_id):
        raise ApiError(_("No such payment."), code="not_found", status=404)
    state = secrets.token_urlsafe(16)
    session[OAUTH_SESSION_KEY] = {"state": state, "payment_id": payment_id}
    callback = url_for("wechatpay.oauth_return", _external=True)
    return redirect(_gateway().oauth_authorize_url(callback, state))


@bp.get("/wechatpay/oauth/return")
def oauth_return():
    """Exchange WeChat's code for the payer's openid, keep it in the session, and go back to the payment."""
    started = session.pop(OAUTH_SESSION_KEY, None) or {}
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if not started.get("state") or not hmac.compare_digest(str(started["state"]), state) or not code:
        raise ApiError(_("This sign-in with WeChat has expired. Please open the payment again."),
                       code="oauth_state", status=400)
    try:
        session[OPENID_SESSION_KEY] = _gateway().openid_for(code)
    except GatewayError:
        raise ApiError(_("WeChat did not confirm who you are. Please try again."), code="oauth_failed",
                       status=502) from None
    return redirect(return_url(started["payment_id"], external=False))


def _gateway():
    try:
        return gateway_named(NAME)
    except GatewayError:
        raise ApiError(_("No such payment."), code="not_found", status=404) from None
