"""Scan to pay at the kiosk through the real rails: the WeChat Pay and Alipay simulators on loopback, in Chinese.

The kiosk's card reader is the sandbox's; beside it the driver picks 微信支付 or
支付宝 and scans the code with a phone (the test opens what the code says in a
phone-sized page and approves there). An idle reset in the middle closes the
WeChat Pay order at the simulator before the visit ends, so the code on the
abandoned screen can no longer be paid.
"""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from finepay.extensions import db
from payments.gateways import CANCELED, SURFACE_KIOSK, Payer, gateway_named
from payments.models import Payment
from tests.browser.conftest import BROWSER_CONFIG, PHONE, Kiosk
from tests.browser.kiosk_helpers import add_vehicle, assert_kiosk_rules, enrol, open_violations, shot, tap
from tests.browser.test_rails import approve, scan_url
from tests.rails import running_rails

pytestmark = pytest.mark.browser
KIOSK_PAYER = Payer(surface=SURFACE_KIOSK)


@pytest.fixture(scope="module")
def kiosk_server(sqlite_template, tmp_path_factory):
    """A kiosk on the live FinePay of tests/rails.py (WeChat Pay, Alipay, the sandbox's reader), fast polling."""
    with running_rails(sqlite_template, tmp_path_factory.mktemp("kiosk-rails"), **BROWSER_CONFIG,
                       DEFAULT_LOCALE="zh_CN", KIOSK_POLL_SECONDS=0.3, KIOSK_RETRY_SECONDS=1) as rails:
        kiosk = Kiosk(rails.url, rails.app)
        kiosk.rails = rails
        yield kiosk


def latest_payment(kiosk, vehicle):
    """The vehicle's latest payment, with what its rail would show a kiosk's phone now (the code to scan)."""
    with kiosk.app.app_context():
        payment = db.session.execute(select(Payment).where(Payment.plate == vehicle.plate)
                                     .order_by(Payment.created_at.desc())).scalars().first()
        gateway = gateway_named(payment.gateway)
        code = gateway.next_action(payment, KIOSK_PAYER).qr_payload if payment.status == "created" else None
        at_rail = gateway.retrieve_intent(payment.gateway_intent_id).status
        db.session.expunge_all()
        db.session.remove()
        return payment, code, at_rail


def scan_to_pay(screen, gateway, label):
    """Violations → review → "scan to pay" with ``gateway``: the code is on screen, named for its rail."""
    tap(screen, "[data-action=review]")
    expect(screen.locator("[data-screen=review]")).to_be_visible()
    tap(screen, f"[data-action=pay][data-gateway={gateway}]")
    expect(screen.locator("[data-screen=scan]")).to_be_visible()
    expect(screen.locator(".kqr-scan svg")).to_be_visible()
    expect(screen.locator("#scan-title")).to_contain_text(label)


def test_an_idle_reset_closes_the_wechat_order_then_the_next_driver_pays_with_alipay(
        screen, kiosk_server, timings, browser):
    timings["KIOSK_IDLE_SECONDS"] = 3
    timings["KIOSK_PROMPT_SECONDS"] = 3
    vehicle = add_vehicle(kiosk_server.app, fines=(20000,))
    enrol(kiosk_server, screen, f"rails-{screen.orientation}")

    # 微信支付: the code is shown, the driver walks away; the reset closes the order at WeChat Pay first.
    open_violations(screen, vehicle)
    scan_to_pay(screen, "wechatpay", "微信支付")
    assert_kiosk_rules(screen)
    shot(screen, f"zh_CN-kiosk-rails-wechatpay-{screen.orientation}")
    abandoned, code, at_rail = latest_payment(kiosk_server, vehicle)
    assert code.startswith("weixin://") and at_rail != CANCELED
    expect(screen.locator("#idle-prompt")).to_be_visible(timeout=6_000)
    expect(screen.locator("[data-screen=welcome]")).to_be_visible(timeout=10_000)
    payment, _code, at_rail = latest_payment(kiosk_server, vehicle)
    assert (payment.id, payment.status, at_rail) == (abandoned.id, "canceled", CANCELED)
    phone = browser.new_context(**{**PHONE, "locale": "zh-CN"}).new_page()
    phone.goto(scan_url(kiosk_server.rails, code))
    expect(phone.get_by_test_id("refusal")).to_be_visible()  # the rail says the order is closed
    expect(phone.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)

    # 支付宝: the next visit pays by scanning the precreated code; the kiosk moves on by itself.
    timings["KIOSK_IDLE_SECONDS"] = 90
    screen.reload()
    open_violations(screen, vehicle)
    scan_to_pay(screen, "alipay", "支付宝")
    paying, code, _at_rail = latest_payment(kiosk_server, vehicle)
    assert paying.gateway == "alipay" and paying.id != abandoned.id
    phone.goto(scan_url(kiosk_server.rails, code))
    approve(phone)
    expect(screen.locator("[data-outcome=succeeded]")).to_be_visible(timeout=15_000)
    tap(screen, "[data-path='/receipt']")
    expect(screen.locator("[data-screen=receipt]")).to_be_visible()
    paid, _code, at_rail = latest_payment(kiosk_server, vehicle)
    assert paid.status == "succeeded" and at_rail == "succeeded"
    expect(screen.locator("#receipt-number")).to_have_text(paid.receipt_number)
    assert_kiosk_rules(screen)
    phone.context.close()
