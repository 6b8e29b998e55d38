"""The WeChat Pay adapter against a small in-process fake of API v3 that signs and checks like the real service.

wechatpayv3 itself signs the adapter's requests and verifies the fake's
answers: the fake checks each request's Authorization with the merchant's
public key and signs each answer with its own platform key, so a request or
an answer that is not signed right fails here as it would at WeChat Pay.
"""
import base64
import gzip
import hashlib
import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from json import dumps
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from flask import render_template, session
from requests.structures import CaseInsensitiveDict
from wechatpayv3.utils import rsa_sign

from finepay.settings import SettingsError
from payments.gateways import (
    CANCELED,
    FAILED,
    IN_APP,
    PROCESSING,
    REDIRECT,
    REQUIRES_PAYMENT_METHOD,
    SCAN_QR,
    SUCCEEDED,
    SURFACE_BROWSER,
    SURFACE_KIOSK,
    BillNotReady,
    GatewayError,
    Payer,
    WebhookVerificationError,
    gateway_named,
    return_url,
)
from payments.gateways.wechatpay.adapter import fen, intent_id_for, refund_number, rfc3339
from payments.gateways.wechatpay.views import OPENID_SESSION_KEY
from tests.conftest import make_app
from tests.migrations import model_diffs

MCHID, APPID, SERIAL, PUBLIC_KEY_ID = "1900000109", "wx8888888888888888", "5157F09EFDC096DE15EBE81A47057A72", "PUB_KEY_ID_0114232134912410000000000001"
APIV3_KEY = "a" * 16 + "b" * 16
CHINA = ZoneInfo("Asia/Shanghai")
DESKTOP = Payer(SURFACE_BROWSER, "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0")
PHONE = Payer(SURFACE_BROWSER, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1")
IN_WECHAT = Payer(SURFACE_BROWSER, "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36 MicroMessenger/8.0.47")
KIOSK = Payer(SURFACE_KIOSK, "FinePay kiosk")


def _rsa_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
            key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode(), key)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """The merchant's key pair and WeChat Pay's platform key pair, on disk as the settings name them."""
    folder = tmp_path_factory.mktemp("wechatpay-keys")
    merchant_pem, merchant_public, merchant = _rsa_pair()
    platform_pem, platform_public, platform = _rsa_pair()
    (folder / "apiclient_key.pem").write_text(merchant_pem)
    (folder / "pub_key.pem").write_text(platform_public)
    return SimpleNamespace(folder=folder, merchant=merchant, platform=platform, merchant_pem=merchant_pem,
                           private_key_file=str(folder / "apiclient_key.pem"), public_key_file=str(folder / "pub_key.pem"))


def settings(keys, **overrides):
    """A configured WeChat Pay adapter in public key mode, pointed at the fake."""
    return {
        "PAYMENT_GATEWAY": "wechatpay", "PAYMENT_GATEWAYS": "wechatpay",
        "WECHATPAY_MCHID": MCHID, "WECHATPAY_APPID": APPID, "WECHATPAY_APP_SECRET": "app-secret-for-oauth",
        "WECHATPAY_PRIVATE_KEY_FILE": keys.private_key_file, "WECHATPAY_CERT_SERIAL": SERIAL,
        "WECHATPAY_APIV3_KEY": APIV3_KEY, "WECHATPAY_PUBLIC_KEY_FILE": keys.public_key_file,
        "WECHATPAY_PUBLIC_KEY_ID": PUBLIC_KEY_ID, "WECHATPAY_BASE_URL": FakeWeChatPay.base_url,
        "WECHATPAY_OAUTH_BASE_URL": "https://oauth.example.test", "PUBLIC_BASE_URL": "https://pay.example.test",
        **overrides,
    }


@pytest.fixture
def app_config(keys):
    return settings(keys)


class FakeResponse:
    """Just what wechatpayv3's Core reads of a requests.Response."""

    def __init__(self, status_code, body, headers):
        self.status_code, self.headers = status_code, CaseInsensitiveDict(headers)
        self.content = body
        self.text = body.decode("utf-8", "replace")


