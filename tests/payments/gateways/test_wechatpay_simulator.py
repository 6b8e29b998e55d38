"""The WeChat Pay simulator, driven by the public wechatpayv3 client: it must work unchanged but for its base URL.

The client signs every request and checks every answer's signature itself, and
decrypts and verifies notifications with its own callback(), so these tests
do not rest on FinePay's reading of WeChat Pay's documents.
"""
import csv
import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from click.testing import CliRunner
from wechatpayv3 import WeChatPay, WeChatPayType

from payments.gateways import SIMULATOR_GROUP
from payments.gateways.wechatpay.simulator import Simulator, command
from payments.gateways.wechatpay.simulator.account import load_or_create
from payments.gateways.wechatpay.simulator.clock import rfc3339
from payments.gateways.wechatpay.simulator.crypto import nonce, request_message, sign
from payments.gateways.wechatpay.simulator.notifier import RETRY_SCHEDULE

# WeChat Pay's delays a thousand times shorter: the first retry after 15 ms instead of 15 s
TIME_FACTOR = 0.001
WAIT_SECONDS = 10
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def account_dir(tmp_path_factory):
    """A data directory with the simulator's account and keys, made once (RSA keys take a moment)."""
    path = tmp_path_factory.mktemp("wechatpay-account")
    Simulator(path).server.server_close()
    return path


@pytest.fixture
def data_dir(account_dir, tmp_path):
    """A copy of the account for one test, with an empty store."""
    path = tmp_path / "wechatpay"
    shutil.copytree(account_dir, path, ignore=shutil.ignore_patterns("store.json"))
    return path


@pytest.fixture
def simulator(data_dir):
    """The simulator on a free loopback port, stopped after the test."""
    simulator = Simulator(data_dir, time_factor=TIME_FACTOR).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def receiver():
    """The merchant's notify_url: a local HTTP server that records notifications and answers as scripted."""
    receiver = Receiver()
    yield receiver
    receiver.stop()


def client(simulator, mode="public-key", notify_url="https://merchant.example/notify", **options):
    """wechatpayv3's client for the simulator's merchant (from its config()), in public-key or certificate mode,
    at its base URL."""
    config = simulator.config()
    keys = {"public_key": Path(config["platform_public_key_path"]).read_text(),
            "public_key_id": config["platform_public_key_id"]}
    if mode == "certificate":
        keys = {"cert_dir": config["platform_cert_dir"]}
    wxpay = WeChatPay(wechatpay_type=WeChatPayType.NATIVE, mchid=config["mchid"],
                      private_key=Path(config["merchant_private_key_path"]).read_text(),
                      cert_serial_no=config["merchant_serial"], appid=config["appid"],
                      apiv3_key=config["apiv3_key"], notify_url=notify_url, **keys, **options)
    wxpay._core._gate_way = config["base_url"]
    return wxpay


def answer(result):
    """(status, JSON body or None) of a wechatpayv3 call."""
    status, text = result
    return status, json.loads(text) if text else None


def place(wxpay, out_trade_no="FP20261130000001", total=20000, **options):
    """A Native order placed through the client; its code_url."""
    status, body = answer(wxpay.pay(description="交通违法罚款", out_trade_no=out_trade_no,
                                    amount={"total": total, "currency": "CNY"}, **options))
    assert status == 200, body
    return body["code_url"]


def scan_and_pay(simulator, code_url, action="approve"):
    """What a phone does with a QR code: open the order's page, then press one of its buttons."""
    session = requests.Session()
    page = session.get(f"{simulator.base_url}/simulator/scan", params={"code_url": code_url})
    assert page.status_code == 200 and "SIMULATION" in page.text
    return session.post(page.url, data={"action": action}, allow_redirects=False)


def paid_order(simulator, wxpay, out_trade_no="FP20261130000001", total=20000):
    place(wxpay, out_trade_no, total)
    simulator.trading.pay(out_trade_no, "approve")


def admin(simulator, path, body):
    response = requests.post(f"{simulator.base_url}/simulator/admin/{path}", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(condition, message):
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.01)


class Receiver:
    """A notify_url on 127.0.0.1: records each POST's headers and body, answers the scripted statuses (then 204)."""

    def __init__(self):
        self.received = []
        self.statuses = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.received.append((dict(self.headers.items()), body, time.monotonic()))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.end_headers()

            def log_message(self, *args):
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/wechatpay"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait(self, count):
        wait_for(lambda: len(self.received) >= count, f"{count} notifications expected, {len(self.received)} came")
        return self.received

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- orders ---


def test_a_native_order_paid_on_the_payer_page_is_queried_as_success(simulator):
    wxpay = client(simulator)
    code_url = place(wxpay)
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")

    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "NOTPAY"
    assert scan_and_pay(simulator, code_url).status_code == 200
    status, order = answer(wxpay.query(out_trade_no="FP20261130000001"))

    assert status == 200
    assert order["trade_state"] == "SUCCESS" and order["trade_type"] == "NATIVE"
    assert order["amount"] == {"total": 20000, "payer_total": 20000, "currency": "CNY", "payer_currency": "CNY"}
    assert len(order["transaction_id"]) == 28 and order["payer"]["openid"]
    assert order["mchid"] == simulator.account.mchid and order["appid"] == simulator.account.appid


