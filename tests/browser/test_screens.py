"""Screenshots of every driver, kiosk and staff screen in Chinese, for people to review, with the checks each must pass.

FinePay runs as a city deploys it: Chinese by default, WeChat Pay and Alipay (their
simulators) beside the card sandbox, the demo data loaded. Each screen is saved
full-page to tests/artifacts/screens/<size>/<screen>.png at phone (360 x 740) and
desktop (1366 x 768) sizes, the kiosk's at its own (1080 x 1920), and on each:
the answer's HTTP status is the one expected, nothing scrolls sideways, and no
English is left in the Chinese page but the words allowed (ALLOWED: the
product's name, SANDBOX, the language switcher's "English", ...; identifiers
with digits such as plates, receipt and transaction numbers never count).
Every screen is taken before the checks are asserted, so that a failure still
leaves all the pictures to look at.
"""
import re
import uuid
from datetime import datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from cases import services as case_services
from finepay.extensions import db
from kiosk.services import enrol_terminal
from notices import services as notice_services
from notices.models import CODE, Message
from payments.models import Payment
from staff.services import approve_instalment_plan
from tests.browser.conftest import BROWSER_CONFIG, PHONE
from tests.browser.helpers import PASSWORD, wait_for_post
from tests.browser.helpers import sign_in as send_sign_in
from tests.browser.kiosk_helpers import tap, type_plate, type_vin
from tests.factories import make_violation
from tests.rails import running_rails
from violations.demo import DEMO_PAYMENT_CODE, IN_PERSON, PAID, PAYABLE, REFUNDED_NOTICES
from violations.fees import business_today

pytestmark = pytest.mark.browser

SCREENS = Path(__file__).resolve().parents[1] / "artifacts" / "screens"
SIZES = {
    "phone": {**PHONE, "locale": "zh-CN"},
    "desktop": {"viewport": {"width": 1366, "height": 768}, "locale": "zh-CN"},
}
KIOSK = {"viewport": {"width": 1080, "height": 1920}, "has_touch": True, "device_scale_factor": 1, "locale": "zh-CN"}
# Latin words a Chinese page may show: names, the sandbox's mark, the switcher's way back to English, units.
ALLOWED = {"FinePay", "SANDBOX", "English", "CNY", "VIN", "ICP", "Asia", "Shanghai", "CSV", "UTC", "Excel", "WPS",
           "sandbox", "wechatpay", "alipay", "hall", "alice", "demo", "PDF", "Visa", "Mastercard", "Secure",  # 3D Secure
           "API", "X-API-Key", "GET", "MB", "JPEG", "PNG",  # the evidence's file formats
           "TD"}  # the carriers' stop word a driver replies with (回复TD退订)
# A word with a digit, a dot or an @ in it is an identifier (plate, receipt, payment, transaction, address).
IDENTIFIER = re.compile(r"\S*[0-9@._/:]\S*")
LATIN = re.compile(r"[A-Za-z][A-Za-z'’-]+")
# The vehicle the kiosk pays for, imported as the demo's are (the demo's stay as they are for the driver's screens):
# (notice, offense code, description, points, place, fine, days since the decision).
KIOSK_PLATE, KIOSK_VIN = "蒙BK9021", "H7M2P9"
KIOSK_FINES = [("150203202612000901", "1625", "驾驶机动车违反道路交通信号灯通行的", 6, "青山区钢铁大街与民主路交叉口", 20000, 20),
               ("150203202612000902", "1345", "机动车违反禁止标线指示的", 3, "昆都仑区建设路与友谊大街交叉口", 20000, 5)]

# Each size's own vehicles for the new screens (a contest, an instalment plan, reminders), so that the demo's stay
# as they are: the driver's (a fine to contest, one to pay in instalments; its reminders' phone) and the staff's.
DRIVER_CASES = {"phone": ("蒙B·S3601", "S36001", "139 0013 3601"), "desktop": ("蒙B·S3602", "S36002", "139 0013 3602")}
STAFF_CASES = {"phone": ("蒙B·T3611", "T36011", "13900143611"), "desktop": ("蒙B·T3612", "T36012", "13900143612")}
CASE_FINES = [("1625", "驾驶机动车违反道路交通信号灯通行的", 6, 20000, 20, "青山区钢铁大街与民主路交叉口"),
              ("1345", "机动车违反禁止标线指示的", 3, 20000, 25, "昆都仑区建设路与友谊大街交叉口")]
