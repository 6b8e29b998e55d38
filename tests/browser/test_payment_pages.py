"""Paying fines in a real Chromium on a 360 px phone: review, sandbox test cards, 3-D Secure, receipt, print.

Paying changes data, so this module serves FinePay from its own copy of the
database (the session `live_server` must keep the demo vehicle unpaid for the
lookup tests), and every test pays for a vehicle of its own. Decision dates are
relative to today; the amounts are worked out by hand with the default PRC
policy: due 15 days after the decision, then 3 % of the fine a day, capped at
the fine.
"""
import re
import threading
from collections import Counter
from dataclasses import dataclass
from time import sleep
from urllib.parse import unquote, urlencode, urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from finepay.extensions import db
from payments.models import Payment
from tests.browser.conftest import BROWSER_CONFIG
from tests.browser.helpers import (
    PAY_PAGE,
    PHONE_WIDTH,
    RECEIPT_NUMBER,
    RECEIPT_PAGE,
    add_vehicle,
    assert_fits,
    assert_touch_targets,
    viewport_shot,
)
from tests.live import app_on_copy, serving
from violations.models import Violation

pytestmark = pytest.mark.browser

RECEIPT_WIDTH = 302  # 80 mm thermal paper at 96 px per inch
VISA = "Visa card that pays"
DECLINED = "Card that is declined"
THREE_D_SECURE = "Card that asks for a security check (3-D Secure)"


class PostCounter:
    """WSGI wrapper around the app: counts POSTs by path, and holds those in `delays` for that many seconds.

    A slow answer is what lets a driver's second click reach the server while the first is still running.
    """

    def __init__(self, app):
        self.app = app
        self.posts = Counter()
        self.delays = {}
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            path = environ.get("PATH_INFO", "")
            with self._lock:
                self.posts[path] += 1
            if path in self.delays:
                sleep(self.delays[path])
        return self.app(environ, start_response)


@dataclass
class PayServer:
    url: str
    app: object
    wsgi: PostCounter


@pytest.fixture(scope="module")
def pay_server(sqlite_template, tmp_path_factory):
    """FinePay on its own copy of the migrated database (no demo data), CSRF on."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("pay"), **BROWSER_CONFIG)
    wsgi = PostCounter(app)
    with serving(app, wsgi) as url:
        yield PayServer(url, app, wsgi)


def payments_for(app, vehicle):
    """Every payment row for the vehicle, oldest first, as (status, amount, receipt number, violation ids)."""
    with app.app_context():
        rows = db.session.execute(
            select(Payment).where(Payment.plate == vehicle.normalized).order_by(Payment.created_at)
        ).scalars().all()
        return [(p.status, p.amount, p.receipt_number, sorted(i.violation_id for i in p.items)) for p in rows]


def statuses(app, vehicle):
    """notice number -> (status, receipt number) straight from the database."""
    with app.app_context():
        rows = db.session.execute(select(Violation).where(Violation.plate == vehicle.normalized)).scalars()
        return {v.notice_number: (v.status, v.receipt_number) for v in rows}


def assert_sandbox_and_private(page, vehicle):
    """Says it is a sandbox, and no URL the page (or any before it) requested carried the vehicle."""
    expect(page.locator(".sandbox-banner")).to_contain_text("No real money moves")
    for url in [page.url, *page.requested_urls]:
        parts = urlsplit(unquote(url))
        private = vehicle.private.search(parts.path + "?" + parts.query + "#" + parts.fragment)
        assert private is None, f"{url} carries {private.group()!r}"


def look_up(page, base, vehicle):
    """Look the vehicle up by plate and VIN code; return the results page's response."""
    page.goto(base + "/")
    page.fill("#plate", vehicle.plate)
    page.fill("#vin_last6", vehicle.vin)
    with page.expect_response(lambda r: urlsplit(r.url).path == "/lookup" and r.request.method == "POST") as info:
        page.locator("form.card").get_by_role("button", name="Show my fines").click()
    page.wait_for_load_state()
    assert info.value.status == 200
    return info.value


