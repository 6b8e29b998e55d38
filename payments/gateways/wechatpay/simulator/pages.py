"""The payer's side, standing in for the phone: the order page a QR code or an H5 link opens, the JSAPI bridge
(WeixinJSBridge) and the official account's OAuth (snsapi_base) that gives a page the payer's openid.

Every page says SIMULATION: nothing here moves real money.
"""
import secrets
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, send_from_directory

from .crypto import verify
from .trading import PaymentRefused

bp = Blueprint("pages", __name__)
# how long an OAuth code may be exchanged, and only once
OAUTH_CODE_SECONDS = 300
OPENID_COOKIE = "wxsim_openid"


def simulator():
    """The running simulator."""
    return current_app.extensions["wechatpay_simulator"]


@bp.get("/simulator/scan")
def scan():
    """What scanning a Native order's code_url (weixin://wxpay/bizpayurl?pr=...) opens: that order's page."""
    pr = parse_qs(urlsplit(request.args.get("code_url", "")).query).get("pr", [""])[0]
    out_trade_no = simulator().trading.order_where("pr", pr) if pr else None
    if out_trade_no is None:
        abort(404)
    return redirect(f"/simulator/pay/{out_trade_no}")


@bp.get("/simulator/h5/checkmweb")
def h5():
    """What an H5 order's h5_url opens in the phone's browser (the merchant may append &redirect_url=...)."""
    out_trade_no = simulator().trading.order_where("prepay_id", request.args.get("prepay_id", ""))
    if out_trade_no is None:
        abort(404)
    return payer_page(out_trade_no, request.args.get("redirect_url", ""))


@bp.get("/simulator/pay/<out_trade_no>")
def pay_page(out_trade_no):
    """The order as the payer sees it, with approve, cancel and fail (insufficient balance)."""
    return payer_page(out_trade_no, request.args.get("redirect_url", ""))


def payer_page(out_trade_no, redirect_url, refusal=None, status=200):
    """The payer's page of one order (``refusal`` overrides why it cannot be paid)."""
    trading = simulator().trading
    order = trading.order(out_trade_no)
    if order is None:
        abort(404)
    return render_template("pay.html", order=order, merchant=simulator().account.merchant_name,
                           yuan=Decimal(order["request"]["amount"]["total"]) / 100,
                           refusal=refusal or trading.refusal(order), redirect_url=redirect_url), status


@bp.post("/simulator/pay/<out_trade_no>")
def pay(out_trade_no):
    """The payer's answer; an H5 payer then goes back to the merchant's redirect_url."""
    action = request.form.get("action")
    if action not in ("approve", "cancel", "fail"):
        abort(400)
    redirect_url = request.form.get("redirect_url", "")
    try:
        simulator().trading.pay(out_trade_no, action, request.cookies.get(OPENID_COOKIE))
    except PaymentRefused as refused:
        return payer_page(out_trade_no, redirect_url, str(refused), 409)
    if redirect_url.startswith(("http://", "https://")):
        return redirect(redirect_url, 303)
    return payer_page(out_trade_no, redirect_url)


@bp.get("/simulator/jsbridge.js")
def jsbridge():
    """A stand-in for WeChat's in-app WeixinJSBridge, for a merchant page loaded in a test browser."""
    response = send_from_directory(current_app.root_path + "/static", "jsbridge.js", max_age=0)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.post("/simulator/jsbridge/pay")
def jsbridge_pay():
    """getBrandWCPayRequest: check appId and the merchant's paySign over the prepay_id, then pay as asked."""
    params = request.get_json(force=True, silent=True) or {}
    answer = _bridge_answer(params)
    response = jsonify(err_msg=f"get_brand_wcpay_request:{answer}")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _bridge_answer(params):
    account, trading = simulator().account, simulator().trading
    package = str(params.get("package", ""))
    out_trade_no = trading.order_where("prepay_id", package.removeprefix("prepay_id="))
    message = f"{params.get('appId')}\n{params.get('timeStamp')}\n{params.get('nonceStr')}\n{package}\n"
    if (params.get("appId") != account.appid or params.get("signType") != "RSA" or out_trade_no is None
            or not verify(account.merchant_public_key, message, str(params.get("paySign", "")))):
        return "fail"
    outcome = params.get("outcome", "approve")
    if outcome == "cancel":
        return "cancel"
    try:
        trading.pay(out_trade_no, "fail" if outcome == "fail" else "approve")
    except PaymentRefused:
        return "fail"
    return "fail" if outcome == "fail" else "ok"


@bp.get("/connect/oauth2/authorize")
def oauth_authorize():
    """snsapi_base: silent, straight back to redirect_uri with a code (the same browser keeps its openid)."""
    args = request.args
    if args.get("appid") != simulator().account.appid or not args.get("redirect_uri", "").startswith(("http://", "https://")):
        return jsonify(errcode=10003, errmsg="redirect_uri参数错误或appid无效"), 400
    if args.get("response_type") != "code" or args.get("scope") not in ("snsapi_base", "snsapi_userinfo"):
        return jsonify(errcode=10005, errmsg="scope参数错误"), 400
    openid = request.cookies.get(OPENID_COOKIE) or "o" + secrets.token_urlsafe(20)[:27]
    code = secrets.token_hex(16)
    simulator().oauth_codes[code] = (openid, time.time() + OAUTH_CODE_SECONDS)
    separator = "&" if "?" in args["redirect_uri"] else "?"
    response = redirect(args["redirect_uri"] + separator + urlencode({"code": code, "state": args.get("state", "")}))
    response.set_cookie(OPENID_COOKIE, openid, httponly=True, samesite="Lax")
    return response


@bp.get("/sns/oauth2/access_token")
def oauth_access_token():
    """The code exchanged (once) for the payer's openid, with WeChat's errcode answers (always HTTP 200)."""
    account, args = simulator().account, request.args
    if args.get("appid") != account.appid:
        return jsonify(errcode=40013, errmsg="invalid appid")
    if args.get("secret") != account.app_secret:
        return jsonify(errcode=40125, errmsg="invalid appsecret")
    if args.get("grant_type") != "authorization_code":
        return jsonify(errcode=40002, errmsg="invalid grant_type")
    openid, expires = simulator().oauth_codes.pop(args.get("code", ""), (None, 0))
    if openid is None:
        return jsonify(errcode=40029, errmsg="invalid code")
    if expires < time.time():
        return jsonify(errcode=40163, errmsg="code been used or expired")
    return jsonify(access_token=secrets.token_urlsafe(48), expires_in=7200, refresh_token=secrets.token_urlsafe(48),
                   openid=openid, scope="snsapi_base", is_snapshotuser=0)