STATEMENT = "我当时不在现场，车辆停在小区地下车库，有物业的监控录像为证。"


def add_case_vehicle(app, plate, vin):
    """A vehicle with two overdue fines of its own: the first to contest, the second to pay in instalments."""
    vehicle = SimpleNamespace(plate=plate, vin=vin, normalized=plate.replace("·", ""), ids={})
    with app.app_context():
        today = business_today(app.config["BUSINESS_TIMEZONE"])
        for n, (code, description, points, fine, days, place) in enumerate(CASE_FINES, start=1):
            decided = today - timedelta(days=days)
            notice = f"1502032026120{plate[-4:]}{n}"
            vehicle.ids[notice] = make_violation(
                notice_number=notice, plate=vehicle.normalized, vin_last6=vin, offense_code=code,
                description=description, points=points, fine=fine, location=place, decision_date=decided,
                occurred_at=datetime.combine(decided - timedelta(days=3), time(9), ZoneInfo("Asia/Shanghai"))).id
        db.session.remove()
    return vehicle


def approve_plan(app, violation_id):
    """A plan of three monthly instalments, approved as a supervisor does (staff.services)."""
    with app.app_context():
        approve_instalment_plan(violation_id, count=3, actor_name="alice")
        db.session.remove()


def reminder_code(app, phone):
    """The code the outbox sender keeps for ``phone`` (the text says 验证码为NNNNNN)."""
    digits = "".join(c for c in phone if c.isdigit())
    with app.app_context():
        body = db.session.execute(select(Message.body).where(Message.phone == digits, Message.kind == CODE)
                                  .order_by(Message.id.desc()).limit(1)).scalar_one()
        db.session.remove()
    return body.split("验证码为")[1][:6]


# The page's words as a reader meets them, without what is recorded data rather than FinePay's own text: the
# audit log's details, identifiers and technical strings shown in monospace (.mono: user agents, failure codes).
READABLE = """() => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll('script, style, template, noscript, [hidden], .mono, code, pre, td.details, td.actor, '
                          + '.kkeyboard')  // the kiosk's keys: one letter each
        .forEach(e => e.remove());
    return body.textContent;
}"""


# The innermost elements that reach past the right edge (outside what scrolls by itself): what makes a page scroll sideways.
STICKING_OUT = """() => {
    const clipped = e => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== 'visible') return true; } return false; };
    return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !clipped(e))
    .slice(-3)
    .concat([...document.querySelectorAll('body *')].filter(e => e.scrollWidth > e.clientWidth + 1
             && getComputedStyle(e).overflowX === 'visible').slice(-3)).map(e => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`); }"""


def add_kiosk_vehicle(app):
    with app.app_context():
        today = business_today(app.config["BUSINESS_TIMEZONE"])
        for notice, code, description, points, place, fine, days in KIOSK_FINES:
            decided = today - timedelta(days=days)
            make_violation(notice_number=notice, plate=KIOSK_PLATE, vin_last6=KIOSK_VIN, offense_code=code,
                           description=description, points=points, location=place, fine=fine, decision_date=decided,
                           occurred_at=datetime.combine(decided - timedelta(days=3), time(9), ZoneInfo("Asia/Shanghai")))
        db.session.remove()


def english_left(text):
    """The Latin words in ``text`` that are neither identifiers nor allowed: a msgid left untranslated."""
    words = LATIN.findall(IDENTIFIER.sub(" ", text))
    return sorted({word for word in words if word not in ALLOWED})