class FakeWeChatPay:
    """Orders, refunds and bills as API v3 keeps them; every request's signature checked, every answer signed."""

    base_url = "https://wechatpay.fake.test"

    def __init__(self, keys):
        self.keys = keys
        self.orders, self.refunds, self.bills, self.requests = {}, {}, {}, []
        self.faults = []  # (status, code) answers or exceptions for the next requests, in order
        self.sign_answers_with = keys.platform
        self.download_host = self.base_url

    # requests' functions, as wechatpayv3's Core calls them
    def get(self, url, headers, **_):
        return self._answer("GET", url, headers, "")

    def post(self, url, headers, json=None, **_):
        return self._answer("POST", url, headers, dumps(json) if json is not None else "")

    def _answer(self, method, url, headers, body):
        path = url[len(self.base_url):]
        self.requests.append((method, path, json.loads(body) if body else None))
        if not self._signed_by_merchant(method, path, body, headers.get("Authorization", "")):
            return self._reply(401, {"code": "SIGN_ERROR", "message": "签名错误"})
        if self.faults:
            fault = self.faults.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return self._reply(fault[0], {"code": fault[1], "message": fault[1].lower()})
        return self._route(method, urlsplit(path), json.loads(body) if body else None)

    def _signed_by_merchant(self, method, path, body, authorization):
        scheme, _, fields = authorization.partition(" ")
        parts = {k: v.strip('"') for k, v in (part.split("=", 1) for part in fields.split(","))}
        signed = f"{method}\n{path}\n{parts['timestamp']}\n{parts['nonce_str']}\n{body}\n".encode()
        try:
            self.keys.merchant.public_key().verify(base64.b64decode(parts["signature"]), signed, PKCS1v15(), SHA256())
        except InvalidSignature:
            return False
        return scheme == "WECHATPAY2-SHA256-RSA2048" and parts["mchid"] == MCHID and parts["serial_no"] == SERIAL

    def _route(self, method, url, body):
        path = url.path
        if method == "POST" and path.startswith("/v3/pay/transactions/") and "/out-trade-no/" not in path:
            return self._place(path.rsplit("/", 1)[1].upper(), body)
        if path.startswith("/v3/pay/transactions/out-trade-no/"):
            out_trade_no = path.split("/")[5]
            order = self.orders.get(out_trade_no)
            if order is None:
                return self._reply(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            if path.endswith("/close"):
                if order["trade_state"] == "SUCCESS":
                    return self._reply(400, {"code": "ORDERPAID", "message": "订单已支付"})
                order["trade_state"] = "CLOSED"
                return self._reply(204, None)
            return self._reply(200, order)
        if path == "/v3/refund/domestic/refunds":
            refund = {"refund_id": "50" + secrets.token_hex(8), "out_refund_no": body["out_refund_no"],
                      "out_trade_no": body["out_trade_no"], "status": "PROCESSING", "amount": body["amount"]}
            self.refunds.setdefault(body["out_refund_no"], refund)
            return self._reply(200, self.refunds[body["out_refund_no"]])
        if path.startswith("/v3/refund/domestic/refunds/"):
            refund = self.refunds.get(path.rsplit("/", 1)[1])
            return self._reply(200, refund) if refund else self._reply(404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
        if path == "/v3/bill/tradebill":
            day = parse_qs(url.query)["bill_date"][0]
            bill = self.bills.get(day)
            if bill is None:
                return self._reply(400, {"code": "NO_STATEMENT_EXIST", "message": "账单不存在"})
            if bill == "creating":
                return self._reply(400, {"code": "STATEMENT_CREATING", "message": "账单生成中"})
            raw, digest = bill
            return self._reply(200, {"hash_type": "SHA1", "hash_value": digest,
                                     "download_url": f"{self.download_host}/v3/billdownload/file?token={day}"})
        if path == "/v3/billdownload/file":
            raw, _digest = self.bills[parse_qs(url.query)["token"][0]]
            return FakeResponse(200, gzip.compress(raw), {"Content-Type": "application/octet-stream"})
        return self._reply(404, {"code": "NOT_FOUND", "message": path})

    def _place(self, trade_type, body):
        assert body["mchid"] == MCHID and body["appid"] == APPID
        order = self.orders.get(body["out_trade_no"])
        if order is not None and order["trade_type"] != trade_type:
            return self._reply(400, {"code": "INVALID_REQUEST", "message": "商户订单号重复"})
        if order is None:
            order = self.orders[body["out_trade_no"]] = {
                "appid": APPID, "mchid": MCHID, "out_trade_no": body["out_trade_no"], "trade_type": trade_type,
                "trade_state": "NOTPAY", "trade_state_desc": "订单未支付", "amount": {"total": body["amount"]["total"],
                "currency": "CNY"}, "request": body, "link": secrets.token_hex(8),
            }
        link = order["link"]
        if trade_type == "NATIVE":
            return self._reply(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={link}"})
        if trade_type == "H5":
            return self._reply(200, {"h5_url": f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx{link}"})
        return self._reply(200, {"prepay_id": f"wx{link}"})

    def pay(self, out_trade_no, state="SUCCESS", desc="支付成功"):
        """The payer pays (or fails to) on their phone."""
        order = self.orders[out_trade_no]
        order.update(trade_state=state, trade_state_desc=desc)
        if state == "SUCCESS":
            order.update(transaction_id="4200" + secrets.token_hex(10), amount={**order["amount"],
                         "payer_total": order["amount"]["total"]})

    def _reply(self, status, body):
        text = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = rsa_sign(self.sign_answers_with, f"{timestamp}\n{nonce}\n{text.decode()}\n")
        return FakeResponse(status, text, {
            "Content-Type": "application/json", "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature, "Wechatpay-Serial": PUBLIC_KEY_ID,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"})


@pytest.fixture
def wechat(app, keys, monkeypatch):
    """The fake, standing where wechatpayv3 sends its requests."""
    fake = FakeWeChatPay(keys)
    monkeypatch.setattr("wechatpayv3.core.requests", SimpleNamespace(get=fake.get, post=fake.post))
    return fake


@pytest.fixture
def gateway(app, wechat):
    return gateway_named("wechatpay")


def open_payment(gateway, amount=5000, expires_at=None, payment_id=None):
    """A FinePay payment with its intent recorded, as the payments service makes one."""
    payment_id = payment_id or "pay_" + secrets.token_hex(12)
    expires_at = expires_at or datetime.now(UTC) + timedelta(minutes=30)
    intent = gateway.create_intent(payment_id=payment_id, amount=amount, currency="CNY",
                                   idempotency_key=f"{payment_id}:create", expires_at=expires_at)
    return SimpleNamespace(id=payment_id, gateway_intent_id=intent.id, amount=amount, currency="CNY", intent=intent)


def ask(app, gateway, payment, payer, openid=None):
    """What the pay page would get for this payer (in a request from them)."""
    with app.test_request_context(headers={"User-Agent": payer.user_agent}, environ_base={"REMOTE_ADDR": "203.0.113.9"}):
        if openid:
            session[OPENID_SESSION_KEY] = openid
        return gateway.next_action(payment, payer)


def placed(wechat, kind):
    """The bodies of the orders FinePay placed of this kind."""
    return [body for method, path, body in wechat.requests if method == "POST" and path == f"/v3/pay/transactions/{kind}"]


def notification(keys, resource, event_type="TRANSACTION.SUCCESS", *, age=0, signing_key=None,
                 serial=PUBLIC_KEY_ID, event_id=None):
    """A notification as WeChat Pay sends one: the resource sealed with the APIv3 key, the whole signed."""
    nonce = secrets.token_hex(6)
    sealed = AESGCM(APIV3_KEY.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), b"transaction")
    body = json.dumps({
        "id": event_id or "EV-" + secrets.token_hex(8), "create_time": "2026-11-30T20:00:00+08:00",
        "resource_type": "encrypt-resource", "event_type": event_type, "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM", "associated_data": "transaction",
                     "nonce": nonce, "ciphertext": base64.b64encode(sealed).decode()},
    })
    timestamp, header_nonce = str(int(time.time()) - age), secrets.token_hex(16)
    signature = rsa_sign(signing_key or keys.platform, f"{timestamp}\n{header_nonce}\n{body}\n")
    return body.encode(), {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": header_nonce,
                           "Wechatpay-Signature": signature, "Wechatpay-Serial": serial,
                           "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


def paid_resource(payment, out_trade_no=None, **changes):
    return {"appid": APPID, "mchid": MCHID, "out_trade_no": out_trade_no or payment.gateway_intent_id,
            "transaction_id": "4200000001", "trade_type": "NATIVE", "trade_state": "SUCCESS",
            "amount": {"total": payment.amount, "payer_total": payment.amount, "currency": "CNY"}, **changes}


# -- Settings and keys ---------------------------------------------------------------------------


def test_the_adapter_is_labelled_serves_browsers_and_kiosks_and_is_simulated_only_when_told(app, gateway, keys):
    assert str(gateway.label) == "WeChat Pay"
    assert gateway.serves(DESKTOP) and gateway.serves(PHONE) and gateway.serves(IN_WECHAT) and gateway.serves(KIOSK)
    assert gateway.simulated is False
    assert gateway.intent_event_types == {"TRANSACTION.SUCCESS"}
    assert "REFUND.SUCCESS" in gateway.refund_event_types
    simulated = make_app(app.config["SQLALCHEMY_DATABASE_URI"], **settings(keys, WECHATPAY_SIMULATED=True))
    with simulated.app_context():
        assert gateway_named("wechatpay").simulated is True


def test_a_simulated_adapter_brings_the_simulators_bridge_into_the_page(database_url, keys, monkeypatch):
    app = make_app(database_url, **settings(keys, WECHATPAY_SIMULATED=True))
    fake = FakeWeChatPay(keys)
    monkeypatch.setattr("wechatpayv3.core.requests", SimpleNamespace(get=fake.get, post=fake.post))
    with app.app_context():
        gateway = gateway_named("wechatpay")
        payment = open_payment(gateway)
        action = ask(app, gateway, payment, IN_WECHAT, openid="oPayer123")
        with app.test_request_context():
            html = render_template("wechatpay/jsapi.html", payment=payment, action=action)
    bridge = f"{FakeWeChatPay.base_url}/simulator/jsbridge.js"
    assert html.index(bridge) < html.index("/static/gateways/wechatpay/jsapi.js")
    policy = app.test_client().get("/").headers["Content-Security-Policy"]
    assert FakeWeChatPay.base_url in policy.split("script-src", 1)[1].split(";")[0]
    assert FakeWeChatPay.base_url in policy.split("connect-src", 1)[1].split(";")[0]


@pytest.mark.parametrize(("change", "setting"), [
    ({"WECHATPAY_PRIVATE_KEY_FILE": "/nonexistent/apiclient_key.pem"}, "WECHATPAY_PRIVATE_KEY_FILE"),
    ({"WECHATPAY_PRIVATE_KEY_FILE": ""}, "WECHATPAY_PRIVATE_KEY_FILE"),
    ({"WECHATPAY_MCHID": "merchant"}, "WECHATPAY_MCHID"),
    ({"WECHATPAY_CERT_SERIAL": ""}, "WECHATPAY_CERT_SERIAL"),
    ({"WECHATPAY_APPID": ""}, "WECHATPAY_APPID"),
    ({"WECHATPAY_APIV3_KEY": "too-short"}, "WECHATPAY_APIV3_KEY"),
    ({"WECHATPAY_APIV3_KEY": ""}, "WECHATPAY_APIV3_KEY"),
    ({"WECHATPAY_PUBLIC_KEY_ID": "not-a-key-id"}, "WECHATPAY_PUBLIC_KEY_ID"),
    ({"WECHATPAY_PUBLIC_KEY_FILE": "", "WECHATPAY_PUBLIC_KEY_ID": ""}, "WECHATPAY_CERT_DIR"),
])
def test_missing_or_malformed_keys_stop_the_app_naming_the_setting(database_url, keys, change, setting):
    with pytest.raises(SettingsError, match=setting):
        make_app(database_url, **settings(keys, **change))


def test_a_file_that_is_not_a_key_is_refused_without_showing_what_it_holds(database_url, keys, tmp_path):
    garbage = tmp_path / "not-a-key.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3QtYS1rZXk=\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SettingsError, match="WECHATPAY_PRIVATE_KEY_FILE") as refused:
        make_app(database_url, **settings(keys, WECHATPAY_PRIVATE_KEY_FILE=str(garbage)))
    assert "c2VjcmV0" not in str(refused.value)
    public_as_private = settings(keys, WECHATPAY_PRIVATE_KEY_FILE=keys.public_key_file)
    with pytest.raises(SettingsError, match="WECHATPAY_PRIVATE_KEY_FILE"):
        make_app(database_url, **public_as_private)


def test_the_apiv3_key_may_come_from_a_file_and_is_masked_in_logs(database_url, keys, tmp_path):
    key_file = tmp_path / "apiv3.key"
    key_file.write_text(APIV3_KEY + "\n")
    app = make_app(database_url, **settings(keys, WECHATPAY_APIV3_KEY="", WECHATPAY_APIV3_KEY_FILE=str(key_file)))
    with app.app_context():
        credentials = gateway_named("wechatpay").credentials
        assert credentials.apiv3_key == APIV3_KEY
        assert APIV3_KEY not in repr(credentials) and "PRIVATE KEY" not in repr(credentials)
    assert app.extensions["finepay.redactor"](f"key {APIV3_KEY}") == "key [redacted]"


# -- Intents and orders --------------------------------------------------------------------------


def test_an_intent_is_recorded_under_an_out_trade_no_made_from_the_payment_id(gateway, wechat):
    payment = open_payment(gateway)
    assert payment.intent.id == payment.id and payment.intent.status == REQUIRES_PAYMENT_METHOD
    assert gateway.create_intent(payment_id=payment.id, amount=5000, currency="CNY", idempotency_key="again").id == payment.id
    assert wechat.requests == []  # nothing is placed before the payer's device is known
    assert gateway.retrieve_intent(payment.id).status == REQUIRES_PAYMENT_METHOD


def test_out_trade_numbers_and_refund_numbers_keep_to_wechats_rules():
    assert intent_id_for("pay_0123456789abcdef01234567") == "pay_0123456789abcdef01234567"
    for odd in ("pay:with:colons", "x", "支付-1", "p" * 40):
        derived = intent_id_for(odd)
        assert 6 <= len(derived) <= 29 and derived.isalnum() and derived == intent_id_for(odd)
    assert refund_number("refund-7") == "refund-7"
    assert refund_number("pay_1:refund:2") != refund_number("pay_1:refund:3")
    assert all(c.isalnum() for c in refund_number("pay_1:refund:2")) and len(refund_number("x:" * 50)) <= 64


def test_a_computer_gets_a_native_qr_code_that_expires_with_the_quote(app, gateway, wechat):
    expires = datetime(2026, 12, 1, 12, 30, 15, 999, tzinfo=UTC)
    payment = open_payment(gateway, expires_at=expires)

    action = ask(app, gateway, payment, DESKTOP)

    assert action.kind == SCAN_QR and action.qr_payload.startswith("weixin://wxpay/bizpayurl?pr=")
    [order] = placed(wechat, "native")
    assert order["out_trade_no"] == payment.id and order["amount"] == {"total": 5000, "currency": "CNY"}
    assert order["time_expire"] == "2026-12-01T20:30:15+08:00"
    assert order["notify_url"] == "https://pay.example.test/webhooks/wechatpay"
    # The same kind of payer gets the same order back, without asking WeChat Pay again.
    assert ask(app, gateway, payment, DESKTOP).qr_payload == action.qr_payload
    assert ask(app, gateway, payment, KIOSK).qr_payload == action.qr_payload
    assert len(placed(wechat, "native")) == 1


def test_a_phone_browser_is_sent_to_h5_and_back_to_the_payment(app, gateway, wechat):
    payment = open_payment(gateway)

    action = ask(app, gateway, payment, PHONE)

    assert action.kind == REDIRECT
    url, _, back = action.url.partition("&redirect_url=")
    assert url.startswith("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx")
    with app.test_request_context():
        assert parse_qs("r=" + back)["r"][0] == return_url(payment.id)
    [order] = placed(wechat, "h5")
    assert order["scene_info"] == {"payer_client_ip": "203.0.113.9", "h5_info": {"type": "Wap"}}


def test_inside_wechat_the_payer_signs_in_with_the_official_account_then_pays_in_app(app, gateway, wechat, keys):
    payment = open_payment(gateway)
    client = app.test_client()

    first = ask(app, gateway, payment, IN_WECHAT)
    assert first.kind == REDIRECT and first.url == f"/wechatpay/oauth/{payment.id}"
    authorize = client.get(first.url, headers={"User-Agent": IN_WECHAT.user_agent})
    assert authorize.status_code == 302
    target = urlsplit(authorize.location)
    query = parse_qs(target.query)
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://oauth.example.test/connect/oauth2/authorize"
    assert query["appid"] == [APPID] and query["scope"] == ["snsapi_base"] and target.fragment == "wechat_redirect"
    asked = []
    gateway.oauth_http = SimpleNamespace(get=lambda url, params, timeout: asked.append((url, params)) or SimpleNamespace(
        json=lambda: {"access_token": "t", "openid": "oPayer123", "scope": "snsapi_base"}))
    back = client.get("/wechatpay/oauth/return", query_string={"code": "CODE1", "state": query["state"][0]})
    with app.test_request_context():
        assert back.status_code == 302 and back.location == return_url(payment.id, external=False)
    assert asked == [("https://oauth.example.test/sns/oauth2/access_token", {
        "appid": APPID, "secret": "app-secret-for-oauth", "code": "CODE1", "grant_type": "authorization_code"})]
    with client.session_transaction() as kept:
        assert kept[OPENID_SESSION_KEY] == "oPayer123"

    action = ask(app, gateway, payment, IN_WECHAT, openid="oPayer123")

    assert action.kind == IN_APP and action.fragment == "wechatpay/jsapi.html"
    [order] = placed(wechat, "jsapi")
    assert order["payer"] == {"openid": "oPayer123"}
    params = action.params
    assert params["appId"] == APPID and params["signType"] == "RSA" and params["package"].startswith("prepay_id=wx")
    signed = "\n".join([params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]) + "\n"
    keys.merchant.public_key().verify(base64.b64decode(params["paySign"]), signed.encode(), PKCS1v15(), SHA256())


def test_the_oauth_return_refuses_a_state_it_did_not_hand_out(app, gateway):
    client = app.test_client()
    client.get("/wechatpay/oauth/pay_abc123")
    refused = client.get("/wechatpay/oauth/return", query_string={"code": "CODE1", "state": "forged"})
    assert refused.status_code == 400
    with client.session_transaction() as kept:
        assert OPENID_SESSION_KEY not in kept


def test_the_jsapi_fragment_hands_the_params_to_the_bridge_without_inline_script(app, gateway, wechat):
    payment = open_payment(gateway)
    action = ask(app, gateway, payment, IN_WECHAT, openid="oPayer123")
    with app.test_request_context():
        html = render_template("wechatpay/jsapi.html", payment=payment, action=action)
    assert "/static/gateways/wechatpay/jsapi.js" in html and "onclick" not in html and "<script>" not in html
    assert "jsbridge.js" not in html and action.poll_seconds is None  # WeChat injects the bridge; no reload under it
    [attribute] = re.findall(r'data-params="([^"]*)"', html)
    assert json.loads(unescape(attribute)) == dict(action.params)


def test_a_payer_moving_to_another_device_gets_a_new_order_once_the_old_one_is_closed(app, gateway, wechat):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)

    action = ask(app, gateway, payment, PHONE)

    assert action.kind == REDIRECT
    assert wechat.orders[payment.id]["trade_state"] == "CLOSED"
    assert [body["out_trade_no"] for body in placed(wechat, "h5")] == [f"{payment.id}-2"]
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == REQUIRES_PAYMENT_METHOD
    wechat.pay(f"{payment.id}-2")
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == SUCCEEDED


def test_an_order_paid_while_the_payer_moved_stays_and_no_second_one_opens(app, gateway, wechat):
    payment = open_payment(gateway)
    first = ask(app, gateway, payment, DESKTOP)
    wechat.pay(payment.id)

    again = ask(app, gateway, payment, PHONE)

    assert again == first and placed(wechat, "h5") == []
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == SUCCEEDED


@pytest.mark.parametrize(("state", "desc", "status", "failure"), [
    ("NOTPAY", "订单未支付", REQUIRES_PAYMENT_METHOD, None),
    ("USERPAYING", "用户支付中", PROCESSING, None),
    ("CLOSED", "已关闭", CANCELED, None),
    ("PAYERROR", "支付失败，余额不足", FAILED, "insufficient_funds"),
    ("PAYERROR", "支付失败", FAILED, "processing_error"),
])
def test_the_order_state_in_finepays_words(app, gateway, wechat, state, desc, status, failure):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)
    wechat.pay(payment.id, state, desc)

    intent = gateway.retrieve_intent(payment.gateway_intent_id)

    assert (intent.status, intent.failure_code, intent.amount_received) == (status, failure, 0)
    assert intent.payment_id == payment.id


def test_a_paid_order_says_how_much_was_received(app, gateway, wechat):
    payment = open_payment(gateway, amount=12345)
    ask(app, gateway, payment, DESKTOP)
    wechat.pay(payment.id)

    intent = gateway.retrieve_intent(payment.gateway_intent_id)

    assert (intent.status, intent.amount_received) == (SUCCEEDED, 12345)
    assert intent.charge_id == wechat.orders[payment.id]["transaction_id"]


def test_an_order_wechat_does_not_know_awaits_the_payer(app, gateway, wechat):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)
    del wechat.orders[payment.id]  # the placing timed out before WeChat Pay kept it
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == REQUIRES_PAYMENT_METHOD


def test_cancel_closes_the_order_and_no_other_is_placed(app, gateway, wechat):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)

    intent = gateway.cancel_intent(payment.gateway_intent_id, idempotency_key="c1")

    assert intent.status == CANCELED and wechat.orders[payment.id]["trade_state"] == "CLOSED"
    assert ask(app, gateway, payment, PHONE) is None and placed(wechat, "h5") == []