def test_a_paid_order_is_found_by_its_transaction_id_and_an_unpaid_one_is_not(simulator):
    wxpay = client(simulator)
    paid_order(simulator, wxpay)
    place(wxpay, "FP20261130000002")
    transaction_id = answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["transaction_id"]

    status, order = answer(wxpay.query(transaction_id=transaction_id))

    assert (status, order["out_trade_no"]) == (200, "FP20261130000001")
    assert answer(wxpay.query(transaction_id="4200000000000000000000000000"))[0] == 404


def test_the_payer_page_says_simulation_and_shows_the_amount_in_yuan(simulator):
    code_url = place(client(simulator), total=20050)

    page = requests.get(f"{simulator.base_url}/simulator/scan", params={"code_url": code_url})

    assert "SIMULATION" in page.text and "¥200.5" in page.text and simulator.account.merchant_name in page.text


def test_cancelling_on_the_payer_page_leaves_the_order_unpaid(simulator):
    wxpay = client(simulator)

    scan_and_pay(simulator, place(wxpay), "cancel")

    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "NOTPAY"


def test_insufficient_balance_on_the_payer_page_is_payerror(simulator):
    wxpay = client(simulator)

    scan_and_pay(simulator, place(wxpay), "fail")

    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "PAYERROR"


def test_placing_the_same_order_again_answers_the_same_code_url_and_other_terms_are_refused(simulator):
    wxpay = client(simulator)
    code_url = place(wxpay)

    assert place(wxpay) == code_url
    status, body = answer(wxpay.pay(description="交通违法罚款", out_trade_no="FP20261130000001",
                                    amount={"total": 1}))
    assert (status, body["code"]) == (403, "OUT_TRADE_NO_USED")


def test_an_out_trade_no_outside_the_rules_is_a_param_error(simulator):
    wxpay = client(simulator)

    for out_trade_no in ("FP123", "FP2026/11/30", "F" * 33):
        status, body = answer(wxpay.pay(description="罚款", out_trade_no=out_trade_no, amount={"total": 1}))
        assert (status, body["code"]) == (400, "PARAM_ERROR"), out_trade_no


def test_an_amount_in_yuan_or_another_currency_is_a_param_error(simulator):
    wxpay = client(simulator)

    for amount in ({"total": 1.5}, {"total": 0}, {"total": 100, "currency": "USD"}):
        status, body = answer(wxpay.pay(description="罚款", out_trade_no="FP20261130000001", amount=amount))
        assert (status, body["code"]) == (400, "PARAM_ERROR"), amount


def test_an_order_for_another_app_is_refused(simulator):
    status, body = answer(client(simulator).pay(description="罚款", out_trade_no="FP20261130000001",
                                                amount={"total": 1}, appid="wx0000000000000000"))

    assert (status, body["code"]) == (400, "APPID_MCHID_NOT_MATCH")


def test_an_unknown_order_is_order_not_exist(simulator):
    status, body = answer(client(simulator).query(out_trade_no="FP20261130999999"))

    assert (status, body["code"]) == (404, "ORDER_NOT_EXIST")


def test_a_closed_order_is_closed_and_cannot_be_paid(simulator):
    wxpay = client(simulator)
    code_url = place(wxpay)

    assert wxpay.close(out_trade_no="FP20261130000001") == (204, b"")
    assert wxpay.close(out_trade_no="FP20261130000001")[0] == 204
    response = scan_and_pay_refused(simulator, code_url)

    assert response.status_code == 409 and "该订单已关闭" in response.text
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "CLOSED"
    assert answer(wxpay.pay(description="交通违法罚款", out_trade_no="FP20261130000001",
                            amount={"total": 20000}))[1]["code"] == "ORDER_CLOSED"


def scan_and_pay_refused(simulator, code_url):
    """Post approve to an order's page even though the page offers no button."""
    out_trade_no = simulator.trading.order_where("pr", code_url.rpartition("pr=")[2])
    return requests.post(f"{simulator.base_url}/simulator/pay/{out_trade_no}", data={"action": "approve"})


def test_a_paid_order_cannot_be_closed(simulator):
    wxpay = client(simulator)
    paid_order(simulator, wxpay)

    status, body = answer(wxpay.close(out_trade_no="FP20261130000001"))

    assert (status, body["code"]) == (403, "ORDERPAID")


def test_an_order_past_its_time_expire_cannot_be_paid_and_stays_notpay_until_closed(simulator):
    wxpay = client(simulator)
    expiry = simulator.clock.now() + timedelta(minutes=15)
    code_url = place(wxpay, time_expire=rfc3339(expiry))

    simulator.clock.set(expiry + timedelta(seconds=1))

    assert "该订单已过期" in scan_and_pay_refused(simulator, code_url).text
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "NOTPAY"
    assert wxpay.close(out_trade_no="FP20261130000001")[0] == 204
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "CLOSED"