@pytest.fixture(scope="module")
def site(sqlite_template, tmp_path_factory):
    """FinePay in Chinese with both rails' simulators, the demo data, a supervisor and a patient kiosk."""
    with running_rails(sqlite_template, tmp_path_factory.mktemp("screens"),
                       **{**BROWSER_CONFIG, "DEFAULT_LOCALE": "zh_CN", "KIOSK_POLL_SECONDS": 0.3,
                          "KIOSK_RETRY_SECONDS": 1, "KIOSK_RECEIPT_SECONDS": 600, "KIOSK_IDLE_SECONDS": 600}) as rails:
        runner = rails.app.test_cli_runner()
        for args, stdin in ((["demo", "seed"], None),
                            (["staff", "create-user", "alice", "--role", "supervisor", "--password-stdin"], PASSWORD)):
            result = runner.invoke(args=args, input=stdin and stdin + "\n")
            assert result.exit_code == 0, result.output
        yield rails


class Camera:
    """Takes each screen at one size and keeps what is wrong with it, to assert once every screen is saved."""

    def __init__(self, page, size):
        self.page, self.size, self.problems, self.names = page, size, [], []
        self.status = None
        page.on("response", self._document)

    def _document(self, response):
        if response.request.resource_type == "document" and response.frame == self.page.main_frame:
            self.status = response.status

    def __call__(self, name, status=200):
        page = self.page
        page.wait_for_load_state()
        self.names.append(name)
        folder = SCREENS / self.size
        folder.mkdir(parents=True, exist_ok=True)
        # From the page's end, where a sticky bar (the results' pay button) rests in its own place rather than
        # over whatever the first screenful's bottom edge cut through.
        page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        if status is not None and self.status != status:
            self.problems.append(f"{name}: HTTP {self.status}, expected {status}")
        width = page.evaluate("document.scrollingElement.scrollWidth")
        if width > page.viewport_size["width"]:
            self.problems.append(f"{name}: scrolls sideways ({width} px at {page.viewport_size['width']} px): "
                                 f"{page.evaluate(STICKING_OUT)}")
        if page.evaluate("document.documentElement.lang") != "zh-CN":
            self.problems.append(f"{name}: the page is not in Chinese")
        left = english_left(page.evaluate(READABLE))
        if left:
            self.problems.append(f"{name}: English left in the Chinese page: {left}")

    def assert_clean(self):
        assert not self.problems, f"{self.size}:\n" + "\n".join(self.problems)


@pytest.fixture
def camera(browser, request):
    """camera(size, **context options) -> a Camera on a fresh page of that size; closed afterwards."""
    contexts = []

    def make(size, **options):
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return Camera(context.new_page(), size)

    yield make
    for context in contexts:
        context.close()


def look_up(page, base, vehicle):
    page.goto(base + "/")
    page.fill("#plate", vehicle.plate)
    page.fill("#vin_last6", vehicle.vin)
    return wait_for_post(page, "/lookup", lambda: page.locator("form.card button[type=submit]").click())


def receipt_numbers(site):
    """The paid demo vehicle's receipt and the refunded one's."""
    with site.app.app_context():
        refunded = db.session.execute(select(Payment.receipt_number).where(Payment.status == "refunded")).scalar_one()
        paid = db.session.execute(select(Payment.receipt_number).where(Payment.status == "succeeded")
                                  .order_by(Payment.created_at)).scalars().first()
        db.session.remove()
    return paid, refunded


