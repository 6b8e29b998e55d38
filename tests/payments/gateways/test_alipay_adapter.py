"""The Alipay adapter against a small fake of Alipay's open platform: signatures, states, refunds, notifications, bills.

The fake checks every request's RSA2 signature with python-alipay-sdk (the
app's public key) and signs its answers and notifications with "Alipay's"
private key (cryptography), as the real service does. The adapter is also run
against the real simulator process in test_alipay_adapter_simulator.py.
"""
import base64
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask_babel import force_locale

from finepay.app import create_app
from finepay.settings import SettingsError
from payments.gateways import (
    CANCELED,
    REDIRECT,
    REQUIRES_PAYMENT_METHOD,
    SCAN_QR,
    SUCCEEDED,
    SURFACE_KIOSK,
    BillNotReady,
    GatewayError,
    Payer,
    WebhookVerificationError,
    return_url,
)
from payments.gateways.alipay import AlipayGateway
from payments.gateways.alipay.adapter import out_request_no_for, out_trade_no_for, to_fen, to_yuan
from tests.conftest import make_app
from tests.migrations import model_diffs

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
DESKTOP = Payer(user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36")
PHONE = Payer(user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1")
WECHAT = Payer(user_agent="Mozilla/5.0 (Linux; Android 13) Mobile Safari/537.36 MicroMessenger/8.0.40")
KIOSK = Payer(surface=SURFACE_KIOSK)


def _pem_private(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """FinePay's app key pair and "Alipay's" key pair, the files the settings name."""
    folder = tmp_path_factory.mktemp("alipay-keys")
    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alipay_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "app_private.pem").write_bytes(_pem_private(app_key))
    (folder / "alipay_public.pem").write_bytes(_pem_public(alipay_key))
    return SimpleNamespace(folder=folder, app=app_key, alipay=alipay_key,
                           private_file=str(folder / "app_private.pem"), public_file=str(folder / "alipay_public.pem"))


def alipay_config(keys, **overrides):
    return {"ALIPAY_APP_ID": APP_ID, "ALIPAY_APP_PRIVATE_KEY_FILE": keys.private_file,
            "ALIPAY_PUBLIC_KEY_FILE": keys.public_file, "ALIPAY_SELLER_ID": SELLER_ID,
            "ALIPAY_GATEWAY_URL": "https://alipay.test/gateway.do", "PUBLIC_BASE_URL": "https://finepay.test",
            **overrides}


def signed_text(params, leave_out):
    """The text an RSA2 signature covers: the sorted parameters with a value, as k=v joined by &, some left out."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in leave_out and v != "").encode()


def alipay_sign(key, params):
    """Alipay's RSA2 signature on a notification: the sorted parameters, sign and sign_type left out."""
    text = signed_text(params, ("sign", "sign_type"))
    return base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()


class FakeAlipay:
    """Alipay's gateway as the adapter's requests session sees it: one handler per method, answers signed."""

    def __init__(self, keys):
        self.keys = keys
        self.trades = {}  # out_trade_no -> dict(status, total_amount, trade_no)
        self.refunds = {}  # out_request_no -> refund_amount
        self.calls = []
        self.faults = {}  # method -> an exception to raise, or a response object to answer
        self.bills = {}  # bill_date -> zip bytes
        self.forge = False

    def get(self, url, timeout=None):
        if url.startswith("https://bills.test/"):
            content = self.bills[url.rsplit("/", 1)[1]]
            return SimpleNamespace(status_code=200, content=content)
        params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        self.verify(params)
        method, biz = params["method"], json.loads(params["biz_content"])
        self.calls.append((method, biz, params))
        fault = self.faults.get(method)
        if isinstance(fault, Exception):
            raise fault
        answer = fault or getattr(self, method.replace(".", "_"))(biz)
        return self.answer(method, answer)

    def verify(self, params):
        """Check FinePay's RSA2 signature on a request: every parameter but sign (sign_type included)."""
        signature = base64.b64decode(params.pop("sign"))
        self.keys.app.public_key().verify(signature, signed_text(params, ()), padding.PKCS1v15(), hashes.SHA256())

    def answer(self, method, obj):
        content = json.dumps(obj, ensure_ascii=False)
        signer = rsa.generate_private_key(public_exponent=65537, key_size=2048) if self.forge else self.keys.alipay
        signature = base64.b64encode(signer.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
        raw = f'{{"{method.replace(".", "_")}_response":{content},"sign":"{signature}"}}'
        return SimpleNamespace(status_code=200, content=raw.encode())

    @staticmethod
    def refused(sub_code):
        return {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_code}

    def alipay_trade_precreate(self, biz):
        self.trades.setdefault(biz["out_trade_no"], {"status": None, "total_amount": biz["total_amount"]})
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"],
                "qr_code": f"https://qr.alipay.test/{biz['out_trade_no']}"}

    def alipay_trade_query(self, biz):
        trade = self.trades.get(biz["out_trade_no"])
        if trade is None or trade["status"] is None:
            return self.refused("ACQ.TRADE_NOT_EXIST")
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], "trade_no": "2026113022001",
                "trade_status": trade["status"], "total_amount": trade["total_amount"]}

    def alipay_trade_close(self, biz):
        trade = self.trades.get(biz["out_trade_no"])
        if trade is None or trade["status"] is None:
            return self.refused("ACQ.TRADE_NOT_EXIST")
        if trade["status"] != "WAIT_BUYER_PAY":
            return self.refused("ACQ.TRADE_STATUS_ERROR")
        trade["status"] = "TRADE_CLOSED"
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"]}

    def alipay_trade_refund(self, biz):
        repeat = biz["out_request_no"] in self.refunds
        self.refunds[biz["out_request_no"]] = biz["refund_amount"]
        trade = self.trades[biz["out_trade_no"]]
        if sum(to_fen(amount) for amount in self.refunds.values()) == to_fen(trade["total_amount"]):
            trade["status"] = "TRADE_CLOSED"
        return {"code": "10000", "msg": "Success", "fund_change": "N" if repeat else "Y",
                "refund_fee": biz["refund_amount"]}

    def alipay_trade_fastpay_refund_query(self, biz):
        amount = self.refunds.get(biz["out_request_no"])
        if amount is None:
            return {"code": "10000", "msg": "Success"}
        return {"code": "10000", "msg": "Success", "out_request_no": biz["out_request_no"],
                "refund_amount": amount, "refund_status": "REFUND_SUCCESS"}

    def alipay_data_dataservice_bill_downloadurl_query(self, biz):
        if biz["bill_date"] not in self.bills:
            return self.refused("isp.bill_not_exist")
        return {"code": "10000", "msg": "Success", "bill_download_url": f"https://bills.test/{biz['bill_date']}"}

    def pay(self, out_trade_no):
        self.trades[out_trade_no]["status"] = "TRADE_SUCCESS"


