"""Paying with 微信支付 and 支付宝 in a real Chromium, through the two simulators (tests/rails.py), in Chinese.

Each way of reaching the rails is driven as the driver would: a computer shows the
QR code and a second page, the phone, opens what the code says and approves; a phone
browser goes to the rail's page and comes back; WeChat's own browser gets the
payer's openid from the OAuth stand-in and pays through the simulator's bridge.
Two phones paying for one violation end with one capture kept. Every test has a
vehicle of its own on one live FinePay for the module; one QR payment runs in English too.

Screenshots (zh_CN-rails-*.png: the review page's choices, the QR pay page, the receipt
after WeChat Pay, the pay page inside WeChat, a refunded second payment) go under each
test's tmp dir and are copied to RAILS_SHOTS, else tests/artifacts/screenshots/.
"""
import os
import re
import shutil
from pathlib import Path
from time import monotonic
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from finepay.extensions import db
from payments.models import Payment
from tests.browser.conftest import BROWSER_CONFIG, PHONE, REQUIRE_BROWSER, SCREENSHOTS
from tests.browser.helpers import (
    PAY_PAGE,
    RECEIPT_NUMBER,
    RECEIPT_PAGE,
    add_vehicle,
    assert_fits,
    assert_touch_targets,
)
from tests.conftest import did_not_run
from tests.rails import running_rails
from violations.models import Violation

pytestmark = pytest.mark.browser

# jsQR from npm (tests/browser/package.json; `make browser` runs `npm ci`): reads the code as a phone's camera would.
JSQR = Path(__file__).resolve().parent / "node_modules" / "jsqr" / "dist" / "jsQR.js"
# Where the screenshots are copied for people to look at, beside the pytest run's own: RAILS_SHOTS, else the
# browser tests' usual tests/artifacts/screenshots/.
SHOTS = Path(os.environ.get("RAILS_SHOTS") or SCREENSHOTS)
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE_ZH = {**PHONE, "locale": "zh-CN"}
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0.0.0 Mobile Safari/537.36")
IN_WECHAT = ANDROID + " XWEB/1260117 MMWEBSDK/20240301 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 NetType/WIFI"
WECHATPAY, ALIPAY = "微信支付", "支付宝"
# What the driver reads, in Chinese (the default) and in English (the other language a phone may ask for).
WORDS = {
    "zh": {"locale": "zh-CN", "review": "核对缴款信息", "receipt": "缴款收据", "card": "银行卡（沙箱）",
           "ways": {WECHATPAY: WECHATPAY, ALIPAY: ALIPAY}, "scan": "{way}扫码缴款 ¥200.00",
           "apps": {WECHATPAY: "微信", ALIPAY: "支付宝"}, "hint": "请打开手机上的{app}，扫描上方二维码"},
    "en": {"locale": "en-US", "review": "Review your payment", "receipt": "Payment receipt", "card": "Card (sandbox)",
           "ways": {WECHATPAY: "WeChat Pay", ALIPAY: "Alipay"}, "scan": "Scan with {way} to pay CN¥200.00",
           "apps": {WECHATPAY: "WeChat", ALIPAY: "Alipay"}, "hint": "Open {app} on your phone, scan the code"},
}


@pytest.fixture(scope="module")
def rails(sqlite_template, tmp_path_factory):
    """Both simulators and FinePay (wechatpay, alipay, sandbox) for this module, in Chinese by default."""
    with running_rails(sqlite_template, tmp_path_factory.mktemp("rails"),
                       **{**BROWSER_CONFIG, "DEFAULT_LOCALE": "zh_CN"}) as running:
        yield running


@pytest.fixture
def jsqr():
    """The path of jsQR.js; skipped loudly (or failed under REQUIRE_BROWSER=1) when `make browser` did not install it."""
    if not JSQR.is_file():
        did_not_run(f"jsQR not found at {JSQR}: the QR payments DID NOT RUN (run `make browser`)",
                    required=REQUIRE_BROWSER)
    return JSQR


