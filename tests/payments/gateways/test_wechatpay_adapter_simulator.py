"""The WeChat Pay adapter against the real simulator (payments/gateways/wechatpay/simulator), served on loopback.

The simulator checks every request's signature and signs every answer and
notification as WeChat Pay does; its payer pages stand in for the phone. The
adapter is pointed at it by its settings only, as --print-config says.
"""
import gzip
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import session
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from finepay.extensions import db
from finepay.settings import SettingsError
from payments.gateways import (
    CANCELED,
    FAILED,
    IN_APP,
    REDIRECT,
    REQUIRES_PAYMENT_METHOD,
    SCAN_QR,
    SUCCEEDED,
    SURFACE_BROWSER,
    BillNotReady,
    GatewayError,
    Payer,
    WebhookVerificationError,
    gateway_named,
    return_url,
)
from payments.gateways.wechatpay.adapter import CHINA
from payments.gateways.wechatpay.simulator import Simulator
from payments.gateways.wechatpay.simulator.crypto import encrypt_resource, nonce, response_message, sign
from payments.gateways.wechatpay.views import OPENID_SESSION_KEY
from payments.models import Payment, WebhookEvent
from payments.services import sync_payments
from tests.conftest import make_app
from tests.payments.helpers import create, overdue_violation

DESKTOP = Payer(SURFACE_BROWSER, "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0")
PHONE = Payer(SURFACE_BROWSER, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1")
IN_WECHAT = Payer(SURFACE_BROWSER, "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36 MicroMessenger/8.0.47")


class Inbox:
    """A notify_url on loopback that keeps what it is sent and answers 204, as FinePay does."""

    def __init__(self):
        self.received = []
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/wechatpay"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _app(self, environ, start_response):
        request = Request(environ)
        self.received.append((request.get_data(), dict(request.headers)))
        return Response(status=204)(environ, start_response)

    def wait_for(self, event_type, out_trade_no, gateway, seconds=10):
        """The first notification of this type about this order, parsed by the adapter."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for body, headers in list(self.received):
                if json.loads(body)["event_type"] != event_type:
                    continue
                try:
                    event = gateway.parse_webhook(body, headers)
                except WebhookVerificationError:
                    continue  # another test's order, or signed in the other mode
                if event.data["out_trade_no"] == out_trade_no:
                    return event, body, headers
            time.sleep(0.05)
        raise AssertionError(f"no {event_type} notification for {out_trade_no} within {seconds} s")

    def stop(self):
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    """The simulator on a free loopback port for this module, refunds settled only when a test says so."""
    running = Simulator(tmp_path_factory.mktemp("wechatpay-simulator"), port=0, time_factor=0.01,
                        refund_delay=None).start()
    inbox = Inbox()
    yield SimpleNamespace(sim=running, config=running.config(), inbox=inbox, base_url=running.base_url)
    inbox.stop()
    running.stop()


@pytest.fixture(autouse=True)
def fresh_switches(simulator):
    """Every test starts on the real clock, with no fault armed and public key signing."""
    yield
    admin = f"{simulator.base_url}/simulator/admin"
    requests.post(f"{admin}/clock", json={"reset": True}, timeout=5).raise_for_status()
    requests.delete(f"{admin}/faults", timeout=5).raise_for_status()
    requests.post(f"{admin}/settings", json={"signing": "public-key"}, timeout=5).raise_for_status()


def adapter_settings(config, **overrides):
    """The adapter's settings, simulated, as the simulator's --print-config (``config``) gives them."""
    return {
        "PAYMENT_GATEWAY": "wechatpay", "PAYMENT_GATEWAYS": "wechatpay",
        "WECHATPAY_MCHID": config["mchid"], "WECHATPAY_APPID": config["appid"],
        "WECHATPAY_APP_SECRET": config["app_secret"],
        "WECHATPAY_PRIVATE_KEY_FILE": config["merchant_private_key_path"],
        "WECHATPAY_CERT_SERIAL": config["merchant_serial"], "WECHATPAY_APIV3_KEY": config["apiv3_key"],
        "WECHATPAY_PUBLIC_KEY_FILE": config["platform_public_key_path"],
        "WECHATPAY_PUBLIC_KEY_ID": config["platform_public_key_id"],
        "WECHATPAY_BASE_URL": config["base_url"], "WECHATPAY_OAUTH_BASE_URL": config["base_url"],
        "WECHATPAY_SIMULATED": True,
        **overrides,
    }


def settings_for(simulator, **overrides):
    """The adapter's settings for this module's simulator, its notifications sent to the inbox."""
    return adapter_settings(simulator.config, WECHATPAY_NOTIFY_URL=simulator.inbox.url, **overrides)


@pytest.fixture
def app_config(simulator):
    return settings_for(simulator)


@pytest.fixture
def gateway(app):
    return gateway_named("wechatpay")


def open_payment(gateway, amount=5000, expires_at=None):
    payment_id = "pay_" + nonce(24).lower()
    intent = gateway.create_intent(payment_id=payment_id, amount=amount, currency="CNY",
                                   idempotency_key=f"{payment_id}:create",
                                   expires_at=expires_at or datetime.now(UTC) + timedelta(minutes=30))
    return SimpleNamespace(id=payment_id, gateway_intent_id=intent.id, amount=amount, currency="CNY")


def ask(app, gateway, payment, payer, openid=None):
    with app.test_request_context(headers={"User-Agent": payer.user_agent}):
        if openid:
            session[OPENID_SESSION_KEY] = openid
        return gateway.next_action(payment, payer)


def scan_and_answer(simulator, code_url, outcome="approve"):
    """What the payer's phone does with a Native QR code: open the order's page, then approve, cancel or fail."""
    page = requests.get(f"{simulator.base_url}/simulator/scan", params={"code_url": code_url}, timeout=5)
    assert page.status_code == 200
    answer = requests.post(page.url, data={"action": outcome}, timeout=5, allow_redirects=False)
    assert answer.status_code == 200
    return urlsplit(page.url).path.rsplit("/", 1)[1]


def admin(simulator, path, body):
    response = requests.post(f"{simulator.base_url}/simulator/admin/{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def paid(app, gateway, simulator):
    """A payment paid by scanning its QR code; returns it and its out_trade_no."""
    payment = open_payment(gateway)
    out_trade_no = scan_and_answer(simulator, ask(app, gateway, payment, DESKTOP).qr_payload)
    return payment, out_trade_no


def test_a_desktop_payer_scans_and_pays_and_the_notification_says_so(app, gateway, simulator):
    payment = open_payment(gateway, amount=12345)
    action = ask(app, gateway, payment, DESKTOP)
    assert action.kind == SCAN_QR and gateway.retrieve_intent(payment.gateway_intent_id).status == REQUIRES_PAYMENT_METHOD

    out_trade_no = scan_and_answer(simulator, action.qr_payload)

    intent = gateway.retrieve_intent(payment.gateway_intent_id)
    assert (out_trade_no, intent.status, intent.amount_received) == (payment.id, SUCCEEDED, 12345)
    event, _, _ = simulator.inbox.wait_for("TRANSACTION.SUCCESS", out_trade_no, gateway)
    assert (event.intent_id, event.payment_id, event.amount) == (payment.gateway_intent_id, payment.id, 12345)


def test_a_payment_that_fails_at_the_phone_can_be_tried_again_with_a_new_code(app, gateway, simulator):
    payment = open_payment(gateway)
    scan_and_answer(simulator, ask(app, gateway, payment, DESKTOP).qr_payload, outcome="fail")
    intent = gateway.retrieve_intent(payment.gateway_intent_id)
    assert (intent.status, intent.failure_code) == (FAILED, "insufficient_funds")

    assert scan_and_answer(simulator, ask(app, gateway, payment, DESKTOP).qr_payload) == f"{payment.id}-2"
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == SUCCEEDED


def test_a_phone_payer_pays_on_the_h5_page_and_comes_back_to_the_payment(app, gateway, simulator):
    payment = open_payment(gateway)
    action = ask(app, gateway, payment, PHONE)
    assert action.kind == REDIRECT

    redirect_url = parse_qs(urlsplit(action.url).query)["redirect_url"][0]
    assert requests.get(action.url, timeout=5).status_code == 200
    back = requests.post(f"{simulator.base_url}/simulator/pay/{payment.id}", timeout=5, allow_redirects=False,
                         data={"action": "approve", "redirect_url": redirect_url})

    with app.test_request_context():
        assert back.status_code == 303 and back.headers["Location"] == return_url(payment.id)
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == SUCCEEDED


def test_inside_wechat_the_payer_signs_in_and_pays_through_the_bridge(app, gateway, simulator):
    payment = open_payment(gateway)
    client = app.test_client()
    first = ask(app, gateway, payment, IN_WECHAT)
    assert first.kind == REDIRECT

    to_wechat = client.get(first.url)
    from_wechat = requests.get(to_wechat.location, timeout=5, allow_redirects=False)
    back = urlsplit(from_wechat.headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    with client.session_transaction() as kept:
        openid = kept[OPENID_SESSION_KEY]

    action = ask(app, gateway, payment, IN_WECHAT, openid=openid)
    assert action.kind == IN_APP
    bridge = requests.post(f"{simulator.base_url}/simulator/jsbridge/pay", json=dict(action.params), timeout=5)

    assert bridge.json() == {"err_msg": "get_brand_wcpay_request:ok"}
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == SUCCEEDED


def test_moving_from_the_computer_to_the_phone_closes_the_qr_order_first(app, gateway, simulator):
    payment = open_payment(gateway)
    qr = ask(app, gateway, payment, DESKTOP).qr_payload

    assert ask(app, gateway, payment, PHONE).kind == REDIRECT

    orders = requests.get(f"{simulator.base_url}/simulator/admin/state", timeout=5).json()["orders"]
    assert orders[payment.id]["state"] == "CLOSED" and orders[f"{payment.id}-2"]["kind"] == "h5"
    late = requests.get(f"{simulator.base_url}/simulator/scan", params={"code_url": qr}, timeout=5)
    assert requests.post(late.url, data={"action": "approve"}, timeout=5).status_code == 409
    assert gateway.retrieve_intent(payment.gateway_intent_id).status == REQUIRES_PAYMENT_METHOD


def test_cancel_closes_the_order_at_wechat_pay(app, gateway, simulator):
    payment = open_payment(gateway)
    ask(app, gateway, payment, DESKTOP)

    assert gateway.cancel_intent(payment.gateway_intent_id, idempotency_key="c1").status == CANCELED

    orders = requests.get(f"{simulator.base_url}/simulator/admin/state", timeout=5).json()["orders"]
    assert orders[payment.id]["state"] == "CLOSED"


def test_a_close_that_finds_the_order_paid_returns_it_succeeded(app, gateway, simulator):
    payment, _ = paid(app, gateway, simulator)
    assert gateway.cancel_intent(payment.gateway_intent_id, idempotency_key="c1").status == SUCCEEDED


def test_a_refund_is_processing_then_succeeds_and_is_notified(app, gateway, simulator):
    payment, out_trade_no = paid(app, gateway, simulator)

    refund = gateway.refund(payment.gateway_intent_id, amount=2000, idempotency_key=f"{payment.id}:refund:1")

    assert (refund.status, refund.amount) == ("pending", 2000)
    assert gateway.retrieve_refund(payment.gateway_intent_id, refund.id).status == "pending"
    admin(simulator, f"refunds/{refund.id}", {"status": "SUCCESS"})
    assert gateway.retrieve_refund(payment.gateway_intent_id, refund.id).status == "succeeded"
    event, _, _ = simulator.inbox.wait_for("REFUND.SUCCESS", out_trade_no, gateway)
    assert (event.refund_id, event.amount, event.intent_id) == (refund.id, 2000, payment.gateway_intent_id)


@pytest.mark.parametrize(("fault", "code", "retryable", "unknown"), [
    ({"kind": "NOT_ENOUGH"}, "insufficient_balance", False, False),
    ({"kind": "SYSTEM_ERROR"}, "gateway_unavailable", True, True),
    ({"kind": "FREQUENCY_LIMITED"}, "gateway_unavailable", True, False),
    ({"kind": "timeout", "seconds": 1.5}, "gateway_timeout", True, True),
])
def test_the_simulators_faults_in_finepays_words(app, gateway, simulator, fault, code, retryable, unknown):
    gateway.timeout = (3, 0.5)  # the simulator holds a timed-out request 1.5 s, then does it
    payment, _ = paid(app, gateway, simulator)
    admin(simulator, "faults", {**fault, "count": 1, "path": "/v3/refund/"})

    with pytest.raises(GatewayError) as error:
        gateway.refund(payment.gateway_intent_id, amount=100, idempotency_key=f"{payment.id}:refund:1")

    assert (error.value.code, error.value.retryable, error.value.outcome_unknown) == (code, retryable, unknown)


def test_forged_old_and_other_merchants_notifications_are_refused(app, gateway, simulator):
    payment, out_trade_no = paid(app, gateway, simulator)
    _, body, headers = simulator.inbox.wait_for("TRANSACTION.SUCCESS", out_trade_no, gateway)

    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook(body.replace(b'"summary":"', b'"summary":"x'), headers)
    gateway.clock = lambda: time.time() + 301
    with pytest.raises(WebhookVerificationError, match="5 minutes"):
        gateway.parse_webhook(body, headers)
    gateway.clock = time.time

    account = simulator.sim.account
    resource = {"appid": account.appid, "mchid": "1999999999", "out_trade_no": out_trade_no, "trade_state": "SUCCESS",
                "amount": {"total": payment.amount, "payer_total": payment.amount, "currency": "CNY"}}
    other = json.dumps({"id": "EV-other", "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
                        "summary": "支付成功", "resource": {**encrypt_resource(account.apiv3_key, json.dumps(resource),
                                                                            "transaction"), "original_type": "transaction"}})
    timestamp, nonce_str = str(int(time.time())), nonce()
    key, serial = account.signer("public-key")
    signed = {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce_str, "Wechatpay-Serial": serial,
              "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
              "Wechatpay-Signature": sign(key, response_message(timestamp, nonce_str, other))}
    with pytest.raises(WebhookVerificationError, match="another merchant"):
        gateway.parse_webhook(other.encode(), signed)


def test_certificate_mode_fetches_the_platform_certificates_and_verifies_with_them(database_url, simulator, tmp_path):
    admin(simulator, "settings", {"signing": "certificate"})
    app = make_app(database_url, **settings_for(
        simulator, WECHATPAY_PUBLIC_KEY_FILE="", WECHATPAY_PUBLIC_KEY_ID="", WECHATPAY_CERT_DIR=str(tmp_path / "certs")))
    with app.app_context():
        gateway = gateway_named("wechatpay")
        payment, out_trade_no = paid(app, gateway, simulator)
        assert gateway.retrieve_intent(payment.gateway_intent_id).status == SUCCEEDED
        event, _, _ = simulator.inbox.wait_for("TRANSACTION.SUCCESS", out_trade_no, gateway)
        assert event.payment_id == payment.id
    assert [p.name for p in (tmp_path / "certs").iterdir()] == [f"{simulator.config['platform_serial']}.pem"]


def _today_in_china():
    start = datetime.now(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def test_the_trade_bill_gives_the_days_payments_and_refunds_with_fees(app, gateway, simulator):
    payment, _ = paid(app, gateway, simulator)
    refund = gateway.refund(payment.gateway_intent_id, amount=2000, idempotency_key=f"{payment.id}:refund:1")
    admin(simulator, f"refunds/{refund.id}", {"status": "SUCCESS"})
    start, end = _today_in_china()
    admin(simulator, "clock", {"now": (end + timedelta(hours=10, minutes=30)).isoformat()})

    lines = [line for line in gateway.list_transactions(start, end) if line.payment_id == payment.id]

    charge, back = sorted(lines, key=lambda line: line.kind)
    assert (charge.kind, charge.amount, charge.fee, charge.intent_id) == ("charge", 5000, 30, payment.gateway_intent_id)
    assert (back.kind, back.amount, back.fee, back.status) == ("refund", 2000, -12, SUCCEEDED)
    assert back.id == refund.id  # what FinePay's ledger keeps of the refund, so that reconciliation matches it


def test_a_bill_not_out_yet_is_reported_as_such(app, gateway, simulator):
    paid(app, gateway, simulator)
    start, end = _today_in_china()
    admin(simulator, "clock", {"now": (end + timedelta(hours=9)).isoformat()})
    with pytest.raises(BillNotReady):
        gateway.list_transactions(start, end)


def test_a_bill_that_does_not_match_its_sha1_is_refused(app, gateway, simulator, monkeypatch):
    paid(app, gateway, simulator)
    start, end = _today_in_china()
    admin(simulator, "clock", {"now": (end + timedelta(hours=10, minutes=30)).isoformat()})
    download = simulator.sim.bills.download
    monkeypatch.setattr(simulator.sim.bills, "download",
                        lambda token: gzip.compress(gzip.decompress(download(token)).replace(b"`SUCCESS", b"`REFUND")))

    with pytest.raises(GatewayError, match="does not match its SHA1"):
        gateway.list_transactions(start, end)



def test_finepay_settles_a_payment_from_the_simulators_notification_once(app, gateway, simulator):
    client = app.test_client()
    payment = new_payment(app)
    assert payment.gateway == "wechatpay"
    out_trade_no = scan_and_answer(simulator, ask(app, gateway, payment, DESKTOP).qr_payload)
    _, body, headers = simulator.inbox.wait_for("TRANSACTION.SUCCESS", out_trade_no, gateway)

    answers = [client.post("/webhooks/wechatpay", data=body, headers=headers) for _ in range(2)]

    assert [(a.status_code, a.get_data()) for a in answers] == [(204, b""), (204, b"")]
    assert client.get(f"/api/v1/payments/{payment.id}").get_json()["status"] == "succeeded"
    recorded = db.session.scalars(select(WebhookEvent.event_id).where(WebhookEvent.gateway == "wechatpay")).all()
    assert recorded == [json.loads(body)["id"]]
    forged = client.post("/webhooks/wechatpay", data=body.replace(b'"summary":"', b'"summary":"x'), headers=headers)
    assert forged.status_code == 400 and forged.get_json()["code"] == "FAIL"


def new_payment(app):
    """A FinePay payment of an overdue fine, taken by WeChat Pay (the one configured gateway)."""
    response = create(app.test_client(), [overdue_violation().id])
    assert response.status_code == 201, response.get_json()
    return db.session.get(Payment, response.get_json()["id"])


def test_a_lost_notification_is_made_good_by_payments_sync(app, gateway, simulator):
    payment = new_payment(app)
    admin(simulator, "notifications", {"mode": "drop", "count": 1})
    scan_and_answer(simulator, ask(app, gateway, payment, DESKTOP).qr_payload)

    counts = sync_payments()

    assert counts["changed"] >= 1
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "succeeded"


def test_a_quote_that_ran_out_cannot_be_paid_and_its_order_is_closed(app, gateway, simulator):
    payment = new_payment(app)
    qr = ask(app, gateway, payment, DESKTOP).qr_payload
    admin(simulator, "clock", {"now": (payment.expires_at + timedelta(seconds=5)).isoformat()})

    page = requests.get(f"{simulator.base_url}/simulator/scan", params={"code_url": qr}, timeout=5)
    assert requests.post(page.url, data={"action": "approve"}, timeout=5).status_code == 409
    sync_payments(now=payment.expires_at + timedelta(seconds=5))

    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "expired"
    orders = requests.get(f"{simulator.base_url}/simulator/admin/state", timeout=5).json()["orders"]
    assert orders[payment.id]["state"] == "CLOSED"


PRODUCTION = {"FINEPAY_ENV": "production", "SECRET_KEY": "p" * 48, "SESSION_COOKIE_SECURE": True}


def test_production_refuses_the_simulator_unless_allowed_and_missing_keys_always(database_url, simulator):
    with pytest.raises(SettingsError, match="wechatpay"):
        make_app(database_url, **settings_for(simulator), **PRODUCTION)
    allowed = make_app(database_url, **settings_for(simulator), **PRODUCTION, ALLOW_SANDBOX_IN_PRODUCTION=True)
    assert allowed.config["SANDBOX"] is True
    with pytest.raises(SettingsError, match="WECHATPAY_PRIVATE_KEY_FILE"):
        make_app(database_url, **settings_for(simulator, WECHATPAY_SIMULATED=False, WECHATPAY_PRIVATE_KEY_FILE=""),
                 **PRODUCTION)


def test_the_pay_page_shows_a_computer_the_qr_code_and_sends_a_phone_to_wechat_pay(app, simulator):
    client = app.test_client()
    payment = new_payment(app)

    desktop = client.get(f"/pay/{payment.id}", headers={"User-Agent": DESKTOP.user_agent})
    phone = client.get(f"/pay/{payment.id}", headers={"User-Agent": PHONE.user_agent})

    assert desktop.status_code == 200 and 'id="pay-qr"' in desktop.text and "<svg" in desktop.text
    assert phone.status_code == 200 and f'href="{simulator.base_url}/simulator/h5/checkmweb?' in phone.text
