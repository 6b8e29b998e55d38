"""The driver's lookup pages in a real Chromium on a 360 px phone, CSRF on, demo data loaded.

Expected amounts are worked out by hand from the demo data (violations/demo.py,
dated relative to today) and the default PRC policy: due 15 days after the
decision, then 3 % of the fine a day, capped at the fine.
"""
import re
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import PHONE_WIDTH, assert_touch_targets, wait_for_post

pytestmark = pytest.mark.browser

PLATE, VIN = "蒙B·12345", "a12345"  # lower case on purpose: the page must accept it
NOTICE_PLATE, NOTICE = "京A D8888", "110105202611009999"

# notice number -> (description, badge, late fee cell, amount due or None when paid)
DEMO_VEHICLE = {
    "150203202611000001": ("驾驶机动车违反道路交通信号灯通行的", "Unpaid", "CN¥0.00", "CN¥200.00"),  # 3 days after decision
    "150203202611000002": ("驾驶中型以上载客载货汽车、危险物品运输车辆以外的其他机动车行驶超过规定时速未达20%的", "Unpaid", "CN¥0.00", "CN¥100.00"),  # day 15: last day without a fee
    "150203202611000003": ("机动车违反规定停放、临时停车且驾驶人不在现场或驾驶人虽在现场拒绝立即驶离，妨碍其他车辆、行人通行的",
                           "Unpaid", "CN¥1.50 (1 day overdue)", "CN¥51.50"),
    "150203202611000004": ("机动车违反禁止标线指示的", "Unpaid", "CN¥90.00 (15 days overdue)", "CN¥290.00"),
    "150203202611000005": ("机动车通过有灯控路口时，不按所需行进方向驶入导向车道的", "Unpaid", "CN¥150.00 (45 days overdue)",
                           "CN¥300.00"),  # capped
}
DEMO_PAYABLE = "CN¥941.50"  # every unpaid amount above, all payable online
# The demo's other vehicles (violations/demo.py): one to settle in person beside a payable one, one paid.
IN_PERSON_PLATE, IN_PERSON_VIN = "蒙B·6M207", "C70316"
PAID_PLATE, PAID_VIN = "蒙B·3K521", "D52103"
PRIVATE = re.compile(r"12345|D8888|A12345|6M207|C70316|3K521|D52103|110105202611009999|蒙|京", re.IGNORECASE)


def spaced(text):
    """A pattern for exactly `text`, however the template's line breaks space its words."""
    return re.compile(r"^\s*" + r"\s+".join(map(re.escape, text.split())) + r"\s*$")


def assert_phone_friendly(page):
    """Fits 360 px without sideways scrolling, says it is a sandbox, and no URL ever carried a plate or VIN."""
    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= PHONE_WIDTH, f"{page.url} scrolls sideways: {scroll_width}px wide"
    expect(page.locator(".sandbox-banner")).to_contain_text("No real money moves")
    for url in [page.url, *page.requested_urls]:
        parts = urlsplit(unquote(url))
        private = PRIVATE.search(parts.path + "?" + parts.query + "#" + parts.fragment)
        assert private is None, f"{url} carries {private.group()!r}"


def submit(page, click):
    """Run `click` (which submits a lookup form) and return the /lookup response after the page has loaded."""
    return wait_for_post(page, "/lookup", click)


def lookup_by_vin(page, base, plate, vin):
    page.goto(base + "/")
    page.fill("#plate", plate)
    page.fill("#vin_last6", vin)
    return submit(page, lambda: page.locator("form.card").get_by_role("button", name="Show my fines").click())


def test_home_page_fits_a_phone(phone, live_server, screenshot):
    response = phone.goto(live_server + "/")

    assert response.status == 200
    expect(phone.get_by_role("heading", level=1)).to_have_text("Look up and pay your traffic fines")
    expect(phone.get_by_label("Plate number").first).to_be_visible()
    expect(phone.get_by_label("Last 6 characters of the VIN")).to_be_visible()
    expect(phone.locator("details.card[open]")).to_have_count(0)  # the notice-number and payment-code alternatives
    expect(phone.locator("#notice_number")).to_be_hidden()
    expect(phone.locator("#payment_code")).to_be_hidden()
    assert_touch_targets(phone, summaries=True)
    assert_phone_friendly(phone)
    screenshot(phone, "home")


