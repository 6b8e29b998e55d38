"""WeChat Pay in Chromium: FinePay served on loopback, the simulator beside it, the browser playing WeChat's own.

A MicroMessenger User-Agent makes the pay page ask for the payer's openid
(the official account's OAuth, at the simulator), then hand the signed order
to WeixinJSBridge: here the simulator's stand-in, which the simulated adapter
loads. The payment ends on its receipt, with no step but the driver's click.
"""
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from finepay.extensions import db
from payments.gateways.wechatpay.simulator import Simulator
from payments.models import Payment
from tests.live import app_on_copy, serving
from tests.payments.gateways.test_wechatpay_adapter_simulator import adapter_settings
from tests.payments.helpers import create, overdue_violation

pytestmark = pytest.mark.browser

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
IN_WECHAT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
             "MicroMessenger/8.0.47.2560(0x28002F35) NetType/WIFI Language/zh_CN")


@pytest.fixture
def finepay(sqlite_template, tmp_path):
    """The simulator and FinePay (WeChat Pay its one gateway, simulated) on loopback; stopped after the test."""
    simulator = Simulator(tmp_path / "simulator", port=0, time_factor=0.01).start()
    # Notifications go to FinePay itself (its /webhooks/wechatpay, as the page it serves knows its own address).
    app = app_on_copy(sqlite_template, tmp_path, **adapter_settings(simulator.config()))
    try:
        with serving(app) as url:
            yield SimpleNamespace(app=app, url=url, simulator=simulator)
    finally:
        simulator.stop()


def new_payment(app):
    """A payment of an overdue fine, made as the review page makes one; its id."""
    with app.app_context():
        response = create(app.test_client(), [overdue_violation().id])
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]


def test_a_computer_shows_the_qr_code_and_moves_on_to_the_receipt_when_the_phone_has_paid(browser, finepay):
    payment_id = new_payment(finepay.app)
    computer = browser.new_context(viewport={"width": 1280, "height": 800})
    phone = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    computer.set_default_timeout(15_000)
    try:
        page = computer.new_page()
        page.goto(f"{finepay.url}/pay/{payment_id}")
        assert page.locator("#pay-qr svg").count() == 1
        with finepay.simulator.store.read() as data:
            code_url = f"weixin://wxpay/bizpayurl?pr={data['orders'][payment_id]['pr']}"
        scanned = phone.new_page()  # what the phone's camera opens from the code
        scanned.goto(f"{finepay.simulator.base_url}/simulator/scan?code_url={quote(code_url, safe='')}")
        scanned.locator("button.approve").click()

        page.wait_for_url("**/receipts/**")  # the page polls, and moves on by itself
    finally:
        phone.close()
        computer.close()


def test_a_phone_goes_to_wechat_pays_h5_page_and_comes_back_to_the_receipt(browser, finepay):
    payment_id = new_payment(finepay.app)
    context = browser.new_context(user_agent=IPHONE, viewport={"width": 360, "height": 740}, is_mobile=True)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto(f"{finepay.url}/pay/{payment_id}")
        page.locator("#pay-redirect a").click()
        page.locator("button.approve").click()  # on WeChat Pay's page, which sends the payer back

        page.wait_for_url("**/receipts/**")
    finally:
        context.close()


def test_a_driver_inside_wechat_signs_in_and_pays_in_app_to_the_receipt(browser, finepay):
    payment_id = new_payment(finepay.app)
    context = browser.new_context(user_agent=IN_WECHAT, viewport={"width": 360, "height": 740}, is_mobile=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    try:
        page.goto(f"{finepay.url}/pay/{payment_id}")
        page.locator("#pay-redirect a").click()  # on to the official account's OAuth, and back

        page.wait_for_url("**/receipts/**")
    finally:
        context.close()

    assert refused == []
    with finepay.app.app_context():
        assert db.session.get(Payment, payment_id).status == "succeeded"
    orders = finepay.simulator.store
    with orders.read() as data:
        assert data["orders"][payment_id]["kind"] == "jsapi" and data["orders"][payment_id]["state"] == "SUCCESS"
