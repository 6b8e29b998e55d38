"""The Alipay simulator driven by the public python-alipay-sdk, pointed at it by its gateway URL alone.

The SDK signs every request and verifies every answer's signature itself, and its
verify() checks notifications and return parameters: the simulator's fidelity rests on
Alipay's own client, not on FinePay's reading of the documents.
"""
import io
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from alipay import AliPay
from alipay.exceptions import AliPayException
from alipay.utils import AliPayConfig
from click.testing import CliRunner
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from payments.gateways.alipay.simulator import command
from payments.gateways.alipay.simulator.app import Simulator
from payments.gateways.alipay.simulator.clock import BEIJING

TIME_FACTOR = 0.0005  # 4 minutes become 0.12 s


@pytest.fixture(scope="module")
def account_template(tmp_path_factory):
    """One set of keys and ids for the module: making RSA keys is the slow part of a first start."""
    directory = tmp_path_factory.mktemp("alipay-account")
    Simulator(directory).stop()
    return directory


@contextmanager
def serving(wsgi):
    """Serve ``wsgi`` on a free loopback port; yields the base URL; stops the server on exit."""
    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def sdk_client(config, private_key_path=None, timeout=15):
    """python-alipay-sdk configured from the simulator's --print-config, pointed at its gateway URL."""
    client = AliPay(
        appid=config["app_id"],
        app_notify_url=None,
        app_private_key_string=open(private_key_path or config["app_private_key_path"]).read(),
        alipay_public_key_string=open(config["alipay_public_key_path"]).read(),
        sign_type="RSA2",
        config=AliPayConfig(timeout=timeout),
    )
    client._gateway = config["gateway_url"]  # the SDK's one knob for its endpoint
    return client