def review(page):
    """Submit the selection on the results page and land on the review page."""
    with page.expect_response(lambda r: urlsplit(r.url).path == "/pay/review" and r.request.method == "POST") as info:
        page.get_by_role("button", name="Review and pay the selected fines").click()
    page.wait_for_load_state()
    assert info.value.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Review your payment")


def continue_to_payment(page):
    """From the review page to the new payment's page; return the payment id."""
    page.locator("#continue-button").click()
    page.wait_for_url(PAY_PAGE)
    expect(page.get_by_role("heading", level=1)).to_have_text("Pay your fines")
    return urlsplit(page.url).path.rsplit("/", 1)[1]


def pay_with(page, label):
    """Press one of the sandbox's test-card buttons."""
    page.locator("#sandbox-methods").get_by_role("button", name=re.compile("^" + re.escape(label) + "(:|$)")).click()
    page.wait_for_load_state()


def to_receipt_with_visa(page):
    """Pay with the sandbox Visa card and land on the receipt; return the receipt number."""
    pay_with(page, VISA)
    page.wait_for_url(RECEIPT_PAGE)
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment receipt")
    number = page.locator("#receipt-number").inner_text().strip()
    assert RECEIPT_NUMBER.match(number), number
    assert urlsplit(page.url).path == f"/receipts/{number}"
    return number


def expect_failed(page, reason):
    """The pay page after a failure: plain words, nothing charged, the test cards offered again, no receipt."""
    assert PAY_PAGE.search(urlsplit(page.url).path), page.url
    failed = page.locator("#failed")
    expect(failed.get_by_role("heading")).to_have_text("The payment did not go through")
    expect(failed).to_contain_text(reason)
    expect(failed).to_contain_text("Nothing was charged. You can try again below.")
    expect(page.locator("#receipt, #receipt-number")).to_have_count(0)
    expect(page.locator("#sandbox-methods").get_by_role("button")).to_have_count(4)


def pay_in_full(page, base, vehicle):
    """Look up, keep the preselection, review, continue, pay with Visa; return the receipt number."""
    look_up(page, base, vehicle)
    review(page)
    continue_to_payment(page)
    return to_receipt_with_visa(page)