@pytest.mark.parametrize("size", sorted(SIZES))
def test_every_driver_screen(site, camera, size):
    shoot = camera(size, **SIZES[size])
    page, base = shoot.page, site.url
    assert REFUNDED_NOTICES  # the demo has a refunded vehicle: its receipt is shot below

    page.goto(base + "/")
    shoot("home")
    page.goto(base + "/")
    page.fill("#plate", "蒙B·12345")
    page.fill("#vin_last6", "A1234O")  # O is never in a VIN
    wait_for_post(page, "/lookup", lambda: page.locator("form.card button[type=submit]").click())
    shoot("home-form-error", status=422)
    look_up(page, base, SimpleNamespace(plate="蒙B·88888", vin="B88888"))  # the demo's plate with nothing on record
    shoot("no-match", status=404)

    look_up(page, base, IN_PERSON)
    shoot("results-in-person")
    look_up(page, base, PAID)
    shoot("results-paid")
    look_up(page, base, PAYABLE)
    shoot("results-payable")

    wait_for_post(page, "/pay/review", lambda: page.locator("#review-button").click())
    shoot("review")
    page.locator("#continue-button").click()
    page.wait_for_url(re.compile(r"/pay/pay_[0-9a-f]+$"))
    others = page.locator(".ways button").evaluate_all("buttons => buttons.map(b => b.value)")
    (first,) = {"wechatpay", "alipay", "sandbox"} - set(others)
    shoot(f"pay-{first}")
    for gateway in sorted(others):  # each other way of paying that serves this payer, in turn
        page.locator(f".ways button[value={gateway}]").click()
        page.wait_for_url(re.compile(r"/pay/pay_[0-9a-f]+$"))
        shoot(f"pay-{gateway}")

    paid, refunded = receipt_numbers(site)
    page.goto(f"{base}/receipts/{paid}")
    shoot("receipt")
    page.goto(f"{base}/receipts/{refunded}")
    shoot("receipt-refunded")
    page.goto(f"{base}/receipts/FP-0000-0000-0000-0000")
    shoot("receipt-not-found", status=404)
    page.goto(f"{base}/receipts/{paid}")
    expect(page.locator("#ereceipt-number")).to_be_visible()
    page.goto(page.locator(".ereceipt-qr .url").inner_text())  # where the e-receipt's QR code leads
    expect(page.locator("#verification-result")).to_be_visible()
    shoot("ereceipt-verified")

    page.goto(base + "/")
    page.locator("details:has(#payment_code) summary").click()
    expect(page.locator("#payment_code")).to_be_visible()
    shoot("home-payment-code")
    page.fill("#plate-payment", PAYABLE.plate)
    page.fill("#payment_code", DEMO_PAYMENT_CODE)
    wait_for_post(page, "/lookup", lambda: page.locator("details:has(#payment_code) button[type=submit]").click())
    shoot("results-payment-code")

    plate, vin, phone = DRIVER_CASES[size]
    vehicle = add_case_vehicle(site.app, plate, vin)
    contested, planned = vehicle.ids.values()
    look_up(page, base, vehicle)
    page.click(f"#apply-{planned}")
    shoot("case-application")
    look_up(page, base, vehicle)
    page.click(f"#contest-{contested}")
    shoot("case-contest")
    page.select_option("#reason", "facts_wrong")
    page.fill("#statement", STATEMENT)
    page.click("#file-case")
    expect(page.locator("#case-number")).to_be_visible()
    number = page.locator("#case-number").inner_text().strip()
    shoot("case-filed", status=201)
    page.goto(base + "/cases/check")
    shoot("case-check")
    page.fill("#plate", plate)
    page.fill("#vin_last6", vin)
    page.fill("#case_number", number)
    page.click("#check-case")
    page.wait_for_load_state()
    shoot("case-status")
    approve_plan(site.app, planned)
    look_up(page, base, vehicle)
    expect(page.locator(f"#under-contest-{contested}")).to_be_visible()
    expect(page.locator(f"#plan-{planned}")).to_be_visible()
    expect(page.locator(f"#apply-{planned}")).to_have_count(0)  # the plan answers an application already
    shoot("results-contest-plan")

    page.goto(base + "/notices/")
    shoot("notices")
    page.fill("#plate", plate)
    page.fill("#vin_last6", vin)
    page.fill("#phone", phone)
    page.click("#subscribe-button")
    expect(page.locator("#code")).to_be_visible()
    page.fill("#code", reminder_code(site.app, phone))
    shoot("notices-code")
    page.click("#confirm-button")
    expect(page.locator("#subscribed")).to_be_visible()
    shoot("notices-subscribed")
    page.goto(base + "/notices/")
    page.click("#stop-section summary")
    page.fill("#stop-plate", plate)
    page.fill("#stop-vin_last6", vin)
    page.fill("#stop-phone", phone)
    page.click("#stop-button")
    expect(page.locator("#stopped")).to_be_visible()
    shoot("notices-stopped")

    limit = site.app.config["LOOKUP_RATE_LIMIT"]
    site.app.config["LOOKUP_RATE_LIMIT"] = "1/hour"
    try:
        for _ in range(2):
            look_up(page, base, PAYABLE)
        shoot("rate-limited", status=429)
    finally:
        site.app.config["LOOKUP_RATE_LIMIT"] = limit

    page.goto(base + "/no-such-page")
    shoot("error", status=404)
    shoot.assert_clean()