class Running:
    """A simulator being served: its base URL, its client configuration and helpers for its admin API."""

    def __init__(self, simulator, base):
        self.simulator = simulator
        self.base = base
        self.config = simulator.account.client_config(int(base.rsplit(":", 1)[1]))

    def client(self, private_key_path=None, timeout=15):
        """The public SDK with the app's key, pointed at the simulator."""
        return sdk_client(self.config, private_key_path, timeout)

    def admin(self, path, payload=None):
        """GET (or POST ``payload`` to) an admin endpoint; its JSON."""
        url = f"{self.base}/simulator/admin/{path}"
        answer = requests.post(url, json=payload, timeout=5) if payload is not None else requests.get(url, timeout=5)
        return answer.json()

    def now(self):
        """The simulator's clock."""
        return datetime.strptime(self.admin("clock")["now"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)


@pytest.fixture
def alipay_sim(account_template, tmp_path):
    """A simulator on a copy of the module's account with an empty store, stopped by the test."""
    directory = tmp_path / "alipay"
    shutil.copytree(account_template, directory, ignore=shutil.ignore_patterns("store.sqlite3"))
    simulator = Simulator(directory, time_factor=TIME_FACTOR, notify_timeout=2)
    with serving(simulator.app) as base:
        simulator.start()
        try:
            yield Running(simulator, base)
        finally:
            simulator.stop()


class Receiver:
    """The merchant's notify_url: records each form POST and answers from a script (its last answer repeats)."""

    def __init__(self, *answers):
        self.answers = list(answers or ["success"])
        self.received = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.received.append(request.form.to_dict())
            body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return Response(body)(environ, start_response)


def wait_until(predicate, timeout=5.0):
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def scan_and(client_session, qr_code, action):
    """What the buyer's phone does: open the QR code's page and press ``action``; the final response."""
    page = client_session.get(qr_code, timeout=5)
    return client_session.post(page.url, data={"action": action}, timeout=5, allow_redirects=False)


def place(client, out_trade_no="FP-1", total="12.34", **extra):
    return client.api_alipay_trade_precreate(subject="交通违法罚款", out_trade_no=out_trade_no,
                                             total_amount=total, **extra)


def paid_trade(alipay_sim, client, out_trade_no="FP-1", total="12.34", **extra):
    answer = place(client, out_trade_no, total, **extra)
    scan_and(requests.Session(), answer["qr_code"], "approve")
    return answer


def verified(client, params):
    """Whether the SDK's verify() accepts signed parameters (a notification or a return)."""
    data = dict(params)
    signature = data.pop("sign")
    return client.verify(data, signature)


def test_precreate_payer_approval_and_query_in_alipays_signed_answers(alipay_sim):
    client = alipay_sim.client()
    answer = place(client)
    assert answer["code"] == "10000" and answer["out_trade_no"] == "FP-1"
    assert answer["qr_code"].startswith(f"{alipay_sim.base}/simulator/qr/")
    buyer = requests.Session()
    page = buyer.get(answer["qr_code"], timeout=5)
    assert "SIMULATION" in page.text and "12.34" in page.text
    assert client.api_alipay_trade_query(out_trade_no="FP-1")["trade_status"] == "WAIT_BUYER_PAY"
    done = buyer.post(page.url, data={"action": "approve"}, timeout=5)
    assert 'data-state="TRADE_SUCCESS"' in done.text
    query = client.api_alipay_trade_query(out_trade_no="FP-1")
    assert query["trade_status"] == "TRADE_SUCCESS"
    assert (query["total_amount"], query["receipt_amount"], query["buyer_pay_amount"]) == ("12.34",) * 3
    assert query["trade_no"].startswith(date.today().strftime("%Y")) and len(query["trade_no"]) == 28
    assert client.api_alipay_trade_query(trade_no=query["trade_no"])["out_trade_no"] == "FP-1"


def test_a_precreated_trade_does_not_exist_until_its_qr_code_is_scanned(alipay_sim):
    client = alipay_sim.client()
    answer = place(client)
    query = client.api_alipay_trade_query(out_trade_no="FP-1")
    assert (query["code"], query["sub_code"], query["receipt_amount"]) == ("40004", "ACQ.TRADE_NOT_EXIST", "0.00")
    assert client.api_alipay_trade_close(out_trade_no="FP-1")["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    # the close found nothing: the QR code is still payable until it expires, as at Alipay
    scan_and(requests.Session(), answer["qr_code"], "approve")
    assert client.api_alipay_trade_query(out_trade_no="FP-1")["trade_status"] == "TRADE_SUCCESS"


def test_precreate_again_returns_the_same_code_or_refuses_a_changed_or_settled_trade(alipay_sim):
    client = alipay_sim.client()
    first = place(client)
    assert place(client)["qr_code"] == first["qr_code"]
    assert place(client, total="99.00")["sub_code"] == "ACQ.CONTEXT_INCONSISTENT"
    scan_and(requests.Session(), first["qr_code"], "approve")
    assert place(client)["sub_code"] == "ACQ.TRADE_HAS_SUCCESS"
    place(client, "FP-2")
    scan_and(requests.Session(), place(client, "FP-2")["qr_code"], "cancel")
    client.api_alipay_trade_close(out_trade_no="FP-2")
    assert place(client, "FP-2")["sub_code"] == "ACQ.TRADE_HAS_CLOSE"
    assert place(client, "FP-3", total="0.001")["sub_code"] == "ACQ.INVALID_PARAMETER"
    assert place(client, "FP-4", total="100000000.01")["sub_code"] == "ACQ.TOTAL_FEE_EXCEED"


@pytest.mark.parametrize("method", ["wap", "page"])
def test_wap_pay_opens_the_cashier_and_returns_with_parameters_the_sdk_verifies(alipay_sim, method):
    client = alipay_sim.client()
    redirect = getattr(client, f"api_alipay_trade_{method}_pay")
    signed = redirect(subject="罚款", out_trade_no="FP-W", total_amount="50.00",
                      return_url="http://merchant.example/return?payment=7")
    buyer = requests.Session()
    cashier = buyer.get(f"{alipay_sim.config['gateway_url']}?{signed}", timeout=5)
    assert "/simulator/pay/" in cashier.url and "SIMULATION" in cashier.text
    back = buyer.post(cashier.url, data={"action": "approve"}, timeout=5, allow_redirects=False)
    assert back.status_code == 302
    location = urlsplit(back.headers["Location"])
    assert (location.netloc, location.path) == ("merchant.example", "/return")
    params = dict(parse_qsl(location.query))
    assert params.pop("payment") == "7"
    assert params["method"] == f"alipay.trade.{method}.pay.return" and params["total_amount"] == "50.00"
    assert verified(client, params)
    assert not verified(client, {**params, "total_amount": "0.01"})
    assert client.api_alipay_trade_query(out_trade_no="FP-W")["trade_status"] == "TRADE_SUCCESS"


def test_a_wap_redirect_with_a_bad_signature_shows_the_cashiers_error(alipay_sim):
    signed = alipay_sim.client().api_alipay_trade_wap_pay(subject="罚款", out_trade_no="FP-W", total_amount="5.00")
    tampered = signed.replace("%225.00%22", "%220.01%22")
    assert tampered != signed
    page = requests.get(f"{alipay_sim.config['gateway_url']}?{tampered}", timeout=5)
    assert "错误代码 invalid-signature" in page.text and "SIMULATION" in page.text


def test_the_payer_can_fail_for_insufficient_balance_or_cancel_and_the_trade_keeps_waiting(alipay_sim):
    client = alipay_sim.client()
    answer = place(client)
    failed = scan_and(requests.Session(), answer["qr_code"], "fail")
    assert "余额不足" in failed.text
    assert client.api_alipay_trade_query(out_trade_no="FP-1")["trade_status"] == "WAIT_BUYER_PAY"
    scan_and(requests.Session(), answer["qr_code"], "cancel")
    assert client.api_alipay_trade_query(out_trade_no="FP-1")["trade_status"] == "WAIT_BUYER_PAY"
    signed = client.api_alipay_trade_wap_pay(subject="罚款", out_trade_no="FP-W", total_amount="5.00",
                                             return_url="http://merchant.example/return",
                                             quit_url="http://merchant.example/quit")
    buyer = requests.Session()
    cashier = buyer.get(f"{alipay_sim.config['gateway_url']}?{signed}", timeout=5)
    quit_ = buyer.post(cashier.url, data={"action": "cancel"}, timeout=5, allow_redirects=False)
    assert quit_.headers["Location"] == "http://merchant.example/quit"


def test_close_closes_a_waiting_trade_and_refuses_a_paid_one(alipay_sim):
    client = alipay_sim.client()
    answer = place(client)
    requests.get(answer["qr_code"], timeout=5)  # scanned, not paid
    closed = client.api_alipay_trade_close(out_trade_no="FP-1")
    assert closed["code"] == "10000" and closed["out_trade_no"] == "FP-1"
    assert client.api_alipay_trade_query(out_trade_no="FP-1")["trade_status"] == "TRADE_CLOSED"
    page = scan_and(requests.Session(), answer["qr_code"], "approve")
    assert 'data-state="TRADE_CLOSED"' in page.text
    paid_trade(alipay_sim, client, "FP-2")
    assert client.api_alipay_trade_close(out_trade_no="FP-2")["sub_code"] == "ACQ.TRADE_STATUS_ERROR"


def test_timeout_express_and_time_expire_close_the_trade_when_they_pass(alipay_sim):
    client = alipay_sim.client()
    answer = place(client, timeout_express="5m")
    requests.get(answer["qr_code"], timeout=5)
    expire_at = (alipay_sim.now() + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    place(client, "FP-2", time_expire=expire_at)
    alipay_sim.admin("clock", {"advance_seconds": 6 * 60})
    assert client.api_alipay_trade_query(out_trade_no="FP-1")["trade_status"] == "TRADE_CLOSED"
    assert 'data-state="TRADE_CLOSED"' in scan_and(requests.Session(), answer["qr_code"], "approve").text
    assert alipay_sim.admin("trades/FP-2")["status"] == "WAIT_BUYER_PAY"
    alipay_sim.admin("clock", {"advance_seconds": 60 * 60})
    assert alipay_sim.admin("trades/FP-2")["status"] == "TRADE_CLOSED"
    assert place(client, "FP-3", timeout_express="1.5h")["sub_code"] == "ACQ.INVALID_PARAMETER"
    place(client, "FP-4", timeout_express="1c")
    end_of_day = alipay_sim.now().date().isoformat() + " 23:59:59"
    assert alipay_sim.admin("trades/FP-4")["expires_at"] == end_of_day


def test_refund_once_per_out_request_no_and_the_refund_query_reports_it(alipay_sim):
    client = alipay_sim.client()
    paid_trade(alipay_sim, client)
    first = client.api_alipay_trade_refund("2.00", out_trade_no="FP-1", out_request_no="R-1")
    assert (first["code"], first["fund_change"], first["refund_fee"]) == ("10000", "Y", "2.00")
    again = client.api_alipay_trade_refund("2.00", out_trade_no="FP-1", out_request_no="R-1")
    assert (again["fund_change"], again["refund_fee"]) == ("N", "2.00")
    assert client.api_alipay_trade_refund("3.00", out_trade_no="FP-1",
                                          out_request_no="R-1")["sub_code"] == "ACQ.DISCORDANT_REPEAT_REQUEST"
    query = client.api_alipay_trade_fastpay_refund_query("R-1", out_trade_no="FP-1")
    assert (query["refund_amount"], query["total_amount"], query["refund_status"]) == ("2.00", "12.34",
                                                                                      "REFUND_SUCCESS")
    unknown = client.api_alipay_trade_fastpay_refund_query("R-9", out_trade_no="FP-1")
    assert unknown["code"] == "10000" and "refund_amount" not in unknown and "refund_status" not in unknown
    assert client.api_alipay_trade_refund("10.35", out_trade_no="FP-1",
                                          out_request_no="R-2")["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    rest = client.api_alipay_trade_refund("10.34", out_trade_no="FP-1", out_request_no="R-2")
    assert rest["refund_fee"] == "12.34"
    assert client.api_alipay_trade_query(out_trade_no="FP-1")["trade_status"] == "TRADE_CLOSED"
    assert client.api_alipay_trade_refund("1.00", out_trade_no="FP-1",
                                          out_request_no="R-3")["sub_code"] == "ACQ.TRADE_HAS_CLOSE"


def test_a_refund_beyond_the_sellers_available_balance_is_refused(alipay_sim):
    client = alipay_sim.client()
    paid_trade(alipay_sim, client)
    assert alipay_sim.admin("balance") == {"available": "12.27"}  # 12.34 received, 0.07 fee
    alipay_sim.admin("balance", {"available": "0.50"})
    assert client.api_alipay_trade_refund("1.00", out_trade_no="FP-1",
                                          out_request_no="R-1")["sub_code"] == "ACQ.SELLER_BALANCE_NOT_ENOUGH"
    assert client.api_alipay_trade_refund("0.50", out_trade_no="FP-1", out_request_no="R-1")["code"] == "10000"


def test_refunds_refused_for_an_unknown_unpaid_or_finished_trade(alipay_sim):
    client = alipay_sim.client()
    assert client.api_alipay_trade_refund("1.00", out_trade_no="NOPE")["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    requests.get(place(client)["qr_code"], timeout=5)
    assert client.api_alipay_trade_refund("1.00", out_trade_no="FP-1")["sub_code"] == "ACQ.TRADE_STATUS_ERROR"
    receiver = Receiver()
    with serving(receiver) as notify_url:
        paid_trade(alipay_sim, client, "FP-2", notify_url=notify_url)
        assert alipay_sim.admin("trades/FP-2/finish", {})["status"] == "TRADE_FINISHED"
        wait_until(lambda: len(receiver.received) == 2)
    assert [n["trade_status"] for n in receiver.received] == ["TRADE_SUCCESS", "TRADE_FINISHED"]
    assert client.api_alipay_trade_query(out_trade_no="FP-2")["trade_status"] == "TRADE_FINISHED"
    assert client.api_alipay_trade_refund("0.10", out_trade_no="FP-2",
                                          out_request_no="R-1")["sub_code"] == "ACQ.TRADE_HAS_FINISHED"


def test_a_bad_signature_is_answered_isv_invalid_signature(alipay_sim):
    wrong_key = alipay_sim.client(private_key_path=alipay_sim.simulator.account.data_dir / "alipay_private_key.pem")
    answer = wrong_key.api_alipay_trade_query(out_trade_no="FP-1")  # the SDK verified the answer's signature
    assert (answer["code"], answer["msg"], answer["sub_code"]) == ("40002", "Invalid Arguments",
                                                                  "isv.invalid-signature")
    assert "网关生成的验签字符串为：app_id=" in answer["sub_msg"] and "&amp;method=alipay.trade.query" in answer["sub_msg"]


def test_a_tampered_request_and_an_unknown_app_are_refused(alipay_sim):
    client = alipay_sim.client()
    signed = client.sign_data(client.build_body("alipay.trade.query", {"out_trade_no": "FP-1"}))
    tampered = requests.get(f"{alipay_sim.config['gateway_url']}?{signed.replace('FP-1', 'FP-2')}", timeout=5)
    assert tampered.json()["alipay_trade_query_response"]["sub_code"] == "isv.invalid-signature"
    stranger = alipay_sim.client()
    stranger._appid = "2021000000000000"
    with pytest.raises(AliPayException) as refused:
        stranger.api_alipay_trade_query(out_trade_no="FP-1")
    assert "isv.invalid-app-id" in str(refused.value)
    unknown = requests.get(f"{alipay_sim.config['gateway_url']}?method=alipay.trade.pay", timeout=5).json()
    assert unknown["error_response"]["sub_code"] == "isv.invalid-method"


@pytest.mark.parametrize(("change", "key", "sub_code"), [
    ({"method": None}, "error_response", "isv.missing-method"),
    ({"app_id": None}, "alipay_trade_query_response", "isv.missing-app-id"),
    ({"sign": None}, "alipay_trade_query_response", "isv.missing-signature"),
    ({"sign_type": None}, "alipay_trade_query_response", "isv.missing-signature-type"),
    ({"sign_type": "MD5"}, "alipay_trade_query_response", "isv.invalid-signature-type"),
    ({"charset": "gbk"}, "alipay_trade_query_response", "isv.invalid-charset"),
    ({"timestamp": "2026/01/01 00:00"}, "alipay_trade_query_response", "isv.invalid-timestamp"),
])
def test_the_gateway_checks_the_common_parameters_in_alipays_order(alipay_sim, change, key, sub_code):
    client = alipay_sim.client()
    params = dict(parse_qsl(client.sign_data(client.build_body("alipay.trade.query", {"out_trade_no": "FP-1"}))))
    for name, value in change.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    answer = requests.get(alipay_sim.config["gateway_url"], params=params, timeout=5).json()
    assert answer[key]["sub_code"] == sub_code and answer[key]["code"] in ("40001", "40002")


def test_a_form_post_is_checked_and_answered_like_a_query_string(alipay_sim):
    client = alipay_sim.client()
    place(client)
    params = dict(parse_qsl(client.sign_data(client.build_body("alipay.trade.query", {"out_trade_no": "FP-1"}))))
    answer = requests.post(alipay_sim.config["gateway_url"], data=params, timeout=5)
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["alipay_trade_query_response"]["sub_code"] == "ACQ.TRADE_NOT_EXIST"


def test_payment_notification_verifies_with_the_sdk_and_is_retried_until_success(alipay_sim):
    receiver = Receiver("fail", "", "success")
    client = alipay_sim.client()
    with serving(receiver) as notify_url:
        paid_trade(alipay_sim, client, notify_url=f"{notify_url}/notify")
        wait_until(lambda: len(receiver.received) == 3)
        time.sleep(10 * 60 * TIME_FACTOR * 3)  # no fourth attempt after success
    assert len(receiver.received) == 3
    notification = receiver.received[-1]
    assert verified(client, notification)
    assert not verified(client, {**notification, "total_amount": "0.01"})
    assert (notification["notify_type"], notification["trade_status"]) == ("trade_status_sync", "TRADE_SUCCESS")
    assert (notification["app_id"], notification["out_trade_no"], notification["total_amount"]) == (
        alipay_sim.config["app_id"], "FP-1", "12.34")
    assert notification["receipt_amount"] == notification["buyer_pay_amount"] == "12.34"
    assert json.loads(notification["fund_bill_list"]) == [{"amount": "12.34", "fundChannel": "ALIPAYACCOUNT"}]
    assert len({received["notify_id"] for received in receiver.received}) == 1
    [record] = alipay_sim.admin("notifications")["notifications"]
    assert (record["state"], record["attempts"]) == ("delivered", 3)


def test_an_unanswered_notification_stops_after_alipays_eight_attempts(alipay_sim):
    receiver = Receiver("no")
    alipay_sim.simulator.notifier.time_factor = 0.00001  # the whole 25-hour schedule in under a second
    with serving(receiver) as notify_url:
        paid_trade(alipay_sim, alipay_sim.client(), notify_url=notify_url)
        wait_until(lambda: alipay_sim.admin("notifications")["notifications"][0]["state"] == "failed")
    assert len(receiver.received) == 8


def test_refund_notification_carries_refund_fee_gmt_refund_and_out_biz_no(alipay_sim):
    receiver = Receiver()
    client = alipay_sim.client()
    with serving(receiver) as notify_url:
        paid_trade(alipay_sim, client, notify_url=notify_url)
        client.api_alipay_trade_refund("2.34", out_trade_no="FP-1", out_request_no="R-1")
        client.api_alipay_trade_refund("10.00", out_trade_no="FP-1", out_request_no="R-2")
        wait_until(lambda: len(receiver.received) == 3)
    by_refund = {notification.get("out_biz_no"): notification for notification in receiver.received}
    payment, partial, full = by_refund[None], by_refund["R-1"], by_refund["R-2"]
    assert "refund_fee" not in payment and payment["trade_status"] == "TRADE_SUCCESS"
    assert (partial["trade_status"], partial["refund_fee"], partial["out_biz_no"]) == ("TRADE_SUCCESS", "2.34", "R-1")
    assert (full["trade_status"], full["refund_fee"], full["out_biz_no"]) == ("TRADE_CLOSED", "12.34", "R-2")
    assert len(partial["gmt_refund"]) == len("2026-01-01 00:00:00.000")
    assert all(verified(client, notification) for notification in receiver.received)


def test_notification_switches_drop_duplicate_delay_and_reorder(alipay_sim):
    receiver = Receiver()
    client = alipay_sim.client()
    with serving(receiver) as notify_url:
        alipay_sim.admin("notifications", {"action": "drop", "count": 1})
        paid_trade(alipay_sim, client, "FP-DROP", notify_url=notify_url)
        alipay_sim.admin("notifications", {"action": "duplicate", "count": 1})
        paid_trade(alipay_sim, client, "FP-DUP", notify_url=notify_url)
        wait_until(lambda: len(receiver.received) == 2)
        assert [n["out_trade_no"] for n in receiver.received] == ["FP-DUP", "FP-DUP"]
        assert receiver.received[0]["notify_id"] == receiver.received[1]["notify_id"]

        alipay_sim.admin("notifications", {"action": "hold"})
        for out_trade_no in ("FP-A", "FP-B", "FP-C"):
            paid_trade(alipay_sim, client, out_trade_no, notify_url=notify_url)
        time.sleep(0.2)
        assert len(receiver.received) == 2
        assert alipay_sim.admin("notifications", {"action": "release", "order": "newest_first"})["released"] == 3
        wait_until(lambda: len(receiver.received) == 5)
        assert [n["out_trade_no"] for n in receiver.received[2:]] == ["FP-C", "FP-B", "FP-A"]

        alipay_sim.admin("notifications", {"action": "delay", "count": 1, "seconds": 0.6})
        paid_trade(alipay_sim, client, "FP-LATE", notify_url=notify_url)
        time.sleep(0.3)
        assert len(receiver.received) == 5
        wait_until(lambda: len(receiver.received) == 6)
        dropped = [n for n in alipay_sim.admin("notifications")["notifications"] if n["state"] == "dropped"]
        assert [n["params"]["out_trade_no"] for n in dropped] == ["FP-DROP"]
        alipay_sim.admin(f"notifications/{dropped[0]['id']}/resend", {})
        wait_until(lambda: len(receiver.received) == 7)
    assert receiver.received[-1]["out_trade_no"] == "FP-DROP" and verified(client, receiver.received[-1])


def test_expiry_of_a_scanned_trade_is_notified_as_trade_closed(alipay_sim):
    receiver = Receiver()
    with serving(receiver) as notify_url:
        answer = place(alipay_sim.client(), timeout_express="1m", notify_url=notify_url)
        place(alipay_sim.client(), "FP-UNSEEN", timeout_express="1m", notify_url=notify_url)
        requests.get(answer["qr_code"], timeout=5)
        alipay_sim.admin("clock", {"advance_seconds": 120})
        wait_until(lambda: len(receiver.received) == 1)
        time.sleep(0.2)
    [closed] = receiver.received  # the QR code nobody scanned closes unseen
    assert (closed["out_trade_no"], closed["trade_status"]) == ("FP-1", "TRADE_CLOSED")
    assert "gmt_close" in closed and "gmt_payment" not in closed


def bill_url(client, bill_date):
    return client.server_api("alipay.data.dataservice.bill.downloadurl.query",
                             {"bill_type": "trade", "bill_date": bill_date.isoformat()})


def read_bill(content):
    """The detail and summary CSV texts of a bill zip (GBK names and contents)."""
    bundle = zipfile.ZipFile(io.BytesIO(content), metadata_encoding="gbk")
    texts = {name.rsplit("_", 1)[1]: bundle.read(name).decode("gbk") for name in bundle.namelist()}
    return texts["业务明细.csv"], texts["业务明细(汇总).csv"]


def test_the_trade_bill_is_ready_at_ten_the_next_day_as_a_gbk_zip_with_preface_and_totals(alipay_sim):
    client = alipay_sim.client()
    paid_trade(alipay_sim, client, "FP-1", "100.00")
    paid_trade(alipay_sim, client, "FP-2", "0.50")
    client.api_alipay_trade_refund("40.00", out_trade_no="FP-1", out_request_no="R-1")
    today = alipay_sim.now().date()
    not_yet = bill_url(client, today)
    assert (not_yet["code"], not_yet["sub_code"]) == ("40004", "isp.bill_not_exist")
    alipay_sim.admin("clock", {"now": f"{today + timedelta(days=1)} 09:59:00"})
    assert bill_url(client, today)["sub_code"] == "isp.bill_not_exist"
    alipay_sim.admin("clock", {"now": f"{today + timedelta(days=1)} 10:00:00"})
    signcustomer = client.server_api("alipay.data.dataservice.bill.downloadurl.query",
                                     {"bill_type": "signcustomer", "bill_date": today.isoformat()})
    assert signcustomer["sub_code"] == "ACQ.INVALID_PARAMETER"
    download = requests.get(bill_url(client, today)["bill_download_url"], timeout=5)
    assert download.headers["Content-Type"] == "application/zip"
    assert all(entry.flag_bits & 0x800 == 0 for entry in zipfile.ZipFile(io.BytesIO(download.content)).infolist())
    detail, summary = read_bill(download.content)
    lines = detail.split("\r\n")
    account = alipay_sim.config["seller_id"] + "0156"
    assert lines[:3] == ["#支付宝业务明细查询", f"#账号：[{account}]",
                         f"#起始日期：[{today:%Y年%m月%d日} 00:00:00]   "
                         f"终止日期：[{today + timedelta(days=1):%Y年%m月%d日} 00:00:00]"]
    heading = lines[4].split(",")
    assert heading[:3] == ["支付宝交易号", "商户订单号", "业务类型"] and len(heading) == 25
    rows = [dict(zip(heading, line.split(","), strict=True)) for line in lines[5:8]]
    assert [(row["商户订单号"], row["业务类型"], row["订单金额（元）"], row["商家实收（元）"], row["服务费（元）"])
            for row in rows] == [("FP-1\t", "交易\t", "100.00", "100.00", "-0.60"),
                                 ("FP-2\t", "交易\t", "0.50", "0.50", "0.00"),
                                 ("FP-1\t", "退款\t", "-40.00", "-40.00", "0.24")]
    assert rows[2]["退款批次号/请求号"] == "R-1\t"
    assert lines[8].startswith("#-----------------------------------------业务明细列表结束")
    assert lines[9:11] == ["#交易合计：2笔，商家实收共100.50元，商家优惠共0.00元",
                           "#退款合计：1笔，商家实收退款共-40.00元，商家优惠退款共0.00元"]
    assert lines[11].startswith("#导出时间：[")
    assert "合计,,2,1,60.50,60.50,0.00,0.00,0.00,-0.36,0.00,60.14" in summary.split("\r\n")


def test_the_bill_link_expires_after_thirty_seconds(alipay_sim):
    client = alipay_sim.client()
    alipay_sim.admin("clock", {"advance_seconds": 2 * 24 * 3600})
    # The day before yesterday: its bill is ready whatever the hour (yesterday's only from 10:00 Beijing time).
    url = bill_url(client, alipay_sim.now().date() - timedelta(days=2))["bill_download_url"]
    alipay_sim.admin("clock", {"advance_seconds": 29})
    assert requests.get(url, timeout=5).status_code == 200
    alipay_sim.admin("clock", {"advance_seconds": 2})
    assert requests.get(url, timeout=5).status_code == 403


def test_fault_switches_answer_system_errors_and_frequency_limits_for_the_next_calls(alipay_sim):
    client = alipay_sim.client()
    alipay_sim.admin("faults", {"fault": "system_error", "count": 2, "method": "alipay.trade.precreate"})
    alipay_sim.admin("faults", {"fault": "frequency_limit", "count": 1, "method": "alipay.trade.query"})
    assert place(client)["sub_code"] == "ACQ.SYSTEM_ERROR"
    limited = client.api_alipay_trade_query(out_trade_no="FP-1")
    assert (limited["code"], limited["sub_code"]) == ("20000", "isp.app-call-limited")
    assert place(client)["sub_code"] == "ACQ.SYSTEM_ERROR"
    assert place(client)["code"] == "10000"
    alipay_sim.admin("faults", {"fault": "aop_system_error"})
    alipay_sim.admin("faults", {"fault": "unknown_error"})
    assert client.api_alipay_trade_query(out_trade_no="FP-1")["sub_code"] == "aop.ACQ.SYSTEM_ERROR"
    assert client.api_alipay_trade_query(out_trade_no="FP-1")["sub_code"] == "isp.unknow-error"
    assert alipay_sim.admin("faults")["armed"] == []
    assert requests.post(f"{alipay_sim.base}/simulator/admin/faults", json={"fault": "meteor"},
                         timeout=5).status_code == 400


def test_a_timeout_fault_answers_too_late_for_the_client_yet_the_call_takes_effect(alipay_sim):
    paid_trade(alipay_sim, alipay_sim.client())
    alipay_sim.admin("faults", {"fault": "timeout", "seconds": 1.0, "method": "alipay.trade.refund"})
    impatient = alipay_sim.client(timeout=0.3)
    with pytest.raises(OSError):
        impatient.api_alipay_trade_refund("1.00", out_trade_no="FP-1", out_request_no="R-1")
    wait_until(lambda: alipay_sim.admin("trades/FP-1")["refunded_fen"] == 100)
    assert alipay_sim.client().api_alipay_trade_refund("1.00", out_trade_no="FP-1",
                                                       out_request_no="R-1")["fund_change"] == "N"


def test_first_start_makes_the_account_and_print_config_shows_it(tmp_path):
    data_dir = tmp_path / "sim"
    result = CliRunner().invoke(command, ["--port", "8123", "--data-dir", str(data_dir), "--print-config"])
    assert result.exit_code == 0, result.output
    config = json.loads(result.output)
    assert config["gateway_url"] == "http://127.0.0.1:8123/gateway.do"
    assert config["app_id"].isdigit() and config["seller_id"].startswith("2088") and len(config["seller_id"]) == 16
    assert "BEGIN RSA PRIVATE KEY" in open(config["app_private_key_path"]).read()
    assert "BEGIN PUBLIC KEY" in open(config["alipay_public_key_path"]).read()
    again = json.loads(CliRunner().invoke(command, ["--port", "8123", "--data-dir", str(data_dir),
                                                    "--print-config"]).output)
    assert again == config


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answering(client):
    """Whether a simulator answers the client yet."""
    try:
        return client.api_alipay_trade_query(out_trade_no="FP-1")
    except OSError:
        return None


def test_the_command_serves_as_a_process_of_its_own_and_keeps_its_store(account_template, tmp_path):
    data_dir = tmp_path / "sim"
    shutil.copytree(account_template, data_dir)
    port = free_port()
    argv = [sys.executable, "-m", "payments.gateways.alipay.simulator", "--port", str(port), "--data-dir",
            str(data_dir)]
    config = json.loads(subprocess.run([*argv, "--print-config"], capture_output=True, check=True,
                                       text=True).stdout)
    client = sdk_client(config)
    for round_ in range(2):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: answering(client), timeout=20)
            if round_ == 0:
                requests.get(place(client)["qr_code"], timeout=5)
            # the second process finds the trade the first one placed
            assert client.api_alipay_trade_query(out_trade_no="FP-1")["trade_status"] == "WAIT_BUYER_PAY"
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0  # SIGTERM: a clean exit, the store closed