def test_cancel_before_any_order_was_placed_cancels_it_for_good(app, gateway, wechat):
    payment = open_payment(gateway)
    assert gateway.cancel_intent(payment.gateway_intent_id, idempotency_key="c1").status == CANCELED
    assert ask(app, gateway, payment, DESKTOP) is None and wechat.requests == []


def test_a_close_that_finds_the_order_paid_returns_it_succeeded(app, gateway, wechat):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)
    wechat.pay(payment.id)
    assert gateway.cancel_intent(payment.gateway_intent_id, idempotency_key="c1").status == SUCCEEDED


# -- Refunds -------------------------------------------------------------------------------------


def test_a_refund_is_pending_until_wechat_says_it_succeeded(app, gateway, wechat):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)
    wechat.pay(payment.id)

    refund = gateway.refund(payment.gateway_intent_id, amount=2000, idempotency_key=f"{payment.id}:refund:1",
                            reason="duplicate payment")

    sent = wechat.requests[-1][2]
    assert sent["out_refund_no"] == refund.id == refund_number(f"{payment.id}:refund:1")
    assert sent["amount"] == {"refund": 2000, "total": 5000, "currency": "CNY"} and sent["reason"] == "duplicate payment"
    assert (refund.status, refund.amount, refund.intent_id) == ("pending", 2000, payment.gateway_intent_id)
    wechat.refunds[refund.id]["status"] = "SUCCESS"
    assert gateway.retrieve_refund(payment.gateway_intent_id, refund.id).status == "succeeded"
    # The same key is the same refund at WeChat Pay.
    assert gateway.refund(payment.gateway_intent_id, amount=2000, idempotency_key=f"{payment.id}:refund:1").id == refund.id
    assert len(wechat.refunds) == 1


