"""The Alipay adapter against the real simulator process (``flask --app wsgi simulate alipay``), on loopback.

The simulator verifies every request's RSA2 signature and signs every answer,
notification and bill as Alipay does; the payer's page stands in for the phone.
Each test opens its own trades, so the one simulator serves the whole module.
"""
import base64
import html
import json
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from finepay.audit import AuditEntry
from finepay.extensions import db
from payments.gateways import (
    CANCELED,
    REDIRECT,
    REQUIRES_PAYMENT_METHOD,
    SCAN_QR,
    SUCCEEDED,
    BillNotReady,
    GatewayError,
    Payer,
    WebhookVerificationError,
    return_url,
)
from payments.gateways.alipay import AlipayGateway, AlipayTrade
from payments.gateways.alipay.adapter import ALIPAY_TIME
from payments.models import WebhookEvent
from tests.conftest import make_app
from tests.payments.gateways.rail_wire import alipay_settings
from tests.payments.helpers import create_ok, overdue_violation, payment_row

ROOT = Path(__file__).resolve().parents[3]
STARTUP_SECONDS = 30
DESKTOP = Payer(user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36")
PHONE = Payer(user_agent="Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def simulate(*args):
    return [sys.executable, "-m", "flask", "--app", "wsgi", "simulate", "alipay", *args]


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    """The simulator process on a free loopback port, with its client configuration; stopped after the module."""
    data_dir = tmp_path_factory.mktemp("alipay-simulator")
    port = free_port()
    printed = subprocess.run(simulate("--port", str(port), "--data-dir", str(data_dir), "--print-config"),
                             cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    config = json.loads(printed.stdout[printed.stdout.index("{"):])
    log_path = data_dir / "simulator.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(simulate("--port", str(port), "--data-dir", str(data_dir), "--time-factor", "0.001"),
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    admin = config["admin_url"]
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the simulator exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                if requests.get(admin + "clock", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the simulator did not answer within {STARTUP_SECONDS} s")
            time.sleep(0.1)
        yield SimpleNamespace(config=config, admin=admin, data_dir=data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Receiver:
    """FinePay's notify URL as the simulator sees it: keeps each notification's raw body, answers ``success``."""

    def __init__(self):
        self.bodies = []

    def __call__(self, environ, start_response):
        self.bodies.append(Request(environ).get_data())
        return Response("success")(environ, start_response)

    def wait_for(self, predicate, timeout=10.0):
        """The first notification (its parameters and raw body) that ``predicate`` accepts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in list(self.bodies):
                params = dict(parse_qsl(body.decode()))
                if predicate(params):
                    return params, body
            time.sleep(0.05)
        pytest.fail("no such notification arrived")


@pytest.fixture(scope="module")
def receiver():
    """A notify URL on a free loopback port, stopped after the module."""
    receiver = Receiver()
    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/webhooks/alipay"
    yield receiver
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def adapter_config(simulator, receiver, **overrides):
    return {**alipay_settings(simulator.config, receiver.url), **overrides}


@pytest.fixture
def app_config():
    return {"PUBLIC_BASE_URL": "https://finepay.test"}


@pytest.fixture
def alipay(app, simulator, receiver):
    return AlipayGateway(adapter_config(simulator, receiver))


def admin(simulator, path, payload=None):
    url = simulator.admin + path
    answer = requests.post(url, json=payload, timeout=5) if payload is not None else requests.get(url, timeout=5)
    assert answer.ok, answer.text
    return answer.json()


def open_trade(alipay, amount=12345, expires_in=timedelta(minutes=30)):
    payment_id = "pay_" + secrets.token_hex(12)
    intent = alipay.create_intent(payment_id=payment_id, amount=amount, currency="CNY",
                                  idempotency_key=f"{payment_id}:create", expires_at=datetime.now(UTC) + expires_in)
    return intent, SimpleNamespace(id=payment_id, gateway_intent_id=intent.id, amount=amount, currency="CNY")


def scan(alipay, payment):
    """The payer's phone scans the QR code: the simulator's payer page for the trade (its URL)."""
    page = requests.get(alipay.next_action(payment, DESKTOP).qr_payload, timeout=5)
    assert page.ok and "WAIT_BUYER_PAY" in page.text
    return page.url


def approve(page_url):
    return requests.post(page_url, data={"action": "approve"}, timeout=5, allow_redirects=False)


def paid_trade(alipay, **kwargs):
    intent, payment = open_trade(alipay, **kwargs)
    assert approve(scan(alipay, payment)).ok
    return intent


# -- Paying --------------------------------------------------------------------------------------------------------

def test_a_qr_code_approved_on_the_payers_phone_succeeds(alipay):
    intent, payment = open_trade(alipay)

    action = alipay.next_action(payment, DESKTOP)
    assert action.kind == SCAN_QR and alipay.next_action(payment, DESKTOP).qr_payload == action.qr_payload
    assert alipay.retrieve_intent(intent.id).status == REQUIRES_PAYMENT_METHOD  # not scanned: Alipay knows nothing
    page = scan(alipay, payment)
    assert alipay.retrieve_intent(intent.id).status == REQUIRES_PAYMENT_METHOD  # scanned, waiting for the buyer
    assert approve(page).ok

    paid = alipay.retrieve_intent(intent.id)

    assert (paid.status, paid.amount_received, paid.payment_id) == (SUCCEEDED, 12345, payment.id)
    assert paid.charge_id


def test_a_phone_pays_through_mobile_web_pay_and_comes_back_to_the_payment(app, alipay):
    intent, payment = open_trade(alipay)
    with app.test_request_context():
        action = alipay.next_action(payment, PHONE)
        back = return_url(payment.id)

    cashier = requests.get(action.url, timeout=5)
    approved = approve(cashier.url)

    assert action.kind == REDIRECT and "/simulator/pay/" in cashier.url and "WAIT_BUYER_PAY" in cashier.text
    assert approved.status_code in (302, 303) and approved.headers["Location"].startswith(back + "?")
    assert alipay.retrieve_intent(intent.id).status == SUCCEEDED


def test_a_trade_past_its_expiry_is_closed_by_alipay(alipay, simulator):
    intent, payment = open_trade(alipay, expires_in=timedelta(minutes=5))
    scan(alipay, payment)
    admin(simulator, "clock", {"advance_seconds": 6 * 60})
    try:
        assert alipay.retrieve_intent(intent.id).status == CANCELED
    finally:
        admin(simulator, "clock", {"reset": True})


# -- Closing -------------------------------------------------------------------------------------------------------

def test_closing_a_scanned_trade_cancels_it_at_alipay(alipay, simulator):
    intent, payment = open_trade(alipay)
    scan(alipay, payment)

    assert alipay.cancel_intent(intent.id, idempotency_key=f"{payment.id}:cancel").status == CANCELED
    assert admin(simulator, f"trades/{intent.id}")["status"] == "TRADE_CLOSED"


def test_closing_a_trade_nobody_scanned_cancels_it(alipay):
    intent, payment = open_trade(alipay)
    alipay.next_action(payment, DESKTOP)

    assert alipay.cancel_intent(intent.id, idempotency_key=f"{payment.id}:cancel").status == CANCELED
    assert alipay.retrieve_intent(intent.id).status == CANCELED


def test_closing_a_trade_paid_meanwhile_returns_it_succeeded(alipay):
    intent = paid_trade(alipay)

    closed = alipay.cancel_intent(intent.id, idempotency_key="k")

    assert (closed.status, closed.amount_received) == (SUCCEEDED, 12345)


# -- Refunds -------------------------------------------------------------------------------------------------------

def test_refunds_succeed_once_per_key_and_a_full_refund_leaves_the_payment_captured(alipay, simulator):
    intent = paid_trade(alipay)
    admin(simulator, "balance", {"available": "10000.00"})

    part = alipay.refund(intent.id, amount=2345, idempotency_key=f"{intent.id}:refund:1", reason="overpaid")
    again = alipay.refund(intent.id, amount=2345, idempotency_key=f"{intent.id}:refund:1", reason="overpaid")
    rest = alipay.refund(intent.id, amount=10000, idempotency_key=f"{intent.id}:refund:2")

    assert (part.status, part.amount) == (SUCCEEDED, 2345) and again == part
    assert alipay.retrieve_refund(intent.id, part.id) == part
    assert rest.status == SUCCEEDED and rest.id != part.id
    assert admin(simulator, f"trades/{intent.id}")["status"] == "TRADE_CLOSED"
    retrieved = alipay.retrieve_intent(intent.id)
    assert (retrieved.status, retrieved.amount_received) == (SUCCEEDED, 12345)


def test_a_refund_the_sellers_balance_cannot_cover_is_refused(alipay, simulator):
    intent = paid_trade(alipay)
    admin(simulator, "balance", {"available": "0.00"})

    with pytest.raises(GatewayError) as refused:
        alipay.refund(intent.id, amount=12345, idempotency_key=f"{intent.id}:refund:1")

    assert refused.value.refused and refused.value.code == "insufficient_balance"


# -- Faults --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["system_error", "aop_system_error", "unknown_error", "frequency_limit"])
def test_alipays_system_errors_and_limits_may_be_sent_again(alipay, simulator, fault):
    intent, _ = open_trade(alipay)
    admin(simulator, "faults", {"fault": fault, "method": "alipay.trade.query"})

    with pytest.raises(GatewayError) as busy:
        alipay.retrieve_intent(intent.id)

    assert busy.value.retryable and not busy.value.refused


def test_a_request_signed_with_the_wrong_key_is_an_auth_error(app, simulator, receiver, tmp_path):
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    alipay = AlipayGateway(adapter_config(simulator, receiver, ALIPAY_APP_PRIVATE_KEY_FILE=str(wrong)))
    intent, _ = open_trade(alipay)

    with pytest.raises(GatewayError) as refused:
        alipay.retrieve_intent(intent.id)

    assert refused.value.code == "gateway_auth" and not refused.value.refused


# -- Notifications -------------------------------------------------------------------------------------------------

def test_the_simulators_payment_and_refund_notifications_are_verified_and_parsed(alipay, simulator, receiver):
    intent = paid_trade(alipay)
    admin(simulator, "balance", {"available": "10000.00"})
    refund = alipay.refund(intent.id, amount=345, idempotency_key=f"{intent.id}:refund:1")
    _, paid_body = receiver.wait_for(lambda p: p.get("out_trade_no") == intent.id and "out_biz_no" not in p)
    _, refund_body = receiver.wait_for(lambda p: p.get("out_biz_no") == refund.id)

    paid, refunded = alipay.parse_webhook(paid_body, {}), alipay.parse_webhook(refund_body, {})

    assert (paid.type, paid.intent_id, paid.payment_id, paid.amount) == ("TRADE_SUCCESS", intent.id,
                                                                          intent.payment_id, 12345)
    assert paid.type in alipay.intent_event_types and paid.id
    assert refunded.type in alipay.refund_event_types and refunded.refund_id == refund.id


def resigned(simulator, params, **changes):
    """A notification with ``changes``, signed again with Alipay's own key: genuine but for the wrong app or amount."""
    key = serialization.load_pem_private_key((simulator.data_dir / "alipay_private_key.pem").read_bytes(), None)
    params = {**params, **changes}
    params.pop("sign")
    text = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign_type" and v != "")
    params["sign"] = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    return urlencode(params).encode()


def test_a_forged_or_foreign_notification_is_refused(alipay, simulator, receiver):
    intent = paid_trade(alipay)
    params, body = receiver.wait_for(lambda p: p.get("out_trade_no") == intent.id)

    refusals = [
        body.replace(b"total_amount=123.45", b"total_amount=1.00"),  # altered after signing
        resigned(simulator, params, app_id="2021000000009999"),
        resigned(simulator, params, seller_id="2088000000009999"),
        resigned(simulator, params, out_trade_no="pay_" + secrets.token_hex(12)),
    ]

    for payload in refusals:
        with pytest.raises(WebhookVerificationError):
            alipay.parse_webhook(payload, {})
    assert alipay.parse_webhook(resigned(simulator, params), {}).amount == 12345
    assert alipay.parse_webhook(resigned(simulator, params, total_amount="1.00"), {}).amount == 100


# -- The daily bill --------------------------------------------------------------------------------------------------

def beijing_day_of(moment):
    start = datetime.combine(moment.astimezone(ALIPAY_TIME).date(), datetime.min.time(), ALIPAY_TIME)
    return start, start + timedelta(days=1)


def test_the_daily_bill_lists_the_days_charges_and_refunds_with_alipays_fees(alipay, simulator):
    intent = paid_trade(alipay, amount=10000)
    admin(simulator, "balance", {"available": "10000.00"})
    refund = alipay.refund(intent.id, amount=5000, idempotency_key=f"{intent.id}:refund:1")
    start, end = beijing_day_of(datetime.now(UTC))

    with pytest.raises(BillNotReady):
        alipay.list_transactions(start, end)
    admin(simulator, "clock", {"now": (end + timedelta(hours=10, minutes=5)).strftime("%Y-%m-%d %H:%M:%S")})
    try:
        listed = [t for t in alipay.list_transactions(start, end) if t.intent_id == intent.id]
    finally:
        admin(simulator, "clock", {"reset": True})

    charge, refunded = sorted(listed, key=lambda t: t.kind)
    assert (charge.kind, charge.amount, charge.fee, charge.payment_id) == ("charge", 10000, 60, intent.payment_id)
    assert (refunded.kind, refunded.id, refunded.amount, refunded.fee) == ("refund", refund.id, 5000, -30)
    assert start <= charge.created_at < end


# -- Through FinePay -------------------------------------------------------------------------------------------------

@pytest.fixture
def alipay_app(database_url, simulator, receiver):
    """FinePay with Alipay (pointed at the simulator) as its one gateway; its client, in an app context."""
    app = make_app(database_url, PAYMENT_GATEWAYS="alipay", PUBLIC_BASE_URL="https://finepay.test",
                   **adapter_config(simulator, receiver))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_a_driver_pays_by_qr_code_and_finepay_settles_on_alipays_notification_once(alipay_app, receiver):
    client = alipay_app.test_client()
    payment = create_ok(client, [overdue_violation().id])
    page = client.get(f"/pay/{payment['id']}", headers={"User-Agent": DESKTOP.user_agent})
    qr_code = db.session.get(AlipayTrade, payment["id"]).qr_code
    assert page.status_code == 200 and "<svg" in page.get_data(as_text=True)

    phone = requests.get(qr_code, timeout=5)
    assert approve(phone.url).ok
    _, body = receiver.wait_for(lambda p: p.get("out_trade_no") == payment["id"])
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    answer = client.post("/webhooks/alipay", data=body, headers=form)
    replayed = client.post("/webhooks/alipay", data=body, headers=form)
    forged = client.post("/webhooks/alipay", data=body.replace(b"TRADE_SUCCESS", b"TRADE_FINISHED"), headers=form)

    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "success")
    assert (replayed.status_code, replayed.get_data(as_text=True)) == (200, "success")
    assert (forged.status_code, forged.get_data(as_text=True)) == (200, "fail")
    assert payment_row(payment["id"]).status == "succeeded"
    assert db.session.execute(select(func.count()).select_from(WebhookEvent)).scalar_one() == 1


def test_a_genuine_notification_of_another_amount_settles_nothing(alipay_app, simulator):
    client = alipay_app.test_client()
    payment = create_ok(client, [overdue_violation().id])
    params = {"notify_id": secrets.token_hex(16), "notify_type": "trade_status_sync", "charset": "utf-8",
              "version": "1.0", "sign_type": "RSA2", "app_id": simulator.config["app_id"],
              "seller_id": simulator.config["seller_id"], "out_trade_no": payment["id"], "trade_status": "TRADE_SUCCESS",
              "total_amount": "1.00", "sign": ""}

    answer = client.post("/webhooks/alipay", data=resigned(simulator, params),
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})

    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "success")
    assert payment_row(payment["id"]).status == "created"
    mismatch = db.session.execute(select(AuditEntry).where(AuditEntry.action == "payment.notification_mismatch")).scalar_one()
    assert (mismatch.subject_id, mismatch.details["notified"]) == (payment["id"], 100)


def test_a_drivers_phone_is_sent_to_mobile_web_pay_from_the_pay_page(alipay_app, simulator):
    client = alipay_app.test_client()
    payment = create_ok(client, [overdue_violation().id])

    page = client.get(f"/pay/{payment['id']}", headers={"User-Agent": PHONE.user_agent}).get_data(as_text=True)

    link = html.unescape(re.search(r'href="([^"]*gateway\.do[^"]*)"', page).group(1))
    cashier = requests.get(link, timeout=5)
    assert link.startswith(simulator.config["gateway_url"] + "?")
    assert "/simulator/pay/" in cashier.url and payment["id"] in cashier.text
