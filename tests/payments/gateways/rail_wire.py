"""What tests outside this folder need in WeChat Pay's and Alipay's own words, kept here where those words belong.

FinePay's settings for an adapter pointed at its simulator, notifications
signed with the simulator's own keys (genuine, forged or foreign), and the
money each simulator says it kept, by FinePay intent id. Used by
tests/reliability/test_rails_notifications.py, which speaks only of rails.
"""
import json
import time
import uuid
from decimal import Decimal
from urllib.parse import urlencode

from payments.gateways.alipay.simulator import signing as alipay_signing
from payments.gateways.alipay.simulator.account import open_account
from payments.gateways.wechatpay.simulator.account import load_or_create
from payments.gateways.wechatpay.simulator.crypto import encrypt_resource, nonce, response_message, sign

STALE_SECONDS = 600  # WeChat Pay's notifications older than 5 minutes must be refused
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


# --- WeChat Pay ---------------------------------------------------------------------------------------------------

def wechatpay_settings(config, notify_url=None):
    """FinePay's settings for the wechatpay adapter (simulated, public-key mode, OAuth included), from the simulator's
    --print-config; ``notify_url`` None leaves the adapter's default (PUBLIC_BASE_URL + /webhooks/wechatpay)."""
    return {
        "WECHATPAY_MCHID": config["mchid"], "WECHATPAY_APPID": config["appid"],
        "WECHATPAY_APP_SECRET": config["app_secret"],
        "WECHATPAY_PRIVATE_KEY_FILE": config["merchant_private_key_path"],
        "WECHATPAY_CERT_SERIAL": config["merchant_serial"], "WECHATPAY_APIV3_KEY": config["apiv3_key"],
        "WECHATPAY_PUBLIC_KEY_FILE": config["platform_public_key_path"],
        "WECHATPAY_PUBLIC_KEY_ID": config["platform_public_key_id"],
        "WECHATPAY_BASE_URL": config["base_url"], "WECHATPAY_OAUTH_BASE_URL": config["base_url"],
        "WECHATPAY_SIMULATED": True, **({"WECHATPAY_NOTIFY_URL": notify_url} if notify_url else {}),
    }


def wechatpay_scan_url(config, code_url):
    """The simulator's page a phone opens by scanning a Native order's code_url (WeChat's own scheme)."""
    return f"{config['scan_url']}?{urlencode({'code_url': code_url})}"


def wechatpay_notification(data_dir, order, amount, *, mchid=None, appid=None, age=0):
    """A payment notification signed and encrypted with the simulator's keys, as WeChat Pay sends one."""
    account = load_or_create(data_dir)
    resource = {"mchid": mchid or account.mchid, "appid": appid or account.appid, "out_trade_no": order,
                "transaction_id": "4200" + nonce(24), "trade_type": "NATIVE", "trade_state": "SUCCESS",
                "amount": {"total": amount, "payer_total": amount, "currency": "CNY", "payer_currency": "CNY"}}
    body = json.dumps({
        "id": str(uuid.uuid4()), "create_time": "2026-11-30T12:00:00+08:00", "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": {**encrypt_resource(account.apiv3_key, json.dumps(resource), "transaction"),
                     "original_type": "transaction"},
    }, ensure_ascii=False, separators=(",", ":"))
    key, serial = account.signer("public-key")
    timestamp, nonce_str = str(int(time.time()) - age), nonce()
    headers = {"Content-Type": "application/json", "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce_str,
               "Wechatpay-Serial": serial, "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
               "Wechatpay-Signature": sign(key, response_message(timestamp, nonce_str, body))}
    return body.encode(), headers


def wechatpay_forgeries(data_dir, order, amount):
    """(kind, body, headers) a forger or a confused sender could post about an unpaid order: none may settle it."""
    body, headers = wechatpay_notification(data_dir, order, amount)
    return [
        ("bad signature", body.replace("支付成功".encode(), "支付成功!".encode()), headers),
        ("old timestamp", *wechatpay_notification(data_dir, order, amount, age=STALE_SECONDS)),
        ("another merchant", *wechatpay_notification(data_dir, order, amount, mchid="1999999999")),
        ("another app", *wechatpay_notification(data_dir, order, amount, appid="wx00000000000000ff")),
        ("another amount", *wechatpay_notification(data_dir, order, amount + 1)),
        ("unknown order", *wechatpay_notification(data_dir, "pay_" + nonce(20).lower(), amount)),
    ]