def test_a_refund_the_balance_cannot_cover_is_refused(app, gateway, wechat):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)
    wechat.faults.append((403, "NOT_ENOUGH"))
    with pytest.raises(GatewayError) as refused:
        gateway.refund(payment.gateway_intent_id, amount=100, idempotency_key="r1")
    assert refused.value.code == "insufficient_balance" and refused.value.refused


@pytest.mark.parametrize(("fault", "code", "retryable", "unknown"), [
    ((500, "SYSTEM_ERROR"), "gateway_unavailable", True, True),
    ((429, "FREQUENCY_LIMITED"), "gateway_unavailable", True, False),
    ((401, "SIGN_ERROR"), "gateway_auth", False, False),
    (requests.ReadTimeout("read timed out"), "gateway_timeout", True, True),
    (requests.ConnectionError("refused"), "gateway_unavailable", True, True),
])
def test_wechat_errors_in_finepays_words(app, gateway, wechat, fault, code, retryable, unknown):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)
    wechat.faults.append(fault)
    with pytest.raises(GatewayError) as error:
        gateway.refund(payment.gateway_intent_id, amount=100, idempotency_key="r1")
    assert (error.value.code, error.value.retryable, error.value.outcome_unknown) == (code, retryable, unknown)
    assert not error.value.refused