def test_pay_through_the_sandbox_to_a_receipt(phone, pay_server, screenshot):
    base, app = pay_server.url, pay_server.app
    vehicle = add_vehicle(app, "蒙L·20001", "LV0001", [
        ("150203202612000101", "Speeding 20-50% over the limit", 20000, 3, True),  # CN¥200.00, no fee yet
        ("150203202612000102", "Parking where prohibited", 5000, 20, True),  # 5 days: CN¥7.50 -> CN¥57.50
        ("150203202612000103", "Running a red light", 10000, 25, True),  # 10 days: CN¥30.00 -> CN¥130.00
        ("150203202612000104", "Drink driving", 200000, 3, False),  # in person only: never selectable
    ])
    payable = ["150203202612000101", "150203202612000102", "150203202612000103"]

    look_up(phone, base, vehicle)
    expect(phone.locator("#total-payable")).to_have_text("CN¥387.50")
    expect(phone.locator("input.select[name=violation_id]")).to_have_count(3)
    for notice in payable:
        expect(phone.locator(f"#violation-{notice} input.select")).to_be_checked()
    expect(phone.locator("#violation-150203202612000104 input.select")).to_have_count(0)
    assert_fits(phone)
    assert_sandbox_and_private(phone, vehicle)
    screenshot(phone, "pay-results-with-selection")
    viewport_shot(phone, "pay-results-with-selection-top")
    phone.locator("#violation-150203202612000103").scroll_into_view_if_needed()
    viewport_shot(phone, "pay-results-with-selection-bottom")

    review(phone)
    rows = phone.locator("table.items tbody tr")
    expect(rows).to_have_count(3)
    for row, (description, notice, fine, late_fee) in zip(rows.all(), [
        ("Speeding 20-50% over the limit", "150203202612000101", "CN¥200.00", "CN¥0.00"),
        ("Parking where prohibited", "150203202612000102", "CN¥50.00", "CN¥7.50"),
        ("Running a red light", "150203202612000103", "CN¥100.00", "CN¥30.00"),
    ], strict=True):
        expect(row.locator("td").nth(0)).to_contain_text(description)
        expect(row.locator("td").nth(0)).to_contain_text(notice)
        expect(row.locator("td").nth(1)).to_have_text(fine)
        expect(row.locator("td").nth(2)).to_have_text(late_fee)
    expect(phone.locator("#total")).to_have_text("CN¥387.50")  # the sum of the three amounts due
    expect(phone.locator("main")).not_to_contain_text("Drink driving")
    expect(phone.locator("#continue-button")).to_have_text("Continue to payment: CN¥387.50")
    assert payments_for(app, vehicle) == [], "reviewing must not create a payment"
    assert_touch_targets(phone)
    assert_sandbox_and_private(phone, vehicle)
    screenshot(phone, "pay-review")

    continue_to_payment(phone)
    expect(phone.locator("main .total")).to_have_text("CN¥387.50")
    expect(phone.locator("main")).to_contain_text("3 violations")
    expect(phone.locator("#sandbox-methods")).to_contain_text("Sandbox: these are test cards. No real money moves.")
    expect(phone.locator("#sandbox-methods").get_by_role("button")).to_have_text(
        [f"{VISA}: pay CN¥387.50", DECLINED, "Card with insufficient funds", THREE_D_SECURE])
    assert_touch_targets(phone)
    assert_fits(phone)
    assert_sandbox_and_private(phone, vehicle)
    screenshot(phone, "pay-pay")

    number = to_receipt_with_visa(phone)
    expect(phone.locator("#receipt-total")).to_have_text("CN¥387.50")
    expect(phone.locator("#receipt table.items tbody tr")).to_have_count(3)
    for notice in payable:
        expect(phone.locator("#receipt table.items tbody")).to_contain_text(notice)
    expect(phone.locator("#receipt .receipt-facts")).to_contain_text("蒙L20001")
    expect(phone.locator("#receipt .qr svg")).to_be_visible()
    expect(phone.locator("#receipt")).to_contain_text("Sandbox receipt: no real money moved.")
    expect(phone.get_by_role("link", name="Done")).to_be_visible()
    assert_sandbox_and_private(phone, vehicle)
    screenshot(phone, "pay-receipt")
    viewport_shot(phone, "pay-receipt-top")

    assert payments_for(app, vehicle) == [("succeeded", 38750, number, sorted(vehicle.ids[n] for n in payable))]

    # A new lookup: the three are paid with that receipt, the in-person one is all that is left, nothing payable.
    look_up(phone, base, vehicle)
    for notice in payable:
        item = phone.locator(f"#violation-{notice}")
        expect(item.locator(".badge")).to_have_text("Paid")
        expect(item.locator(".paid-note a.receipt-link")).to_have_text(f"Receipt {number}")
        expect(item.locator(".amount-due")).to_have_count(0)
    expect(phone.locator("#violation-150203202612000104 .badge")).to_have_text("Unpaid")
    expect(phone.locator("input.select")).to_have_count(0)
    expect(phone.locator("#review-button")).to_have_count(0)
    expect(phone.locator("#total-payable")).to_have_text("CN¥0.00")
    assert_sandbox_and_private(phone, vehicle)