@pytest.fixture
def app_config():
    return {"PUBLIC_BASE_URL": "https://finepay.test"}


@pytest.fixture
def alipay(app, keys):
    """The adapter (as the registry builds it), talking to a fresh FakeAlipay."""
    gateway = AlipayGateway(alipay_config(keys, FINEPAY_ENV="development", CURRENCY="CNY"))
    gateway.session = FakeAlipay(keys)
    return gateway


@pytest.fixture
def fake(alipay):
    return alipay.session


def open_trade(alipay, payment_id="pay_0123456789abcdef01234567", amount=12345, expires_at=None):
    intent = alipay.create_intent(payment_id=payment_id, amount=amount, currency="CNY",
                                  idempotency_key=f"{payment_id}:create",
                                  expires_at=expires_at or datetime.now(UTC) + timedelta(minutes=30))
    return intent, SimpleNamespace(id=payment_id, gateway_intent_id=intent.id, amount=amount, currency="CNY")


def paid_trade(alipay, fake, **kwargs):
    intent, payment = open_trade(alipay, **kwargs)
    alipay.next_action(payment, DESKTOP)
    fake.pay(intent.id)
    return intent


# -- Money and names --------------------------------------------------------------------------------------------

def test_amounts_cross_as_yuan_strings_with_decimal_only():
    assert [to_yuan(fen) for fen in (1, 10, 12345, 100000)] == ["0.01", "0.10", "123.45", "1000.00"]
    assert [to_fen(yuan) for yuan in ("0.01", "0.1", "123.45", "1000", "-0.06")] == [1, 10, 12345, 100000, -6]