def test_vin_lookup_shows_every_violation_with_fees(phone, live_server, screenshot):
    response = lookup_by_vin(phone, live_server, PLATE, VIN)

    assert response.status == 200
    assert urlsplit(phone.url).path == "/lookup"
    expect(phone.get_by_role("heading", level=1)).to_have_text("Violations for 蒙B12345")
    expect(phone.locator("#total-payable")).to_have_text(DEMO_PAYABLE)
    expect(phone.locator("#count-online")).to_have_text("5 violations can be paid online.")
    expect(phone.locator("#count-in-person")).to_have_count(0)
    expect(phone.locator("li.violation")).to_have_count(len(DEMO_VEHICLE))
    for notice, (description, badge, late_fee, due) in DEMO_VEHICLE.items():
        item = phone.locator(f"#violation-{notice}")
        expect(item.get_by_role("heading")).to_have_text(description)
        expect(item.locator(".badge")).to_have_text(badge)
        amount, _, overdue = late_fee.partition(" ")
        expect(item.locator(".late-fee")).to_have_text(amount)
        if overdue:
            expect(item.locator(".money")).to_contain_text(overdue)
        if due is None:
            expect(item.locator(".amount-due")).to_have_count(0)
        else:
            expect(item.locator(".amount-due")).to_have_text(due)

    expect(phone.locator("#violation-150203202611000001 .due")).to_contain_text("to avoid a late fee")
    expect(phone.locator("#violation-150203202611000004 .due")).to_contain_text("stops the late fee from growing")
    expect(phone.locator("#violation-150203202611000005 .due")).to_contain_text("has reached its maximum")
    assert_phone_friendly(phone)
    screenshot(phone, "results-vin")


def test_the_in_person_vehicle_says_where_to_settle_beside_what_can_be_paid(phone, live_server, screenshot):
    response = lookup_by_vin(phone, live_server, IN_PERSON_PLATE, IN_PERSON_VIN)

    assert response.status == 200
    expect(phone.locator("#total-payable")).to_have_text("CN¥50.00")
    expect(phone.locator("#count-online")).to_have_text("1 violation can be paid online.")
    expect(phone.locator("#count-in-person")).to_have_text("1 violation must be handled in person (CN¥230.00).")
    in_person = phone.locator("#violation-150203202611000006 .in-person")
    expect(in_person).to_contain_text("cannot be paid online")
    expect(in_person).to_contain_text("traffic police service hall")
    expect(phone.locator("#violation-150203202611000006")).not_to_contain_text("stops the late fee")
    expect(phone.locator("#violation-150203202611000006 input.select")).to_have_count(0)
    expect(phone.locator(".in-person")).to_have_count(1)
    assert_phone_friendly(phone)
    screenshot(phone, "results-in-person")


def test_the_paid_vehicle_links_each_violation_to_its_receipt(phone, live_server, screenshot):
    response = lookup_by_vin(phone, live_server, PAID_PLATE, PAID_VIN)

    assert response.status == 200
    expect(phone.locator("li.violation .badge")).to_have_text(["Paid", "Paid"])
    links = phone.locator("a.receipt-link")
    expect(links).to_have_count(2)
    expect(links.first).to_have_text(re.compile(r"^Receipt FP(-[0-9A-Z]{4}){4}$"))
    expect(links.first).to_have_attribute("href", re.compile(r"^/receipts/FP(-[0-9A-Z]{4}){4}$"))
    expect(phone.locator("#violation-150203202611000007 .late-fee")).to_have_text("CN¥75.00")  # paid on day 40
    assert_phone_friendly(phone)
    screenshot(phone, "results-paid")


def test_notice_number_lookup_through_the_alternative(phone, live_server, screenshot):
    phone.goto(live_server + "/")
    phone.get_by_text("No VIN at hand? Use a notice number instead").click()
    phone.fill("#plate-notice", NOTICE_PLATE)
    phone.fill("#notice_number", NOTICE)
    notice_form = phone.locator("details:has(#notice_number) form")
    response = submit(phone, lambda: notice_form.get_by_role("button", name="Show my fines").click())

    assert response.status == 200
    expect(phone.get_by_role("heading", level=1)).to_have_text("Violations for 京AD8888")
    expect(phone.locator("li.violation")).to_have_count(1)
    item = phone.locator(f"#violation-{NOTICE}")
    expect(item.get_by_role("heading")).to_have_text("机动车违反禁止标线指示的")
    expect(item.locator(".amount-due")).to_have_text("CN¥50.00")  # decided 7 days ago: no late fee yet
    expect(item.locator(".due")).to_contain_text("to avoid a late fee")
    expect(phone.locator("#total-payable")).to_have_text("CN¥50.00")
    assert_phone_friendly(phone)
    screenshot(phone, "results-notice")