def test_deselected_violation_is_left_unpaid(phone, pay_server):
    base, app = pay_server.url, pay_server.app
    vehicle = add_vehicle(app, "蒙L·20002", "LV0002", [
        ("150203202612000201", "Speeding 20-50% over the limit", 20000, 3, True),  # CN¥200.00
        ("150203202612000202", "Speeding 10-20% over the limit", 20000, 30, True),  # 15 days: +CN¥90 -> CN¥290.00
    ])
    kept, dropped = "150203202612000201", "150203202612000202"

    look_up(phone, base, vehicle)
    expect(phone.locator("#total-payable")).to_have_text("CN¥490.00")
    phone.get_by_label("Speeding 10-20% over the limit").uncheck()  # by its label, the description
    expect(phone.locator(f"#violation-{dropped} input.select")).not_to_be_checked()
    expect(phone.locator(f"#violation-{kept} input.select")).to_be_checked()
    review(phone)
    expect(phone.locator("table.items tbody tr")).to_have_count(1)
    expect(phone.locator("table.items tbody")).to_contain_text(kept)
    expect(phone.locator("table.items tbody")).not_to_contain_text(dropped)
    expect(phone.locator("#total")).to_have_text("CN¥200.00")
    expect(phone.locator("#continue-button")).to_have_text("Continue to payment: CN¥200.00")

    continue_to_payment(phone)
    expect(phone.locator("main .total")).to_have_text("CN¥200.00")
    expect(phone.locator("main")).to_contain_text("1 violation")
    number = to_receipt_with_visa(phone)
    expect(phone.locator("#receipt-total")).to_have_text("CN¥200.00")
    expect(phone.locator("#receipt table.items tbody tr")).to_have_count(1)
    expect(phone.locator("#receipt table.items tbody")).not_to_contain_text(dropped)
    assert_sandbox_and_private(phone, vehicle)

    assert statuses(app, vehicle) == {kept: ("paid", number), dropped: ("unpaid", None)}
    look_up(phone, base, vehicle)
    expect(phone.locator(f"#violation-{kept} .badge")).to_have_text("Paid")
    expect(phone.locator(f"#violation-{dropped} .badge")).to_have_text("Unpaid")
    expect(phone.locator(f"#violation-{dropped} input.select")).to_be_checked()
    expect(phone.locator("#total-payable")).to_have_text("CN¥290.00")


def test_declined_card_then_visa(phone, pay_server, screenshot):
    base, app = pay_server.url, pay_server.app
    vehicle = add_vehicle(app, "蒙L·20003", "LV0003", [
        ("150203202612000301", "Driving in a bus lane", 15000, 60, True),  # 45 days: the fee is capped at the fine
    ])

    look_up(phone, base, vehicle)
    review(phone)
    expect(phone.locator("#total")).to_have_text("CN¥300.00")
    continue_to_payment(phone)
    pay_with(phone, DECLINED)

    expect_failed(phone, "Your card was declined. Try another card, or ask your bank why.")
    expect(phone.locator("main .total")).to_have_text("CN¥300.00")
    assert payments_for(app, vehicle)[0][:3] == ("failed", 30000, None)
    assert statuses(app, vehicle) == {"150203202612000301": ("unpaid", None)}
    assert_touch_targets(phone)
    assert_fits(phone)
    assert_sandbox_and_private(phone, vehicle)
    screenshot(phone, "pay-declined")
    viewport_shot(phone, "pay-declined-top")

    number = to_receipt_with_visa(phone)
    expect(phone.locator("#receipt-total")).to_have_text("CN¥300.00")
    assert payments_for(app, vehicle) == [("succeeded", 30000, number, [vehicle.ids["150203202612000301"]])]
    assert_sandbox_and_private(phone, vehicle)


