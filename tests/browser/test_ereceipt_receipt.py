"""The receipt with its official e-receipt in a real Chromium on a 360 px phone, in Chinese and in English:
the e-receipt's numbers and verification QR code, the red-flush after a refund, and the sandbox's
verification page the QR code leads to."""
import re

import pytest
from playwright.sync_api import expect

from payments import services
from tests.browser.conftest import BROWSER_CONFIG, PHONE
from tests.browser.helpers import Audit, add_vehicle, assert_fits
from tests.conftest import translated
from tests.live import app_on_copy, serving

pytestmark = pytest.mark.browser

RECEIPT_WIDTH = 302  # 80 mm thermal paper at 96 px per inch


@pytest.fixture(scope="module", params=["zh_CN", "en"])
def server(request, sqlite_template, tmp_path_factory):
    """FinePay on its own database copy in one language; yields (base URL, app)."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp(f"ereceipt-{request.param}"),
                      **{**BROWSER_CONFIG, "DEFAULT_LOCALE": request.param})
    with serving(app) as url:
        yield url, app


@pytest.fixture
def phone_in_language(browser, server, axe):
    """A phone whose browser asks for the server's language (zh-CN or en-US); CSP bypassed for axe's script."""
    _base, app = server
    context = browser.new_context(**{**PHONE, "locale": app.config["DEFAULT_LOCALE"].replace("_", "-")},
                                  bypass_csp=True)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def paid_and_refunded(app, base, plate, vin):
    """Two fines paid through the sandbox gateway, then the second one refunded; returns the receipt number."""
    vehicle = add_vehicle(app, plate, vin, [("150203202611990001", "闯红灯", 20000, 1, True),
                                            ("150203202611990002", "违停", 5000, 1, True)])
    with app.test_request_context(base_url=base):
        payment = services.start_payment(plate=vehicle.normalized, vin_last6=vin,
                                         violation_ids=list(vehicle.ids.values()), idempotency_key="browser-1")
        paid = services.confirm_payment(payment.id, "pm_card_visa")
        line = next(item.id for item in paid.items if item.violation_id == vehicle.ids["150203202611990002"])
        services.refund_payment(paid.id, item_ids=[line], reason="appeal upheld", actor="staff:browser")
        return paid.receipt_number


def test_the_receipt_shows_its_ereceipt_the_red_flush_and_verifies(phone_in_language, server, screenshot):
    base, app = server
    phone = phone_in_language
    locale = app.config["DEFAULT_LOCALE"]
    audit = Audit(f"a11y-{locale}-ereceipt", {})
    number = paid_and_refunded(app, base, "蒙L·30001", "LV3001")

    phone.goto(f"{base}/receipts/{number}")

    section = phone.locator("#ereceipts")
    expect(section.get_by_role("heading", name=translated(app, "Official e-receipt"))).to_be_visible()
    expect(phone.locator("#ereceipt-code")).to_have_text(re.compile(r"^\d{8}$"))
    expect(phone.locator("#ereceipt-number")).to_have_text(re.compile(r"^\d{10}$"))
    expect(phone.locator("#ereceipt-check-code")).to_have_text(re.compile(r"^[0-9a-f]{6}$"))
    expect(phone.locator("#ereceipt-total")).to_contain_text("200.00")
    expect(section.locator(".ereceipt-qr svg")).to_be_visible()
    expect(phone.locator("#receipt .qr svg")).to_have_count(1)  # the receipt's own QR code stays one of its own
    history = phone.locator("#ereceipt-history li")
    expect(history).to_have_count(3)  # the first e-receipt, its red-flush, the new one
    expect(history.nth(0)).to_contain_text(translated(app, "Cancelled by a red-flush"))
    expect(history.nth(1)).to_have_attribute("data-kind", "red")
    expect(history.nth(1)).to_contain_text("250.00")
    expect(history.nth(2)).to_contain_text(translated(app, "In force"))
    expect(phone.locator("#ereceipt-pending")).to_have_count(0)
    assert_fits(phone)
    screenshot(phone, f"{locale}-ereceipt-receipt")
    audit(phone, "receipt")
    phone.set_viewport_size({"width": RECEIPT_WIDTH, "height": 900})
    phone.emulate_media(media="print")
    expect(phone.locator("#ereceipt-number")).to_be_visible()
    expect(section.locator(".ereceipt-qr svg")).to_be_visible()
    assert_fits(phone, RECEIPT_WIDTH)  # on an 80 mm roll too
    screenshot(phone, f"{locale}-ereceipt-receipt-print-80mm")
    phone.emulate_media(media="screen")

    phone.goto(phone.locator(".ereceipt-qr .url").inner_text())

    expect(phone.locator("#verification-result")).to_have_text(
        translated(app, "This e-receipt was issued and is in force."))
    expect(phone.locator("#sandbox-issuer .sandbox-mark")).to_have_text("SANDBOX")
    assert_fits(phone)
    screenshot(phone, f"{locale}-ereceipt-verified")
    audit(phone, "verified")
    audit.assert_clean()  # WCAG 2.1 AA: no serious or critical finding on either page