@pytest.mark.parametrize("junk", ["1.234", "abc", "NaN", "Infinity", "", None])
def test_an_amount_finer_than_a_fen_or_no_amount_at_all_is_refused(junk):
    with pytest.raises(ValueError):
        to_fen(junk)


def test_a_float_is_never_taken_as_an_amount():
    with pytest.raises(ValueError):
        to_yuan(12.5)


def test_the_out_trade_number_is_the_payment_id_or_a_safe_digest_of_it():
    assert out_trade_no_for("pay_0123456789abcdef01234567") == "pay_0123456789abcdef01234567"
    odd = out_trade_no_for("pay-with:odd/characters" * 4)
    assert len(odd) <= 64 and odd.replace("_", "").isalnum()
    assert out_request_no_for("pay_1:refund:1") == out_request_no_for("pay_1:refund:1")
    assert out_request_no_for("pay_1:refund:1") != out_request_no_for("pay_1:refund:2")
    assert len(out_request_no_for("k" * 500)) <= 64


# -- The payer ----------------------------------------------------------------------------------------------------

def test_a_computer_gets_the_precreated_trades_qr_code_and_the_same_one_again(alipay, fake):
    expires = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
    intent, payment = open_trade(alipay, expires_at=expires)

    first, second = alipay.next_action(payment, DESKTOP), alipay.next_action(payment, DESKTOP)

    assert intent.status == REQUIRES_PAYMENT_METHOD and intent.id == payment.id
    assert first.kind == SCAN_QR and first.qr_payload == f"https://qr.alipay.test/{intent.id}" == second.qr_payload
    precreates = [biz for method, biz, _ in fake.calls if method == "alipay.trade.precreate"]
    assert precreates == [{"out_trade_no": intent.id, "total_amount": "123.45", "subject": precreates[0]["subject"],
                           "time_expire": "2026-11-30 12:30:00"}]
    assert fake.calls[0][2]["notify_url"] == "https://finepay.test/webhooks/alipay"


def test_a_kiosk_scans_the_qr_code_too(alipay):
    _, payment = open_trade(alipay)

    assert alipay.next_action(payment, KIOSK).kind == SCAN_QR


def test_a_phone_goes_to_mobile_web_pay_and_back_to_the_payment(app, alipay, fake):
    _, payment = open_trade(alipay)

    with app.test_request_context():
        action = alipay.next_action(payment, PHONE)
        back = return_url(payment.id)

    assert action.kind == REDIRECT and action.url.startswith("https://alipay.test/gateway.do?")
    params = dict(parse_qsl(urlsplit(action.url).query))
    fake.verify(dict(params))
    biz = json.loads(params["biz_content"])
    assert params["method"] == "alipay.trade.wap.pay" and params["app_id"] == APP_ID
    assert back.startswith("https://finepay.test/") and params["return_url"] == biz["quit_url"] == back
    assert params["notify_url"] == "https://finepay.test/webhooks/alipay"
    assert biz["product_code"] == "QUICK_WAP_PAY" and biz["total_amount"] == "123.45"
    assert fake.calls == []  # nothing placed until the payer opens Alipay's page


def test_inside_wechats_browser_alipay_is_not_offered(alipay):
    _, payment = open_trade(alipay)

    assert not alipay.serves(WECHAT)
    assert alipay.next_action(payment, WECHAT) is None
    assert alipay.serves(DESKTOP) and alipay.serves(PHONE) and alipay.serves(KIOSK)