def test_wrong_vin_says_nothing_found(phone, live_server, screenshot):
    response = lookup_by_vin(phone, live_server, PLATE, "B12345")

    assert response.status == 404
    expect(phone.locator("#no-match")).to_contain_text("Nothing found")
    expect(phone.locator("#no-match")).to_contain_text("last 6 characters of the vehicle identification number")
    expect(phone.locator("li.violation")).to_have_count(0)
    expect(phone.locator("#plate")).to_have_value(PLATE)  # kept, so the driver only fixes what was wrong
    wrong_vin_text = phone.locator("#no-match").inner_text()
    assert_phone_friendly(phone)
    screenshot(phone, "no-match")

    # An unknown plate reads exactly the same: the page is no oracle for which plates exist.
    response = lookup_by_vin(phone, live_server, "蒙B99999", "A12345")
    assert response.status == 404
    assert phone.locator("#no-match").inner_text() == wrong_vin_text


def test_invalid_vin_is_marked_on_the_field(phone, live_server, screenshot):
    response = lookup_by_vin(phone, live_server, PLATE, "A1234O")

    assert response.status == 422
    vin = phone.locator("#vin_last6")
    expect(vin).to_have_attribute("aria-invalid", "true")
    expect(vin).to_have_attribute("aria-describedby", re.compile(r"\bvin_last6-error\b"))
    expect(phone.locator("#vin_last6-error")).to_contain_text("never I, O or Q")
    expect(phone.locator("#plate")).not_to_have_attribute("aria-invalid", "true")
    expect(phone.locator("#form-errors")).to_contain_text("Please correct the highlighted fields.")
    expect(vin).to_have_value("A1234O")
    assert_phone_friendly(phone)
    screenshot(phone, "home-invalid")


def test_vin_lookup_by_keyboard_alone(phone, live_server):
    phone.goto(live_server + "/")
    phone.keyboard.press("Tab")
    first_stop = phone.evaluate("document.activeElement.textContent.trim()")
    assert first_stop == "Skip to content"
    for _ in range(5):
        if phone.evaluate("document.activeElement.id") == "plate":
            break
        phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "plate", "the plate field is not reachable by Tab"
    outline = phone.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused field shows no focus ring"
    phone.keyboard.type(PLATE)
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "vin_last6"
    phone.keyboard.type(VIN)
    response = submit(phone, lambda: phone.keyboard.press("Enter"))

    assert response.status == 200
    expect(phone.get_by_role("heading", level=1)).to_have_text("Violations for 蒙B12345")
    expect(phone.locator("#total-payable")).to_have_text(DEMO_PAYABLE)
    expect(phone.locator("#count-online")).to_have_text("5 violations can be paid online.")
    assert_phone_friendly(phone)


def test_notice_lookup_by_keyboard_alone(phone, live_server):
    phone.goto(live_server + "/")
    phone.focus("#vin_last6")
    phone.keyboard.press("Tab")  # the main form's button
    phone.keyboard.press("Tab")  # the <summary> of the notice-number alternative
    assert phone.evaluate("document.activeElement.tagName") == "SUMMARY"
    phone.keyboard.press("Enter")
    expect(phone.locator("details:has(#notice_number)")).to_have_attribute("open", "")
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "plate-notice"
    phone.keyboard.type(NOTICE_PLATE)
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "notice_number"
    phone.keyboard.type(NOTICE)
    response = submit(phone, lambda: phone.keyboard.press("Enter"))

    assert response.status == 200
    expect(phone.get_by_role("heading", level=1)).to_have_text("Violations for 京AD8888")
    assert_phone_friendly(phone)


def test_lookup_form_is_csrf_protected(phone, live_server):
    phone.goto(live_server + "/")
    token = phone.locator("form.card input[name=csrf_token]")
    expect(token).to_have_count(1)
    assert token.get_attribute("value")

    response = phone.request.post(live_server + "/lookup", form={"proof": "vin", "plate": PLATE, "vin_last6": VIN})

    assert response.status == 400
    page = response.text()
    assert "please submit the form again" in page  # the form again, with a fresh token, not a bare error
    assert f'value="{PLATE}"' not in page and f'value="{VIN}"' not in page
