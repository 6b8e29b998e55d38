"""The WeChat Pay adapter: API v3 (Native, H5 and JSAPI orders, refunds, notifications, the daily trade bill).

wechatpayv3 does the cryptography: it signs every request with the merchant's
key, verifies every answer and notification against the platform's public key
(or its certificates), and decrypts AEAD_AES_256_GCM resources. This module
builds the requests, keeps the orders in its ledger (models.py) and turns
WeChat Pay's words into FinePay's.
"""
import csv
import gzip
import hashlib
import io
import json
import logging
import re
import secrets
import time
import zlib
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import requests
from flask import has_request_context, request, session, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from wechatpayv3.core import Core
from wechatpayv3.type import RequestType

from finepay import security
from finepay.extensions import db
from finepay.settings import Setting, env_bool
from payments.gateways import (
    CANCELED,
    FAILED,
    PROCESSING,
    REQUIRES_PAYMENT_METHOD,
    SUCCEEDED,
    SURFACE_BROWSER,
    SURFACE_KIOSK,
    BillNotReady,
    GatewayError,
    GatewayEvent,
    GatewayIntent,
    GatewayRefund,
    GatewayTransaction,
    NextAction,
    PaymentGateway,
    WebhookVerificationError,
    return_url,
)

from .credentials import load_credentials
from .models import WeChatPayOrder
from .views import NAME, OPENID_SESSION_KEY, bp

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
# The official account's OAuth: the payer's browser goes to the first, FinePay asks the second for the openid.
OAUTH_AUTHORIZE_BASE = "https://open.weixin.qq.com"
OAUTH_API_BASE = "https://api.weixin.qq.com"
NOTIFY_PATH = "/webhooks/wechatpay"
# The simulator's stand-in for WeixinJSBridge, for an ordinary browser playing WeChat's.
SIMULATED_BRIDGE = "/simulator/jsbridge.js"
TIMEOUT = (3.05, 15)  # connect, read (seconds)
NOTIFICATION_TOLERANCE_SECONDS = 300
CHINA = ZoneInfo("Asia/Shanghai")  # WeChat Pay's clock: time_expire, the bill's days and its times
CURRENCY = "CNY"
DEFAULT_DESCRIPTION = "交通违法罚款"
DESCRIPTION_MAX = 127
REASON_MAX = 80

NATIVE, H5, JSAPI = "NATIVE", "H5", "JSAPI"
_ORDER_PATHS = {NATIVE: "native", H5: "h5", JSAPI: "jsapi"}
_ORDER_LINKS = {NATIVE: "code_url", H5: "h5_url", JSAPI: "prepay_id"}
_PHONE = re.compile(r"Mobile|Android|iPhone|iPad|iPod")

# out_trade_no: 6 to 32 of these. The intent id leaves room for "-NN" when a payer of another kind needs a new order.
_OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_\-|*]{6,32}")
_INTENT_ID = re.compile(r"[A-Za-z0-9_|*]{6,29}")
MAX_ORDERS = 99
# out_refund_no: 1 to 64 of these.
_OUT_REFUND_NO = re.compile(r"[A-Za-z0-9_\-|*@]{1,64}")

_TRADE_STATES = {
    "NOTPAY": REQUIRES_PAYMENT_METHOD,
    "SUCCESS": SUCCEEDED,
    "REFUND": SUCCEEDED,  # paid, then (some of it) refunded: the payment itself succeeded
    "CLOSED": CANCELED,
    "REVOKED": CANCELED,
    "USERPAYING": PROCESSING,
    "PAYERROR": FAILED,
}
_REFUND_STATUSES = {"SUCCESS": "succeeded", "PROCESSING": "pending", "CLOSED": "failed", "ABNORMAL": "failed"}
# WeChat Pay's error codes that a retry may cure; everything else it refused outright.
_BUSY = {"SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANK_ERROR", "SYSTEMERROR", "FREQUENCY_LIMIT_EXCEED"}
_BILL_NOT_READY = {"STATEMENT_CREATING"}
_NO_BILL = {"NO_STATEMENT_EXIST"}

# The ALL trade bill: 27 columns; the ones FinePay reads.
BILL_COLUMNS = 27
_TIME, _APPID, _MCHID, _TRANSACTION_ID, _OUT_TRADE_NO_COL, _STATE = 0, 1, 2, 5, 6, 9
_BILL_CURRENCY, _SETTLED, _REFUND_ID, _OUT_REFUND_NO_COL, _REFUNDED, _REFUND_STATUS, _FEE = 11, 12, 14, 15, 16, 19, 22