@pytest.fixture
def open_context(browser):
    """Open browser contexts (each its own cookies, as another device); all closed after the test."""
    contexts = []

    def open_one(**options):
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield open_one
    for context in contexts:
        context.close()


@pytest.fixture
def shot(tmp_path):
    """Save what a page shows under the test's tmp dir and copy it to SHOTS (made when missing)."""
    def take(page, name):
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / path.name)
        return path

    return take


# --- the driver's steps -----------------------------------------------------------------------------


def a_vehicle(rails, plate, vin, notice, fine=20000):
    """One unpaid violation (CN¥200.00 by default, decided 3 days ago: no late fee yet)."""
    return add_vehicle(rails.app, plate, vin, [(notice, "超速 20% 以上未达 50%", fine, 3, True)])


def to_review(page, rails, vehicle, lang="zh"):
    """Look the vehicle up and review its (preselected) violations."""
    page.goto(rails.url + "/")
    page.fill("#plate", vehicle.plate)
    page.fill("#vin_last6", vehicle.vin)
    page.locator("form.card button[type=submit]").click()
    page.locator("#review-button").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(WORDS[lang]["review"])


def choose(page, label):
    """Press one of the ways to pay (on the review page, or under 'pay another way'); return the payment id."""
    page.get_by_role("button", name=label, exact=True).click()
    page.wait_for_url(PAY_PAGE)
    return urlsplit(page.url).path.rsplit("/", 1)[1]


def qr_text(page, context, jsqr):
    """What the pay page's QR code says, read from its pixels with jsQR on a blank page of the same device."""
    markup = page.locator("#pay-qr svg").evaluate("svg => svg.outerHTML")
    reader = context.new_page()
    try:
        reader.add_script_tag(path=str(jsqr))
        return reader.evaluate("""async markup => {
            const image = new Image();
            image.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(markup);
            await image.decode();
            const width = image.naturalWidth * 4, height = image.naturalHeight * 4;
            const canvas = document.createElement('canvas');
            canvas.width = width; canvas.height = height;
            const paint = canvas.getContext('2d');
            paint.fillStyle = '#fff'; paint.fillRect(0, 0, width, height);
            paint.imageSmoothingEnabled = false;
            paint.drawImage(image, 0, 0, width, height);
            const code = jsQR(paint.getImageData(0, 0, width, height).data, width, height);
            return code && code.data;
        }""", markup)
    finally:
        reader.close()


def scan_url(rails, code):
    """Where a phone goes with a scanned code: an http(s) link as it is; WeChat's weixin:// through its scanner."""
    if code.startswith("weixin://"):
        return f"{rails.wechatpay.base_url}/simulator/scan?code_url={quote(code, safe='')}"
    return code


def navigations(page):
    """Every URL the page's main frame is sent to, redirects included, in order (a list that grows)."""
    visited = []
    page.on("request", lambda request: request.is_navigation_request() and request.frame == page.main_frame
            and visited.append(request.url))
    return visited


def approve(phone):
    """The payer approves on the rail's page (both simulators name the button 'Approve')."""
    phone.get_by_role("button", name=re.compile("Approve")).click()


def expect_receipt(page, way, seconds=15, lang="zh"):
    """The page reaches the receipt by itself: paid online with ``way``; returns the receipt number."""
    page.wait_for_url(RECEIPT_PAGE, timeout=seconds * 1000)
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^" + WORDS[lang]["receipt"]))  # "…: refunded" too
    expect(page.locator("#paid-by")).to_contain_text(way)
    number = page.locator("#receipt-number").inner_text().strip()
    assert RECEIPT_NUMBER.match(number), number
    return number


def reload_until_shown(page, selector, seconds=5):
    """The element, once a reload of the page shows it (something the server does after the page was drawn)."""
    deadline = monotonic() + seconds
    while not page.locator(selector).count() and monotonic() < deadline:
        page.wait_for_timeout(200)
        page.reload()
    expect(page.locator(selector)).to_have_count(1)
    return page.locator(selector)