def test_a_time_expire_already_past_or_without_offset_is_refused(simulator):
    wxpay = client(simulator)
    past = rfc3339(simulator.clock.now() - timedelta(minutes=1))

    assert answer(wxpay.pay(description="罚款", out_trade_no="FP20261130000001", amount={"total": 1},
                            time_expire=past))[1]["code"] == "INVALID_REQUEST"
    assert answer(wxpay.pay(description="罚款", out_trade_no="FP20261130000001", amount={"total": 1},
                            time_expire="2030-01-01T10:00:00"))[1]["code"] == "PARAM_ERROR"


def test_a_jsapi_order_needs_the_payers_openid(simulator):
    status, body = answer(client(simulator).pay(description="罚款", out_trade_no="FP20261130000001",
                                                amount={"total": 1}, payer={"openid": ""},
                                                pay_type=WeChatPayType.JSAPI))

    assert (status, body["code"]) == (400, "PARAM_ERROR")


def test_the_jsapi_bridge_pays_an_order_whose_pay_sign_verifies(simulator):
    wxpay = client(simulator)
    status, body = answer(wxpay.pay(description="罚款", out_trade_no="FP20261130000001", amount={"total": 100},
                                    payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, pay_type=WeChatPayType.JSAPI))
    assert status == 200 and body["prepay_id"].startswith("wx")
    params = bridge_params(simulator, wxpay, body["prepay_id"])

    forged = requests.post(f"{simulator.base_url}/simulator/jsbridge/pay", data=json.dumps({**params, "paySign": "x"}))
    assert forged.json() == {"err_msg": "get_brand_wcpay_request:fail"}
    paid = requests.post(f"{simulator.base_url}/simulator/jsbridge/pay", data=json.dumps(params))

    assert paid.json() == {"err_msg": "get_brand_wcpay_request:ok"}
    assert paid.headers["Access-Control-Allow-Origin"] == "*"
    order = answer(wxpay.query(out_trade_no="FP20261130000001"))[1]
    assert (order["trade_state"], order["trade_type"], order["payer"]["openid"]) == (
        "SUCCESS", "JSAPI", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")


def bridge_params(simulator, wxpay, prepay_id):
    """getBrandWCPayRequest's parameters as a merchant signs them (wechatpayv3's sign())."""
    appid, timestamp, nonce_str, package = simulator.account.appid, str(int(time.time())), nonce(), f"prepay_id={prepay_id}"
    return {"appId": appid, "timeStamp": timestamp, "nonceStr": nonce_str, "package": package, "signType": "RSA",
            "paySign": wxpay.sign([appid, timestamp, nonce_str, package])}


def test_the_jsbridge_script_defines_weixin_js_bridge(simulator):
    script = requests.get(f"{simulator.base_url}/simulator/jsbridge.js")

    assert script.status_code == 200 and "window.WeixinJSBridge" in script.text
    assert "getBrandWCPayRequest" in script.text


def test_an_h5_order_needs_scene_info_and_its_page_returns_to_the_redirect_url(simulator):
    wxpay = client(simulator)
    assert answer(wxpay.pay(description="罚款", out_trade_no="FP20261130000001", amount={"total": 100},
                            scene_info={"device_id": "x"}, pay_type=WeChatPayType.H5))[1]["code"] == "PARAM_ERROR"
    status, body = answer(wxpay.pay(description="罚款", out_trade_no="FP20261130000001", amount={"total": 100},
                                    scene_info={"payer_client_ip": "203.0.113.9", "h5_info": {"type": "Wap"}},
                                    pay_type=WeChatPayType.H5))
    assert status == 200
    session = requests.Session()
    page = session.get(body["h5_url"] + "&redirect_url=https%3A%2F%2Ffinepay.example%2Fpay%2F7")
    assert "SIMULATION" in page.text

    done = session.post(f"{simulator.base_url}/simulator/pay/FP20261130000001",
                        data={"action": "approve", "redirect_url": "https://finepay.example/pay/7"},
                        allow_redirects=False)

    assert (done.status_code, done.headers["Location"]) == (303, "https://finepay.example/pay/7")
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_type"] == "MWEB"


# --- signatures ---


def signed_request(simulator, method, url, body="", *, key=None, serial=None, timestamp=None, sent_body=None):
    """A raw request with an Authorization header made here, to get each part wrong on purpose."""
    account = simulator.account
    timestamp = timestamp or str(int(time.time()))
    nonce_str = nonce()
    signature = sign(key or account.merchant_private_key, request_message(method, url, timestamp, nonce_str, body))
    authorization = (f'WECHATPAY2-SHA256-RSA2048 mchid="{account.mchid}",nonce_str="{nonce_str}",'
                     f'signature="{signature}",timestamp="{timestamp}",serial_no="{serial or account.merchant_serial}"')
    return requests.request(method, simulator.base_url + url, data=(body if sent_body is None else sent_body).encode(),
                            headers={"Authorization": authorization, "Content-Type": "application/json"})


def test_a_request_signed_right_by_hand_is_accepted(simulator):
    response = signed_request(simulator, "GET", f"/v3/pay/transactions/out-trade-no/FP20261130000001?mchid={simulator.account.mchid}")

    assert (response.status_code, response.json()["code"]) == (404, "ORDER_NOT_EXIST")


@pytest.mark.parametrize("fault", ["tampered body", "other key", "wrong serial", "stale timestamp", "no header"])
def test_a_request_whose_signature_does_not_verify_is_sign_error(simulator, fault):
    url, body = "/v3/pay/transactions/native", json.dumps({"out_trade_no": "FP20261130000001"})
    if fault == "tampered body":
        response = signed_request(simulator, "POST", url, body, sent_body=body.replace("01", "02"))
    elif fault == "other key":
        response = signed_request(simulator, "POST", url, body, key=simulator.account.platform_cert_private_key)
    elif fault == "wrong serial":
        response = signed_request(simulator, "POST", url, body, serial="1234ABCD")
    elif fault == "stale timestamp":
        response = signed_request(simulator, "POST", url, body, timestamp=str(int(time.time()) - 600))
    else:
        response = requests.post(simulator.base_url + url, data=body)

    assert response.status_code == 401
    assert response.json()["code"] == "SIGN_ERROR"


def test_answers_signed_in_public_key_mode_carry_the_public_key_id_and_verify_in_the_client(simulator):
    wxpay = client(simulator)
    place(wxpay)

    response = signed_request(simulator, "GET", f"/v3/pay/transactions/out-trade-no/FP20261130000001?mchid={simulator.account.mchid}")

    assert response.headers["Wechatpay-Serial"].startswith("PUB_KEY_ID_")
    assert wxpay._core._verify_signature(response.headers, response.text)
    assert not wxpay._core._verify_signature(response.headers, response.text.replace("NOTPAY", "SUCCESS"))


def test_a_client_with_another_platform_key_refuses_the_answers(simulator):
    wxpay = client(simulator)
    wxpay._core._public_key = simulator.account.platform_cert_private_key.public_key()

    with pytest.raises(Exception, match="failed to verify the signature"):
        place(wxpay)


def test_in_certificate_mode_answers_carry_the_certificate_serial_and_verify_in_the_client(simulator):
    admin(simulator, "settings", {"signing": "certificate"})
    wxpay = client(simulator, mode="certificate")

    place(wxpay)
    response = signed_request(simulator, "GET", f"/v3/pay/transactions/out-trade-no/FP20261130000001?mchid={simulator.account.mchid}")

    assert response.headers["Wechatpay-Serial"] == simulator.account.platform_serial
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "NOTPAY"


def test_the_client_fetches_and_decrypts_the_platform_certificate_from_v3_certificates(simulator, tmp_path):
    admin(simulator, "settings", {"signing": "certificate"})
    wxpay = client(simulator, mode="certificate")
    wxpay._core._certificates.clear()
    wxpay._core._cert_dir = str(tmp_path) + "/"

    wxpay._core._update_certificates()

    assert [format(c.serial_number, "X") for c in wxpay._core._certificates] == [simulator.account.platform_serial]
    assert (tmp_path / f"{simulator.account.platform_serial}.pem").read_text() == simulator.account.platform_cert_pem


# --- refunds ---


def test_a_refund_is_processing_then_success_and_the_order_becomes_refund(simulator):
    admin(simulator, "settings", {"refund_delay": 50})  # 50 ms at this time factor
    wxpay = client(simulator)
    paid_order(simulator, wxpay)

    status, refund = answer(wxpay.refund(out_refund_no="RF1", amount={"refund": 5000, "total": 20000, "currency": "CNY"},
                                         out_trade_no="FP20261130000001", reason="多缴"))
    assert status == 200
    assert (refund["status"], refund["amount"]["refund"], refund["amount"]["refund_fee"]) == ("PROCESSING", 5000, 30)
    wait_for(lambda: answer(wxpay.query_refund("RF1"))[1]["status"] == "SUCCESS", "the refund never succeeded")

    assert answer(wxpay.query_refund("RF1"))[1]["success_time"]
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "REFUND"


def test_the_same_refund_asked_again_answers_the_same_refund(simulator):
    wxpay = client(simulator)
    paid_order(simulator, wxpay)
    amount = {"refund": 5000, "total": 20000, "currency": "CNY"}

    first = answer(wxpay.refund(out_refund_no="RF1", amount=amount, out_trade_no="FP20261130000001"))[1]
    again = answer(wxpay.refund(out_refund_no="RF1", amount=amount, out_trade_no="FP20261130000001"))[1]
    other = answer(wxpay.refund(out_refund_no="RF1", amount={**amount, "refund": 100}, out_trade_no="FP20261130000001"))

    assert again["refund_id"] == first["refund_id"]
    assert other[1]["code"] == "INVALID_REQUEST"


def test_refunds_beyond_the_order_or_of_an_unpaid_order_are_refused(simulator):
    wxpay = client(simulator)
    paid_order(simulator, wxpay)
    place(wxpay, "FP20261130000002")
    refund = {"refund": 15000, "total": 20000, "currency": "CNY"}
    assert answer(wxpay.refund(out_refund_no="RF1", amount=refund, out_trade_no="FP20261130000001"))[0] == 200

    too_much = answer(wxpay.refund(out_refund_no="RF2", amount=refund, out_trade_no="FP20261130000001"))
    unpaid = answer(wxpay.refund(out_refund_no="RF3", amount=refund, out_trade_no="FP20261130000002"))
    unknown = answer(wxpay.refund(out_refund_no="RF4", amount=refund, out_trade_no="FP20261130999999"))

    assert (too_much[0], too_much[1]["code"]) == (400, "INVALID_REQUEST")
    assert (unpaid[0], unpaid[1]["message"]) == (400, "订单未支付")
    assert (unknown[0], unknown[1]["code"]) == (404, "RESOURCE_NOT_EXISTS")
    assert answer(wxpay.query_refund("RF9"))[0] == 404


def test_a_refund_can_be_made_abnormal_through_the_admin_api(simulator):
    admin(simulator, "settings", {"refund_delay": None})
    wxpay = client(simulator)
    paid_order(simulator, wxpay)
    wxpay.refund(out_refund_no="RF1", amount={"refund": 100, "total": 20000, "currency": "CNY"},
                 out_trade_no="FP20261130000001")

    settled = admin(simulator, "refunds/RF1", {"status": "ABNORMAL"})

    assert settled["status"] == "ABNORMAL"
    assert answer(wxpay.query_refund("RF1"))[1]["status"] == "ABNORMAL"


# --- notifications ---


def test_a_payment_notification_is_verified_and_decrypted_by_the_clients_callback(simulator, receiver):
    wxpay = client(simulator, notify_url=receiver.url)
    code_url = place(wxpay)

    scan_and_pay(simulator, code_url)
    headers, body, _at = receiver.wait(1)[0]
    notification = wxpay.callback(headers, body)

    assert notification["event_type"] == "TRANSACTION.SUCCESS" and notification["resource_type"] == "encrypt-resource"
    assert notification["resource"]["trade_state"] == "SUCCESS"
    assert notification["resource"]["out_trade_no"] == "FP20261130000001"
    assert notification["resource"]["amount"]["total"] == 20000
    assert headers["Wechatpay-Serial"] == simulator.account.platform_public_key_id
    assert wxpay.callback(headers, body.replace("SUCCESS", "FAILURE")) is None


def test_a_notification_signed_with_the_certificate_verifies_in_certificate_mode(simulator, receiver):
    admin(simulator, "settings", {"signing": "certificate"})
    wxpay = client(simulator, mode="certificate", notify_url=receiver.url)

    paid_order(simulator, wxpay)
    headers, body, _at = receiver.wait(1)[0]

    assert headers["Wechatpay-Serial"] == simulator.account.platform_serial
    assert wxpay.callback(headers, body)["resource"]["trade_state"] == "SUCCESS"


def test_a_notification_is_retried_on_the_schedule_until_the_merchant_answers_204(simulator, receiver):
    receiver.statuses = [500, 503, 200]
    wxpay = client(simulator, notify_url=receiver.url)

    paid_order(simulator, wxpay)
    tries = receiver.wait(3)
    time.sleep(0.2)

    assert len(receiver.received) == 3
    assert len({json.loads(body)["id"] for _headers, body, _at in tries}) == 1
    assert tries[1][2] - tries[0][2] >= RETRY_SCHEDULE[0] * TIME_FACTOR
    assert tries[2][2] - tries[1][2] >= RETRY_SCHEDULE[1] * TIME_FACTOR
    delivery = simulator.notifier.deliveries()[0]
    assert delivery["state"] == "delivered" and [t["status"] for t in delivery["tries"]] == [500, 503, 200]


def test_a_notification_no_one_accepts_is_given_up_after_the_last_retry(simulator):
    wxpay = client(simulator, notify_url="http://127.0.0.1:9/unreachable")
    simulator.clock.time_factor = 0.000001

    paid_order(simulator, wxpay)

    wait_for(lambda: simulator.notifier.deliveries()[0]["state"] == "failed", "the notification was never given up")
    assert len(simulator.notifier.deliveries()[0]["tries"]) == 1 + len(RETRY_SCHEDULE)


def test_a_refund_notification_carries_the_refund(simulator, receiver):
    admin(simulator, "settings", {"refund_delay": None})
    wxpay = client(simulator, notify_url=receiver.url)
    paid_order(simulator, wxpay)
    wxpay.refund(out_refund_no="RF1", amount={"refund": 100, "total": 20000, "currency": "CNY"},
                 out_trade_no="FP20261130000001")

    admin(simulator, "refunds/RF1", {"status": "SUCCESS"})
    notifications = [wxpay.callback(headers, body) for headers, body, _at in receiver.wait(2)]
    (notification,) = (n for n in notifications if n["event_type"].startswith("REFUND."))

    assert notification["event_type"] == "REFUND.SUCCESS" and notification["summary"] == "退款成功"
    assert notification["resource"]["refund_status"] == "SUCCESS" and notification["resource"]["out_refund_no"] == "RF1"
    assert notification["resource"]["amount"]["refund"] == 100


def test_the_duplicate_switch_sends_the_same_notification_twice(simulator, receiver):
    admin(simulator, "notifications", {"mode": "duplicate", "count": 1})
    wxpay = client(simulator, notify_url=receiver.url)

    paid_order(simulator, wxpay)
    received = receiver.wait(2)

    assert json.loads(received[0][1])["id"] == json.loads(received[1][1])["id"]
    assert all(wxpay.callback(headers, body) for headers, body, _at in received)


def test_the_drop_switch_loses_the_next_notification(simulator, receiver):
    admin(simulator, "notifications", {"mode": "drop", "count": 1})
    wxpay = client(simulator, notify_url=receiver.url)

    paid_order(simulator, wxpay, "FP20261130000001")
    paid_order(simulator, wxpay, "FP20261130000002")
    received = receiver.wait(1)
    time.sleep(0.2)

    assert len(received) == 1
    assert wxpay.callback(*received[0][:2])["resource"]["out_trade_no"] == "FP20261130000002"


def test_the_reorder_switch_delivers_the_held_notifications_newest_first(simulator, receiver):
    admin(simulator, "notifications", {"mode": "reorder", "count": 3})
    wxpay = client(simulator, notify_url=receiver.url)

    for number in (1, 2, 3):
        paid_order(simulator, wxpay, f"FP2026113000000{number}")
    received = receiver.wait(3)

    assert [wxpay.callback(*r[:2])["resource"]["out_trade_no"][-1] for r in received] == ["3", "2", "1"]


def test_a_release_after_the_reordered_notifications_went_out_sends_none_of_them_again(simulator, receiver):
    admin(simulator, "notifications", {"mode": "reorder", "count": 2})
    wxpay = client(simulator, notify_url=receiver.url)
    for number in (1, 2):
        paid_order(simulator, wxpay, f"FP2026113000000{number}")
    receiver.wait(2)

    admin(simulator, "notifications/release", {})
    time.sleep(0.5)

    assert len(receiver.received) == 2
    assert [len(d["tries"]) for d in simulator.notifier.deliveries()] == [1, 1]


def test_the_delay_switch_holds_the_next_notification_back(simulator, receiver):
    admin(simulator, "notifications", {"mode": "delay", "count": 1, "seconds": 0.5})
    wxpay = client(simulator, notify_url=receiver.url)
    started = time.monotonic()

    paid_order(simulator, wxpay)

    assert receiver.wait(1)[0][2] - started >= 0.5


def test_the_signtest_switch_sends_a_probe_the_client_refuses_before_the_real_notification(simulator, receiver):
    admin(simulator, "notifications", {"mode": "signtest", "count": 1})
    receiver.statuses = [401]
    wxpay = client(simulator, notify_url=receiver.url)

    paid_order(simulator, wxpay)
    (probe_headers, probe, _at), (headers, body, _at2) = receiver.wait(2)

    assert probe_headers["Wechatpay-Signature"].startswith("WECHATPAY/SIGNTEST/")
    assert wxpay.callback(probe_headers, probe) is None
    assert wxpay.callback(headers, body)["resource"]["trade_state"] == "SUCCESS"
    wait_for(lambda: sorted(d["state"] for d in simulator.notifier.deliveries()) == ["delivered", "refused"],
             "the probe was not recorded as refused")


# --- the trade bill ---


def test_the_trade_bill_is_gzip_with_its_sha1_and_every_line_the_day_had(simulator):
    wxpay = client(simulator)
    paid_order(simulator, wxpay, "FP20261130000001", 20000)
    paid_order(simulator, wxpay, "FP20261130000002", 5000)
    place(wxpay, "FP20261130000003")  # unpaid: not in the bill
    wxpay.refund(out_refund_no="RF1", amount={"refund": 5000, "total": 20000, "currency": "CNY"},
                 out_trade_no="FP20261130000001")
    today = simulator.clock.now()
    simulator.clock.set((today + timedelta(days=1)).replace(hour=10, minute=1))

    status, bill = answer(wxpay.trade_bill(bill_date=today.date().isoformat()))
    assert status == 200 and bill["hash_type"] == "SHA1"
    download_status, content = wxpay.download_bill(bill["download_url"])

    assert download_status == 200
    raw = gzip.decompress(content)
    assert hashlib.sha1(raw).hexdigest() == bill["hash_value"]
    rows = list(csv.reader(io.StringIO(raw.decode())))
    assert rows[0][:3] == ["交易时间", "公众账号ID", "商户号"] and len(rows[0]) == 27
    lines = [[value.removeprefix("`") for value in row] for row in rows[1:4]]
    assert all(value.startswith("`") for row in rows[1:4] + rows[5:] for value in row)
    payments = {line[6]: line for line in lines if line[9] == "SUCCESS"}
    (refund,) = (line for line in lines if line[9] == "REFUND")
    assert payments["FP20261130000001"][12] == "200.00" and payments["FP20261130000001"][22] == "1.20"
    assert payments["FP20261130000002"][22] == "0.30" and payments["FP20261130000002"][23] == "0.60%"
    assert (refund[15], refund[16], refund[22]) == ("RF1", "50.00", "-0.30")
    assert rows[4] == ["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额",
                       "申请退款总金额"]
    assert [value.removeprefix("`") for value in rows[5]] == ["3", "250.00", "50.00", "0.00", "1.20", "250.00", "50.00"]


def test_the_bill_is_not_out_before_ten_the_next_day(simulator):
    wxpay = client(simulator)
    paid_order(simulator, wxpay)
    today = simulator.clock.now()

    simulator.clock.set((today + timedelta(days=1)).replace(hour=9, minute=59))
    creating = answer(wxpay.trade_bill(bill_date=today.date().isoformat()))
    simulator.clock.set(today)
    not_yet = answer(wxpay.trade_bill(bill_date=today.date().isoformat()))
    simulator.clock.set((today + timedelta(days=2)).replace(hour=10))
    empty_day = answer(wxpay.trade_bill(bill_date=(today + timedelta(days=1)).date().isoformat()))

    assert (creating[0], creating[1]["code"]) == (400, "STATEMENT_CREATING")
    assert not_yet[1]["code"] == "NO_STATEMENT_EXIST"
    assert empty_day[1]["code"] == "NO_STATEMENT_EXIST"


def test_the_bill_download_url_is_short_lived(simulator, monkeypatch):
    wxpay = client(simulator)
    paid_order(simulator, wxpay)
    today = simulator.clock.now()
    simulator.clock.set((today + timedelta(days=1)).replace(hour=11))
    url = answer(wxpay.trade_bill(bill_date=today.date().isoformat()))[1]["download_url"]
    later = time.time() + 301
    monkeypatch.setattr("payments.gateways.wechatpay.simulator.bills.time.time", lambda: later)

    status, text = wxpay.download_bill(url)

    assert (status, json.loads(text)["code"]) == (400, "INVALID_REQUEST")


# --- faults ---


@pytest.mark.parametrize(("kind", "status"), [("SYSTEM_ERROR", 500), ("FREQUENCY_LIMITED", 429)])
def test_a_fault_switch_fails_the_next_requests_then_lets_them_through(simulator, kind, status):
    admin(simulator, "faults", {"kind": kind, "count": 2, "path": "/v3/pay/"})
    wxpay = client(simulator)

    first, second = (answer(wxpay.query(out_trade_no="FP20261130000001")) for _ in range(2))
    third = answer(wxpay.query(out_trade_no="FP20261130000001"))

    assert [first[0], second[0], first[1]["code"]] == [status, status, kind]
    assert third[0] == 404


def test_a_fault_after_the_work_loses_the_outcome_but_not_the_order(simulator):
    admin(simulator, "faults", {"kind": "SYSTEM_ERROR", "count": 1, "after": True})
    wxpay = client(simulator)

    status, body = answer(wxpay.pay(description="罚款", out_trade_no="FP20261130000001", amount={"total": 1}))

    assert (status, body["code"]) == (500, "SYSTEM_ERROR")
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "NOTPAY"


def test_the_timeout_switch_holds_a_request_past_the_clients_timeout(simulator):
    admin(simulator, "faults", {"kind": "timeout", "count": 1, "seconds": 1})
    wxpay = client(simulator, timeout=(1, 0.3))

    with pytest.raises(requests.Timeout):
        wxpay.query(out_trade_no="FP20261130000001")


def test_the_not_enough_switch_refuses_a_refund(simulator):
    wxpay = client(simulator)
    paid_order(simulator, wxpay)
    admin(simulator, "faults", {"kind": "NOT_ENOUGH", "count": 1, "path": "/v3/refund/"})

    status, body = answer(wxpay.refund(out_refund_no="RF1", amount={"refund": 1, "total": 20000, "currency": "CNY"},
                                       out_trade_no="FP20261130000001"))

    assert (status, body["code"]) == (403, "NOT_ENOUGH")


def test_the_bill_hash_switch_answers_a_sha1_that_is_not_the_bills_once(simulator):
    wxpay = client(simulator)
    paid_order(simulator, wxpay)
    today = simulator.clock.now()
    simulator.clock.set((today + timedelta(days=1)).replace(hour=10, minute=1))
    admin(simulator, "faults", {"kind": "bill_hash_mismatch", "count": 1, "path": "/v3/bill/"})

    damaged, sound = (answer(wxpay.trade_bill(bill_date=today.date().isoformat()))[1] for _ in range(2))

    raw = gzip.decompress(wxpay.download_bill(damaged["download_url"])[1])
    assert damaged["hash_type"] == "SHA1" and len(damaged["hash_value"]) == 40
    assert hashlib.sha1(raw).hexdigest() != damaged["hash_value"]
    assert hashlib.sha1(raw).hexdigest() == sound["hash_value"]


def test_an_unknown_switch_is_refused_by_the_admin_api(simulator):
    for path, body in (("faults", {"kind": "melt"}), ("notifications", {"mode": "shuffle"}),
                       ("settings", {"signing": "md5"}), ("clock", {"now": "tomorrow"})):
        assert requests.post(f"{simulator.base_url}/simulator/admin/{path}", json=body).status_code == 400


# --- OAuth, persistence, configuration ---


def test_oauth_gives_a_code_that_is_exchanged_once_for_the_openid(simulator):
    account, session = simulator.account, requests.Session()
    authorize = session.get(f"{simulator.base_url}/connect/oauth2/authorize", allow_redirects=False, params={
        "appid": account.appid, "redirect_uri": "https://finepay.example/wechat/oauth?x=1",
        "response_type": "code", "scope": "snsapi_base", "state": "p7"})
    assert authorize.status_code == 302
    location = authorize.headers["Location"]
    assert location.startswith("https://finepay.example/wechat/oauth?x=1&code=") and location.endswith("&state=p7")
    code = location.split("code=")[1].split("&")[0]
    exchange = {"appid": account.appid, "secret": account.app_secret, "code": code,
                "grant_type": "authorization_code"}

    token = session.get(f"{simulator.base_url}/sns/oauth2/access_token", params=exchange).json()
    again = session.get(f"{simulator.base_url}/sns/oauth2/access_token", params=exchange).json()
    wrong_secret = session.get(f"{simulator.base_url}/sns/oauth2/access_token", params={**exchange, "secret": "x"})

    assert token["openid"].startswith("o") and token["scope"] == "snsapi_base"
    assert again["errcode"] == 40029
    assert wrong_secret.json()["errcode"] == 40125


def test_orders_survive_a_restart(data_dir):
    first = Simulator(data_dir, time_factor=TIME_FACTOR).start()
    paid_order(first, client(first))
    first.stop()

    second = Simulator(data_dir, time_factor=TIME_FACTOR).start()
    try:
        assert answer(client(second).query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "SUCCESS"
    finally:
        second.stop()


def test_a_notification_pending_at_a_restart_is_retried_after_it(data_dir, receiver):
    receiver.statuses = [500]
    first = Simulator(data_dir, time_factor=0.05).start()  # the first retry 0.75 s after the first try
    paid_order(first, client(first, notify_url=receiver.url))
    receiver.wait(1)
    first.stop()

    second = Simulator(data_dir, time_factor=0.05).start()
    try:
        (_first_try, (headers, body, _at)) = receiver.wait(2)
        assert client(second).callback(headers, body)["resource"]["trade_state"] == "SUCCESS"
    finally:
        second.stop()


def test_print_config_prints_what_a_client_needs_and_keeps_the_account(tmp_path):
    runner = CliRunner()

    first = json.loads(runner.invoke(command, ["--data-dir", str(tmp_path), "--port", "0", "--print-config"]).output)
    second = json.loads(runner.invoke(command, ["--data-dir", str(tmp_path), "--port", "0", "--print-config"]).output)

    assert first["mchid"] == second["mchid"] and first["apiv3_key"] == second["apiv3_key"]
    assert len(first["apiv3_key"]) == 32 and first["platform_public_key_id"].startswith("PUB_KEY_ID_")
    assert Path(first["merchant_private_key_path"]).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert Path(first["platform_public_key_path"]).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert (Path(first["platform_cert_dir"]) / f"{first['platform_serial']}.pem").exists()
    assert first["base_url"].startswith("http://127.0.0.1:")



def test_flask_simulate_finds_the_wechatpay_simulator():
    (entry_point,) = entry_points(group=SIMULATOR_GROUP, name="wechatpay")

    assert entry_point.load() is command


def test_the_command_serves_the_simulator_as_a_process_of_its_own(data_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "payments.gateways.wechatpay.simulator", "--port", str(port),
                                "--data-dir", str(data_dir), "--time-factor", "0.001"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: process.poll() is None and serving(base_url), "the simulator process never answered")
        config = load_or_create(data_dir).config(base_url, "public-key")
        wxpay = client(SimpleNamespace(config=lambda: config))

        place(wxpay)

        assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "NOTPAY"
    finally:
        process.terminate()
        process.wait(timeout=WAIT_SECONDS)


def serving(base_url):
    try:
        return requests.get(f"{base_url}/simulator/admin/state", timeout=1).ok
    except requests.ConnectionError:
        return False