def test_every_kiosk_step(site, camera):
    shoot = camera("kiosk", **KIOSK)
    page, base = shoot.page, site.url
    page.add_init_script("window.print = function () {};")  # a kiosk prints silently
    add_kiosk_vehicle(site.app)
    with site.app.app_context():
        enrolment = enrol_terminal(f"hall-{uuid.uuid4().hex[:4]}", "test", base_url=base)
        db.session.remove()
    page.goto(enrolment.url)
    shoot("enrol")
    page.locator("#enrol-button").tap()
    page.wait_for_url(base + "/kiosk")
    expect(page.locator("[data-screen=welcome]")).to_be_visible()
    shoot("welcome")

    tap(page, "#start")
    expect(page.locator("[data-screen=plate]")).to_be_visible()
    shoot("plate-empty", status=None)
    type_plate(page, KIOSK_PLATE)
    shoot("plate", status=None)
    tap(page, "[data-action=submit-plate]")
    expect(page.locator("[data-screen=vin]")).to_be_visible()
    shoot("vin-empty", status=None)
    tap(page, "[data-action=goto][data-path='/screens/notice']")
    expect(page.locator("[data-screen=notice]")).to_be_visible()
    shoot("notice", status=None)
    tap(page, "[data-action=goto][data-path='/screens/payment']")
    expect(page.locator("[data-screen=payment]")).to_be_visible()
    shoot("payment-code", status=None)
    tap(page, "[data-action=goto][data-path='/screens/vin']")
    expect(page.locator("[data-screen=vin]")).to_be_visible()
    type_vin(page, KIOSK_VIN)
    shoot("vin", status=None)
    tap(page, "[data-action=submit-vin]")
    expect(page.locator("[data-screen=violations]")).to_be_visible()
    shoot("violations", status=None)

    tap(page, "[data-action=review]")
    expect(page.locator("[data-screen=review]")).to_be_visible()
    shoot("review", status=None)
    for gateway in ("wechatpay", "alipay"):
        tap(page, f"[data-action=pay][data-gateway={gateway}]")
        expect(page.locator("[data-screen=scan]")).to_be_visible()
        expect(page.locator(".kqr-scan svg")).to_be_visible()
        shoot(f"scan-{gateway}", status=None)
        tap(page, "[data-action=cancel-payment]")
        expect(page.locator("[data-screen=review], [data-screen=violations]").first).to_be_visible()
        if page.locator("[data-screen=violations]").count():
            tap(page, "[data-action=review]")
            expect(page.locator("[data-screen=review]")).to_be_visible()

    tap(page, "[data-action=pay]:not([data-gateway=wechatpay]):not([data-gateway=alipay])")
    expect(page.locator("[data-screen=reader]")).to_be_visible()
    shoot("reader", status=None)
    tap(page, "[data-outcome=decline]")
    expect(page.locator("[data-outcome=failed]")).to_be_visible()
    shoot("result-declined", status=None)
    tap(page, "[data-action=retry-payment]")
    expect(page.locator("[data-screen=reader]")).to_be_visible()
    tap(page, "[data-outcome=approve]")
    expect(page.locator("[data-outcome=succeeded]")).to_be_visible()
    shoot("result-approved", status=None)
    tap(page, "[data-path='/receipt']")
    expect(page.locator("[data-screen=receipt]")).to_be_visible()
    shoot("receipt", status=None)
    page.emulate_media(media="print")
    page.locator("#kiosk-receipt").screenshot(path=str(SCREENS / "kiosk" / "printout.png"))
    page.emulate_media(media="screen")
    tap(page, "#start-over")
    expect(page.locator("[data-screen=welcome]")).to_be_visible()
    shoot.assert_clean()