def assert_paid_once(page, rails, vehicle, number):
    """Looked up again, the vehicle's one violation shows paid, on the receipt ``number``, and nothing is owed."""
    page.goto(rails.url + "/")
    page.fill("#plate", vehicle.plate)
    page.fill("#vin_last6", vehicle.vin)
    page.locator("form.card button[type=submit]").click()
    expect(page.locator(".paid-note")).to_have_count(1)
    expect(page.locator(".paid-note")).to_contain_text(number)
    expect(page.locator("#review-button")).to_have_count(0)


def payments_for(app, vehicle):
    """The vehicle's payments, oldest first, as (gateway, status, refunded amount)."""
    with app.app_context():
        rows = db.session.execute(
            select(Payment).where(Payment.plate == vehicle.normalized).order_by(Payment.created_at)
        ).scalars().all()
        return [(p.gateway, p.status, sum(r.amount for r in p.refunds if r.status == "succeeded")) for p in rows]


def violation_state(app, vehicle):
    """The vehicle's one violation: (status, receipt number)."""
    with app.app_context():
        violation = db.session.execute(select(Violation).where(Violation.plate == vehicle.normalized)).scalar_one()
        return violation.status, violation.receipt_number


# --- a computer: scan the code with the phone ---------------------------------------------------------


@pytest.mark.parametrize(("way", "lang"), [(WECHATPAY, "zh"), (ALIPAY, "zh"), (ALIPAY, "en")],
                         ids=["wechatpay", "alipay", "alipay-en"])
def test_a_computer_shows_the_code_the_phone_pays_and_the_page_moves_on_to_the_receipt(
        way, lang, rails, open_context, jsqr, shot):
    words, case = WORDS[lang], [WECHATPAY, ALIPAY].index(way) + (2 if lang == "en" else 0)
    vehicle = a_vehicle(rails, f"蒙A·7100{case}", f"DK000{case}", f"15020320261271000{case}")
    label = words["ways"][way]
    computer_context = open_context(**DESKTOP, locale=words["locale"])
    computer = computer_context.new_page()
    to_review(computer, rails, vehicle, lang)
    expect(computer.locator(".ways button")).to_have_text([*words["ways"].values(), words["card"]])
    if way == WECHATPAY:
        shot(computer, "zh_CN-rails-review-choices")
    choose(computer, label)
    # The code says which app scans it: a driver with both apps must not open the wrong one.
    expect(computer.locator("#pay-qr h2")).to_have_text(words["scan"].format(way=label))
    expect(computer.locator("#pay-qr")).to_contain_text(words["hint"].format(app=words["apps"][way]))
    if way == WECHATPAY:
        shot(computer, "zh_CN-rails-qr-pay-page")

    code = qr_text(computer, computer_context, jsqr)
    assert code, "the QR code could not be read"
    phone = open_context(**PHONE_ZH, user_agent=ANDROID).new_page()
    phone.goto(scan_url(rails, code))
    expect(phone.locator("main")).to_contain_text(re.compile(r"¥\s?200"))
    approve(phone)

    number = expect_receipt(computer, label, lang=lang)
    if way == WECHATPAY:
        shot(computer, "zh_CN-rails-receipt-wechatpay")
    assert violation_state(rails.app, vehicle) == ("paid", number)
    assert payments_for(rails.app, vehicle) == [("wechatpay" if way == WECHATPAY else "alipay", "succeeded", 0)]


# --- a phone browser: to the rail's page and back -------------------------------------------------------