def test_security_check_approved(phone, pay_server, screenshot):
    base, app = pay_server.url, pay_server.app
    vehicle = add_vehicle(app, "蒙L·20004", "LV0004", [
        ("150203202612000401", "Parking where prohibited", 5000, 16, True),  # 1 day: CN¥1.50 -> CN¥51.50
    ])

    look_up(phone, base, vehicle)
    review(phone)
    payment_id = continue_to_payment(phone)
    pay_with(phone, THREE_D_SECURE)

    phone.wait_for_url(re.compile(r"/sandbox/authenticate/[^/]+$"))
    expect(phone.get_by_role("heading", level=1)).to_have_text("Sandbox bank: security check")
    expect(phone.locator(".sandbox-bank")).to_contain_text("It is a simulation: no real money moves.")
    expect(phone.locator(".sandbox-bank")).to_contain_text("Approve the payment of CN¥51.50 to 包头市公安局交通管理支队?")
    assert payments_for(app, vehicle)[0][0] == "requires_action"
    assert_touch_targets(phone)
    assert_fits(phone)
    assert_sandbox_and_private(phone, vehicle)
    screenshot(phone, "pay-sandbox-3ds")

    approved_at = len(phone.requested_urls)
    phone.get_by_role("button", name="Approve").click()
    phone.wait_for_url(RECEIPT_PAGE)  # by way of /pay/<id>, which sends a finished payment to its receipt
    assert f"/pay/{payment_id}" in [urlsplit(url).path for url in phone.requested_urls[approved_at:]]
    number = phone.locator("#receipt-number").inner_text().strip()
    assert RECEIPT_NUMBER.match(number), number
    expect(phone.locator("#receipt-total")).to_have_text("CN¥51.50")
    assert payments_for(app, vehicle) == [("succeeded", 5150, number, [vehicle.ids["150203202612000401"]])]
    assert_sandbox_and_private(phone, vehicle)


def test_security_check_failed_then_visa(phone, pay_server):
    base, app = pay_server.url, pay_server.app
    vehicle = add_vehicle(app, "蒙L·20005", "LV0005", [
        ("150203202612000501", "Running a red light", 10000, 15, True),  # day 15: the last day without a fee
    ])

    look_up(phone, base, vehicle)
    review(phone)
    expect(phone.locator("#total")).to_have_text("CN¥100.00")
    continue_to_payment(phone)
    pay_with(phone, THREE_D_SECURE)
    phone.wait_for_url(re.compile(r"/sandbox/authenticate/[^/]+$"))
    phone.get_by_role("button", name="Fail the check").click()
    phone.wait_for_url(PAY_PAGE)

    expect_failed(phone, "Your bank's security check was not completed. Try again, or use another card.")
    assert payments_for(app, vehicle)[0][:3] == ("failed", 10000, None)
    assert_fits(phone)
    assert_sandbox_and_private(phone, vehicle)

    number = to_receipt_with_visa(phone)
    expect(phone.locator("#receipt-total")).to_have_text("CN¥100.00")
    assert statuses(app, vehicle) == {"150203202612000501": ("paid", number)}