@pytest.mark.parametrize("size", sorted(SIZES))
def test_every_staff_screen(site, camera, size):
    shoot = camera(size, **SIZES[size])
    page, base = shoot.page, site.url

    page.goto(f"{base}/staff/login")
    shoot("staff-login")
    send_sign_in(page, base)
    expect(page.locator("#signed-in-as")).to_be_visible()
    shoot("staff-dashboard")

    page.goto(f"{base}/staff/search")
    page.fill("#q", "蒙B3K521")
    with page.expect_navigation():
        page.locator("form.searchform button[type=submit]").click()
    shoot("staff-search")

    with site.app.app_context():
        payment_id, = db.session.execute(select(Payment.id).where(Payment.status == "succeeded")
                                         .order_by(Payment.created_at).limit(1)).scalars()
        violation_id = db.session.execute(select(Payment).where(Payment.id == payment_id)).scalar_one() \
            .items[0].violation_id
        db.session.remove()
    page.goto(f"{base}/staff/violations/{violation_id}")
    shoot("staff-violation")
    page.goto(f"{base}/staff/payments/{payment_id}")
    expect(page.locator("#official-ereceipts #ereceipt-number")).to_be_visible()
    shoot("staff-payment")
    page.fill("#amount", "1.00")
    page.fill("#reason", "核对退款确认页")
    page.click("#refund-button")
    expect(page.locator("#refund-confirm")).to_be_visible()
    shoot("staff-refund-review")

    plate, vin, phone = STAFF_CASES[size]
    vehicle = add_case_vehicle(site.app, plate, vin)
    contested, planned = vehicle.ids.values()
    with site.app.test_request_context():
        number = case_services.file_case(violation_id=contested, kind="contest", reason="facts_wrong",
                                         statement=STATEMENT, actor="driver").number
        notice_services.subscribe_start(plate=vehicle.normalized, vin_last6=vin, phone=phone, locale="zh_CN")
        db.session.remove()
    page.goto(f"{base}/staff/cases")
    expect(page.locator(f"#case-{number}")).to_be_visible()
    shoot("staff-cases")
    page.click(f"#case-{number} a")
    expect(page.locator("#case-status")).to_be_visible()
    shoot("staff-case")
    page.goto(f"{base}/staff/violations/{planned}")
    expect(page.locator("#approve-plan form")).to_be_visible()
    shoot("staff-violation-plan-form")
    approve_plan(site.app, planned)
    page.reload()
    expect(page.locator("#plan-state")).to_be_visible()
    shoot("staff-violation-plan")
    page.goto(f"{base}/staff/notices")
    shoot("staff-notices")

    today = page.evaluate("new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10)")  # Asia/Shanghai
    for name, path in [("staff-imports", "/staff/imports"),
                       ("staff-reconciliation", f"/staff/reconciliation?start={today}&end={today}"),
                       ("staff-reconciliation-empty", "/staff/reconciliation?start=2026-01-05&end=2026-01-05"),
                       ("staff-audit", "/staff/audit"), ("staff-users", "/staff/users"), ("staff-keys", "/staff/keys"),
                       ("staff-terminals", "/staff/terminals"), ("staff-sessions", "/staff/sessions")]:
        page.goto(base + path)
        shoot(name)
    shoot.assert_clean()


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_driver_header_is_one_row_at_360_px(site, browser, lang):
    """The language switcher stays beside the authority's name on a phone, never on a line of its own."""
    context = browser.new_context(**SIZES["phone"])
    context.add_cookies([{"name": "lang", "value": lang, "url": site.url}])
    try:
        page = context.new_page()
        for path in ("/", "/no-such-page"):
            page.goto(site.url + path)
            brand = page.locator(".site-header .brand").bounding_box()
            switch = page.locator(".site-header .lang-switch").bounding_box()
            assert switch["y"] < brand["y"] + brand["height"] and brand["y"] < switch["y"] + switch["height"], \
                f"{lang} {path}: the switcher wrapped below the name ({brand} / {switch})"
            assert switch["x"] >= brand["x"] + brand["width"]
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 360
            link = page.locator(".site-header .lang-switch a:visible")
            expect(link).to_have_count(1)  # the other language, to switch to
            assert link.bounding_box()["height"] >= 44
    finally:
        context.close()