@pytest.mark.parametrize("way", [WECHATPAY, ALIPAY], ids=["wechatpay-h5", "alipay-wap"])
def test_a_phone_goes_to_the_rails_page_pays_and_comes_back_to_the_receipt(way, rails, open_context):
    wechat = way == WECHATPAY
    vehicle = a_vehicle(rails, "蒙A·72001" if wechat else "蒙A·72002", "WX0002" if wechat else "AL0002",
                        "150203202612720001" if wechat else "150203202612720002")
    phone = open_context(**PHONE_ZH, user_agent=ANDROID).new_page()
    visited = navigations(phone)
    to_review(phone, rails, vehicle)
    payment_id = choose(phone, way)
    expect(phone.locator("#pay-qr")).to_have_count(0)  # a phone cannot scan its own screen

    expect(phone.locator("#pay-redirect a.button")).to_have_text(f"前往{way}缴款 ¥200.00")
    assert_fits(phone)
    assert_touch_targets(phone)
    phone.locator("#pay-redirect a.button").click()
    rail = rails.wechatpay.base_url if wechat else rails.alipay_url
    phone.wait_for_url(rail + "/**")
    approve(phone)

    number = expect_receipt(phone, way)
    # Back from the rail to the payment's own page (its return URL; Alipay adds its signed query), then the receipt.
    back = visited[[i for i, url in enumerate(visited) if url.startswith(rail)][-1] + 1]
    assert back.split("?")[0] == f"{rails.url}/pay/{payment_id}", visited
    assert violation_state(rails.app, vehicle) == ("paid", number)
    assert payments_for(rails.app, vehicle) == [("wechatpay" if wechat else "alipay", "succeeded", 0)]


# --- inside WeChat: the official account's OAuth, then the JSAPI bridge ------------------------------------


def test_inside_wechat_the_driver_pays_through_the_bridge_after_the_oauth_step(rails, open_context, shot):
    vehicle = a_vehicle(rails, "蒙A·73001", "WX0003", "150203202612730001")
    phone = open_context(**PHONE_ZH, user_agent=IN_WECHAT).new_page()
    visited, requested = navigations(phone), []
    phone.on("request", lambda request: requested.append(request.url))
    to_review(phone, rails, vehicle)
    expect(phone.locator(".ways button")).to_have_text([WECHATPAY, "银行卡（沙箱）"])  # Alipay cannot open in WeChat
    payment_id = choose(phone, WECHATPAY)
    shot(phone, "zh_CN-rails-inapp-pay-page")

    phone.locator("#pay-redirect a.button").click()  # to the OAuth stand-in (snsapi_base: nothing to approve)
    number = expect_receipt(phone, WECHATPAY)  # back with the openid; the bridge opened by itself and paid
    oauth = [url for url in visited if url.startswith(rails.wechatpay.base_url)]
    assert oauth and "snsapi_base" in oauth[0], visited
    assert f"{rails.url}/pay/{payment_id}" in visited  # the JSAPI page, after the OAuth step
    assert phone.evaluate("window.WeixinJSBridge === undefined")  # the receipt is FinePay's own page again
    # Paid through the bridge stand-in that the JSAPI page loaded from the simulator, as WeChat would provide it.
    assert f"{rails.wechatpay.base_url}/simulator/jsbridge.js" in requested
    assert f"{rails.wechatpay.base_url}/simulator/jsbridge/pay" in requested
    assert violation_state(rails.app, vehicle) == ("paid", number)
    assert payments_for(rails.app, vehicle) == [("wechatpay", "succeeded", 0)]


# --- two phones, one violation ------------------------------------------------------------------------------


def two_phones(rails, open_context, vehicle):
    """Phones A and B, each with the vehicle's violation on its review page."""
    phones = []
    for _ in range(2):
        phone = open_context(**PHONE_ZH, user_agent=ANDROID).new_page()
        to_review(phone, rails, vehicle)
        phones.append(phone)
    return phones


def test_a_second_phone_choosing_alipay_closes_the_first_phones_wechat_order_first(rails, open_context):
    vehicle = a_vehicle(rails, "蒙A·74001", "TW0001", "150203202612740001")
    phone_a, phone_b = two_phones(rails, open_context, vehicle)
    first = choose(phone_a, WECHATPAY)
    phone_a.locator("#pay-redirect a.button").click()
    phone_a.wait_for_url(rails.wechatpay.base_url + "/**")  # WeChat Pay's page for the order, not yet approved

    choose(phone_b, ALIPAY)
    approve(phone_a)  # too late: FinePay closed that order before it opened Alipay's
    expect(phone_a.locator("body")).to_contain_text("该订单已关闭")
    assert violation_state(rails.app, vehicle) == ("unpaid", None)

    phone_b.locator("#pay-redirect a.button").click()
    phone_b.wait_for_url(rails.alipay_url + "/**")
    approve(phone_b)
    number = expect_receipt(phone_b, ALIPAY)

    phone_a.goto(f"{rails.url}/pay/{first}")  # phone A back on its payment's page: nothing was charged there
    expect(phone_a.locator("#closed")).to_contain_text("这笔缴款已被替换或取消")
    assert violation_state(rails.app, vehicle) == ("paid", number)
    assert_paid_once(phone_a, rails, vehicle, number)
    assert payments_for(rails.app, vehicle) == [("wechatpay", "canceled", 0), ("alipay", "succeeded", 0)]