def test_double_click_on_continue_makes_one_payment(phone, pay_server):
    base, app = pay_server.url, pay_server.app
    vehicle = add_vehicle(app, "蒙L·20006", "LV0006", [
        ("150203202612000601", "Speeding 20-50% over the limit", 20000, 3, True),  # CN¥200.00
        ("150203202612000602", "Parking where prohibited", 5000, 20, True),  # CN¥57.50
    ])
    look_up(phone, base, vehicle)
    review(phone)
    expect(phone.locator("#total")).to_have_text("CN¥257.50")

    # Two taps on a slow connection. (Raw taps: a locator's click would politely wait for the first
    # navigation to finish.) The page lets one submit through; the form's idempotency key makes
    # a second submit that arrives anyway (no JavaScript, a network retry) return the same payment.
    form_fields = phone.evaluate("Array.from(new FormData(document.querySelector('form.once')).entries())")
    box = phone.locator("#continue-button").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = pay_server.wsgi.posts["/pay"]
    pay_server.wsgi.delays["/pay"] = 1.5
    try:
        with phone.expect_request(lambda r: r.method == "POST" and urlsplit(r.url).path == "/pay"):
            phone.touchscreen.tap(x, y)
        phone.touchscreen.tap(x, y)
        # Polls the address: wait_for_url would follow the first navigation, which the second tap aborts.
        expect(phone).to_have_url(PAY_PAGE)
        phone.wait_for_load_state()
    finally:
        pay_server.wsgi.delays.clear()

    assert pay_server.wsgi.posts["/pay"] - before == 1, "the page let a second submit through"
    resent = phone.request.post(base + "/pay", data=urlencode([tuple(pair) for pair in form_fields]), max_redirects=0,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resent.status == 303 and urlsplit(resent.headers["location"]).path == urlsplit(phone.url).path
    made = payments_for(app, vehicle)
    assert len(made) == 1, made
    assert made[0][:2] == ("created", 25750)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Pay your fines")
    expect(phone.locator("main .total")).to_have_text("CN¥257.50")
    with app.app_context():
        payment_id = db.session.execute(select(Payment.id).where(Payment.plate == vehicle.normalized)).scalar_one()
    assert urlsplit(phone.url).path == f"/pay/{payment_id}"
    assert_sandbox_and_private(phone, vehicle)


def test_receipt_prints_on_80mm_paper(phone, pay_server, screenshot):
    base, app = pay_server.url, pay_server.app
    vehicle = add_vehicle(app, "蒙L·20007", "LV0007", [
        ("150203202612000701", "Speeding 20-50% over the limit", 20000, 3, True),  # CN¥200.00
        ("150203202612000702", "Parking where prohibited", 5000, 20, True),  # CN¥57.50
    ])
    number = pay_in_full(phone, base, vehicle)

    phone.set_viewport_size({"width": RECEIPT_WIDTH, "height": 900})
    phone.emulate_media(media="print")

    for chrome in [".sandbox-banner", ".site-header", ".site-footer"]:
        expect(phone.locator(chrome)).to_be_hidden()
    expect(phone.get_by_role("link", name="Done")).to_be_hidden()
    expect(phone.get_by_text("To print or save as PDF")).to_be_hidden()
    expect(phone.locator("#receipt-number")).to_have_text(number)
    expect(phone.locator("#receipt-total")).to_have_text("CN¥257.50")
    expect(phone.locator("#receipt table.items tbody tr")).to_have_count(2)
    expect(phone.get_by_text("Sandbox receipt: no real money moved.")).to_be_visible()  # the banner is not printed
    qr = phone.locator("#receipt .qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert abs(box["width"] - 136) < 2, box  # 36 mm, centred under the items on a roll
    assert phone.evaluate("getComputedStyle(document.body).backgroundColor") in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")
    screenshot(phone, "pay-receipt-print-80mm")


@pytest.mark.parametrize("stop", ["review", "pay", "receipt", "receipt-print-80mm"])
def test_payment_pages_fit_without_sideways_scrolling(phone, pay_server, stop):
    """No sideways scrolling at 360 px (or on an 80 mm roll), and never a plate, VIN or notice number in a URL."""
    base, app = pay_server.url, pay_server.app
    n = ["review", "pay", "receipt", "receipt-print-80mm"].index(stop)
    vehicle = add_vehicle(app, f"蒙L·2010{n}", f"LW010{n}", [
        (f"15020320261201{n}001", "Speeding 20-50% over the limit", 200000, 90, True),  # capped: CN¥4,000.00
        (f"15020320261201{n}002", "Parking where prohibited", 5000, 16, True),  # CN¥51.50
    ])

    look_up(phone, base, vehicle)
    review(phone)
    expect(phone.locator("#total")).to_have_text("CN¥4,051.50")
    assert_sandbox_and_private(phone, vehicle)
    if stop != "review":
        continue_to_payment(phone)
        assert_sandbox_and_private(phone, vehicle)
    if stop.startswith("receipt"):
        to_receipt_with_visa(phone)
        assert_sandbox_and_private(phone, vehicle)
    width = PHONE_WIDTH
    if stop == "receipt-print-80mm":
        width = RECEIPT_WIDTH
        phone.set_viewport_size({"width": width, "height": 900})
        phone.emulate_media(media="print")

    assert_fits(phone, width)