def test_a_timed_out_query_is_retryable_and_changed_nothing(app, gateway, wechat):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)
    wechat.faults.append(requests.ReadTimeout("read timed out"))
    with pytest.raises(GatewayError) as error:
        gateway.retrieve_intent(payment.gateway_intent_id)
    assert error.value.retryable and not error.value.outcome_unknown


def test_an_answer_not_signed_by_wechat_pay_is_not_believed(app, gateway, wechat):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)
    wechat.pay(payment.id)
    wechat.sign_answers_with = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(GatewayError) as error:
        gateway.retrieve_intent(payment.gateway_intent_id)
    assert error.value.code == "gateway_unverified"


# -- Notifications -------------------------------------------------------------------------------


def test_a_payment_notification_is_verified_decrypted_and_read(app, gateway, wechat, keys):
    payment = open_payment(gateway)
    body, headers = notification(keys, paid_resource(payment), event_id="EV-0001")

    event = gateway.parse_webhook(body, headers)

    assert (event.id, event.type, event.intent_id, event.payment_id) == ("EV-0001", "TRANSACTION.SUCCESS",
                                                                          payment.gateway_intent_id, payment.id)
    assert event.amount == 5000 and event.refund_id is None
    assert event.type in gateway.intent_event_types


def test_a_notification_for_a_later_order_of_the_payment_names_its_intent(app, gateway, wechat, keys):
    payment = open_payment(gateway)
    body, headers = notification(keys, paid_resource(payment, out_trade_no=f"{payment.id}-2"))
    assert gateway.parse_webhook(body, headers).intent_id == payment.gateway_intent_id