def test_an_order_paid_just_before_the_second_phone_chooses_keeps_the_payment_and_opens_no_other(
        rails, open_context):
    vehicle = a_vehicle(rails, "蒙A·74002", "TW0002", "150203202612740002")
    phone_a, phone_b = two_phones(rails, open_context, vehicle)
    first = choose(phone_a, WECHATPAY)
    phone_a.locator("#pay-redirect a.button").click()
    phone_a.wait_for_url(rails.wechatpay.base_url + "/**")
    order = phone_a.locator("dt:has-text('订单号') + dd").inner_text().strip()
    # The order is paid (through the simulator's admin API: phone A has not come back) and WeChat Pay's
    # notification is lost, so FinePay learns of the payment only when it closes the order for phone B.
    rails.wechatpay_admin("POST", "notifications", mode="drop", count=1)
    rails.wechatpay_admin("POST", f"orders/{order}/pay", outcome="approve")

    phone_b.get_by_role("button", name=ALIPAY, exact=True).click()
    expect(phone_b.locator("main")).to_contain_text("这些违法记录刚刚变为已缴，请重新查询。")
    phone_a.goto(f"{rails.url}/pay/{first}")
    number = expect_receipt(phone_a, WECHATPAY)
    assert violation_state(rails.app, vehicle) == ("paid", number)
    assert payments_for(rails.app, vehicle) == [("wechatpay", "succeeded", 0)]


def test_both_phones_paid_at_their_rails_keeps_one_and_refunds_the_other_by_itself(rails, open_context, shot):
    vehicle = a_vehicle(rails, "蒙A·74003", "TW0003", "150203202612740003")
    phone_a, phone_b = two_phones(rails, open_context, vehicle)
    choose(phone_a, ALIPAY)  # phone A holds Alipay's link but has not opened it: Alipay knows no trade yet
    link = phone_a.locator("#pay-redirect a.button")
    expect(link).to_have_attribute("href", re.compile("^" + re.escape(rails.alipay_url)))

    choose(phone_b, WECHATPAY)  # FinePay closes A's trade first; Alipay has none to close
    phone_b.locator("#pay-redirect a.button").click()
    approve(phone_b)
    number = expect_receipt(phone_b, WECHATPAY)

    link.click()  # phone A's page was still open: Alipay opens the trade now, and takes the money
    phone_a.wait_for_url(rails.alipay_url + "/**")
    approve(phone_a)
    surplus = expect_receipt(phone_a, ALIPAY)
    # Said at once, even while the refund is still on its way to Alipay (the settling request makes it next).
    expect(phone_a.locator("#duplicate-payment")).to_contain_text("您无需再为这些罚款缴款")
    expect(phone_a.locator("tr[data-state=not_settled]")).to_contain_text("此前已缴：已退款")
    refund = reload_until_shown(phone_a, "tr.refund-row")
    expect(refund).to_contain_text("−¥200.00")
    expect(phone_a.locator("#receipt-net")).to_have_text("¥0.00")
    shot(phone_a, "zh_CN-rails-surplus-refunded")

    assert surplus != number
    assert violation_state(rails.app, vehicle) == ("paid", number)  # paid once, by phone B's payment
    assert_paid_once(phone_a, rails, vehicle, number)
    assert payments_for(rails.app, vehicle) == [("alipay", "refunded", 20000), ("wechatpay", "succeeded", 0)]