def test_drivers_see_alipay_by_its_chinese_name(app, alipay):
    with app.test_request_context(), force_locale("zh_CN"):
        assert str(alipay.label) == "支付宝"


def test_creating_the_intent_twice_gives_the_same_trade(alipay):
    first, _ = open_trade(alipay)
    again, _ = open_trade(alipay)

    assert again == first


def test_only_yuan_are_taken(alipay):
    with pytest.raises(GatewayError) as refused:
        alipay.create_intent(payment_id="pay_usd", amount=100, currency="USD", idempotency_key="k")
    assert refused.value.refused


# -- Where a trade stands -----------------------------------------------------------------------------------------

def test_a_trade_never_scanned_waits_for_the_payer(alipay):
    intent, _ = open_trade(alipay)

    assert alipay.retrieve_intent(intent.id).status == REQUIRES_PAYMENT_METHOD


def test_a_trade_never_scanned_is_over_once_it_expired(alipay):
    intent, _ = open_trade(alipay, expires_at=datetime.now(UTC) - timedelta(seconds=1))

    assert alipay.retrieve_intent(intent.id).status == CANCELED


def test_a_scanned_trade_waiting_for_the_buyer_waits_for_the_payer(alipay, fake):
    intent, payment = open_trade(alipay)
    alipay.next_action(payment, DESKTOP)
    fake.trades[intent.id]["status"] = "WAIT_BUYER_PAY"

    assert alipay.retrieve_intent(intent.id).status == REQUIRES_PAYMENT_METHOD


@pytest.mark.parametrize("status", ["TRADE_SUCCESS", "TRADE_FINISHED"])
def test_a_paid_trade_succeeded_with_what_was_received(alipay, fake, status):
    intent = paid_trade(alipay, fake)
    fake.trades[intent.id]["status"] = status

    retrieved = alipay.retrieve_intent(intent.id)

    assert (retrieved.status, retrieved.amount_received, retrieved.charge_id) == (SUCCEEDED, 12345, "2026113022001")
    assert retrieved.payment_id == "pay_0123456789abcdef01234567"


def test_closing_a_trade_cancels_it(alipay, fake):
    intent, payment = open_trade(alipay)
    alipay.next_action(payment, DESKTOP)
    fake.trades[intent.id]["status"] = "WAIT_BUYER_PAY"

    closed = alipay.cancel_intent(intent.id, idempotency_key="k")

    assert closed.status == CANCELED and fake.trades[intent.id]["status"] == "TRADE_CLOSED"


def test_closing_a_trade_never_scanned_cancels_it_for_good(alipay, fake):
    intent, _ = open_trade(alipay)

    assert alipay.cancel_intent(intent.id, idempotency_key="k").status == CANCELED
    assert alipay.retrieve_intent(intent.id).status == CANCELED


def test_closing_a_trade_paid_meanwhile_returns_it_succeeded(alipay, fake):
    intent = paid_trade(alipay, fake)

    assert alipay.cancel_intent(intent.id, idempotency_key="k").status == SUCCEEDED


def test_a_trade_closed_by_a_full_refund_is_still_a_captured_payment(alipay, fake):
    intent = paid_trade(alipay, fake)
    alipay.refund(intent.id, amount=12345, idempotency_key="pay:refund:1")

    retrieved = alipay.retrieve_intent(intent.id)

    assert fake.trades[intent.id]["status"] == "TRADE_CLOSED"
    assert (retrieved.status, retrieved.amount_received) == (SUCCEEDED, 12345)


def test_a_trade_paid_then_refunded_in_full_from_alipays_console_is_still_a_captured_payment(alipay, fake):
    intent = paid_trade(alipay, fake)
    fake.trades[intent.id]["status"] = "TRADE_CLOSED"
    fake.faults["alipay.trade.query"] = {**fake.alipay_trade_query({"out_trade_no": intent.id}),
                                         "send_pay_date": "2026-11-30 12:00:00"}

    assert alipay.retrieve_intent(intent.id).status == SUCCEEDED