class _Core(Core):
    """wechatpayv3's Core aimed at WECHATPAY_BASE_URL: the library fixes its base to the real service.

    Core sets ``_gate_way`` in its constructor and may fetch certificates from
    there before returning, so the base has to be in place before it runs.
    """

    _gate_way = property(lambda self: self._base_url, lambda self, _fixed: None)

    def __init__(self, base_url, **kwargs):
        self._base_url = base_url
        super().__init__(**kwargs)


class WeChatPayGateway(PaymentGateway):
    """WeChat Pay API v3 for a direct merchant: a QR code on computers and kiosks, H5 on phones, JSAPI in WeChat."""

    name = NAME
    label = _l("WeChat Pay")
    app_label = _l("WeChat")  # its codes are scanned in the WeChat app (微信)
    intent_event_types = frozenset({"TRANSACTION.SUCCESS"})
    refund_event_types = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})
    settings = (
        Setting("WECHATPAY_MCHID"),
        Setting("WECHATPAY_APPID"),
        Setting("WECHATPAY_APP_SECRET", secret=True),  # the official account's, for the payer's openid (JSAPI)
        Setting("WECHATPAY_PRIVATE_KEY_FILE"),
        Setting("WECHATPAY_CERT_SERIAL"),
        Setting("WECHATPAY_APIV3_KEY", secret=True),
        Setting("WECHATPAY_APIV3_KEY_FILE"),
        Setting("WECHATPAY_PUBLIC_KEY_FILE"),
        Setting("WECHATPAY_PUBLIC_KEY_ID"),
        Setting("WECHATPAY_CERT_DIR"),
        Setting("WECHATPAY_BASE_URL", DEFAULT_BASE_URL),
        Setting("WECHATPAY_OAUTH_BASE_URL"),
        Setting("WECHATPAY_NOTIFY_URL"),
        Setting("WECHATPAY_SIMULATED", False, env_bool),
    )

    def __init__(self, config):
        super().__init__(config)
        self.credentials = load_credentials(config)
        self.mchid, self.appid = self.credentials.mchid, self.credentials.appid
        self.app_secret = config.get("WECHATPAY_APP_SECRET") or None
        self.base_url = (config.get("WECHATPAY_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        oauth_base = (config.get("WECHATPAY_OAUTH_BASE_URL") or "").rstrip("/")
        self.oauth_authorize_base = oauth_base or OAUTH_AUTHORIZE_BASE
        self.oauth_api_base = oauth_base or OAUTH_API_BASE
        self.notify_url = config.get("WECHATPAY_NOTIFY_URL") or None
        self.public_base_url = (config.get("PUBLIC_BASE_URL") or "").rstrip("/")
        self.simulated = bool(config.get("WECHATPAY_SIMULATED"))
        #: Replaceable in tests, so that a notification's age can be set.
        self.clock = time.time
        self.oauth_http = requests.Session()
        self.timeout = TIMEOUT  # (connect, read) seconds, for every call
        self._core = None

    @classmethod
    def init_app(cls, app):
        """Check the merchant's keys before the app starts; register the OAuth pages and the in-app bridge's fragment.

        Inside WeChat the page talks to WeixinJSBridge, which WeChat itself
        injects: no outside script, frame or API call widens the CSP, but for
        the simulator's stand-in when the adapter is simulated.
        """
        credentials = load_credentials(app.config)
        # A key read from WECHATPAY_APIV3_KEY_FILE is masked in the logs like one set in WECHATPAY_APIV3_KEY.
        app.config["WECHATPAY_APIV3_KEY"] = credentials.apiv3_key
        app.register_blueprint(bp)
        if app.config.get("WECHATPAY_SIMULATED"):
            # The simulator's stand-in for the bridge, in an ordinary browser, pays through the simulator.
            simulator = security.origin(app.config.get("WECHATPAY_BASE_URL"))
            security.allow_sources(app, "script-src", simulator)
            security.allow_sources(app, "connect-src", simulator)

    # -- Who it serves and what they do next ------------------------------------------------------

    def serves(self, payer):
        """Every browser (WeChat's own, a phone's, a computer's) and the kiosk's scan-to-pay."""
        return payer.surface in (SURFACE_BROWSER, SURFACE_KIOSK)

    def next_action(self, payment, payer):
        """Place (or find again) the order that fits the payer and say what they do with it.

        In WeChat's browser: JSAPI, once the official account's OAuth has given
        the payer's openid; on another phone: H5, coming back to the payment's
        page; on a computer or a kiosk: a Native QR code.
        """
        if not self.serves(payer) or not payment.gateway_intent_id:
            return None
        kind, openid = self._kind(payer), None
        if kind == JSAPI:
            openid = session.get(OPENID_SESSION_KEY) if has_request_context() else None
            if not openid:
                return NextAction.redirect(url_for("wechatpay.oauth_start", payment_id=payment.id))
        try:
            order = self._placed(payment.gateway_intent_id, kind, openid)
        except GatewayError as error:
            # The page says WeChat Pay cannot take the payment just now; the driver may try again or another way.
            log.warning("no WeChat Pay %s order for payment %s: %s (%s)", kind, payment.id, error.message, error.code)
            return None
        if order.canceled or order.trade_type is None:
            return None  # canceled: nothing to pay any more
        if order.trade_type == H5:
            return NextAction.redirect(f"{order.h5_url}&redirect_url={quote(return_url(payment.id), safe='')}")
        if order.trade_type == JSAPI:
            # No polling: a reload would pull the page from under WeChat's payment sheet; jsapi.js moves on.
            return NextAction.in_app("wechatpay/jsapi.html", self.bridge_params(order.prepay_id), poll_seconds=None,
                                     return_to=return_url(payment.id, external=False),
                                     bridge_script=f"{self.base_url}{SIMULATED_BRIDGE}" if self.simulated else None)
        return NextAction.scan_qr(order.code_url)

    def _kind(self, payer):
        agent = payer.user_agent or ""
        if payer.surface == SURFACE_KIOSK:
            return NATIVE
        if "MicroMessenger" in agent:
            # Without the official account's secret there is no openid: the QR code works in WeChat too (long press).
            return JSAPI if self.app_secret else NATIVE
        return H5 if _PHONE.search(agent) else NATIVE

    def bridge_params(self, prepay_id):
        """What WeixinJSBridge's getBrandWCPayRequest takes, signed with the merchant's key."""
        timestamp, nonce, package = str(int(self.clock())), secrets.token_hex(16), f"prepay_id={prepay_id}"
        return {
            "appId": self.appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package, "signType": "RSA",
            "paySign": self.core.sign([self.appid, timestamp, nonce, package]),
        }

    # -- The official account's OAuth (views.py) ----------------------------------------------------

    def oauth_authorize_url(self, redirect_uri, state):
        """Where WeChat asks the payer nothing (snsapi_base) and comes back to ``redirect_uri`` with a code."""
        query = urlencode({"appid": self.appid, "redirect_uri": redirect_uri, "response_type": "code",
                           "scope": "snsapi_base", "state": state})
        return f"{self.oauth_authorize_base}/connect/oauth2/authorize?{query}#wechat_redirect"

    def openid_for(self, code):
        """The payer's openid for the code the OAuth step returned; GatewayError when WeChat will not say."""
        if not self.app_secret:
            raise GatewayError("WECHATPAY_APP_SECRET is not set", code="gateway_auth")
        try:
            response = self.oauth_http.get(
                f"{self.oauth_api_base}/sns/oauth2/access_token", timeout=self.timeout,
                params={"appid": self.appid, "secret": self.app_secret, "code": code,
                        "grant_type": "authorization_code"})
            body = response.json()
        except requests.Timeout:
            raise GatewayError("WeChat's OAuth did not answer in time", code="gateway_timeout", retryable=True,
                               status=504) from None
        except (requests.RequestException, ValueError) as exc:
            raise GatewayError(f"WeChat's OAuth could not be read ({type(exc).__name__})",
                               code="gateway_unavailable", retryable=True) from None
        openid = body.get("openid") if isinstance(body, dict) else None
        if not isinstance(openid, str) or not 0 < len(openid) <= 128:
            errcode = body.get("errcode") if isinstance(body, dict) else None
            raise GatewayError("WeChat's OAuth gave no openid", code="oauth_refused", gateway_message=f"errcode {errcode}")
        return openid

    # -- Intents --------------------------------------------------------------------------------

    def create_intent(self, *, payment_id, amount, currency, idempotency_key, description=None, expires_at=None):
        """Record the order in the ledger; next_action places it at WeChat Pay once the payer's device is known.

        The intent id is the out_trade_no derived from FinePay's payment id, so
        the same payment always gets the same id (idempotent without the key).
        """
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive integer of minor units, not {amount!r}")
        if (currency or CURRENCY).upper() != CURRENCY:
            raise GatewayError("WeChat Pay takes CNY only", code="currency_not_supported", status=422)
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValueError("expires_at must be time zone aware")
        intent_id = intent_id_for(payment_id)
        with self._session() as ledger:
            order = ledger.get(WeChatPayOrder, intent_id)
            if order is None:
                order = WeChatPayOrder(
                    id=intent_id, payment_id=payment_id, amount=amount, currency=CURRENCY,
                    description=(description or DEFAULT_DESCRIPTION)[:DESCRIPTION_MAX], expires_at=expires_at,
                    orders_placed=0, canceled=False)
                ledger.add(order)
                try:
                    ledger.commit()
                except IntegrityError:  # created meanwhile by the same payment's other request
                    ledger.rollback()
                    order = ledger.get(WeChatPayOrder, intent_id)
        return GatewayIntent(id=order.id, status=REQUIRES_PAYMENT_METHOD, amount=order.amount,
                             currency=order.currency, payment_id=order.payment_id)

    def retrieve_intent(self, intent_id):
        """The order placed last, as WeChat Pay knows it; an order not placed yet awaits the payer."""
        order = self._order(intent_id)
        if order.out_trade_no is None:
            return self._intent(order, {"trade_state": "CLOSED" if order.canceled else "NOTPAY"})
        try:
            body = self._call("GET", f"/v3/pay/transactions/out-trade-no/{order.out_trade_no}?mchid={self.mchid}")
        except _Refused as refused:
            if refused.reason != "ORDER_NOT_EXIST":
                raise
            body = {"trade_state": "CLOSED" if order.canceled else "NOTPAY"}
        if body.get("trade_state") == "CLOSED" and not order.canceled and order.trade_type is None:
            # Closed by FinePay because the payer moved to another device; the next order is not placed yet.
            body = {**body, "trade_state": "NOTPAY"}
        if body.get("trade_state") == "PAYERROR" and order.trade_type is not None:
            self._forget(order)
        return self._intent(order, body)

    def _forget(self, order):
        """A failed order cannot be paid again: the next payer gets a new one (the failure is still reported)."""
        with self._session() as ledger, ledger.begin():
            current = self._locked(ledger, order.id)
            if current.out_trade_no == order.out_trade_no:
                current.trade_type = current.code_url = current.h5_url = current.prepay_id = current.openid = None

    def cancel_intent(self, intent_id, *, idempotency_key):
        """Close the order at WeChat Pay and place no other; returns it as it then is (a close finds a paid one paid)."""
        with self._session() as ledger, ledger.begin():
            order = self._locked(ledger, intent_id)
            order.canceled = True
            out_trade_no = order.out_trade_no
        if out_trade_no is not None:
            self._close(out_trade_no)
        return self.retrieve_intent(intent_id)

    def _intent(self, order, body):
        state = body.get("trade_state")
        status = _TRADE_STATES.get(state, PROCESSING)  # an unknown state is read again later
        amount = body.get("amount") if isinstance(body.get("amount"), dict) else {}
        desc = str(body.get("trade_state_desc") or "")
        return GatewayIntent(
            id=order.id, status=status, amount=order.amount, currency=order.currency,
            amount_received=int(amount.get("total") or order.amount) if status == SUCCEEDED else 0,
            payment_id=order.payment_id, charge_id=body.get("transaction_id") or None,
            failure_code=_decline_code(desc) if status == FAILED else None,
            failure_message=(desc[:200] or None) if status == FAILED else None,
        )

    # -- Placing orders -------------------------------------------------------------------------

    def _placed(self, intent_id, kind, openid):
        """The ledger's order for this kind of payer, placed at WeChat Pay now if it was not.

        An order of another kind is closed first: if the close finds it paid,
        that order stays and is shown again (the page then sees the payment
        succeed). Each placing takes the next out_trade_no, recorded before
        WeChat Pay is asked: one that failed or timed out may exist there with
        other parameters, and is never asked for again (nobody saw its link).
        """
        with self._session() as ledger, ledger.begin():
            order = self._locked(ledger, intent_id)
            if _fits(order, kind, openid) or order.canceled:
                return order
            if order.trade_type is not None:
                if self._kept_after_close(order.out_trade_no):
                    return order
                order.trade_type = order.code_url = order.h5_url = order.prepay_id = order.openid = None
            if order.orders_placed >= MAX_ORDERS:
                raise GatewayError("too many orders for one payment", code="too_many_orders", status=409)
            order.orders_placed = number = order.orders_placed + 1
        with self._session() as ledger, ledger.begin():
            order = self._locked(ledger, intent_id)
            if _fits(order, kind, openid) or order.canceled or order.orders_placed != number:
                return order  # another request placed (or is placing) the order meanwhile
            out_trade_no = order.id if number == 1 else f"{order.id}-{number}"
            body = self._call("POST", f"/v3/pay/transactions/{_ORDER_PATHS[kind]}",
                              self._order_body(order, out_trade_no, kind, openid))
            link = body.get(_ORDER_LINKS[kind])
            if not isinstance(link, str) or not link:
                raise GatewayError(f"WeChat Pay placed the {kind} order without {_ORDER_LINKS[kind]}",
                                   outcome_unknown=True)
            order.out_trade_no, order.trade_type, order.openid = out_trade_no, kind, openid
            setattr(order, _ORDER_LINKS[kind], link)
            return order

    def _kept_after_close(self, out_trade_no):
        """Close an order the payer moved away from; True when it turns out paid (or being paid), so it must stay."""
        self._close(out_trade_no)
        try:
            body = self._call("GET", f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={self.mchid}")
        except _Refused as refused:
            if refused.reason == "ORDER_NOT_EXIST":
                return False
            raise
        return body.get("trade_state") in ("SUCCESS", "REFUND", "USERPAYING")

    def _close(self, out_trade_no):
        try:
            self._call("POST", f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close", {"mchid": self.mchid})
        except _Refused as refused:
            # Paid, closed already or never placed (a placing that timed out): the query that follows says which.
            if refused.reason not in ("ORDERPAID", "ORDER_CLOSED", "ORDER_NOT_EXIST"):
                raise

    def _order_body(self, order, out_trade_no, kind, openid):
        body = {
            "appid": self.appid, "mchid": self.mchid, "description": order.description,
            "out_trade_no": out_trade_no, "notify_url": self._notify_url(),
            "amount": {"total": order.amount, "currency": order.currency},
        }
        if order.expires_at is not None:
            body["time_expire"] = rfc3339(order.expires_at)
        if kind == JSAPI:
            body["payer"] = {"openid": openid}
        elif kind == H5:
            address = request.remote_addr if has_request_context() else None
            body["scene_info"] = {"payer_client_ip": address or "127.0.0.1", "h5_info": {"type": "Wap"}}
        return body

    def _notify_url(self):
        if self.notify_url:
            return self.notify_url
        if self.public_base_url:
            return self.public_base_url + NOTIFY_PATH
        return url_for("webhooks.receive", gateway_name=self.name, _external=True)

    # -- Refunds --------------------------------------------------------------------------------

    def refund(self, intent_id, *, amount, idempotency_key, reason=None):
        """A domestic refund of the paid order; out_refund_no comes from the idempotency key, so a retry is one refund."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive integer of minor units, not {amount!r}")
        order = self._order(intent_id)
        if order.out_trade_no is None:
            raise GatewayError("no order was placed for this intent", code="nothing_to_refund", status=409)
        body = {
            "out_trade_no": order.out_trade_no, "out_refund_no": refund_number(idempotency_key),
            "notify_url": self._notify_url(),
            "amount": {"refund": amount, "total": order.amount, "currency": order.currency},
        }
        if reason:
            body["reason"] = str(reason)[:REASON_MAX]
        try:
            answer = self._call("POST", "/v3/refund/domestic/refunds", body)
        except _Refused as refused:
            if refused.reason == "NOT_ENOUGH":
                raise GatewayError("the merchant's balance cannot cover the refund", code="insufficient_balance",
                                   gateway_message=refused.gateway_message) from None
            raise
        return self._refund(intent_id, answer, body["out_refund_no"], amount)

    def retrieve_refund(self, intent_id, refund_id):
        """The refund as WeChat Pay knows it now (PROCESSING until the money is back)."""
        answer = self._call("GET", f"/v3/refund/domestic/refunds/{quote(refund_id, safe='')}")
        return self._refund(intent_id, answer, refund_id, None)

    def _refund(self, intent_id, answer, out_refund_no, amount):
        money = answer.get("amount") if isinstance(answer.get("amount"), dict) else {}
        return GatewayRefund(
            id=answer.get("out_refund_no") or out_refund_no, intent_id=intent_id,
            amount=int(money.get("refund") or amount or 0), currency=str(money.get("currency") or CURRENCY),
            status=_REFUND_STATUSES.get(answer.get("status"), "pending"),
        )

    # -- Notifications --------------------------------------------------------------------------

    def parse_webhook(self, payload, headers):
        """Verify a notification (signature over timestamp, nonce and body; 5 minutes old at most), decrypt its resource.

        The resource must name this merchant (and this app, for a payment) and
        an order in the ledger, for the amount the ledger holds.
        """
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        signed = _signature_headers(headers)
        if not signed["Wechatpay-Timestamp"].isdigit():
            raise WebhookVerificationError("the notification's timestamp is missing or malformed")
        if abs(self.clock() - int(signed["Wechatpay-Timestamp"])) > NOTIFICATION_TOLERANCE_SECONDS:
            raise WebhookVerificationError("the notification's timestamp is more than 5 minutes away")
        public_key_id = self.credentials.public_key_id
        if public_key_id and signed["Wechatpay-Serial"] != public_key_id:
            # Checked here: the library would go and fetch certificates for a serial it does not know.
            raise WebhookVerificationError("the notification is signed with a key FinePay does not know")
        try:
            notification = self.core.callback(signed, payload.decode("utf-8"))
        except Exception as exc:  # wechatpayv3 raises bare Exceptions for what it cannot read
            raise WebhookVerificationError(f"the notification could not be verified ({type(exc).__name__})") from None
        if not isinstance(notification, dict) or not isinstance(notification.get("resource"), dict):
            raise WebhookVerificationError("the notification's signature or encrypted resource does not check out")
        return self._event(notification)

    def _event(self, notification):
        resource, event_type = notification["resource"], str(notification.get("event_type") or "")
        if resource.get("mchid") != self.mchid:
            raise WebhookVerificationError("the notification is for another merchant")
        is_refund = event_type.startswith("REFUND.")
        if not is_refund and resource.get("appid") != self.appid:
            raise WebhookVerificationError("the notification is for another app")
        out_trade_no = resource.get("out_trade_no")
        order = self._order_for(out_trade_no) if isinstance(out_trade_no, str) else None
        if order is None:
            raise WebhookVerificationError("the notification names an order FinePay did not place")
        money = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
        if money.get("total") != order.amount:
            raise WebhookVerificationError("the notification's amount differs from the order's")
        if is_refund:
            amount, refund_id = money.get("refund"), resource.get("out_refund_no")
        else:
            amount, refund_id = money.get("total"), None
        return GatewayEvent(
            id=str(notification.get("id") or ""), type=event_type, intent_id=order.id, payment_id=order.payment_id,
            amount=amount if isinstance(amount, int) else None, refund_id=refund_id or None,
            data={"summary": notification.get("summary"), "state": resource.get("trade_state")
                  or resource.get("refund_status"), "out_trade_no": out_trade_no},
        )

    def webhook_reply(self, outcome):
        """WeChat Pay takes an empty 204 (or 200) as "received"; anything else, it sends again later."""
        return "", 204, {}

    def webhook_refusal(self, error):
        """A 4xx (5xx when FinePay could not act) with WeChat Pay's {"code": "FAIL", "message": ...}: it sends again."""
        status = error.status if 400 <= error.status < 600 else 400
        body = json.dumps({"code": "FAIL", "message": error.message}, ensure_ascii=False)
        return body, status, {"Content-Type": "application/json"}

    # -- The daily trade bill -------------------------------------------------------------------

    def list_transactions(self, start, end):
        """Charges and refunds in [start, end) from the ALL trade bill of every business day (China time) it covers."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("list_transactions needs time zone aware datetimes")
        transactions = []
        day, last = start.astimezone(CHINA).date(), (end - timedelta(microseconds=1)).astimezone(CHINA).date()
        while day <= last:
            transactions.extend(t for t in self._bill(day) if start <= t.created_at < end)
            day += timedelta(days=1)
        transactions.sort(key=lambda t: (t.created_at, t.kind, t.id))
        return transactions

    def _bill(self, day):
        try:
            answer = self._call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL&tar_type=GZIP")
        except _Refused as refused:
            if refused.reason in _NO_BILL:
                return []  # no transaction that day
            if refused.reason in _BILL_NOT_READY:
                raise BillNotReady(f"WeChat Pay's trade bill for {day.isoformat()} is not ready yet",
                                   gateway_message=refused.gateway_message) from None
            raise
        text = self._download(answer, day)
        return [t for t in (self._bill_line(row) for row in _bill_rows(text)) if t is not None]

    def _download(self, answer, day):
        url = answer.get("download_url")
        if not isinstance(url, str) or answer.get("hash_type", "SHA1") != "SHA1":
            raise GatewayError(f"WeChat Pay's answer for the {day.isoformat()} bill has no SHA1-checked download")
        if not url.startswith(self.base_url + "/"):
            # The download is a signed request: it goes to WeChat Pay's own host or nowhere.
            raise GatewayError(f"the {day.isoformat()} bill's download_url is not on {self.base_url}")
        path = url[len(self.base_url):]
        try:
            status, content = self.core.request(path, skip_verify=True)
        except requests.RequestException as exc:
            raise GatewayError(f"the {day.isoformat()} bill could not be downloaded ({type(exc).__name__})",
                               code="gateway_unavailable", retryable=True) from None
        if status != 200 or not isinstance(content, bytes):
            raise GatewayError(f"the {day.isoformat()} bill's download was refused ({status})",
                               code="gateway_unavailable", retryable=True)
        try:
            raw = gzip.decompress(content)
        except (OSError, EOFError, zlib.error):
            raise GatewayError(f"the {day.isoformat()} bill is not a gzip file") from None
        # The hash is of the bill itself, after gunzip.
        if hashlib.sha1(raw).hexdigest().lower() != str(answer.get("hash_value") or "").lower():
            raise GatewayError(f"the {day.isoformat()} bill does not match its SHA1: refused", code="bill_corrupt")
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise GatewayError(f"the {day.isoformat()} bill is not UTF-8 text", code="bill_corrupt") from None

    def _bill_line(self, row):
        if row[_MCHID] != self.mchid:
            raise GatewayError("WeChat Pay's bill holds another merchant's lines", code="bill_corrupt")
        created_at = datetime.strptime(row[_TIME], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
        order = self._order_for(row[_OUT_TRADE_NO_COL])
        common = {"intent_id": order.id if order else None, "payment_id": order.payment_id if order else None,
                  "currency": row[_BILL_CURRENCY] or CURRENCY, "created_at": created_at, "fee": fen(row[_FEE])}
        if row[_STATE] == "REFUND":
            status = _REFUND_STATUSES.get(row[_REFUND_STATUS], "pending")
            # Identified as refund() and retrieve_refund() identify it (out_refund_no), which is what the
            # ledger keeps; WeChat Pay's own refund id only for a refund made elsewhere without one.
            return GatewayTransaction(id=row[_OUT_REFUND_NO_COL] or row[_REFUND_ID], kind="refund",
                                      amount=fen(row[_REFUNDED]),
                                      status=SUCCEEDED if status == "succeeded" else status, **common)
        if row[_STATE] == "SUCCESS":
            return GatewayTransaction(id=row[_TRANSACTION_ID], kind="charge", amount=fen(row[_SETTLED]), **common)
        return None  # REVOKED and the like moved no money

    # -- The ledger -----------------------------------------------------------------------------

    @staticmethod
    def _session():
        # Its own transactions, like a gateway's own records: FinePay's rollback does not undo a placed order.
        return Session(db.engine, expire_on_commit=False)

    def _order(self, intent_id):
        with self._session() as ledger:
            order = ledger.get(WeChatPayOrder, intent_id)
        if order is None:
            raise GatewayError(f"no WeChat Pay order {intent_id!r}", code="no_such_intent", status=404)
        return order

    @staticmethod
    def _locked(ledger, intent_id):
        order = ledger.execute(select(WeChatPayOrder).where(WeChatPayOrder.id == intent_id)
                               .with_for_update()).scalar_one_or_none()
        if order is None:
            raise GatewayError(f"no WeChat Pay order {intent_id!r}", code="no_such_intent", status=404)
        return order

    def _order_for(self, out_trade_no):
        """The ledger's order for an out_trade_no (the intent id, with "-N" for a later order of the same intent)."""
        if not _OUT_TRADE_NO.fullmatch(out_trade_no or ""):
            return None
        with self._session() as ledger:
            return ledger.get(WeChatPayOrder, out_trade_no.partition("-")[0])

    # -- HTTP through wechatpayv3 ---------------------------------------------------------------

    @property
    def core(self):
        """wechatpayv3's signing and verifying core, built on first use (certificate mode may fetch certificates)."""
        if self._core is None:
            c = self.credentials
            try:
                self._core = _Core(self.base_url, mchid=c.mchid, cert_serial_no=c.cert_serial, private_key=c.private_key,
                                   apiv3_key=c.apiv3_key, cert_dir=c.cert_dir, timeout=self.timeout,
                                   public_key=c.public_key, public_key_id=c.public_key_id)
            except Exception as exc:  # no platform certificate could be had: nothing can be verified
                raise GatewayError(f"WeChat Pay's platform certificates could not be loaded ({type(exc).__name__})",
                                   code="gateway_unavailable", retryable=True, status=503) from None
        return self._core

    def _call(self, method, path, data=None):
        """One signed API call; the verified JSON answer, or GatewayError in FinePay's words."""
        is_post = method == "POST"
        try:
            status, text = self.core.request(path, method=RequestType[method], data=data)
        except requests.Timeout:
            raise GatewayError(f"WeChat Pay did not answer {method} {_endpoint(path)} in time", code="gateway_timeout",
                               retryable=True, outcome_unknown=is_post, status=504) from None
        except requests.ConnectionError as exc:
            raise GatewayError(f"could not reach WeChat Pay for {method} {_endpoint(path)} ({type(exc).__name__})",
                               code="gateway_unavailable", retryable=True, outcome_unknown=is_post, status=503) from None
        except requests.RequestException as exc:
            raise GatewayError(f"WeChat Pay's answer to {method} {_endpoint(path)} failed ({type(exc).__name__})",
                               code="gateway_unavailable", retryable=True, outcome_unknown=is_post) from None
        except Exception:  # wechatpayv3: the answer's signature does not check out
            raise GatewayError(f"WeChat Pay's answer to {method} {_endpoint(path)} is not signed by WeChat Pay",
                               code="gateway_unverified", retryable=True, outcome_unknown=is_post) from None
        body = _json_object(text)
        if 200 <= status < 300:
            return body or {}
        raise _error(method, path, status, body)


class _Refused(GatewayError):
    """WeChat Pay understood the request and said no; ``reason`` is its error code."""

    def __init__(self, message, reason, gateway_message):
        super().__init__(message, code="invalid_request", gateway_message=gateway_message)
        self.reason = reason


def _error(method, path, status, body):
    reason = str((body or {}).get("code") or "")
    gateway_message = f"{reason}: {(body or {}).get('message') or ''}"[:300]
    where = f"{method} {_endpoint(path)}"
    if reason == "SIGN_ERROR" or status == 401:
        return GatewayError(f"WeChat Pay refused FinePay's signature for {where}", code="gateway_auth",
                            gateway_message=gateway_message)
    if reason in _BUSY or status == 429 or status >= 500:
        refused_before_running = reason in ("FREQUENCY_LIMITED", "FREQUENCY_LIMIT_EXCEED") or status == 429
        return GatewayError(f"WeChat Pay is busy ({reason or status}) for {where}", code="gateway_unavailable",
                            gateway_message=gateway_message, retryable=True,
                            outcome_unknown=method == "POST" and not refused_before_running, status=503)
    return _Refused(f"WeChat Pay refused {where} ({reason or status})", reason, gateway_message)


def _endpoint(path):
    """The path without its query and ids, for messages (an out_trade_no leads to a payment)."""
    return re.sub(r"(/out-trade-no|/refunds)/[^/]+", r"\1/…", path.partition("?")[0])


def _json_object(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        body = json.loads(text) if text else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _fits(order, kind, openid):
    """Whether the order placed last can serve this payer as it is (JSAPI: for the same WeChat user)."""
    return order.trade_type == kind and getattr(order, _ORDER_LINKS[kind]) and (kind != JSAPI or order.openid == openid)


def _decline_code(description):
    return "insufficient_funds" if ("余额不足" in description or "NOT_ENOUGH" in description) else "processing_error"


def _signature_headers(headers):
    """The notification's signing headers under the names wechatpayv3 reads, whatever case they came in."""
    names = ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial",
             "Wechatpay-Signature-Type")
    lowered = {str(k).lower(): str(v) for k, v in (headers.items() if hasattr(headers, "items") else [])}
    signed = {name: lowered.get(name.lower(), "") for name in names}
    missing = [name for name in names[:4] if not signed[name]]
    if missing:
        raise WebhookVerificationError(f"the notification lacks {', '.join(missing)}")
    return signed


def _bill_rows(text):
    """The bill's transaction rows: every value without its leading backtick; the summary rows left out."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or len(rows[0]) != BILL_COLUMNS:
        raise GatewayError(f"WeChat Pay's trade bill does not have the {BILL_COLUMNS} columns of an ALL bill",
                           code="bill_corrupt")
    lines = []
    for row in rows[1:]:
        if len(row) != BILL_COLUMNS:
            break  # the summary: its own header, then its totals
        lines.append([value.strip().removeprefix("`") for value in row])
    return lines


def fen(yuan):
    """Minor units (fen) of a bill's yuan amount ("12.34", "-0.01"); Decimal, never float."""
    try:
        return int((Decimal(yuan or "0") * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation:
        raise GatewayError(f"WeChat Pay's bill holds an amount that is not a number: {yuan!r}",
                           code="bill_corrupt") from None


def rfc3339(moment):
    """WeChat Pay's time format, in China time: 2026-11-30T20:30:00+08:00."""
    return moment.astimezone(CHINA).replace(microsecond=0).isoformat()


def intent_id_for(payment_id):
    """The intent id (and first out_trade_no) for a FinePay payment: the id itself when it fits WeChat's rules."""
    if _INTENT_ID.fullmatch(payment_id):
        return payment_id
    return "fp" + hashlib.sha256(payment_id.encode("utf-8")).hexdigest()[:27]


def refund_number(idempotency_key):
    """The out_refund_no for a refund: the idempotency key when it fits WeChat's rules, else its digest."""
    key = str(idempotency_key)
    if _OUT_REFUND_NO.fullmatch(key):
        return key
    return "fr" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