def test_a_refund_notification_names_the_refund(app, gateway, wechat, keys):
    payment = open_payment(gateway)
    resource = {"mchid": MCHID, "out_trade_no": payment.id, "out_refund_no": "refund-1", "refund_status": "SUCCESS",
                "amount": {"total": 5000, "refund": 2000, "payer_total": 5000, "payer_refund": 2000}}
    event = gateway.parse_webhook(*notification(keys, resource, "REFUND.SUCCESS"))
    assert (event.refund_id, event.amount, event.intent_id) == ("refund-1", 2000, payment.gateway_intent_id)
    assert event.type in gateway.refund_event_types


@pytest.mark.parametrize("forgery", [
    "other signing key", "old", "from the future", "other merchant", "other app", "other amount", "unknown order",
    "unknown serial", "tampered", "no signature", "wrong apiv3 key",
])
def test_a_notification_that_does_not_check_out_is_refused(app, gateway, wechat, keys, forgery):
    payment = open_payment(gateway)
    resource = paid_resource(payment)
    options = {}
    if forgery == "other signing key":
        options["signing_key"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif forgery == "old":
        options["age"] = 301
    elif forgery == "from the future":
        options["age"] = -400
    elif forgery == "other merchant":
        resource["mchid"] = "1900000999"
    elif forgery == "other app":
        resource["appid"] = "wx0000000000000000"
    elif forgery == "other amount":
        resource["amount"] = {"total": 1, "payer_total": 1, "currency": "CNY"}
    elif forgery == "unknown order":
        resource["out_trade_no"] = "pay_notfinepays000000000000"
    elif forgery == "unknown serial":
        options["serial"] = "PUB_KEY_ID_0000000000000000000000000099"
    body, headers = notification(keys, resource, **options)
    if forgery == "tampered":
        body = body.replace(b'"summary": "\\u652f', b'"summary": "\\u652e')
    elif forgery == "no signature":
        del headers["Wechatpay-Signature"]
    elif forgery == "wrong apiv3 key":
        sealed = json.loads(body)
        sealed["resource"]["ciphertext"] = base64.b64encode(AESGCM(b"c" * 32).encrypt(
            sealed["resource"]["nonce"].encode(), b"{}", b"transaction")).decode()
        body = json.dumps(sealed).encode()
        timestamp, nonce = headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"]
        headers["Wechatpay-Signature"] = rsa_sign(keys.platform, f"{timestamp}\n{nonce}\n{body.decode()}\n")

    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook(body, headers)


def test_notifications_are_answered_as_wechat_pay_expects(gateway):
    assert gateway.webhook_reply("applied") == ("", 204, {})
    body, status, headers = gateway.webhook_refusal(WebhookVerificationError("the notification is for another merchant"))
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"code": "FAIL", "message": "the notification is for another merchant"}


