"""Looking up by the finance bureau's payment code (缴款码) in a real Chromium on a 360 px phone, in Chinese and English.

Demo data loaded (violations/demo.py gives the demo vehicle's notices payment codes of 包头市, the demo's region).
"""
import re

import pytest
from flask_babel import force_locale, gettext
from playwright.sync_api import expect

from tests.browser.conftest import BROWSER_CONFIG
from tests.browser.helpers import assert_fits, assert_touch_targets, wait_for_post
from tests.live import app_on_copy, serving
from violations.demo import DEMO_PAYMENT_CODE, PAYABLE

pytestmark = pytest.mark.browser

PLATE = "蒙B·12345"
TYPED_CODE = " ".join(DEMO_PAYMENT_CODE[i:i + 4] for i in range(0, 20, 4))  # as grouped on the notice
NOTICE = "150203202611000001"  # the notice DEMO_PAYMENT_CODE was printed for


@pytest.fixture(scope="module")
def code_server(sqlite_template, tmp_path_factory):
    """FinePay with the demo data on its own database copy; yields (base URL, app)."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("payment-code"), **BROWSER_CONFIG)
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert DEMO_PAYMENT_CODE in result.output  # `make run` tells the developer what to type
    with serving(app) as url:
        yield url, app


def text(app, locale, message, **variables):
    """``message`` as the catalogue of ``locale`` says it."""
    with app.test_request_context(), force_locale(locale):
        return gettext(message, **variables)


def spaced(words):
    """A pattern for exactly ``words``, however the template's line breaks space them."""
    return re.compile(r"^\s*" + r"\s+".join(map(re.escape, words.split())) + r"\s*$")


def by_payment_code(page, app, locale, plate, code):
    """Open the payment-code alternative, fill it in and submit; the /lookup response."""
    summary = page.locator("summary", has_text=text(app, locale, "Have the finance bureau's payment notice? "
                                                                 "Use its payment code (缴款码)"))
    if page.locator("details:has(#payment_code)[open]").count() == 0:
        summary.click()
    page.fill("#plate-payment", plate)
    page.fill("#payment_code", code)
    button = page.locator("details:has(#payment_code)").get_by_role("button", name=text(app, locale, "Show my fines"))
    return wait_for_post(page, "/lookup", button.click)


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_a_driver_looks_up_by_plate_and_payment_code(phone, code_server, screenshot, locale):
    base, app = code_server
    phone.goto(base + "/")
    if locale == "zh_CN":
        phone.locator("nav.lang-switch a[lang=zh-CN]").click()
        phone.wait_for_url(base + "/")
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN" if locale == "zh_CN" else "en")
    expect(phone.locator("#payment_code")).to_be_hidden()  # an alternative, folded until asked for

    response = by_payment_code(phone, app, locale, PLATE, TYPED_CODE)

    assert response.status == 200
    expect(phone.get_by_role("heading", level=1)).to_have_text(
        text(app, locale, "Violations for %(plate)s", plate="蒙B12345"))
    # The code proves the vehicle: all its violations, as with a notice number, each with its own code.
    expect(phone.locator("li.violation")).to_have_count(len(PAYABLE.violations))
    expect(phone.locator(f"#violation-{NOTICE} .payment-code")).to_have_text(DEMO_PAYMENT_CODE)
    expect(phone.locator(f"#violation-{NOTICE} .refs")).to_contain_text(text(app, locale, "Payment code (缴款码)"))
    assert_fits(phone)
    screenshot(phone, f"{locale}-results-payment-code")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_a_wrong_payment_code_and_an_unknown_plate_read_the_same(phone, code_server, screenshot, locale):
    base, app = code_server
    phone.goto(base + "/")
    if locale == "zh_CN":
        phone.locator("nav.lang-switch a[lang=zh-CN]").click()
        phone.wait_for_url(base + "/")

    wrong_code = by_payment_code(phone, app, locale, PLATE, "15020320261100009999")
    assert wrong_code.status == 404
    no_match = phone.locator("#no-match")
    expect(no_match).to_contain_text(text(
        app, locale, "No violations match this plate and payment code. Check both and try again: the payment code "
                     "(缴款码) is the 20-digit number on the finance bureau's payment notice."))
    expect(phone.locator("details:has(#payment_code)")).to_have_attribute("open", "")  # open again, filled in
    expect(phone.locator("#plate-payment")).to_have_value(PLATE)
    assert_touch_targets(phone, summaries=True)
    assert_fits(phone)
    screenshot(phone, f"{locale}-no-match-payment-code")
    wrong_text = no_match.inner_text()

    unknown_plate = by_payment_code(phone, app, locale, "蒙B99999", TYPED_CODE)
    assert unknown_plate.status == 404
    assert no_match.inner_text() == wrong_text

    elsewhere = by_payment_code(phone, app, locale, PLATE, "11010526110000000789")
    assert elsewhere.status == 422
    expect(phone.locator("#payment_code")).to_have_attribute("aria-invalid", "true")
    expect(phone.locator("#payment_code-error")).to_have_text(spaced(text(
        app, locale, "This payment code is from another region's finance bureau: this service takes only the "
                     "codes on this city's notices.")))