def wechatpay_charges(state):
    """Money each paid order kept at the simulator (its total less refunds that succeeded), by out_trade_no."""
    refunded = {}
    for refund in state["refunds"].values():
        if refund["status"] == "SUCCESS":
            refunded[refund["out_trade_no"]] = refunded.get(refund["out_trade_no"], 0) + refund["amount"]
    return {no: order["request"]["amount"]["total"] - refunded.get(no, 0)
            for no, order in state["orders"].items() if order["state"] in ("SUCCESS", "REFUND")}


def wechatpay_order_state(state, order):
    """The order's trade_state at the simulator."""
    return state["orders"][order]["state"]


def wechatpay_refund_state(state, refund_id):
    """The refund's status at the simulator (PROCESSING, SUCCESS, ...)."""
    return state["refunds"][refund_id]["status"]


# --- Alipay -------------------------------------------------------------------------------------------------------

def alipay_settings(config, notify_url=None):
    """FinePay's settings for the alipay adapter (simulated), from the simulator's --print-config; ``notify_url``
    None leaves the adapter's default (PUBLIC_BASE_URL + /webhooks/alipay)."""
    return {
        "ALIPAY_APP_ID": config["app_id"], "ALIPAY_APP_PRIVATE_KEY_FILE": config["app_private_key_path"],
        "ALIPAY_PUBLIC_KEY_FILE": config["alipay_public_key_path"], "ALIPAY_SELLER_ID": config["seller_id"],
        "ALIPAY_GATEWAY_URL": config["gateway_url"], "ALIPAY_SIMULATED": True,
        **({"ALIPAY_NOTIFY_URL": notify_url} if notify_url else {}),
    }


def yuan(fen):
    """Alipay's money: yuan with two decimals, from FinePay's fen."""
    return f"{Decimal(fen) / 100:.2f}"


def alipay_notification(data_dir, order, amount, *, app_id=None, seller_id=None):
    """A TRADE_SUCCESS notification signed with the simulator's Alipay key (RSA2), as a form body."""
    account = open_account(data_dir)
    params = {"notify_id": uuid.uuid4().hex, "notify_type": "trade_status_sync", "notify_time": "2026-11-30 12:00:00",
              "charset": "utf-8", "version": "1.0", "sign_type": "RSA2", "app_id": app_id or account.app_id,
              "auth_app_id": app_id or account.app_id, "seller_id": seller_id or account.seller_id,
              "trade_no": "2026113022001" + uuid.uuid4().hex[:15], "out_trade_no": order,
              "trade_status": "TRADE_SUCCESS", "total_amount": yuan(amount), "receipt_amount": yuan(amount)}
    content = alipay_signing.sign_content(params, alipay_signing.NOTIFICATION_UNSIGNED)
    params["sign"] = alipay_signing.sign(account.alipay_private_key, content)
    return urlencode(params).encode(), FORM


def alipay_forgeries(data_dir, order, amount):
    """(kind, body, headers) a forger or a confused sender could post about an unpaid order: none may settle it."""
    body, headers = alipay_notification(data_dir, order, amount)
    return [
        ("bad signature", body.replace(b"total_amount=", b"total_amount=1"), headers),
        ("another app", *alipay_notification(data_dir, order, amount, app_id="2021000000000000")),
        ("another seller", *alipay_notification(data_dir, order, amount, seller_id="2088000000000000")),
        ("another amount", *alipay_notification(data_dir, order, amount + 1)),
        ("unknown order", *alipay_notification(data_dir, "pay_" + uuid.uuid4().hex[:20], amount)),
    ]


def alipay_charges(trades):
    """Money each paid trade kept at the simulator (its total less what was refunded), by out_trade_no."""
    return {trade["out_trade_no"]: trade["total_fen"] - trade["refunded_fen"] for trade in trades if trade["gmt_payment"]}


def alipay_order_state(trade):
    """The trade's status at the simulator."""
    return trade["status"]