# -- The daily trade bill ------------------------------------------------------------------------

BILL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
               "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
               "手续费,费率,订单金额,申请退款金额,费率备注")


def bill_line(at, out_trade_no, state, amount, fee, *, refund=None, refund_status="", transaction_id="4200000001"):
    values = [at, APPID, MCHID, "0", "", transaction_id, out_trade_no, "oPayer", "NATIVE", state, "OTHERS", "CNY",
              amount, "0.00", refund[0] if refund else "0", refund[1] if refund else "0", refund[2] if refund else "0.00",
              "0.00", "ORIGINAL" if refund else "", refund_status, "交通罚款", "", fee, "0.60%", amount,
              refund[2] if refund else "0.00", ""]
    return ",".join("`" + value for value in values)


def bill(*lines):
    summary = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n`2,`50.00,`20.00,`0.00,`0.18,`50.00,`20.00"
    return ("\n".join([BILL_HEADER, *lines, summary]) + "\n").encode("utf-8")


def test_the_trade_bill_gives_charges_and_refunds_with_their_fees(app, gateway, wechat):
    payment = open_payment(gateway)
    raw = bill(bill_line("2026-11-30 20:15:00", payment.id, "SUCCESS", "50.00", "0.30"),
               bill_line("2026-11-30 21:00:00", payment.id, "REFUND", "50.00", "-0.12",
                         refund=("50300000001", "refund-1", "20.00"), refund_status="SUCCESS"),
               bill_line("2026-11-30 22:00:00", "someone-elses-order", "SUCCESS", "9.99", "0.06",
                         transaction_id="4200000002"))
    wechat.bills["2026-11-30"] = (raw, hashlib.sha1(raw).hexdigest())
    day = datetime(2026, 11, 30, tzinfo=CHINA)

    charge, refund, stranger = gateway.list_transactions(day, day + timedelta(days=1))

    assert (charge.kind, charge.id, charge.amount, charge.fee) == ("charge", "4200000001", 5000, 30)
    assert (charge.payment_id, charge.intent_id, charge.currency) == (payment.id, payment.gateway_intent_id, "CNY")
    assert charge.created_at == datetime(2026, 11, 30, 12, 15, tzinfo=UTC)
    assert (refund.kind, refund.id, refund.amount, refund.fee, refund.status) == ("refund", "refund-1", 2000, -12, SUCCEEDED)
    assert stranger.payment_id is None and stranger.amount == 999


def test_a_window_takes_the_bill_of_every_china_day_it_covers(app, gateway, wechat):
    for day in ("2026-11-29", "2026-11-30"):
        raw = bill(bill_line(f"{day} 22:30:00", "pay_x00000", "SUCCESS", "1.00", "0.01", transaction_id=f"42{day[-2:]}a"),
                   bill_line(f"{day} 23:30:00", "pay_x00000", "SUCCESS", "1.00", "0.01", transaction_id=f"42{day[-2:]}b"))
        wechat.bills[day] = (raw, hashlib.sha1(raw).hexdigest())
    start = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # 23:00 on the 29th in China

    lines = gateway.list_transactions(start, start + timedelta(days=1))

    assert [line.id for line in lines] == ["4229b", "4230a"]
    asked = [path for method, path, _ in wechat.requests if path.startswith("/v3/bill/tradebill")]
    assert [parse_qs(urlsplit(p).query)["bill_date"] for p in asked] == [["2026-11-29"], ["2026-11-30"]]


def test_a_bill_that_does_not_match_its_sha1_is_refused(app, gateway, wechat):
    raw = bill(bill_line("2026-11-30 20:15:00", "pay_x00000", "SUCCESS", "50.00", "0.30"))
    wechat.bills["2026-11-30"] = (raw, hashlib.sha1(raw + b"tampered").hexdigest())
    day = datetime(2026, 11, 30, tzinfo=CHINA)
    with pytest.raises(GatewayError, match="does not match its SHA1") as refused:
        gateway.list_transactions(day, day + timedelta(days=1))
    assert refused.value.code == "bill_corrupt"


def test_a_bill_to_be_downloaded_from_another_host_is_not_fetched(app, gateway, wechat):
    raw = bill(bill_line("2026-11-30 20:15:00", "pay_x00000", "SUCCESS", "50.00", "0.30"))
    wechat.bills["2026-11-30"] = (raw, hashlib.sha1(raw).hexdigest())
    wechat.download_host = "https://elsewhere.test"
    day = datetime(2026, 11, 30, tzinfo=CHINA)
    with pytest.raises(GatewayError, match="is not on"):
        gateway.list_transactions(day, day + timedelta(days=1))
    assert not any(path.startswith("/v3/billdownload") for _, path, _ in wechat.requests)


def test_a_bill_not_out_yet_says_so_and_a_day_without_trades_is_empty(app, gateway, wechat):
    day = datetime(2026, 11, 30, tzinfo=CHINA)
    assert gateway.list_transactions(day, day + timedelta(days=1)) == []
    wechat.bills["2026-11-30"] = "creating"
    with pytest.raises(BillNotReady):
        gateway.list_transactions(day, day + timedelta(days=1))


def test_yuan_become_fen_exactly():
    assert [fen("12.34"), fen("-0.12"), fen("0.005"), fen("")] == [1234, -12, 1, 0]
    assert rfc3339(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == "2026-01-01T08:00:00+08:00"



def test_the_ledger_as_migrated_is_the_ledger_the_model_describes(app):
    assert model_diffs("wechatpay_orders") == []


def test_after_a_failed_payment_the_payer_gets_a_new_order_to_try_again(app, gateway, wechat):
    payment = open_payment(gateway)
    first = ask(app, gateway, payment, DESKTOP)
    wechat.pay(payment.id, "PAYERROR", "支付失败，余额不足")
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == FAILED

    again = ask(app, gateway, payment, DESKTOP)

    assert again.qr_payload != first.qr_payload
    assert [body["out_trade_no"] for body in placed(wechat, "native")] == [payment.id, f"{payment.id}-2"]
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == REQUIRES_PAYMENT_METHOD


def test_when_wechat_pay_cannot_place_the_order_the_page_is_told_it_cannot_serve_now(app, gateway, wechat):
    payment = open_payment(gateway)
    wechat.faults.append((500, "SYSTEM_ERROR"))

    assert ask(app, gateway, payment, DESKTOP) is None

    # The next look places it anew: the failed one may exist at WeChat Pay, unseen, and is never asked for again.
    assert ask(app, gateway, payment, DESKTOP).kind == SCAN_QR
    assert [body["out_trade_no"] for body in placed(wechat, "native")] == [payment.id, f"{payment.id}-2"]


def test_a_placing_that_timed_out_does_not_stop_a_payer_on_another_device(app, gateway, wechat):
    payment = open_payment(gateway)
    wechat.faults.append(requests.ReadTimeout("read timed out"))
    assert ask(app, gateway, payment, PHONE) is None

    action = ask(app, gateway, payment, DESKTOP)

    assert action.kind == SCAN_QR and placed(wechat, "native")[0]["out_trade_no"] == f"{payment.id}-2"
    wechat.pay(f"{payment.id}-2")
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == SUCCEEDED