# -- Refunds ------------------------------------------------------------------------------------------------------

def test_a_refund_that_moved_money_succeeded_under_one_request_number_per_key(alipay, fake):
    intent = paid_trade(alipay, fake)

    refund = alipay.refund(intent.id, amount=345, idempotency_key="pay:refund:1", reason="overpaid")

    assert (refund.id, refund.amount, refund.status) == (out_request_no_for("pay:refund:1"), 345, SUCCEEDED)
    biz = fake.calls[-1][1]
    assert biz == {"out_trade_no": intent.id, "refund_amount": "3.45", "out_request_no": refund.id,
                   "refund_reason": "overpaid"}


def test_a_refund_sent_again_is_the_same_refund_confirmed_by_the_query(alipay, fake):
    intent = paid_trade(alipay, fake)
    first = alipay.refund(intent.id, amount=345, idempotency_key="pay:refund:1")

    again = alipay.refund(intent.id, amount=345, idempotency_key="pay:refund:1")

    assert again == first and len(fake.refunds) == 1
    assert fake.calls[-1][0] == "alipay.trade.fastpay.refund.query"


def test_a_refund_alipay_has_not_reported_yet_is_pending(alipay, fake):
    intent = paid_trade(alipay, fake)
    fake.faults["alipay.trade.refund"] = {"code": "10000", "msg": "Success", "fund_change": "N"}

    refund = alipay.refund(intent.id, amount=345, idempotency_key="pay:refund:1")

    assert refund.status == "pending"
    del fake.faults["alipay.trade.refund"]
    fake.refunds[refund.id] = "3.45"
    assert alipay.retrieve_refund(intent.id, refund.id).status == SUCCEEDED


def test_a_refund_the_seller_balance_cannot_cover_is_refused(alipay, fake):
    intent = paid_trade(alipay, fake)
    fake.faults["alipay.trade.refund"] = fake.refused("ACQ.SELLER_BALANCE_NOT_ENOUGH")

    with pytest.raises(GatewayError) as refused:
        alipay.refund(intent.id, amount=345, idempotency_key="pay:refund:1")

    assert refused.value.refused and refused.value.code == "insufficient_balance"


# -- Errors ---------------------------------------------------------------------------------------------------------

def test_a_timeout_leaves_the_outcome_unknown(alipay, fake):
    intent = paid_trade(alipay, fake)
    fake.faults["alipay.trade.refund"] = requests.ReadTimeout("slow")

    with pytest.raises(GatewayError) as unknown:
        alipay.refund(intent.id, amount=345, idempotency_key="pay:refund:1")

    assert unknown.value.outcome_unknown and not unknown.value.refused


@pytest.mark.parametrize("sub_code", ["ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"])
def test_alipays_system_errors_may_be_sent_again(alipay, fake, sub_code):
    intent, _ = open_trade(alipay)
    fake.faults["alipay.trade.query"] = {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": sub_code}

    with pytest.raises(GatewayError) as busy:
        alipay.retrieve_intent(intent.id)

    assert busy.value.retryable and not busy.value.refused


def test_refused_credentials_are_not_a_refusal_of_the_request(alipay, fake):
    intent, _ = open_trade(alipay)
    fake.faults["alipay.trade.query"] = {"code": "40002", "msg": "Invalid Arguments",
                                         "sub_code": "isv.invalid-signature"}

    with pytest.raises(GatewayError) as refused:
        alipay.retrieve_intent(intent.id)

    assert refused.value.code == "gateway_auth" and not refused.value.refused


def test_an_answer_alipay_did_not_sign_is_not_believed(alipay, fake):
    intent = paid_trade(alipay, fake)
    fake.forge = True

    with pytest.raises(GatewayError) as forged:
        alipay.retrieve_intent(intent.id)

    assert forged.value.retryable and not forged.value.refused


# -- Notifications --------------------------------------------------------------------------------------------------

def notification(keys, out_trade_no, *, key=None, **fields):
    params = {"notify_id": "ac05099524730693a8b330c5ecf72da9786", "notify_type": "trade_status_sync",
              "notify_time": "2026-11-30 12:00:00", "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
              "app_id": APP_ID, "seller_id": SELLER_ID, "out_trade_no": out_trade_no, "trade_no": "2026113022001",
              "trade_status": "TRADE_SUCCESS", "total_amount": "123.45", "subject": "交通违法罚款", **fields}
    params["sign"] = alipay_sign(key or keys.alipay, params)
    return urlencode(params).encode()


def test_a_verified_payment_notification_becomes_an_intent_event(alipay, keys):
    intent, _ = open_trade(alipay)

    event = alipay.parse_webhook(notification(keys, intent.id), {})

    assert (event.id, event.type, event.intent_id, event.payment_id, event.amount, event.refund_id) == (
        "ac05099524730693a8b330c5ecf72da9786", "TRADE_SUCCESS", intent.id, intent.payment_id, 12345, None)
    assert event.type in alipay.intent_event_types


def test_a_notification_with_an_empty_parameter_is_verified_as_alipay_signs_it(alipay, keys):
    intent, _ = open_trade(alipay)

    assert alipay.parse_webhook(notification(keys, intent.id, body=""), {}).amount == 12345


def test_a_refund_notification_becomes_a_refund_event(alipay, keys):
    intent, _ = open_trade(alipay)
    request_no = out_request_no_for("pay:refund:1")

    event = alipay.parse_webhook(notification(keys, intent.id, out_biz_no=request_no, refund_fee="3.45",
                                              gmt_refund="2026-11-30 12:05:00.123"), {})

    assert event.type in alipay.refund_event_types and event.refund_id == request_no


@pytest.mark.parametrize("forgery", [
    {"key": "another"}, {"app_id": "2021000000000002"}, {"seller_id": "2088000000000002"},
    {"out_trade_no": "pay_unknown"}, {"total_amount": "1.001"},
])
def test_a_forged_or_foreign_notification_is_refused(alipay, keys, forgery):
    intent, _ = open_trade(alipay)
    forgery = dict(forgery)  # the parameter is shared by both databases' runs
    if forgery.get("key"):
        forgery["key"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    payload = notification(keys, forgery.pop("out_trade_no", intent.id), **forgery)

    with pytest.raises(WebhookVerificationError):
        alipay.parse_webhook(payload, {})


def test_a_notification_of_another_amount_carries_it_for_finepay_to_refuse(alipay, keys):
    intent, _ = open_trade(alipay)

    assert alipay.parse_webhook(notification(keys, intent.id, total_amount="1.00"), {}).amount == 100


def test_a_notification_altered_after_signing_is_refused(alipay, keys):
    intent, _ = open_trade(alipay)
    payload = notification(keys, intent.id).replace(b"TRADE_SUCCESS", b"TRADE_FINISHED")

    with pytest.raises(WebhookVerificationError):
        alipay.parse_webhook(payload, {})


def test_a_notification_repeating_a_parameter_is_refused(alipay, keys):
    intent, _ = open_trade(alipay)

    with pytest.raises(WebhookVerificationError):
        alipay.parse_webhook(notification(keys, intent.id) + b"&total_amount=123.45", {})


def test_alipay_is_answered_in_its_own_words(alipay):
    assert alipay.webhook_reply("applied")[:2] == ("success", 200)
    assert alipay.webhook_refusal(WebhookVerificationError("forged"))[:2] == ("fail", 200)
    assert alipay.webhook_reply("duplicate")[2]["Content-Type"].startswith("text/plain")


# -- The daily bill -------------------------------------------------------------------------------------------------

HEADING = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
           "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
           "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


def bill_zip(rows, totals=None):
    """A trade bill as Alipay serves it: a zip of two GBK CSVs (detail and summary), preface and totals included."""
    charges = sum(row[2] == "交易" for row in rows)
    refunds = sum(row[2] == "退款" for row in rows)
    charges, refunds = totals or (charges, refunds)
    lines = ["#支付宝业务明细查询", f"#账号：[{SELLER_ID}0156]", "#起始日期：[2026年11月29日 00:00:00]   终止日期：[2026年11月30日 00:00:00]",
             "#-----------------------------------------业务明细列表----------------------------------------", HEADING]
    for trade_no, out_trade_no, kind, finished, amount, request_no, fee in rows:
        cells = [trade_no + "\t", out_trade_no + "\t", kind, "交通违法罚款", finished, finished, "", "", "", "",
                 "buy***@example.com", amount, amount, "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00",
                 request_no + "\t", fee, "0.00", ""]
        lines.append(",".join(cells))
    lines += ["#-----------------------------------------业务明细列表结束------------------------------------",
              f"#交易合计：{charges}笔，商家实收共0.00元，商家优惠共0.00元",
              f"#退款合计：{refunds}笔，商家实收退款共0.00元，商家优惠退款共0.00元", "#导出时间：[2026年11月30日 10:02:11]"]
    summary = "#支付宝业务汇总查询\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）\n合计,,1,1,123.45\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("20880000000000010156_20261129_业务明细.csv", ("\n".join(lines) + "\n").encode("gbk"))
        archive.writestr("20880000000000010156_20261129_业务明细(汇总).csv", summary.encode("gbk"))
    return buffer.getvalue()


BEIJING_DAY = (datetime(2026, 11, 28, 16, tzinfo=UTC), datetime(2026, 11, 29, 16, tzinfo=UTC))


def test_the_daily_bill_gives_charges_and_refunds_with_alipays_fees(alipay, fake):
    intent, _ = open_trade(alipay)
    fake.bills["2026-11-29"] = bill_zip([
        ("2026112922001", intent.id, "交易", "2026-11-29 09:15:02", "123.45", "", "-0.74"),
        ("2026112922001", intent.id, "退款", "2026-11-29 11:00:00", "-3.45", "rf_abc", "0.02"),
        ("2026112922009", "elsewhere_1", "交易", "2026-11-29 23:59:59", "8.00", "", "-0.05"),
    ])

    charge, refund, other = alipay.list_transactions(*BEIJING_DAY)

    assert (charge.kind, charge.id, charge.intent_id, charge.payment_id, charge.amount, charge.fee) == (
        "charge", "2026112922001", intent.id, intent.payment_id, 12345, 74)
    assert charge.created_at == datetime(2026, 11, 29, 1, 15, 2, tzinfo=UTC)
    assert (refund.kind, refund.id, refund.amount, refund.fee) == ("refund", "rf_abc", 345, -2)
    assert (other.intent_id, other.payment_id, other.amount) == ("elsewhere_1", None, 800)
    assert fake.calls[0][1] == {"bill_type": "trade", "bill_date": "2026-11-29"}


def test_bill_lines_outside_the_window_are_left_out(alipay, fake):
    fake.bills["2026-11-29"] = bill_zip([
        ("2026112922001", "a", "交易", "2026-11-29 09:15:02", "1.00", "", "-0.01"),
        ("2026112922002", "b", "交易", "2026-11-29 20:00:00", "2.00", "", "-0.01"),
    ])

    listed = alipay.list_transactions(BEIJING_DAY[0], datetime(2026, 11, 29, 4, tzinfo=UTC))

    assert [t.intent_id for t in listed] == ["a"]


def test_a_bill_not_out_yet_says_so(alipay):
    with pytest.raises(BillNotReady):
        alipay.list_transactions(*BEIJING_DAY)


def test_a_bill_that_does_not_add_up_to_its_totals_is_refused(alipay, fake):
    fake.bills["2026-11-29"] = bill_zip([("2026112922001", "a", "交易", "2026-11-29 09:15:02", "1.00", "", "-0.01")],
                                        totals=(2, 0))

    with pytest.raises(GatewayError) as refused:
        alipay.list_transactions(*BEIJING_DAY)

    assert refused.value.code == "bill_unreadable"


# -- Settings and keys ----------------------------------------------------------------------------------------------

def test_production_refuses_to_start_without_alipays_keys(keys):
    config = alipay_config(keys, FINEPAY_ENV="production")
    del config["ALIPAY_PUBLIC_KEY_FILE"]

    with pytest.raises(SettingsError, match="ALIPAY_PUBLIC_KEY_FILE"):
        AlipayGateway.init_app(SimpleNamespace(config=config))


def test_a_malformed_key_is_refused_naming_the_setting_never_the_key(database_url, keys, tmp_path):
    broken = tmp_path / "broken.pem"
    pem = _pem_private(keys.app)
    broken.write_bytes(pem[:200])

    with pytest.raises(SettingsError, match="ALIPAY_APP_PRIVATE_KEY_FILE") as refused:
        make_app(database_url, **alipay_config(keys, PAYMENT_GATEWAY="alipay",
                                                ALIPAY_APP_PRIVATE_KEY_FILE=str(broken)))

    assert pem[40:80].decode() not in str(refused.value)


def test_a_key_that_is_not_rsa_2048_is_refused(keys, tmp_path):
    small = tmp_path / "small.pem"
    small.write_bytes(_pem_public(rsa.generate_private_key(public_exponent=65537, key_size=1024)))

    with pytest.raises(SettingsError, match="ALIPAY_PUBLIC_KEY_FILE"):
        AlipayGateway(alipay_config(keys, ALIPAY_PUBLIC_KEY_FILE=str(small)))


def test_the_bare_base64_key_alipays_console_shows_is_read(keys, tmp_path):
    bare = tmp_path / "alipay_public.txt"
    der = keys.alipay.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    bare.write_text(base64.b64encode(der).decode() + "\n")

    assert AlipayGateway(alipay_config(keys, ALIPAY_PUBLIC_KEY_FILE=str(bare))).client is not None


def test_an_app_with_alipay_reads_its_settings_and_masks_the_key_file(database_url, keys):
    app = make_app(database_url, **alipay_config(keys, PAYMENT_GATEWAY="alipay", ALIPAY_SIMULATED=True))

    assert app.config["ALIPAY_GATEWAY_URL"] == "https://alipay.test/gateway.do"
    assert app.extensions["finepay.redactor"](f"key at {keys.private_file}") == "key at [redacted]"
    assert AlipayGateway(app.config).simulated is True
    assert AlipayGateway(alipay_config(keys)).simulated is False


def test_development_without_alipay_keys_does_not_offer_alipay(keys):
    gateway = AlipayGateway({"FINEPAY_ENV": "development"})

    assert not gateway.serves(DESKTOP)
    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook(b"a=b", {})


def test_the_alipay_ledger_as_migrated_is_the_ledger_its_models_describe(app):
    assert model_diffs("alipay_") == []


@pytest.fixture
def production_with_alipay(monkeypatch, tmp_path, keys):
    """FINEPAY_ENV=production with Alipay as its gateway and its keys, from the environment."""
    for name, value in {**alipay_config(keys), "FINEPAY_ENV": "production", "SECRET_KEY": "k" * 40,
                        "AUTHORITY_NAME": "包头市公安局交通管理支队",
                        "DATABASE_URL": f"sqlite:///{tmp_path}/p.sqlite", "PAYMENT_GATEWAYS": "alipay"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ALIPAY_SIMULATED", raising=False)
    return monkeypatch


def test_production_starts_with_alipays_keys_and_moves_real_money(production_with_alipay):
    assert create_app().config["SANDBOX"] is False


def test_production_refuses_alipay_pointed_at_its_simulator(production_with_alipay):
    production_with_alipay.setenv("ALIPAY_SIMULATED", "true")

    with pytest.raises(SettingsError, match="alipay"):
        create_app()
